"""Break support tickets on purpose: the corruptions that data checks must catch.

Each corruption breaks one assumption about the frames :func:`mlcourse.tickets.make_tickets`
makes, and nothing else, so that a check can be tested against it:

=====================  ==============================================================================
kind                   what :func:`corrupt` does
=====================  ==============================================================================
``schema``             one column is dropped, renamed, or read back with the wrong dtype (numbers or
                       dates as text); which one depends on the seed; ``fraction`` is not used
``duplicate_rows``     rows are repeated verbatim, each copy right after its original
``duplicate_ids``      a ticket is stored twice under the same ``ticket_id``, the copy with a
                       follow-up sentence in its text (``text_length`` updated to match)
``unseen_labels``      some ``team`` values are not in ``TEAMS`` (new teams, or a known team with
                       other capitals or a trailing space)
``nulls``              some ``text`` or ``customer_id`` values are missing
``negative_age``       some ``account_age_days`` are negative
``absurd_text_length`` some ``text_length`` values are absurd (10,000 or more; the text is unchanged)
``shifted_timestamps`` some ``created_at`` values move before the ticket filed just before them, or
                       after the one filed just after them (up to a year into the future)
=====================  ==============================================================================

:func:`corrupt_split` breaks a split instead of a frame: it moves some tickets of customers in
``train`` into ``test``, so that those customers are on both sides.

Everything is drawn from ``numpy.random.default_rng(seed)``: the same arguments give the same
result. The inputs are never modified; every function returns new frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["CORRUPTIONS", "UNSEEN_TEAMS", "corrupt", "corrupt_split"]

CORRUPTIONS = (
    "schema",
    "duplicate_rows",
    "duplicate_ids",
    "unseen_labels",
    "nulls",
    "negative_age",
    "absurd_text_length",
    "shifted_timestamps",
)

#: labels that ``unseen_labels`` writes: new teams, and known teams spelt differently
UNSEEN_TEAMS = ("legal", "sales", "tech support", "Billing", "SECURITY", "shipping ")

#: the columns ``schema`` may rename or drop, and what a rename turns them into
_RENAMES = {"text": "message", "team": "label", "customer_id": "customer", "created_at": "created"}
#: the columns ``schema`` may retype, and how
_RETYPES = ("account_age_days", "text_length", "n_prior_tickets", "created_at")
_NULL_COLUMNS = ("text", "customer_id")
_FOLLOW_UPS = (" Any update on this?", " Sending this again.", " Still waiting for an answer.")


def corrupt(frame: pd.DataFrame, kind: str, *, seed: int, fraction: float = 0.02) -> pd.DataFrame:
    """A copy of ``frame`` with one kind of corruption (see the module docstring).

    Args:
        frame: tickets as :func:`mlcourse.tickets.make_tickets` makes them (3 rows or more).
        kind: one of ``CORRUPTIONS``.
        seed: a non-negative integer; the same arguments give the same result.
        fraction: share of the rows to corrupt, in (0, 0.5]; at least one row is corrupted.

    Returns:
        A new frame with a fresh ``RangeIndex``; ``frame`` is left as it was.

    Raises:
        ValueError: an unknown kind, a fraction out of range, or a frame too small.
    """
    if kind not in CORRUPTIONS:
        raise ValueError(f"kind must be one of {', '.join(CORRUPTIONS)}, got {kind!r}")
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 0.5:
        raise ValueError(f"fraction must be a number in (0, 0.5], got {fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if len(frame) < 3:
        raise ValueError(f"frame must have at least 3 rows, got {len(frame)}")
    rng = np.random.default_rng(seed)
    out = frame.reset_index(drop=True).copy()
    count = max(1, round(fraction * len(out)))
    if kind == "schema":
        return _schema(rng, out)
    if kind == "shifted_timestamps":
        return _shift_timestamps(rng, out, count)
    rows = np.sort(rng.choice(len(out), size=min(count, len(out)), replace=False))
    if kind == "duplicate_rows":
        return _insert_after(out, rows, out.loc[rows])
    if kind == "duplicate_ids":
        copies = out.loc[rows].copy()
        follow_ups = rng.choice(len(_FOLLOW_UPS), size=len(rows))
        copies["text"] = [text + _FOLLOW_UPS[f] for text, f in zip(copies["text"], follow_ups, strict=True)]
        copies["text_length"] = copies["text"].str.len().astype("int64")
        return _insert_after(out, rows, copies)
    if kind == "unseen_labels":
        out.loc[rows, "team"] = [UNSEEN_TEAMS[i] for i in rng.choice(len(UNSEEN_TEAMS), size=len(rows))]
    elif kind == "nulls":
        columns = rng.choice(len(_NULL_COLUMNS), size=len(rows))
        for row, column in zip(rows, columns, strict=True):
            out.loc[row, _NULL_COLUMNS[column]] = None
    elif kind == "negative_age":
        out.loc[rows, "account_age_days"] = -rng.integers(1, 400, size=len(rows))
    elif kind == "absurd_text_length":
        out.loc[rows, "text_length"] = rng.integers(10_000, 1_000_000, size=len(rows))
    return out


def corrupt_split(
    train: pd.DataFrame, test: pd.DataFrame, *, seed: int, n_customers: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Move some tickets of ``n_customers`` train customers into ``test``: they leak across.

    Each chosen customer has at least two tickets in ``train``; about half of them (at least
    one, and never all) move to ``test``, which is then sorted by ``created_at``. No ticket is
    lost or repeated: the two frames together hold the same rows as before.

    Raises:
        ValueError: fewer than ``n_customers`` train customers have two tickets or more.
    """
    rng = np.random.default_rng(seed)
    counts = train["customer_id"].value_counts()
    eligible = np.sort(counts[counts >= 2].index.to_numpy(dtype=object))
    if n_customers < 1 or len(eligible) < n_customers:
        raise ValueError(
            f"n_customers must be between 1 and {len(eligible)} (train customers with 2 tickets or more), "
            f"got {n_customers}"
        )
    chosen = rng.choice(eligible, size=n_customers, replace=False)
    moved = []
    for customer in chosen:
        positions = np.flatnonzero((train["customer_id"] == customer).to_numpy())
        size = int(rng.integers(1, len(positions) // 2 + 1))
        moved.extend(rng.choice(positions, size=size, replace=False).tolist())
    moving = np.zeros(len(train), dtype=bool)
    moving[moved] = True
    new_train = train[~moving].copy()
    new_test = pd.concat([test, train[moving]]).sort_values("created_at", kind="stable")
    return new_train, new_test


def _insert_after(frame: pd.DataFrame, rows: np.ndarray, copies: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``copies`` (one per entry of ``rows``) each right after its original."""
    order = np.concatenate([np.arange(len(frame), dtype=float), rows + 0.5])
    combined = pd.concat([frame, copies], ignore_index=True)
    return combined.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)


def _schema(rng: np.random.Generator, frame: pd.DataFrame) -> pd.DataFrame:
    """Drop, rename or retype one column, chosen by ``rng``."""
    how = ("drop", "rename", "retype")[int(rng.integers(3))]
    if how == "retype":
        column = _RETYPES[int(rng.integers(len(_RETYPES)))]
        if column == "created_at":
            frame[column] = frame[column].dt.strftime("%Y-%m-%d %H:%M:%S").astype("str")
        else:
            frame[column] = frame[column].astype("str")
        return frame
    column = list(_RENAMES)[int(rng.integers(len(_RENAMES)))]
    if how == "drop":
        return frame.drop(columns=column)
    return frame.rename(columns={column: _RENAMES[column]})


def _shift_timestamps(rng: np.random.Generator, frame: pd.DataFrame, count: int) -> pd.DataFrame:
    """Move ``count`` timestamps out of order: before their predecessor or after their successor.

    Only rows at odd positions move, so each moved row keeps its unmoved neighbours to be out
    of order with.
    """
    candidates = np.arange(1, len(frame) - 1, 2)
    rows = np.sort(rng.choice(candidates, size=min(count, len(candidates)), replace=False))
    times = frame["created_at"].to_numpy().copy()
    backwards = rng.random(len(rows)) < 0.5
    hours = rng.integers(1, 24 * 365, size=len(rows))
    for row, back, h in zip(rows, backwards, hours, strict=True):
        offset = np.timedelta64(int(min(h, 24 * 30) if back else h), "h")
        times[row] = times[row - 1] - offset if back else times[row + 1] + offset
    frame["created_at"] = pd.DatetimeIndex(times).astype(frame["created_at"].dtype)
    return frame
