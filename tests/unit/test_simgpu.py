"""mlcourse.simgpu: launches return at once, synchronize waits for the queue, the first call is slow.

A fake clock whose sleep advances it makes every duration exact; one test uses the real clock,
with bounds loose enough for a shared machine.
"""

from __future__ import annotations

import time

import pytest

from mlcourse.simgpu import LAUNCH, SYNC, SimulatedGPU


class FakeClock:
    """A clock that moves only when slept on or advanced."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def fake_gpu(clock: FakeClock, **options: float) -> SimulatedGPU:
    return SimulatedGPU(clock=clock, sleep=clock.sleep, **options)


def test_a_launch_returns_before_its_work_is_done(clock: FakeClock) -> None:
    """Does a launch cost the host nothing (after the first), leaving its work pending?"""
    gpu = fake_gpu(clock, kernel_s=0.01, first_call_s=0.0)
    gpu.launch()
    assert clock.now == 100.0
    assert gpu.pending_s() == pytest.approx(0.01)


def test_synchronize_waits_for_everything_queued(clock: FakeClock) -> None:
    """Does synchronize wait for all queued kernels, one after the other, and then nothing more?"""
    gpu = fake_gpu(clock, kernel_s=0.01, first_call_s=0.0)
    for _ in range(3):
        gpu.launch()
    gpu.synchronize()
    assert clock.now == pytest.approx(100.03)
    assert gpu.pending_s() == 0.0
    gpu.synchronize()
    assert clock.now == pytest.approx(100.03)


def test_work_that_finished_meanwhile_costs_no_wait(clock: FakeClock) -> None:
    """If the host was busy longer than the kernel ran, does synchronize return at once?"""
    gpu = fake_gpu(clock, kernel_s=0.01, first_call_s=0.0)
    gpu.launch()
    clock.sleep(0.5)
    gpu.synchronize()
    assert clock.now == pytest.approx(100.5)


def test_only_the_first_launch_pays_the_setup_on_the_host(clock: FakeClock) -> None:
    """Is first_call_s paid once, on the host, before the first kernel is queued?"""
    gpu = fake_gpu(clock, kernel_s=0.01, first_call_s=0.2)
    gpu.launch()
    assert clock.now == pytest.approx(100.2)
    gpu.launch()
    assert clock.now == pytest.approx(100.2)
    gpu.synchronize()
    assert clock.now == pytest.approx(100.22)


def test_events_record_calls_in_order(clock: FakeClock) -> None:
    """Can a test read back what a harness called, in order, and how often?"""
    gpu = fake_gpu(clock)
    gpu.launch()
    gpu()
    gpu.synchronize()
    assert gpu.events == [LAUNCH, LAUNCH, SYNC]
    assert (gpu.launches, gpu.syncs) == (2, 1)
    assert "launches=2" in repr(gpu)


@pytest.mark.parametrize("option", ["kernel_s", "first_call_s"])
def test_negative_durations_are_refused(option: str) -> None:
    """Does a negative duration fail with a message that names it?"""
    with pytest.raises(ValueError, match=option):
        SimulatedGPU(**{option: -1.0})


def test_real_clock_unsynchronised_timer_sees_only_the_launch() -> None:
    """With the real clock, does a timer without synchronize miss the work that one with it sees?"""
    gpu = SimulatedGPU(kernel_s=0.05, first_call_s=0.0)
    start = time.perf_counter()
    gpu.launch()
    launch_only = time.perf_counter() - start
    gpu.synchronize()
    with_sync = time.perf_counter() - start
    assert launch_only < 0.04 < with_sync
