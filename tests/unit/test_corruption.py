"""mlcourse.corruption: each corruption breaks what it says, only that, and the same way for a seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlcourse.corruption import CORRUPTIONS, UNSEEN_TEAMS, corrupt, corrupt_split
from mlcourse.tickets import COLUMNS, TEAMS, make_tickets

SEEDS = (0, 1, 2, 3, 4, 5)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_tickets(300, seed=4)


def changed_cells(before: pd.DataFrame, after: pd.DataFrame) -> dict[str, int]:
    """Number of changed values per column of two frames with the same shape and columns."""
    assert before.shape == after.shape and list(before.columns) == list(after.columns)
    counts = {}
    for column in before.columns:
        a, b = before[column].reset_index(drop=True), after[column].reset_index(drop=True)
        differ = ~((a == b) | (a.isna() & b.isna()))
        if differ.any():
            counts[column] = int(differ.sum())
    return counts


def test_unseen_teams_are_really_unseen() -> None:
    """Is every label that unseen_labels writes outside TEAMS?"""
    assert not set(UNSEEN_TEAMS) & set(TEAMS)


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_same_seed_same_result_and_input_untouched(frame: pd.DataFrame, kind: str) -> None:
    """Does a seed always give the same corruption, and is the input left as it was?"""
    before = frame.copy()
    first = corrupt(frame, kind, seed=7)
    pd.testing.assert_frame_equal(corrupt(frame, kind, seed=7), first)
    pd.testing.assert_frame_equal(frame, before)
    assert not first.equals(frame)


@pytest.mark.parametrize("kind", [k for k in CORRUPTIONS if k != "schema"])
def test_different_seeds_corrupt_different_rows(frame: pd.DataFrame, kind: str) -> None:
    """Do two seeds give two different corruptions?"""
    assert not corrupt(frame, kind, seed=1).equals(corrupt(frame, kind, seed=2))


@pytest.mark.parametrize("seed", SEEDS)
def test_schema_changes_one_column_and_nothing_else(frame: pd.DataFrame, seed: int) -> None:
    """Does schema drop, rename or retype exactly one column, keeping every value?"""
    out = corrupt(frame, "schema", seed=seed)
    assert len(out) == len(frame)
    if list(out.columns) == list(frame.columns):
        retyped = [c for c in frame.columns if out[c].dtype != frame[c].dtype]
        assert len(retyped) == 1, retyped
        (column,) = retyped
        assert out[column].tolist() == frame[column].astype("str").tolist() or column == "created_at"
        pd.testing.assert_frame_equal(out.drop(columns=column), frame.drop(columns=column))
        assert (pd.to_datetime(out["created_at"]) == frame["created_at"]).all()
    else:
        missing = set(frame.columns) - set(out.columns)
        added = set(out.columns) - set(frame.columns)
        assert len(missing) == 1 and len(added) <= 1
        kept = [c for c in frame.columns if c in out.columns]
        pd.testing.assert_frame_equal(out[kept], frame[kept])
        if added:
            assert out[next(iter(added))].tolist() == frame[next(iter(missing))].tolist()


def test_schema_variants_all_occur(frame: pd.DataFrame) -> None:
    """Across seeds, are columns dropped, renamed and retyped?"""
    seen = set()
    for seed in range(30):
        out = corrupt(frame, "schema", seed=seed)
        if len(out.columns) < len(frame.columns):
            seen.add("drop")
        elif list(out.columns) != list(frame.columns):
            seen.add("rename")
        else:
            seen.add("retype")
    assert seen == {"drop", "rename", "retype"}


@pytest.mark.parametrize("seed", SEEDS)
def test_duplicate_rows_are_verbatim_copies_after_their_original(frame: pd.DataFrame, seed: int) -> None:
    """Are the added rows exact copies, each right after its original, the rest unchanged?"""
    out = corrupt(frame, "duplicate_rows", seed=seed, fraction=0.05)
    assert len(out) == len(frame) + 15
    copy = out.duplicated(keep="first").to_numpy()
    assert copy.sum() == 15
    assert (out.shift(1)[copy].to_numpy() == out[copy].to_numpy()).all()
    pd.testing.assert_frame_equal(out[~copy].reset_index(drop=True), frame)


@pytest.mark.parametrize("seed", SEEDS)
def test_duplicate_ids_repeat_an_id_with_an_edited_text(frame: pd.DataFrame, seed: int) -> None:
    """Is each added row a known ticket id with a longer text and a matching text_length?"""
    out = corrupt(frame, "duplicate_ids", seed=seed, fraction=0.05)
    copy = out["ticket_id"].duplicated(keep="first").to_numpy()
    assert copy.sum() == 15 and len(out) == len(frame) + 15
    assert not out.duplicated().any(), "the copies should differ from their originals"
    pd.testing.assert_frame_equal(out[~copy].reset_index(drop=True), frame)
    copies, originals = out[copy], out.shift(1)[copy]
    assert (copies["ticket_id"] == originals["ticket_id"]).all()
    assert all(c.startswith(o) and len(c) > len(o) for c, o in zip(copies["text"], originals["text"], strict=True))
    assert (copies["text_length"] == copies["text"].str.len()).all()
    assert out["created_at"].is_monotonic_increasing


@pytest.mark.parametrize(
    ("kind", "columns"),
    [
        ("unseen_labels", {"team"}),
        ("nulls", {"text", "customer_id"}),
        ("negative_age", {"account_age_days"}),
        ("absurd_text_length", {"text_length"}),
        ("shifted_timestamps", {"created_at"}),
    ],
)
@pytest.mark.parametrize("seed", SEEDS)
def test_value_corruptions_change_only_their_columns(
    frame: pd.DataFrame, kind: str, columns: set[str], seed: int
) -> None:
    """Does each value corruption change its share of rows, in its own columns only, keeping dtypes?"""
    out = corrupt(frame, kind, seed=seed, fraction=0.04)
    changed = changed_cells(frame, out)
    assert set(changed) <= columns and changed, changed
    assert sum(changed.values()) == 12
    assert (out.dtypes == frame.dtypes).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_corrupted_values_break_the_assumption(frame: pd.DataFrame, seed: int) -> None:
    """Is every corrupted value really invalid: unknown team, missing, negative, absurd, out of order?"""
    assert (~corrupt(frame, "unseen_labels", seed=seed)["team"].isin(TEAMS)).sum() == 6
    assert corrupt(frame, "nulls", seed=seed)[["text", "customer_id"]].isna().sum().sum() == 6
    assert (corrupt(frame, "negative_age", seed=seed)["account_age_days"] < 0).sum() == 6
    assert (corrupt(frame, "absurd_text_length", seed=seed)["text_length"] >= 10_000).sum() == 6
    shifted = corrupt(frame, "shifted_timestamps", seed=seed)["created_at"]
    assert (shifted.diff().dt.total_seconds() < 0).sum() >= 6


def test_at_least_one_row_and_bad_arguments(frame: pd.DataFrame) -> None:
    """Is a tiny fraction rounded up to one row, and are bad arguments refused with their name?"""
    assert len(corrupt(frame, "duplicate_rows", seed=0, fraction=1e-6)) == len(frame) + 1
    with pytest.raises(ValueError, match="kind must be one of"):
        corrupt(frame, "typos", seed=0)
    with pytest.raises(ValueError, match="fraction"):
        corrupt(frame, "nulls", seed=0, fraction=0.9)
    with pytest.raises(ValueError, match="seed"):
        corrupt(frame, "nulls", seed=-1)
    with pytest.raises(ValueError, match="at least 3 rows"):
        corrupt(frame.head(2), "nulls", seed=0)


@pytest.mark.parametrize("seed", SEEDS)
def test_corrupt_split_leaks_exactly_the_chosen_customers(frame: pd.DataFrame, seed: int) -> None:
    """Are n customers on both sides afterwards, with no ticket lost or repeated, inputs untouched?"""
    customers = frame["customer_id"].unique()
    test_customers = set(customers[: len(customers) // 5])
    is_test = frame["customer_id"].isin(test_customers)
    train, test = frame[~is_test], frame[is_test]
    before = (train.copy(), test.copy())
    new_train, new_test = corrupt_split(train, test, seed=seed, n_customers=2)
    pd.testing.assert_frame_equal(train, before[0])
    pd.testing.assert_frame_equal(test, before[1])
    assert len(set(new_train["customer_id"]) & set(new_test["customer_id"])) == 2
    both = pd.concat([new_train, new_test]).sort_values("ticket_id")
    pd.testing.assert_frame_equal(both, frame.sort_values("ticket_id"))
    assert new_test["created_at"].is_monotonic_increasing
    assert list(new_train.columns) == list(COLUMNS)
    again = corrupt_split(train, test, seed=seed, n_customers=2)
    pd.testing.assert_frame_equal(again[1], new_test)


def test_corrupt_split_refuses_too_many_customers(frame: pd.DataFrame) -> None:
    """Does asking for more leaking customers than exist raise a ValueError that says so?"""
    with pytest.raises(ValueError, match="n_customers"):
        corrupt_split(frame.head(3), frame.tail(3), seed=0, n_customers=50)
    assert np.all(frame.index == np.arange(len(frame)))
