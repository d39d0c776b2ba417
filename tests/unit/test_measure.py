"""mlcourse.measure: warm-up, repeats, device synchronisation, the median's CI, formatting.

No test asserts on how long anything takes: timing assertions are flaky. Where a test needs
"slow" and "fast" calls it replaces the clock with a fake one.
"""

from __future__ import annotations

import math
import random
import statistics
import subprocess
import sys
from collections.abc import Callable

import pytest

from mlcourse import measure as m


class FakeClock:
    """A perf_counter that advances only when the code under test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(m.time, "perf_counter", fake)
    return fake


def calls_taking(clock: FakeClock, durations: list[float]) -> tuple[Callable[[], None], list[int]]:
    """A function whose n-th call takes durations[n] fake seconds, and its call counter."""
    calls: list[int] = []

    def fn() -> None:
        clock.advance(durations[len(calls)])
        calls.append(len(calls))

    return fn, calls


def make(times: list[float], confidence: float = 0.95) -> m.Measurement:
    low, high = m.median_ci(times, confidence)
    return m.Measurement(
        times_s=tuple(times),
        warmup=0,
        repeats=len(times),
        median_s=statistics.median(times),
        ci_low_s=low,
        ci_high_s=high,
        confidence=confidence,
        device="cpu",
    )


# --- warm-up and repeats -------------------------------------------------------------------


@pytest.mark.parametrize(("warmup", "repeats"), [(0, 1), (2, 10), (5, 3)])
def test_fn_is_called_warmup_plus_repeats_times(clock: FakeClock, warmup: int, repeats: int) -> None:
    """Is the function called exactly warmup + repeats times, and are repeats times recorded?"""
    fn, calls = calls_taking(clock, [0.001] * (warmup + repeats))
    result = m.measure(fn, warmup=warmup, repeats=repeats)
    assert len(calls) == warmup + repeats
    assert len(result.times_s) == repeats
    assert (result.warmup, result.repeats) == (warmup, repeats)


def test_warmup_calls_are_not_timed(clock: FakeClock) -> None:
    """When the first calls are slow (cold caches, compilation), are they left out of the times?"""
    warmup, repeats = 3, 7
    fn, _ = calls_taking(clock, [5.0] * warmup + [0.010 + 0.001 * i for i in range(repeats)])
    result = m.measure(fn, warmup=warmup, repeats=repeats)
    assert result.times_s == pytest.approx([0.010 + 0.001 * i for i in range(repeats)])
    assert max(result.times_s) < 1.0


def test_without_warmup_the_slow_first_call_is_timed(clock: FakeClock) -> None:
    """With warmup=0, does the slow first call show up (so the test above can fail)?"""
    fn, _ = calls_taking(clock, [5.0] + [0.01] * 4)
    result = m.measure(fn, warmup=0, repeats=5)
    assert result.times_s[0] == pytest.approx(5.0)


def test_summary_matches_the_raw_times(clock: FakeClock) -> None:
    """Are the median and the CI computed from the recorded times?"""
    durations = [0.03, 0.01, 0.05, 0.02, 0.04, 0.06, 0.07, 0.08, 0.09, 0.10]
    fn, _ = calls_taking(clock, durations)
    result = m.measure(fn, warmup=0, repeats=len(durations), confidence=0.95)
    assert result.median_s == pytest.approx(0.055)
    assert result.min_s == pytest.approx(0.01)
    assert (result.ci_low_s, result.ci_high_s) == pytest.approx(m.median_ci(durations, 0.95))
    assert result.ci_low_s <= result.median_s <= result.ci_high_s


def test_real_clock_times_a_plain_function() -> None:
    """With the real clock, are the times positive and the median inside its CI?"""
    result = m.measure(lambda: sum(range(1000)), warmup=1, repeats=12)
    assert all(t > 0 for t in result.times_s)
    assert result.ci_low_s <= result.median_s <= result.ci_high_s
    assert result.device == "cpu"


def test_plain_functions_do_not_import_torch() -> None:
    """Can a plain Python function be timed without torch being imported?"""
    code = (
        "import sys\n"
        "from mlcourse.measure import measure\n"
        "measure(lambda: None, repeats=3)\n"
        "measure(lambda: None, repeats=3, device='cpu')\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# --- device synchronisation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "device",
    [lambda torch: "cuda", lambda torch: "cuda:0", lambda torch: torch.device("cuda", 1)],
    ids=["cuda", "cuda:0", "torch.device(cuda, 1)"],
)
def test_cuda_is_synchronised_around_every_call(monkeypatch, device) -> None:
    """On CUDA, is the device synchronised before timing and after each call, in that order?"""
    torch = pytest.importorskip("torch")
    device_arg = device(torch)
    events: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: events.append(f"sync:{d}"))
    m.measure(lambda: events.append("call"), warmup=2, repeats=3, device=device_arg)
    expected_device = str(torch.device(device_arg))
    sync = f"sync:{expected_device}"
    assert events == [sync, "call", "call", sync, "call", sync, "call", sync, "call", sync]


def test_cuda_sync_is_inside_the_timed_region(monkeypatch, clock: FakeClock) -> None:
    """Is the wait for queued GPU work counted in the call's time (not only the launch)?"""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: clock.advance(0.5))
    result = m.measure(lambda: clock.advance(0.001), warmup=0, repeats=3, device="cuda")
    assert result.times_s == pytest.approx([0.501] * 3)
    assert result.device == "cuda"


