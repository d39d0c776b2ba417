"""Measure before optimising: warm-up, repeats, synchronised timers, a confidence interval.

:func:`measure` calls a function ``warmup`` times without timing it (first calls pay for
lazy initialisation, caches, CUDA kernels being loaded, ``torch.compile``), then times
``repeats`` calls with :func:`time.perf_counter`. GPU work is asynchronous: a call returns as
soon as its kernels are queued. When the device is CUDA (or MPS) the device is synchronised
before the clock starts and after every call, so each time covers the work and not only its
launch.

The summary is the **median** with a distribution-free confidence interval (order statistics
of the sample, from the binomial distribution): timings are skewed by occasional slow calls,
and the median and its interval do not assume normality. :func:`compare` reports the ratio of
medians and the ratio of minima (the minimum estimates the cost without interference).

torch is imported only when a device that needs synchronising is named, so timing a plain
Python function never imports it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["Measurement", "compare", "format_seconds", "measure", "median_ci"]

#: device types :func:`measure` knows how to synchronise (``cpu`` needs nothing)
_SYNC_TYPES = ("cuda", "mps")
_KNOWN_TYPES = ("cpu", *_SYNC_TYPES)

#: (threshold in seconds, unit, factor): the first row whose threshold the value reaches
_UNITS = ((1.0, "s", 1.0), (1e-3, "ms", 1e3), (1e-6, "µs", 1e6), (0.0, "ns", 1e9))


@dataclass(frozen=True)
class Measurement:
    """Timings of one function: the raw times and their summary."""

    #: every timed call, seconds, in call order
    times_s: tuple[float, ...]
    #: untimed calls made before timing
    warmup: int
    repeats: int
    median_s: float
    #: confidence interval of the median (see :func:`median_ci`)
    ci_low_s: float
    ci_high_s: float
    confidence: float
    #: the device synchronised around each call; ``"cpu"`` when none was named
    device: str

    @property
    def min_s(self) -> float:
        """The fastest timed call, seconds."""
        return min(self.times_s)

    def __str__(self) -> str:
        """Like ``12.3 ms (95% CI 11.9–12.8 ms, n=10)``; one unit for all three numbers."""
        unit, factor, decimals = _unit_for(self.median_s)
        median, low, high = (f"{v * factor:.{decimals}f}" for v in (self.median_s, self.ci_low_s, self.ci_high_s))
        return f"{median} {unit} ({self.confidence * 100:g}% CI {low}–{high} {unit}, n={len(self.times_s)})"


def measure(
    fn: Callable[[], object],
    *,
    warmup: int = 2,
    repeats: int = 10,
    device: str | torch.device | None = None,
    confidence: float = 0.95,
) -> Measurement:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeats`` timed ones.

    Args:
        fn: called with no arguments; wrap arguments with ``functools.partial`` or a lambda.
        warmup: untimed calls before timing starts (0 or more).
        repeats: timed calls (1 or more; 10 or more gives a real confidence interval).
        device: where ``fn`` runs its work. ``"cuda"``/``"cuda:N"``/``"mps"`` (or a
            ``torch.device``) synchronises that device before timing and after every call;
            ``None`` or ``"cpu"`` times host code as it is.
        confidence: level of the median's confidence interval, strictly between 0 and 1.

    Raises:
        ValueError: a count or level is out of range, or the device type is unknown.
        TypeError: ``fn`` is not callable.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable with no arguments, got {type(fn).__name__}")
    _check_count("warmup", warmup, minimum=0)
    _check_count("repeats", repeats, minimum=1)
    _check_confidence(confidence)
    name, sync = _synchroniser(device)

    sync()
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)

    low, high = median_ci(times, confidence)
    return Measurement(
        times_s=tuple(times),
        warmup=warmup,
        repeats=repeats,
        median_s=statistics.median(times),
        ci_low_s=low,
        ci_high_s=high,
        confidence=confidence,
        device=name,
    )


def median_ci(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free confidence interval for the median of ``samples``.

    The interval is ``[x_(r), x_(n+1-r)]`` of the sorted sample, with the largest rank ``r``
    for which ``P(Binomial(n, 1/2) <= r - 1) <= (1 - confidence) / 2``; its coverage is at
    least ``confidence`` for any continuous distribution. With very few samples no such rank
    exists (for 95%: fewer than 6 samples), and the interval falls back to ``[min, max]``,
    whose coverage ``1 - 2**(1 - n)`` is then *below* the requested level.

    Raises:
        ValueError: ``samples`` is empty or ``confidence`` is not strictly between 0 and 1.
    """
    _check_confidence(confidence)
    ordered = sorted(float(value) for value in samples)
    n = len(ordered)
    if n == 0:
        raise ValueError("median_ci needs at least one sample")
    rank = _lower_rank(n, confidence)
    if rank == 0:
        return ordered[0], ordered[-1]
    return ordered[rank - 1], ordered[n - rank]


def compare(a: Measurement, b: Measurement) -> dict[str, float]:
    """How many times slower ``a`` is than ``b``: ratio of medians and ratio of minima.

    A ratio above 1 means ``a`` took longer (``b`` is that many times faster). Report both:
    the median is what a user sees, the minimum is the cost with the least interference.
    """
    return {"median_ratio": a.median_s / b.median_s, "min_ratio": a.min_s / b.min_s}


def format_seconds(seconds: float) -> str:
    """A duration with three significant digits in s, ms, µs or ns: ``0.01234`` → ``"12.3 ms"``."""
    unit, factor, decimals = _unit_for(seconds)
    return f"{seconds * factor:.{decimals}f} {unit}"


# --- helpers -----------------------------------------------------------------------------


def _lower_rank(n: int, confidence: float) -> int:
    """The 1-based rank of the lower CI bound for the median of n samples; 0 if none qualifies."""
    from scipy.stats import binom  # lazy: scipy is slow to import and only needed here

    tail = (1.0 - confidence) / 2.0
    cdf = binom.cdf(range(n), n, 0.5)
    # cdf is increasing: the ranks r with P(B <= r - 1) <= tail are 1..count
    return int(sum(1 for value in cdf if value <= tail * (1 + 1e-12)))


def _unit_for(seconds: float) -> tuple[str, float, int]:
    """The unit, its factor and the decimals that give three significant digits."""
    # round to three significant digits first, so that 0.9996 s is "1.00 s", not "1000 ms"
    magnitude = abs(float(f"{seconds:.3g}"))
    unit, factor = next((unit, factor) for threshold, unit, factor in _UNITS if magnitude >= threshold)
    scaled = magnitude * factor
    decimals = 0 if scaled >= 99.95 else 1 if scaled >= 9.995 else 2
    return unit, factor, decimals


def _synchroniser(device: Any) -> tuple[str, Callable[[], None]]:
    """The device's name for the record and a function that waits for its queued work."""
    if device is None:
        return "cpu", _no_sync
    kind = getattr(device, "type", None) or str(device).split(":", 1)[0].strip().lower()
    if kind not in _KNOWN_TYPES:
        raise ValueError(f"cannot time on device {str(device)!r}: use one of {', '.join(_KNOWN_TYPES)} or None")
    if kind == "cpu":
        return "cpu", _no_sync

    import torch  # lazy: only a device that needs synchronising brings torch in

    target = torch.device(device)
    if kind == "cuda":
        return str(target), lambda: torch.cuda.synchronize(target)
    return str(target), torch.mps.synchronize


def _no_sync() -> None:
    """Nothing to wait for: host code is synchronous."""


def _check_count(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_confidence(confidence: float) -> None:
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number strictly between 0 and 1 (e.g. 0.95), got {confidence!r}")
