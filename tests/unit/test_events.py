"""Unit tests for mlcourse.events: the event stream, its two feature pipelines and canary outcomes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlcourse.events import (
    FEATURES,
    SKEWS,
    FeatureStore,
    canary_outcomes,
    features_as_of,
    make_events,
    offline_features,
    online_features,
)


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return make_events(600, seed=3, n_customers=60, days=7)


def _differs(a: pd.DataFrame, b: pd.DataFrame, feature: str) -> np.ndarray:
    x = a.loc[b.index, feature].to_numpy(dtype=float)
    y = b[feature].to_numpy(dtype=float)
    return ~((x == y) | (np.isnan(x) & np.isnan(y)))


def test_events_are_in_time_order_in_utc_and_reproducible(events: pd.DataFrame) -> None:
    """Are events sorted, time-zone aware, and the same for the same seed?"""
    assert events["created_at"].is_monotonic_increasing
    assert str(events["created_at"].dt.tz) == "UTC"
    assert events["ticket_id"].is_unique
    pd.testing.assert_frame_equal(events, make_events(600, seed=3, n_customers=60, days=7))


def test_store_reads_history_strictly_before_now() -> None:
    """Does a request see earlier tickets only, with a 24-hour window and a missing first gap?"""
    store = FeatureStore()
    t0 = pd.Timestamp("2026-03-02 08:00", tz="UTC")
    first = store.read("C1", t0)
    assert first["prior_tickets"] == 0 and first["tickets_24h"] == 0 and math.isnan(first["minutes_since_last"])
    for hours in (0, 2, 20):
        store.write("C1", t0 + pd.Timedelta(hours=hours))
    later = store.read("C1", t0 + pd.Timedelta(hours=25))
    assert later == {"tickets_24h": 2, "minutes_since_last": 300.0, "prior_tickets": 3, "hour_utc": 9}
    assert store.read("C2", t0)["prior_tickets"] == 0


def test_store_refuses_naive_timestamps() -> None:
    """Is a timestamp without a time zone refused with a message that says what to pass?"""
    with pytest.raises(ValueError, match="time zone"):
        FeatureStore().read("C1", pd.Timestamp("2026-03-02 08:00"))


def test_online_and_offline_agree_without_skew(events: pd.DataFrame) -> None:
    """Do the replayed service and the vectorised batch job agree on every event and feature?"""
    online, offline = online_features(events), offline_features(events)
    assert list(online.columns) == list(FEATURES) == list(offline.columns)
    assert list(online.index) == list(events["ticket_id"])
    for feature in FEATURES:
        assert not _differs(offline, online, feature).any(), feature


@pytest.mark.parametrize("skew", sorted(SKEWS))
def test_each_skew_changes_the_features_it_names(events: pd.DataFrame, skew: str) -> None:
    """Does each planted skew change its features on many events, and leave the others alone?"""
    online, offline = online_features(events), offline_features(events, skew)
    changed, _ = SKEWS[skew]
    for feature in FEATURES:
        share = _differs(offline, online, feature).mean()
        if feature in changed:
            assert share > 0.05, (skew, feature, share)
        else:
            assert share < 0.005, (skew, feature, share)


def test_unknown_skew_is_refused(events: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="skew must be None or one of"):
        offline_features(events, "typo")


def test_features_as_of_midnight_are_the_stale_snapshot(events: pd.DataFrame) -> None:
    """Is the nightly snapshot what the 'stale' skew serves, and never ahead of request time?"""
    snapshot = features_as_of(events, events["created_at"].dt.floor("D"))
    stale = offline_features(events, "stale")
    for feature in ("tickets_24h", "prior_tickets"):
        assert (snapshot[feature].to_numpy() == stale[feature].to_numpy()).all()
    assert (snapshot["prior_tickets"].to_numpy() <= online_features(events)["prior_tickets"].to_numpy()).all()


def test_canary_outcomes_split_the_traffic_with_the_given_accuracies() -> None:
    control, canary = canary_outcomes(40_000, control_accuracy=0.8, canary_accuracy=0.6, canary_share=0.25, seed=1)
    assert len(control) + len(canary) == 40_000
    assert abs(len(canary) / 40_000 - 0.25) < 0.01
    assert abs(control.mean() - 0.8) < 0.01 and abs(canary.mean() - 0.6) < 0.02
    again = canary_outcomes(40_000, control_accuracy=0.8, canary_accuracy=0.6, canary_share=0.25, seed=1)
    assert (again[0] == control).all() and (again[1] == canary).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"control_accuracy": 1.2, "canary_accuracy": 0.5}, "control_accuracy"),
        ({"control_accuracy": 0.5, "canary_accuracy": 0.5, "canary_share": -0.1}, "canary_share"),
    ],
)
def test_canary_outcomes_refuse_bad_probabilities(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        canary_outcomes(10, **kwargs)
