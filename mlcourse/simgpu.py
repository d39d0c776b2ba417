"""A simulated asynchronous accelerator, on the CPU: why a GPU timer must synchronise and warm up.

A call that runs on a GPU returns as soon as its kernels are *queued*; the device does the work
later, while the host goes on. A timer read right after the call measures the launch, not the
work. The first call is slower than the others, too (kernels loaded, handles created, code
compiled). :class:`SimulatedGPU` behaves that way on any machine, so the mistakes can be shown,
and caught by a test, without a GPU::

    gpu = SimulatedGPU(kernel_s=0.01, first_call_s=0.2)
    gpu.launch()          # returns at once (the first launch: after 0.2 s of set-up on the host)
    gpu.synchronize()     # returns when the queued 0.01 s of "device work" has finished

It counts its launches and synchronisations and logs them in order (:attr:`SimulatedGPU.events`),
so a test can see whether a timing harness warmed up and waited for the device. The clock and
the sleep function can be replaced (tests use fake ones); by default they are
:func:`time.perf_counter` and :func:`time.sleep`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["LAUNCH", "SYNC", "SimulatedGPU"]

#: the event :meth:`SimulatedGPU.launch` logs
LAUNCH = "launch"
#: the event :meth:`SimulatedGPU.synchronize` logs
SYNC = "sync"


class SimulatedGPU:
    """A device whose launches are asynchronous and whose first launch is slow.

    Args:
        kernel_s: seconds of "device work" each launch queues.
        first_call_s: seconds the first launch blocks the host before queuing its work (lazy
            initialisation); 0 for none.
        clock: a monotonic clock in seconds.
        sleep: waits the given number of seconds.

    Raises:
        ValueError: a duration is negative.
    """

    def __init__(
        self,
        *,
        kernel_s: float = 0.01,
        first_call_s: float = 0.2,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        for name, value in (("kernel_s", kernel_s), ("first_call_s", first_call_s)):
            if not value >= 0:
                raise ValueError(f"{name} must be a duration >= 0 seconds, got {value!r}")
        self.kernel_s = float(kernel_s)
        self.first_call_s = float(first_call_s)
        self._clock = clock
        self._sleep = sleep
        self._busy_until = clock()
        #: every launch and synchronisation, in call order (:data:`LAUNCH`, :data:`SYNC`)
        self.events: list[str] = []

    @property
    def launches(self) -> int:
        """How many times :meth:`launch` was called."""
        return self.events.count(LAUNCH)

    @property
    def syncs(self) -> int:
        """How many times :meth:`synchronize` was called."""
        return self.events.count(SYNC)

    def pending_s(self) -> float:
        """Seconds of queued work not finished yet (0 when the device is idle)."""
        return max(0.0, self._busy_until - self._clock())

    def launch(self) -> None:
        """Queue ``kernel_s`` of work and return at once (after ``first_call_s`` the first time)."""
        if self.launches == 0 and self.first_call_s > 0:
            self._sleep(self.first_call_s)
        self.events.append(LAUNCH)
        # the device works through its queue in order: this kernel starts when the last one ends
        self._busy_until = max(self._busy_until, self._clock()) + self.kernel_s

    def synchronize(self) -> None:
        """Wait until every queued launch has finished, as ``torch.cuda.synchronize()`` does."""
        self.events.append(SYNC)
        remaining = self.pending_s()
        if remaining > 0:
            self._sleep(remaining)

    def __call__(self) -> None:
        """Calling the device launches one kernel: ``measure(gpu, ...)`` times launches."""
        self.launch()

    def __repr__(self) -> str:
        return (
            f"SimulatedGPU(kernel_s={self.kernel_s}, first_call_s={self.first_call_s}, "
            f"launches={self.launches}, syncs={self.syncs})"
        )
