"""The sliding minute that counts upload attempts and failed sign-ins (grader/service/throttle.py), on a fake clock."""

from __future__ import annotations

from grader.service.throttle import Window, seconds_header


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_refused_once_it_has_its_limit_and_free_when_the_oldest_leaves() -> None:
    """Does the window say how long to wait: until the oldest of the last ``limit`` events is a minute old?"""
    clock = Clock()
    window = Window(3, clock=clock)
    for _ in range(3):
        assert window.take("ada") is None
        clock.now += 10
    assert window.take("ada") == 30.0  # the first event, 30 s ago, leaves in 30 s
    assert window.count("ada") == 3  # a refused attempt is not recorded
    clock.now += 30
    assert window.retry_after("ada") is None and window.take("ada") is None


def test_keys_are_counted_apart() -> None:
    clock = Clock()
    window = Window(1, clock=clock)
    window.record("203.0.113.7")
    assert window.retry_after("203.0.113.7") == 60.0
    assert window.retry_after("198.51.100.20") is None


def test_the_wait_is_at_least_a_second_and_a_header() -> None:
    clock = Clock()
    window = Window(1, clock=clock)
    window.record("k")
    clock.now += 59.9
    assert window.retry_after("k") == 1.0
    assert seconds_header(0.2) == {"Retry-After": "1"} and seconds_header(30.2) == {"Retry-After": "31"}


def test_a_limit_of_zero_counts_nothing() -> None:
    window = Window(0)
    for _ in range(100):
        window.record("k")
        assert window.take("k") is None
    assert window.count("k") == 0


def test_a_flood_of_keys_is_bounded_forgetting_the_quietest_first() -> None:
    """Can a flood of addresses grow the window without end? (It keeps ``max_keys``, dropping the longest quiet.)"""
    clock = Clock()
    window = Window(2, clock=clock, max_keys=100)
    window.record("learner")
    for i in range(1000):
        clock.now += 0.001
        window.record(f"10.0.{i // 256}.{i % 256}")
        if i % 50 == 0:
            window.record("learner")  # heard from often: kept
    assert len(window._events) == 100
    assert window.count("learner") == 2 and window.count("10.0.0.0") == 0
