"""A stream of ticket events with request-time features, for practising real-time ML.

:func:`make_events` turns one run of :func:`mlcourse.tickets.make_tickets` into a stream of
events in time order (``created_at`` in UTC), a few tickets per customer per day, so that a
customer's recent history is a useful feature. Each feature is computed from the customer's
**earlier** tickets only, as the serving side can when the ticket arrives (``FEATURES``):

====================  ==========================================================================
feature               meaning at request time (``now`` = the ticket's ``created_at``)
====================  ==========================================================================
tickets_24h           the customer's tickets in the 24 hours before ``now`` (the current one not
                      included)
minutes_since_last    minutes between the customer's previous ticket and ``now``; missing (NaN)
                      for a customer's first ticket
prior_tickets         the customer's tickets before ``now``
hour_utc              the hour of ``now`` in UTC, 0–23
====================  ==========================================================================

Two implementations compute them, as two teams would:

* :class:`FeatureStore` is the **online** side: it reads a customer's history when a request
  arrives, then records the event. :func:`online_features` replays a stream through it, one
  event at a time, and returns what the service would have logged.
* :func:`offline_features` is the **batch** side: the same definitions computed for a whole frame
  at once with pandas and NumPy, as a training pipeline does. Its ``skew`` argument plants one of
  the mistakes that make the two disagree (``SKEWS``); without it, both agree on every event.

:func:`features_as_of` computes the history features at any time, for example at the last
nightly batch run (a stale value), and :func:`canary_outcomes` draws the per-request outcomes of
a control model and a canary with known accuracies. Everything is deterministic given ``seed``.
"""

from __future__ import annotations

import bisect
import math

import numpy as np
import pandas as pd

from mlcourse.tickets import make_tickets

__all__ = [
    "FEATURES",
    "SKEWS",
    "FeatureStore",
    "canary_outcomes",
    "features_as_of",
    "make_events",
    "offline_features",
    "online_features",
]

FEATURES = ("tickets_24h", "minutes_since_last", "prior_tickets", "hour_utc")

#: planted skews of :func:`offline_features`: kind → (the features it changes, what goes wrong)
SKEWS: dict[str, tuple[tuple[str, ...], str]] = {
    "window": (("tickets_24h",), "the 24-hour window includes the current ticket (off by one)"),
    "timezone": (("hour_utc",), "the hour is read in local time (Europe/Berlin), not UTC"),
    "unit": (("minutes_since_last",), "the gap is in hours, not minutes"),
    "stale": (
        ("tickets_24h", "minutes_since_last", "prior_tickets"),
        "history is read from the nightly snapshot (as of midnight UTC), not at request time",
    ),
    "truncated": (
        ("minutes_since_last",),
        "timestamps lose their seconds in the batch export (floored to the minute); the counts change "
        "only for tickets near a window's edge",
    ),
}

_WINDOW = pd.Timedelta(hours=24)
_EVENT_COLUMNS = (
    "ticket_id",
    "created_at",
    "customer_id",
    "customer_tier",
    "channel",
    "product",
    "priority",
    "text",
    "team",
)


def make_events(
    n: int = 2000,
    *,
    seed: int = 0,
    n_customers: int = 150,
    days: int = 14,
    start: str = "2026-03-02",
    drift: float = 0.0,
) -> pd.DataFrame:
    """``n`` ticket events in time order, ``created_at`` in UTC (see the module docstring).

    The columns are ``ticket_id``, ``created_at``, ``customer_id``, ``customer_tier``,
    ``channel``, ``product``, ``priority``, ``text`` and ``team`` (the label, known only later).

    Raises:
        ValueError: an argument is out of range (from :func:`mlcourse.tickets.make_tickets`).
    """
    frame = make_tickets(n, seed=seed, n_customers=n_customers, days=days, start=start, drift=drift)
    frame = frame[list(_EVENT_COLUMNS)].reset_index(drop=True)
    frame["created_at"] = frame["created_at"].dt.tz_localize("UTC")
    return frame


class FeatureStore:
    """The online side: each customer's ticket times, read at request time, then written.

    >>> store = FeatureStore()
    >>> now = pd.Timestamp("2026-03-02 10:00", tz="UTC")
    >>> store.read("C1", now)["prior_tickets"]
    0
    >>> store.write("C1", now)
    >>> store.read("C1", now + pd.Timedelta(minutes=30))["minutes_since_last"]
    30.0
    """

    def __init__(self) -> None:
        self._times: dict[str, list[int]] = {}

    def read(self, customer_id: str, now: pd.Timestamp) -> dict[str, float | int]:
        """The request-time features of a ticket from ``customer_id`` arriving at ``now``."""
        now_ns = _ns(now)
        times = self._times.get(customer_id, [])
        before = bisect.bisect_left(times, now_ns)
        window_start = bisect.bisect_right(times, now_ns - _WINDOW.value)
        minutes = (now_ns - times[before - 1]) / 60e9 if before else math.nan
        return {
            "tickets_24h": before - window_start,
            "minutes_since_last": minutes,
            "prior_tickets": before,
            "hour_utc": int(pd.Timestamp(now).tz_convert("UTC").hour),
        }

    def write(self, customer_id: str, at: pd.Timestamp) -> None:
        """Record a ticket of ``customer_id`` at ``at`` (events may arrive slightly out of order)."""
        bisect.insort(self._times.setdefault(customer_id, []), _ns(at))


