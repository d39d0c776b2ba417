"""Streams of support-ticket windows with drift injected on purpose, for practising monitoring.

:func:`make_stream` cuts one run of :func:`mlcourse.tickets.make_tickets` into a reference
sample and a sequence of windows (about one day of tickets each, in time order). From window
``drift_at`` on, each window is changed in one of these ways (``DRIFT_KINDS``):

=============  =========================================================================
kind           what happens from ``drift_at`` on
=============  =========================================================================
team_mix       a security incident: the team mix tilts towards security (and shipping),
               so channel, priority, product and wording move with it (a prior shift)
vocabulary     customers write in newer wording (wallet top-ups, passkeys, lockers …);
               each phrase is in the new wording with probability ``strength``
channel        a chat widget goes live: chat grows, e-mail and phone shrink
length         a new app version appends a device line to a share ``strength`` of tickets
concept        a re-organisation: a share ``strength`` of account tickets is now routed to
               security; the inputs do not change at all, only the label does
=============  =========================================================================

``strength`` runs from 0 (no change) to 1 (the full change); ``ramp`` windows after
``drift_at`` let it grow linearly, so drift can be sudden (``ramp=0``) or gradual.

Windows without drift are drawn exactly like the reference, from the same customers, so a
correct monitor should stay quiet on them. Two columns trend over any stream by construction
and are not drift: ``n_prior_tickets`` (a running count) and ``account_age_days`` (customers
age); ``ticket_id`` and ``created_at`` are identifiers and times.

Everything is drawn from ``numpy.random.default_rng`` streams derived from ``seed``: the same
arguments give the same stream on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlcourse import tickets
from mlcourse.tickets import CHANNELS, TEAMS, make_tickets

__all__ = ["DRIFT_KINDS", "Stream", "Window", "make_stream"]

DRIFT_KINDS = ("team_mix", "vocabulary", "channel", "length", "concept")

#: weights on TEAMS at full strength (a security incident)
_TEAM_TILT = (0.5, 0.7, 0.8, 1.5, 5.0)
#: weights on CHANNELS at full strength (email, chat, phone, web): a chat widget goes live
_CHANNEL_TILT = (0.5, 3.0, 0.5, 1.0)
#: what the new app version appends
_DEVICE_LINE = "Sent from the {product} app v5.2 on my phone, diagnostics attached."
#: customers behind every stream (make_tickets' default)
_N_CUSTOMERS = 200
#: candidate tickets per window ticket; drifted windows are drawn from the candidates by rejection
_CANDIDATES = 3


@dataclass(frozen=True)
class Window:
    """One window of the stream: its tickets, whether drift was injected, and how strongly."""

    index: int
    frame: pd.DataFrame
    drifted: bool
    strength: float


@dataclass(frozen=True)
class Stream:
    """A reference sample (clean, from before the stream) and the windows that follow it."""

    reference: pd.DataFrame
    windows: list[Window]
    drift_kind: str
    drift_at: int | None

    @property
    def drifted(self) -> list[bool]:
        """One flag per window: was drift injected into it?"""
        return [window.drifted for window in self.windows]


def make_stream(
    n_windows: int,
    window_size: int,
    *,
    seed: int,
    drift_at: int | None = None,
    drift_kind: str = "team_mix",
    strength: float = 1.0,
    ramp: int = 0,
    reference_size: int | None = None,
) -> Stream:
    """A reference sample and ``n_windows`` windows of ``window_size`` tickets each.

    Args:
        n_windows: number of windows (1 or more).
        window_size: tickets per window (10 or more).
        seed: a non-negative integer; the same arguments always give the same stream.
        drift_at: index of the first drifted window (0 … n_windows - 1), or None for no drift.
        drift_kind: one of ``DRIFT_KINDS`` (see the module docstring).
        strength: in [0, 1]; how far the drift goes (0: not at all).
        ramp: number of windows over which the strength grows from 0 to ``strength``
            (0: all at once). Window ``drift_at + k`` gets ``strength * min(1, (k + 1) / (ramp + 1))``.
        reference_size: tickets in the reference sample (default: 5 windows' worth).

    Returns:
        A :class:`Stream`; its windows are sorted by ``created_at`` and carry all the ticket
        columns, the label ``team`` included.

    Raises:
        ValueError: an argument is out of range; the message names it and its valid range.
    """
    tickets._check_int("n_windows", n_windows, minimum=1)
    tickets._check_int("window_size", window_size, minimum=10)
    tickets._check_int("seed", seed, minimum=0)
    tickets._check_int("ramp", ramp, minimum=0)
    tickets._check_fraction("strength", strength)
    if drift_kind not in DRIFT_KINDS:
        raise ValueError(f"drift_kind must be one of {', '.join(DRIFT_KINDS)}, got {drift_kind!r}")
    if drift_at is not None:
        tickets._check_int("drift_at", drift_at, minimum=0)
        if drift_at >= n_windows:
            raise ValueError(f"drift_at must be below n_windows={n_windows} (or None), got {drift_at}")
    if reference_size is None:
        reference_size = 5 * window_size
    tickets._check_int("reference_size", reference_size, minimum=10)

    per_window = _CANDIDATES * window_size
    total = reference_size + n_windows * per_window
    days = max(1, math.ceil(total / per_window))  # about one day per window
    pool = make_tickets(total, seed=seed, days=days, n_customers=_N_CUSTOMERS)
    reference = pool.iloc[:reference_size].reset_index(drop=True)

    windows = []
    for i in range(n_windows):
        start = reference_size + i * per_window
        candidates = pool.iloc[start : start + per_window].reset_index(drop=True)
        level = _strength_at(i, drift_at, strength, ramp)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 4, i]))  # one per window
        frame = _draw_window(rng, candidates, window_size, drift_kind, level, seed)
        windows.append(Window(index=i, frame=frame, drifted=level > 0, strength=level))
    return Stream(reference=reference, windows=windows, drift_kind=drift_kind, drift_at=drift_at)


def _strength_at(i: int, drift_at: int | None, strength: float, ramp: int) -> float:
    if drift_at is None or i < drift_at:
        return 0.0
    return float(strength) * min(1.0, (i - drift_at + 1) / (ramp + 1))


def _draw_window(
    rng: np.random.Generator, candidates: pd.DataFrame, size: int, kind: str, level: float, seed: int
) -> pd.DataFrame:
    """``size`` of the candidate tickets, with drift of ``kind`` at strength ``level`` (0: none)."""
    weights = np.ones(len(candidates))
    if level > 0 and kind == "team_mix":
        weights = _tilt(candidates["team"], TEAMS, _TEAM_TILT, level)
    elif level > 0 and kind == "channel":
        weights = _tilt(candidates["channel"], CHANNELS, _CHANNEL_TILT, level)
    # rejection sampling: keep each candidate with probability weight / max weight, then pick
    # `size` of the kept ones at random (topped up with the heaviest rejected if too few)
    kept = rng.random(len(candidates)) < weights / weights.max()
    chosen = np.flatnonzero(kept)
    if chosen.size >= size:
        chosen = rng.choice(chosen, size=size, replace=False)
    else:
        rejected = np.flatnonzero(~kept)
        heaviest = rejected[np.argsort(-weights[rejected], kind="stable")]
        chosen = np.concatenate([chosen, heaviest[: size - chosen.size]])
    frame = candidates.iloc[np.sort(chosen)].reset_index(drop=True)

    if level > 0 and kind == "vocabulary":
        frame["text"] = _rewrite_texts(rng, frame, level, seed)
    elif level > 0 and kind == "length":
        append = rng.random(len(frame)) < level
        lines = [_DEVICE_LINE.format(product=product) for product in frame["product"]]
        frame["text"] = [
            f"{text} {line}" if a else text for text, line, a in zip(frame["text"], lines, append, strict=True)
        ]
    elif level > 0 and kind == "concept":
        moved = (frame["team"] == "account").to_numpy() & (rng.random(len(frame)) < level)
        frame.loc[moved, "team"] = "security"
    frame["text_length"] = frame["text"].str.len().astype("int64")
    return frame


def _tilt(values: pd.Series, levels: tuple[str, ...], tilt: tuple[float, ...], level: float) -> np.ndarray:
    """Per-row weights ``tilt[value] ** level``: 1 everywhere at level 0, the full tilt at 1."""
    by_level = dict(zip(levels, np.asarray(tilt, dtype=float) ** level, strict=True))
    return values.map(by_level).to_numpy(dtype=float)


def _rewrite_texts(rng: np.random.Generator, frame: pd.DataFrame, level: float, seed: int) -> list[str]:
    """The same tickets written again, each phrase in the new wording with probability ``level``."""
    customer_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[0])
    customers = tickets._make_customers(customer_rng, _N_CUSTOMERS)
    rows = pd.DataFrame(
        {
            "team": frame["team"],
            "product": frame["product"],
            "_customer": frame["customer_id"].str[1:].astype(int) - 1,
            "_fraction": 1.0,
        }
    )
    return tickets._make_texts(rng, rows, customers, level)
