"""Counting events per key in a sliding minute: upload attempts per learner, failed sign-ins per address.

:class:`Window` keeps, per key, the times of its last ``limit`` events; a key is over its limit once
``limit`` of them fall within ``window_s``, and :meth:`Window.retry_after` says when the oldest leaves.
It lives in the web process's memory (``grader serve`` runs one), is safe across threads, and holds at
most ``max_keys`` keys: beyond that the keys heard from longest ago are forgotten first, so a flood of
addresses costs bounded memory.

Two uses, both decided before any expensive work:

- **uploads** (:func:`grader.service.web.accept`): every attempt by a learner, whatever becomes of it,
  counts toward ``settings.submissions_per_minute`` before the notebook is read or parsed;
- **failed authentication** (:mod:`grader.service.web`, the sign-in page): a wrong token, by header,
  cookie or form, counts against the *client address* (what uvicorn gives as ``request.client``: behind
  the nginx of ``docs/SERVICE.md``, the ``X-Forwarded-For`` it believes from 127.0.0.1 only). Once an
  address has ``settings.auth_failures_per_minute`` failures in the last minute, every request from it
  that presents a token is answered 429 with ``Retry-After`` (right tokens too: no oracle), while the
  same token works from anywhere else. Nothing is counted per account, so nobody can lock a learner out.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable

#: keys one window remembers at most
MAX_KEYS = 100_000


class Window:
    """At most ``limit`` events per key in any ``window_s`` seconds (``limit`` 0: no limit)."""

    def __init__(
        self,
        limit: int,
        *,
        window_s: float = 60.0,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window_s, self.max_keys, self._clock = limit, window_s, max_keys, clock
        self._events: OrderedDict[Hashable, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: Hashable, now: float) -> deque[float] | None:
        events = self._events.get(key)
        if events is None:
            return None
        while events and events[0] <= now - self.window_s:
            events.popleft()
        if not events:
            del self._events[key]
            return None
        return events

    def _wait(self, events: deque[float] | None, now: float) -> float | None:
        if self.limit <= 0 or events is None or len(events) < self.limit:
            return None
        return max(1.0, events[-self.limit] + self.window_s - now)

    def retry_after(self, key: Hashable) -> float | None:
        """Seconds until ``key`` may act again, or None when it is under its limit now."""
        with self._lock:
            now = self._clock()
            return self._wait(self._recent(key, now), now)

    def count(self, key: Hashable) -> int:
        """``key``'s events in the last window."""
        with self._lock:
            events = self._recent(key, self._clock())
            return len(events) if events is not None else 0

    def _add(self, key: Hashable, events: deque[float] | None, now: float) -> None:
        if events is None:
            events = self._events[key] = deque(maxlen=self.limit)
        events.append(now)
        self._events.move_to_end(key)
        while len(self._events) > self.max_keys:
            self._events.popitem(last=False)

    def record(self, key: Hashable) -> None:
        """One more event for ``key``."""
        if self.limit <= 0:
            return
        with self._lock:
            now = self._clock()
            self._add(key, self._recent(key, now), now)

    def take(self, key: Hashable) -> float | None:
        """Record an event for ``key`` if it is under its limit (None); else, unrecorded, the seconds to wait."""
        if self.limit <= 0:
            return None
        with self._lock:
            now = self._clock()
            events = self._recent(key, now)
            wait = self._wait(events, now)
            if wait is None:
                self._add(key, events, now)
            return wait


def seconds_header(wait_s: float) -> dict[str, str]:
    """The ``Retry-After`` header for a wait."""
    return {"Retry-After": str(max(1, math.ceil(wait_s)))}