def online_features(events: pd.DataFrame) -> pd.DataFrame:
    """Replay ``events`` through a fresh :class:`FeatureStore`: what the service logged.

    Returns one row per event, indexed by ``ticket_id``, one column per feature in ``FEATURES``.
    """
    store = FeatureStore()
    rows = []
    ordered = events.sort_values("created_at", kind="stable")
    for customer, at in zip(ordered["customer_id"], ordered["created_at"], strict=True):
        rows.append(store.read(customer, at))
        store.write(customer, at)
    frame = pd.DataFrame(rows, index=pd.Index(ordered["ticket_id"], name="ticket_id"), columns=list(FEATURES))
    return frame.loc[events["ticket_id"]]


def features_as_of(events: pd.DataFrame, as_of: pd.Series | None = None) -> pd.DataFrame:
    """The history features of every event computed at ``as_of`` (default: its ``created_at``).

    ``as_of`` is aligned with ``events``; only the customer's tickets strictly before it count.
    With ``as_of = created_at.dt.floor("D")`` this is the value a nightly batch job stored.
    Returns one row per event, indexed by ``ticket_id``, columns ``FEATURES``.
    """
    times = _as_ns(events["created_at"])
    at = times if as_of is None else _as_ns(as_of)
    return _history_features(events, times, at, include_current=False)


def offline_features(events: pd.DataFrame, skew: str | None = None) -> pd.DataFrame:
    """The batch pipeline's features, vectorised; ``skew`` plants one mistake from ``SKEWS``.

    Without ``skew`` the result equals :func:`online_features` on every event.

    Raises:
        ValueError: ``skew`` is not ``None`` or a key of ``SKEWS``.
    """
    if skew is not None and skew not in SKEWS:
        raise ValueError(f"skew must be None or one of {sorted(SKEWS)}, got {skew!r}")
    times = _as_ns(events["created_at"])
    if skew == "truncated":
        times = _as_ns(events["created_at"].dt.floor("min"))
    at = _as_ns(events["created_at"].dt.floor("D")) if skew == "stale" else times
    frame = _history_features(events, times, at, include_current=skew == "window")
    if skew == "stale":  # the snapshot holds history; the hour still comes from the request
        frame["hour_utc"] = events["created_at"].dt.tz_convert("UTC").dt.hour.to_numpy()
    if skew == "timezone":
        frame["hour_utc"] = events["created_at"].dt.tz_convert("Europe/Berlin").dt.hour.to_numpy()
    if skew == "unit":
        frame["minutes_since_last"] = frame["minutes_since_last"] / 60.0
    return frame


def canary_outcomes(
    n_requests: int,
    *,
    control_accuracy: float,
    canary_accuracy: float,
    canary_share: float = 0.1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(control, canary): whether each request each arm served was answered right, in arrival order.

    Each of ``n_requests`` requests goes to the canary with probability ``canary_share`` and is
    answered right with that arm's accuracy.

    Raises:
        ValueError: a probability is outside [0, 1] or ``n_requests`` is negative.
    """
    for name, value in (
        ("control_accuracy", control_accuracy),
        ("canary_accuracy", canary_accuracy),
        ("canary_share", canary_share),
    ):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    if n_requests < 0:
        raise ValueError(f"n_requests must be 0 or more, got {n_requests}")
    rng = np.random.default_rng(seed)
    to_canary = rng.random(n_requests) < canary_share
    right = rng.random(n_requests) < np.where(to_canary, canary_accuracy, control_accuracy)
    return right[~to_canary], right[to_canary]


def _ns(at: pd.Timestamp) -> int:
    stamp = pd.Timestamp(at)
    if stamp.tzinfo is None:
        raise ValueError(f"timestamps must carry a time zone (UTC), got {stamp}")
    return int(stamp.value)


def _as_ns(values: pd.Series) -> np.ndarray:
    if getattr(values.dt, "tz", None) is None:
        raise ValueError("created_at must carry a time zone (UTC); make_events gives it one")
    return values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)


def _history_features(
    events: pd.DataFrame, times: np.ndarray, at: np.ndarray, *, include_current: bool
) -> pd.DataFrame:
    """History features of each event from its customer's ticket ``times``, read at ``at``."""
    n = len(events)
    tickets_24h = np.zeros(n, dtype=np.int64)
    prior = np.zeros(n, dtype=np.int64)
    minutes = np.full(n, np.nan)
    for rows in events.groupby("customer_id", sort=False).indices.values():
        own = np.sort(times[rows])
        when = at[rows]
        before = np.searchsorted(own, when, side="right" if include_current else "left")
        start = np.searchsorted(own, when - _WINDOW.value, side="right")
        tickets_24h[rows] = before - start
        strictly_before = np.searchsorted(own, when, side="left")
        prior[rows] = strictly_before
        has_last = strictly_before > 0
        last = own[np.maximum(strictly_before - 1, 0)]
        minutes[rows] = np.where(has_last, (when - last) / 60e9, np.nan)
    hours = events["created_at"].dt.tz_convert("UTC").dt.hour.to_numpy()
    frame = pd.DataFrame(
        {"tickets_24h": tickets_24h, "minutes_since_last": minutes, "prior_tickets": prior, "hour_utc": hours},
        index=pd.Index(events["ticket_id"].to_numpy(), name="ticket_id"),
    )
    return frame
