"""mlcourse.streams: windows of tickets with drift injected on purpose, checked as a specification.

Statistical checks use fixed seeds and wide margins: deterministic, and each would fail if a
kind of drift stopped changing what it should (or started changing what it should not).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, ks_2samp

from mlcourse.streams import DRIFT_KINDS, make_stream
from mlcourse.tickets import COLUMNS


def shares(values: pd.Series, levels: list[str]) -> np.ndarray:
    return values.value_counts(normalize=True).reindex(levels, fill_value=0.0).to_numpy()


def chi2_p(a: pd.Series, b: pd.Series) -> float:
    table = pd.concat([a.value_counts(), b.value_counts()], axis=1).fillna(0).T.to_numpy()
    return float(chi2_contingency(table)[1])


def new_word_share(frame: pd.DataFrame) -> float:
    """Share of tickets that use one of the drifted wording's signature words."""
    pattern = r"wallet|passkey|locker|pay-as-you-go|directory|dark mode|drone|credit bundle|usage credits"
    return float(frame["text"].str.contains(pattern).mean())


def pooled(stream, windows: range) -> pd.DataFrame:
    return pd.concat([stream.windows[i].frame for i in windows], ignore_index=True)


def test_same_seed_gives_the_same_stream() -> None:
    """Do the same arguments give identical windows, and another seed different ones?"""
    a = make_stream(4, 50, seed=3, drift_at=2, drift_kind="vocabulary", strength=0.8)
    b = make_stream(4, 50, seed=3, drift_at=2, drift_kind="vocabulary", strength=0.8)
    c = make_stream(4, 50, seed=4, drift_at=2, drift_kind="vocabulary", strength=0.8)
    pd.testing.assert_frame_equal(a.reference, b.reference)
    for wa, wb in zip(a.windows, b.windows, strict=True):
        pd.testing.assert_frame_equal(wa.frame, wb.frame)
    assert not a.windows[0].frame["text"].equals(c.windows[0].frame["text"])


def test_shape_flags_and_columns() -> None:
    """Does the stream have the asked-for windows, in time order, flagged from drift_at on?"""
    stream = make_stream(6, 40, seed=0, drift_at=3, drift_kind="channel", reference_size=120)
    assert len(stream.reference) == 120
    assert stream.drifted == [False, False, False, True, True, True]
    assert [w.strength for w in stream.windows] == [0, 0, 0, 1, 1, 1]
    previous_end = stream.reference["created_at"].max()
    for window in stream.windows:
        assert list(window.frame.columns) == list(COLUMNS)
        assert len(window.frame) == 40
        assert window.frame["created_at"].is_monotonic_increasing
        assert window.frame["created_at"].min() > previous_end
        assert (window.frame["text_length"] == window.frame["text"].str.len()).all()
        previous_end = window.frame["created_at"].max()


def test_ramp_grows_the_strength_linearly() -> None:
    stream = make_stream(6, 20, seed=0, drift_at=2, drift_kind="length", strength=0.9, ramp=2)
    assert [round(w.strength, 6) for w in stream.windows] == [0, 0, 0.3, 0.6, 0.9, 0.9]


def test_no_drift_windows_look_like_the_reference() -> None:
    """Without drift, are late windows statistically alike the reference on the monitored inputs?"""
    stream = make_stream(10, 300, seed=1, reference_size=1500)
    late = pooled(stream, range(5, 10))
    for column in ("channel", "product", "priority", "customer_tier"):
        assert chi2_p(stream.reference[column], late[column]) > 0.001, column
    assert ks_2samp(stream.reference["text_length"], late["text_length"]).pvalue > 0.001
    assert new_word_share(late) == 0.0


@pytest.mark.parametrize(
    ("kind", "column", "level", "before_at_most", "after_at_least"),
    [
        ("team_mix", "team", "security", 0.30, 0.45),
        ("channel", "channel", "chat", 0.40, 0.60),
    ],
)
def test_tilting_drift_moves_its_column(kind, column, level, before_at_most, after_at_least) -> None:
    """Does the tilted category's share jump from drift_at on, and only then?"""
    stream = make_stream(8, 300, seed=2, drift_at=4, drift_kind=kind, strength=1.0)
    before = pooled(stream, range(4))
    after = pooled(stream, range(4, 8))
    assert (before[column] == level).mean() <= before_at_most
    assert (after[column] == level).mean() >= after_at_least


def test_vocabulary_drift_changes_the_words_not_the_mix() -> None:
    stream = make_stream(6, 300, seed=5, drift_at=3, drift_kind="vocabulary", strength=1.0)
    before, after = pooled(stream, range(3)), pooled(stream, range(3, 6))
    assert new_word_share(before) == 0.0
    assert new_word_share(after) > 0.2
    assert chi2_p(before["team"], after["team"]) > 0.001


def test_rewritten_texts_keep_each_customers_signature() -> None:
    """Are drifted texts still written by the same customers (same sign-off)?"""
    clean = make_stream(3, 200, seed=6)
    drifted = make_stream(3, 200, seed=6, drift_at=0, drift_kind="vocabulary", strength=1.0)
    for a, b in zip(clean.windows, drifted.windows, strict=True):
        assert a.frame["ticket_id"].equals(b.frame["ticket_id"])
        signed_a = a.frame["text"].str.extract(r" - ([^-]+)$")[0]
        signed_b = b.frame["text"].str.extract(r" - ([^-]+)$")[0]
        both = signed_a.notna() & signed_b.notna()
        assert both.sum() > 50
        assert (signed_a[both] == signed_b[both]).all()


def test_length_drift_lengthens_texts() -> None:
    stream = make_stream(6, 300, seed=7, drift_at=3, drift_kind="length", strength=0.5)
    before, after = pooled(stream, range(3)), pooled(stream, range(3, 6))
    assert after["text_length"].mean() - before["text_length"].mean() > 20
    assert ks_2samp(before["text_length"], after["text_length"]).pvalue < 1e-6


def test_concept_drift_changes_labels_only() -> None:
    """Does concept drift move account tickets to security while the inputs stay the same?"""
    clean = make_stream(4, 300, seed=8)
    drifted = make_stream(4, 300, seed=8, drift_at=2, drift_kind="concept", strength=1.0)
    for a, b in zip(clean.windows, drifted.windows, strict=True):
        inputs = [c for c in COLUMNS if c != "team"]
        pd.testing.assert_frame_equal(a.frame[inputs], b.frame[inputs])
    assert (drifted.windows[3].frame["team"] == "account").sum() == 0
    assert (clean.windows[3].frame["team"] == "account").sum() > 20


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_windows": 0}, "n_windows"),
        ({"window_size": 5}, "window_size"),
        ({"drift_kind": "weather"}, "drift_kind"),
        ({"drift_at": 9}, "drift_at"),
        ({"strength": 1.5}, "strength"),
        ({"ramp": -1}, "ramp"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments_are_named(kwargs, message) -> None:
    arguments = {"n_windows": 4, "window_size": 20, "seed": 0, "drift_at": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        make_stream(**arguments)


def test_every_kind_is_accepted() -> None:
    for kind in DRIFT_KINDS:
        assert len(make_stream(2, 20, seed=0, drift_at=1, drift_kind=kind).windows) == 2
