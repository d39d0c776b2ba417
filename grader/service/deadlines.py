"""Deadlines, late work and extensions: when each exercise is due, what a late submission is worth.

An instructor sets, per exercise, a due time (UTC) and a **late policy** (:data:`LATE_POLICIES`):

``none``
    late work is accepted at full value, and flagged late.
``penalty``
    late work loses ``per_day`` percent of its raw score for every **started** day (24 h) after the due
    time, but keeps at least ``floor`` percent of it: counted = raw × max(1 − per_day × days / 100,
    floor / 100), days = ⌈seconds late / 86 400⌉. One second late is one day; exactly on the due time is
    on time.
``refuse``
    a late upload is refused (403 ``deadline-passed``, naming the deadline); a late submission received
    before the policy was set counts nothing.

An **extension** gives one learner a later due time for one exercise; the policy stays the exercise's.
Lateness is worked out when grades are read, from the time the service received the submission
(``submissions.created_at``, the server's clock) and the deadlines as they are now: moving a deadline
re-judges every submission of that exercise. Exercises without a deadline are never late.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from grader.errors import UsageError
from grader.grading.results import points_text
from grader.service.store import Store, deadlines, extensions, users

#: what happens to a submission received after its due time (the module's docstring defines each)
LATE_POLICIES = ("none", "penalty", "refuse")
DAY_S = 86_400.0


def parse_time(text: str, what: str = "--due") -> float:
    """An ISO 8601 time with its zone (``2026-12-20T23:59Z``, ``…+01:00``) as epoch seconds."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{what} {text[:60]!r} is not an ISO 8601 time; write it like 2026-12-20T23:59Z") from None
    if parsed.tzinfo is None:
        raise UsageError(f"{what} {text[:60]!r} has no time zone; end it with Z for UTC (2026-12-20T23:59Z)")
    return parsed.timestamp()