def test_cpu_device_is_not_synchronised(monkeypatch) -> None:
    """Does an explicit CPU device skip CUDA synchronisation?"""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: pytest.fail("synchronised a CPU run"))
    assert m.measure(lambda: None, repeats=2, device=torch.device("cpu")).device == "cpu"


# --- argument checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"repeats": 0}, "repeats"),
        ({"repeats": 2.5}, "repeats"),
        ({"repeats": True}, "repeats"),
        ({"warmup": -1}, "warmup"),
        ({"confidence": 0.0}, "confidence"),
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": 95}, "confidence"),
        ({"confidence": math.nan}, "confidence"),
        ({"device": "tpu"}, "tpu"),
    ],
)
def test_bad_arguments_are_value_errors(kwargs: dict, message: str) -> None:
    """Is each out-of-range argument refused with a message that names it?"""
    with pytest.raises(ValueError, match=message):
        m.measure(lambda: None, **kwargs)


def test_non_callable_is_a_type_error() -> None:
    """Does passing a result instead of a function (a common mistake) fail clearly?"""
    with pytest.raises(TypeError, match="callable"):
        m.measure(42)  # type: ignore[arg-type]


# --- the median's confidence interval -----------------------------------------------------------


def brute_force_rank(n: int, confidence: float) -> int:
    """Largest r with P(Binomial(n, 1/2) <= r - 1) <= (1 - confidence) / 2, by exact counting."""
    tail = (1 - confidence) / 2
    best = 0
    for r in range(1, n + 1):
        if sum(math.comb(n, k) for k in range(r)) / 2**n <= tail:
            best = r
    return best


@pytest.mark.parametrize(
    ("n", "confidence", "lower_rank"),
    [
        (10, 0.95, 2),  # the textbook case: x(2)..x(9)
        (20, 0.95, 6),
        (100, 0.95, 40),
        (10, 0.90, 2),
        (10, 0.99, 1),
        (6, 0.95, 1),  # smallest n with a 95% interval
    ],
)
def test_median_ci_uses_binomial_order_statistics(n: int, confidence: float, lower_rank: int) -> None:
    """Are the bounds the order statistics that the exact binomial calculation picks?"""
    assert brute_force_rank(n, confidence) == lower_rank
    samples = list(range(1, n + 1))  # the value equals its rank
    assert m.median_ci(samples[::-1], confidence) == (lower_rank, n + 1 - lower_rank)