def utc_text(epoch: float) -> str:
    """Epoch seconds as ISO 8601 UTC, ``2026-12-20T23:59:00Z``."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def duration_text(seconds: float) -> str:
    """``2 d 3 h 5 min`` (whole minutes, at least ``1 min``)."""
    minutes = max(1, math.ceil(seconds / 60))
    d, rest = divmod(minutes, 24 * 60)
    h, m = divmod(rest, 60)
    return " ".join(f"{n} {unit}" for n, unit in ((d, "d"), (h, "h"), (m, "min")) if n) or "1 min"


@dataclass(frozen=True)
class Deadline:
    exercise: str
    due_at: float
    policy: str
    #: percent of the raw score lost per started day late (``penalty`` only)
    per_day: float = 0.0
    #: percent of the raw score a late submission keeps at least (``penalty`` only)
    floor: float = 0.0

    def describe(self) -> str:
        if self.policy == "penalty":
            return f"−{points_text(self.per_day)}% a started day late, never below {points_text(self.floor)}%"
        return "late work refused" if self.policy == "refuse" else "late work accepted, flagged"

    def to_dict(self) -> dict[str, Any]:
        return {
            "exercise": self.exercise,
            "due": utc_text(self.due_at),
            "policy": self.policy,
            "per_day": self.per_day,
            "floor": self.floor,
            "rule": self.describe(),
        }


@dataclass(frozen=True)
class Timing:
    """How one submission stands against its deadline, and what its policy makes of its score."""

    due_at: float | None = None
    extended: bool = False
    late_by_s: float = 0.0
    policy: str = "none"
    #: what the raw score is multiplied by
    factor: float = 1.0

    @property
    def late(self) -> bool:
        return self.late_by_s > 0

    @property
    def days_late(self) -> int:
        return math.ceil(self.late_by_s / DAY_S) if self.late else 0

    def counted(self, raw: float) -> float:
        return round(raw * self.factor, 6)

    def note(self, raw: float) -> str:
        """``late by 1 d 2 h (penalty: 2 started days × 10%): 3 → 2.4``; empty when on time."""
        if not self.late:
            return ""
        what = {
            "none": "accepted without penalty",
            "refuse": "the policy refuses late work: counts 0",
            "penalty": f"penalty {points_text(round(100 * (1 - self.factor), 6))}% for {self.days_late} started "
            f"day{'' if self.days_late == 1 else 's'}",
        }[self.policy]
        return (
            f"late by {duration_text(self.late_by_s)} ({what}): {points_text(raw)} → {points_text(self.counted(raw))}"
        )

    def to_dict(self, raw: float | None) -> dict[str, Any]:
        return {
            "due": utc_text(self.due_at) if self.due_at is not None else None,
            "extended": self.extended,
            "late": self.late,
            "late_by_s": round(self.late_by_s, 3),
            "days_late": self.days_late,
            "policy": self.policy,
            "raw_score": raw,
            "counted_score": self.counted(raw) if raw is not None else None,
            "note": self.note(raw) if raw is not None else "",
        }


def timing(deadline: Deadline | None, received_at: float, extended_to: float | None = None) -> Timing:
    """Where a submission received at ``received_at`` stands (``extended_to``: the learner's extension)."""
    if deadline is None:
        return Timing()
    due = extended_to if extended_to is not None else deadline.due_at
    late_by = max(0.0, received_at - due)
    base = Timing(due_at=due, extended=extended_to is not None, late_by_s=late_by, policy=deadline.policy)
    if not base.late or deadline.policy == "none":
        return base
    if deadline.policy == "refuse":
        return Timing(due, base.extended, late_by, deadline.policy, 0.0)
    factor = max(1.0 - deadline.per_day * base.days_late / 100.0, deadline.floor / 100.0)
    return Timing(due, base.extended, late_by, deadline.policy, max(0.0, min(1.0, factor)))


@dataclass
class Rules:
    """Every deadline and extension, read once (the gradebook judges many submissions with them)."""

    deadlines: dict[str, Deadline] = field(default_factory=dict)
    #: (learner name, exercise) → extended due time
    extensions: dict[tuple[str, str], float] = field(default_factory=dict)

    def timing(self, learner: str, exercise: str, received_at: float) -> Timing:
        return timing(self.deadlines.get(exercise), received_at, self.extensions.get((learner, exercise)))


def _deadline(row: Any) -> Deadline:
    return Deadline(row.exercise, float(row.due_at), row.policy, float(row.per_day), float(row.floor))


def read_rules(conn: sa.Connection) -> Rules:
    found = {row.exercise: _deadline(row) for row in conn.execute(sa.select(deadlines))}
    extended = conn.execute(
        sa.select(users.c.name, extensions.c.exercise, extensions.c.due_at).join(
            users, users.c.id == extensions.c.user_id
        )
    )
    return Rules(found, {(row.name, row.exercise): float(row.due_at) for row in extended})


def rules(store: Store) -> Rules:
    return store.run(read_rules, write=False)


def _percent(value: float, what: str) -> float:
    if not 0 <= value <= 100 or math.isnan(value):
        raise UsageError(f"{what} {points_text(value)} is outside 0–100 (a percentage of the raw score)")
    return float(value)


def _known(exercise: str, exercises: Iterable[str]) -> None:
    known = sorted(exercises)
    if exercise not in known:
        raise UsageError(f"unknown exercise {exercise[:100]!r}; the exercises: {', '.join(known) or 'none yet'}")


def _not_past(due_at: float, now: float, what: str, allow_past: bool) -> None:
    if due_at <= now and not allow_past:
        raise UsageError(
            f"{what} {utc_text(due_at)} is in the past (it is now {utc_text(now)}): every submission would be late; "
            "pass --allow-past (API: allow_past) if that is what you mean"
        )


def set_deadline(
    store: Store,
    exercises: Iterable[str],
    exercise: str,
    *,
    due: str,
    policy: str = "none",
    per_day: float = 0.0,
    floor: float = 0.0,
    allow_past: bool = False,
    now: float | None = None,
) -> Deadline:
    """Set (or replace) an exercise's deadline; :class:`UsageError`, and nothing changed, on bad input."""
    _known(exercise, exercises)
    if policy not in LATE_POLICIES:
        raise UsageError(f"no late policy {policy[:40]!r}; the policies: {', '.join(LATE_POLICIES)}")
    due_at = parse_time(due)
    per_day, floor = _percent(per_day, "--per-day"), _percent(floor, "--floor")
    if policy != "penalty" and (per_day or floor):
        raise UsageError(f"--per-day and --floor are for the penalty policy, not {policy!r}")
    _not_past(due_at, time.time() if now is None else now, "the due time", allow_past)
    found = Deadline(exercise, due_at, policy, per_day, floor)

    def work(conn: sa.Connection) -> None:
        conn.execute(sa.delete(deadlines).where(deadlines.c.exercise == exercise))
        values = {k: v for k, v in vars(found).items()}
        conn.execute(sa.insert(deadlines).values(**values, set_at=time.time()))

    store.run(work)
    return found


def grant_extension(
    store: Store,
    exercises: Iterable[str],
    learner: str,
    exercise: str,
    *,
    until: str,
    allow_past: bool = False,
    now: float | None = None,
) -> dict[str, Any]:
    """Give one learner a later due time for one exercise (replacing an earlier extension)."""
    _known(exercise, exercises)
    due_at = parse_time(until, "--until")
    _not_past(due_at, time.time() if now is None else now, "the extension", allow_past)

    def work(conn: sa.Connection) -> Deadline:
        user_id = conn.execute(sa.select(users.c.id).where(users.c.name == learner, users.c.role == "learner")).scalar()
        if user_id is None:
            raise UsageError(f"no learner {learner[:64]!r}; `grader users list` lists the accounts")
        row = conn.execute(sa.select(deadlines).where(deadlines.c.exercise == exercise)).first()
        if row is None:
            raise UsageError(f"{exercise} has no deadline to extend; set one first (grader deadlines set {exercise} …)")
        conn.execute(sa.delete(extensions).where(extensions.c.user_id == user_id, extensions.c.exercise == exercise))
        conn.execute(
            sa.insert(extensions).values(user_id=user_id, exercise=exercise, due_at=due_at, granted_at=time.time())
        )
        return _deadline(row)

    deadline = store.run(work)
    return {"learner": learner, "exercise": exercise, "due": utc_text(due_at), "was": utc_text(deadline.due_at)}


def listing(store: Store) -> list[dict[str, Any]]:
    """Every deadline, with its extensions (``learner``, ``due``), by exercise."""
    found = rules(store)
    out = []
    for exercise, deadline in sorted(found.deadlines.items()):
        granted = sorted((name, due) for (name, ex), due in found.extensions.items() if ex == exercise)
        out.append({**deadline.to_dict(), "extensions": [{"learner": n, "due": utc_text(d)} for n, d in granted]})
    return out


def render(listed: list[dict[str, Any]]) -> str:
    """The ``grader deadlines list`` table."""
    if not listed:
        return "no deadlines yet: grader deadlines set EXERCISE --due 2026-12-20T23:59Z"
    lines = []
    for d in listed:
        lines.append(f"{d['exercise']}  due {d['due']}  {d['policy']}: {d['rule']}")
        lines += [f"    extension: {e['learner']} until {e['due']}" for e in d["extensions"]]
    return "\n".join(lines)


def refusal(store: Store, learner: str, exercise: str, now: float) -> str | None:
    """Why an upload received at ``now`` is refused (a ``refuse`` deadline has passed), or None."""
    found = rules(store)
    deadline = found.deadlines.get(exercise)
    if deadline is None or deadline.policy != "refuse":
        return None
    due = found.extensions.get((learner, exercise), deadline.due_at)
    if now <= due:
        return None
    return (
        f"the deadline of {exercise} was {utc_text(due)} and it is now {utc_text(now)}: late work is refused "
        "for this exercise; ask your instructor for an extension"
    )