@pytest.mark.parametrize(("n", "confidence"), [(n, c) for n in (1, 2, 3, 5) for c in (0.95,)] + [(7, 0.99)])
def test_median_ci_falls_back_to_min_max_for_small_samples(n: int, confidence: float) -> None:
    """With too few samples for the requested level, is the interval the whole sample range?"""
    assert brute_force_rank(n, confidence) == 0
    samples = [float(v) for v in range(n, 0, -1)]
    assert m.median_ci(samples, confidence) == (1.0, float(n))


def test_ci_narrows_with_more_repeats() -> None:
    """From the same distribution, is the 95% interval narrower with 200 samples than with 12?"""

    # deterministic "samples": evenly spaced quantiles of one distribution
    def quantiles(n: int) -> list[float]:
        return [10 + (i + 0.5) / n for i in range(n)]

    small, large = m.median_ci(quantiles(12)), m.median_ci(quantiles(200))
    assert large[1] - large[0] < (small[1] - small[0]) / 2


def test_ci_widens_with_confidence() -> None:
    """Is a 99% interval at least as wide as a 90% one, and strictly wider here?"""
    samples = [10 + i / 50 for i in range(50)]
    narrow, wide = m.median_ci(samples, 0.90), m.median_ci(samples, 0.99)
    assert wide[0] < narrow[0] and wide[1] > narrow[1]


@pytest.mark.parametrize("seed", range(5))
def test_median_lies_inside_its_ci(seed: int) -> None:
    """For skewed timings with outliers, does the CI always contain the sample median?"""
    rng = random.Random(seed)
    samples = [0.01 * rng.lognormvariate(0, 1) for _ in range(15)] + [1.0]  # one slow outlier
    measurement = make(samples)
    assert measurement.ci_low_s <= measurement.median_s <= measurement.ci_high_s


def test_median_ci_of_no_samples_is_an_error() -> None:
    """Does an empty sample raise instead of returning a meaningless interval?"""
    with pytest.raises(ValueError, match="at least one"):
        m.median_ci([])


# --- formatting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (1.5, "1.50 s"),
        (12.34, "12.3 s"),
        (0.0123, "12.3 ms"),
        (0.1234, "123 ms"),
        (0.9996, "1.00 s"),  # rounding does not produce "1000 ms"
        (0.009996, "10.0 ms"),
        (4.2e-4, "420 µs"),
        (1.5e-5, "15.0 µs"),
        (3.2e-9, "3.20 ns"),
    ],
)
def test_format_seconds_picks_the_unit(seconds: float, text: str) -> None:
    """Is a duration shown with three significant digits in the right unit?"""
    assert m.format_seconds(seconds) == text


@pytest.mark.parametrize(
    ("times", "confidence", "text"),
    [
        (
            [0.0119, 0.0121, 0.0122, 0.0123, 0.0123, 0.0123, 0.0124, 0.0125, 0.0128, 0.0131],
            0.95,
            "12.3 ms (95% CI 12.1–12.8 ms, n=10)",
        ),
        ([2.0, 2.1, 2.2], 0.95, "2.10 s (95% CI 2.00–2.20 s, n=3)"),
        ([1e-5] * 10, 0.9, "10.0 µs (90% CI 10.0–10.0 µs, n=10)"),
        ([0.0009, 0.0011] * 5, 0.95, "1.00 ms (95% CI 0.90–1.10 ms, n=10)"),
    ],
)
def test_measurement_str(times: list[float], confidence: float, text: str) -> None:
    """Does str() give the median, the CI in the same unit, the level and n?"""
    assert str(make(times, confidence)) == text


# --- comparing two measurements ---------------------------------------------------------------


def test_compare_gives_ratio_of_medians_and_of_minima() -> None:
    """Does compare() report how many times slower a is than b, by median and by minimum?"""
    slow = make([0.020, 0.030, 0.040])
    fast = make([0.005, 0.010, 0.050])
    assert m.compare(slow, fast) == pytest.approx({"median_ratio": 3.0, "min_ratio": 4.0})
    assert m.compare(fast, slow) == pytest.approx({"median_ratio": 1 / 3, "min_ratio": 1 / 4})
