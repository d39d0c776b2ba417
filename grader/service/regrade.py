"""Regrades: after a check is fixed, every learner's counted submission of an exercise is graded again.

A regrade moves through::

    start ──> grading ──(every job graded or failed)──> ready ──apply──> applied
                 └─── a later regrade of the same exercise, started while this one is ready ──> cancelled

- :func:`start` takes each learner's **counted** submission of the exercise (the gradebook's,
  :func:`grader.service.gradebook.best_submissions` with the setting ``counted_submission``) and
  queues one job per submission in ``regrade_results``, copying the result it would replace
  (``old_*``). Grading uses the exercise's **current** bundle: the grade function rebuilds it when
  the solution changed (:func:`grader.grading.bundle.build_bundle`).
- **Jobs** (:mod:`grader.service.regrade_jobs`) are claimed like submissions: an atomic conditional
  update with a lease that the worker renews; a job whose worker died is claimed again when its lease
  expires; a failed attempt is retried after a back-off, up to ``max_attempts``; then the job is
  ``failed`` and its submission keeps its old result. A verdict of ``invalid`` or ``error`` fails it
  too. Workers take regrade jobs only when no learner's submission is claimable
  (:func:`grader.service.workers.run_once`): a learner waiting for feedback goes first. Nothing
  here goes through :func:`grader.service.queue.complete`: the submission's own result is not
  touched before :func:`apply`.
- :func:`apply` replaces, in one transaction, each regraded submission's ``result``, ``score`` and
  ``max_score`` with the new ones; the old stay in ``regrade_results`` for good. Manual grades
  (``manual_grades``) are left as they are: a regrade changes only the automatic part.

The change report (:class:`Regrade`, :func:`render`): per learner, old → new score and the
difference, who went down first, then up, then the unchanged and the failed, and one summary line
such as ``3 up (+1 … +2), 1 down (−2), 17 unchanged, 0 failed``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from grader.errors import UsageError
from grader.grading.results import points_text
from grader.service import catalog, gradebook
from grader.service.statuses import SubmissionStatus
from grader.service.store import Store, regrade_results, regrades, submissions, users
from grader.settings import Settings

_r = regrades.c
_j = regrade_results.c
_s = submissions.c

#: a regrade's states
GRADING, READY, APPLIED, CANCELLED = "grading", "ready", "applied", "cancelled"
#: a regrade job's states
QUEUED, RUNNING, GRADED, FAILED = "queued", "running", "graded", "failed"
ACTIVE = (QUEUED, RUNNING)


class RegradeRefused(UsageError):
    """A regrade request that changes nothing: the message says what is wrong and what to do.

    ``status`` and ``code`` are the API's answer (404 ``not-found``, 409 ``regrade-conflict``,
    422 ``unknown-exercise`` / ``nothing-to-regrade``).
    """

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


# --- records ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One learner's counted submission in a regrade: its old and (once graded) new score."""

    learner: str
    submission_id: str
    #: the job's state: queued, running, graded or failed
    status: str
    old_score: float
    old_max_score: float
    new_score: float | None
    new_max_score: float | None
    #: why it failed (empty otherwise)
    message: str = ""

    @property
    def difference(self) -> float | None:
        return None if self.new_score is None or self.status != GRADED else self.new_score - self.old_score

    @property
    def kind(self) -> str:
        """``down``, ``up``, ``unchanged``, ``failed`` or ``pending`` (still queued or running)."""
        if self.status == FAILED:
            return "failed"
        diff = self.difference
        if diff is None:
            return "pending"
        if abs(diff) < 1e-9:
            return "unchanged"
        return "down" if diff < 0 else "up"

    def to_dict(self) -> dict[str, Any]:
        return {
            "learner": self.learner,
            "submission_id": self.submission_id,
            "status": self.status,
            "change": self.kind,
            "old_score": self.old_score,
            "old_max_score": self.old_max_score,
            "new_score": self.new_score,
            "new_max_score": self.new_max_score,
            "difference": self.difference,
            "message": self.message,
        }


#: report order: who went down first (most lost first), then up (most gained first), then the rest
_ORDER = {"down": 0, "up": 1, "unchanged": 2, "failed": 3, "pending": 4}


def _order(change: Change) -> tuple[int, float, str]:
    diff = change.difference or 0.0
    return _ORDER[change.kind], diff if change.kind == "down" else -diff, change.learner


def signed(value: float) -> str:
    """``+2``, ``−1.5`` (a real minus sign), ``0``."""
    text = points_text(abs(value))
    return "0" if text == "0" else ("+" if value > 0 else "−") + text


@dataclass(frozen=True)
class Regrade:
    id: str
    exercise: str
    requested_by: str
    created_at: float
    status: str
    finished_at: float | None
    applied_at: float | None
    #: in report order (:func:`_order`)
    changes: tuple[Change, ...]

    def count(self, kind: str) -> int:
        return sum(1 for c in self.changes if c.kind == kind)

    @property
    def done(self) -> int:
        return sum(1 for c in self.changes if c.status in (GRADED, FAILED))

    @property
    def total(self) -> int:
        return len(self.changes)

    def summary(self) -> str:
        """``3 up (+1 … +2), 1 down (−2), 17 unchanged, 0 failed`` (and ``, 2 still grading`` while it grades)."""
        parts = []
        for kind in ("up", "down"):
            diffs = sorted(c.difference or 0.0 for c in self.changes if c.kind == kind)
            span = ""
            if diffs:
                low, high = (diffs[0], diffs[-1]) if kind == "up" else (diffs[-1], diffs[0])
                span = f" ({signed(low)})" if low == high else f" ({signed(low)} … {signed(high)})"
            parts.append(f"{len(diffs)} {kind}{span}")
        parts += [f"{self.count('unchanged')} unchanged", f"{self.count('failed')} failed"]
        if self.count("pending"):
            parts.append(f"{self.count('pending')} still grading")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "exercise": self.exercise,
            "requested_by": self.requested_by,
            "created_at": self.created_at,
            "status": self.status,
            "finished_at": self.finished_at,
            "applied_at": self.applied_at,
            "progress": {"done": self.done, "total": self.total},
            "counts": {kind: self.count(kind) for kind in _ORDER},
            "summary": self.summary(),
            "changes": [c.to_dict() for c in self.changes],
        }


# --- start, read --------------------------------------------------------------------------------


def start(store: Store, settings: Settings, exercise: str, requested_by: int, *, now: float | None = None) -> Regrade:
    """Queue every learner's counted submission of ``exercise`` for grading with the current bundle.

    A ``ready`` regrade of the same exercise that was never applied is cancelled (this one supersedes it).

    Raises:
        RegradeRefused: an unknown exercise, one nobody has a graded submission of, or one whose last
            regrade is still grading. Nothing is changed.
    """
    known = [e.id for e in catalog.list_exercises(settings)]
    if exercise not in known:
        raise RegradeRefused(
            f"no exercise {exercise[:100]!r}; the exercises: {', '.join(known) or 'none'}",
            status=422,
            code="unknown-exercise",
        )
    _, counted = gradebook.best_submissions(store, settings.counted_submission)
    chosen = [b.submission_id for b in counted if b.exercise == exercise]
    if not chosen:
        raise RegradeRefused(
            f"nobody has a graded submission of {exercise} yet: there is nothing to regrade",
            status=422,
            code="nothing-to-regrade",
        )
    regrade_id = str(uuid.uuid4())

    def work(conn: Connection) -> None:
        moment = time.time() if now is None else now
        if store.dialect == "postgresql":  # one regrade of an exercise is started at a time
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(7301156)))
        running = conn.execute(sa.select(_r.id).where(_r.exercise == exercise, _r.status == GRADING)).first()
        if running is not None:
            raise RegradeRefused(
                f"regrade {running.id} of {exercise} is still grading; wait for it (`grader regrade show "
                f"{running.id}`), then start another",
                status=409,
                code="regrade-conflict",
            )
        conn.execute(sa.update(regrades).where(_r.exercise == exercise, _r.status == READY).values(status=CANCELLED))
        conn.execute(
            sa.insert(regrades).values(
                id=regrade_id, exercise=exercise, requested_by=requested_by, created_at=moment, status=GRADING
            )
        )
        rows = conn.execute(
            sa.select(_s.id, _s.score, _s.max_score, _s.result).where(
                _s.id.in_(chosen), _s.status == SubmissionStatus.GRADED
            )
        ).all()
        if not rows:  # changed since they were counted: nothing is left to regrade
            raise RegradeRefused(
                f"nobody has a graded submission of {exercise} any more: there is nothing to regrade",
                status=422,
                code="nothing-to-regrade",
            )
        conn.execute(
            sa.insert(regrade_results),
            [
                {
                    "regrade_id": regrade_id,
                    "submission_id": row.id,
                    "status": QUEUED,
                    "attempts": 0,
                    "available_at": moment,
                    "old_score": float(row.score or 0.0),
                    "old_max_score": float(row.max_score or 0.0),
                    "old_result": row.result,
                    "message": "",
                    "updated_at": moment,
                }
                for row in rows
            ],
        )

    store.run(work)
    return get(store, regrade_id)


def _read(conn: Connection, regrade_ids: Iterable[str]) -> list[Regrade]:
    ids = list(regrade_ids)
    heads = conn.execute(
        sa.select(regrades, users.c.name.label("by"))
        .join(users, users.c.id == _r.requested_by)
        .where(_r.id.in_(ids))
        .order_by(_r.created_at.desc())
    ).all()
    rows = conn.execute(
        sa.select(
            _j.regrade_id,
            _j.submission_id,
            _j.status,
            _j.old_score,
            _j.old_max_score,
            _j.new_score,
            _j.new_max_score,
            _j.message,
            users.c.name,
        )
        .join(submissions, _s.id == _j.submission_id)
        .join(users, users.c.id == _s.user_id)
        .where(_j.regrade_id.in_(ids))
    ).all()
    changes: dict[str, list[Change]] = {i: [] for i in ids}
    for row in rows:
        changes[row.regrade_id].append(
            Change(
                learner=row.name,
                submission_id=row.submission_id,
                status=row.status,
                old_score=float(row.old_score or 0.0),
                old_max_score=float(row.old_max_score or 0.0),
                new_score=None if row.new_score is None else float(row.new_score),
                new_max_score=None if row.new_max_score is None else float(row.new_max_score),
                message=row.message,
            )
        )
    return [
        Regrade(
            id=h.id,
            exercise=h.exercise,
            requested_by=h.by,
            created_at=h.created_at,
            status=h.status,
            finished_at=h.finished_at,
            applied_at=h.applied_at,
            changes=tuple(sorted(changes[h.id], key=_order)),
        )
        for h in heads
    ]


def get(store: Store, regrade_id: str) -> Regrade:
    """One regrade, its progress and its change report.

    Raises:
        RegradeRefused: no such regrade (404).
    """
    found = store.run(lambda conn: _read(conn, [regrade_id]), write=False)
    if not found:
        raise _unknown(regrade_id)
    return found[0]


def _unknown(regrade_id: str) -> RegradeRefused:
    return RegradeRefused(
        f"no regrade {regrade_id[:40]!r}; `grader regrade list` (GET /api/regrades) lists them",
        status=404,
        code="not-found",
    )


def listing(store: Store, limit: int = 50) -> list[Regrade]:
    """The latest regrades, newest first."""

    def work(conn: Connection) -> list[Regrade]:
        ids = conn.execute(sa.select(_r.id).order_by(_r.created_at.desc()).limit(limit)).scalars().all()
        return _read(conn, ids)

    return store.run(work, write=False)


# --- apply --------------------------------------------------------------------------------------


def apply(store: Store, regrade_id: str, *, now: float | None = None) -> Regrade:
    """Replace each regraded submission's result, score and max_score with the new ones (one transaction).

    Failed jobs keep their submission's old result; the old results stay in ``regrade_results``.

    Raises:
        RegradeRefused: no such regrade (404), or one still grading, already applied or cancelled (409);
            nothing is changed.
    """

    def work(conn: Connection) -> None:
        moment = time.time() if now is None else now
        head = conn.execute(sa.select(regrades).where(_r.id == regrade_id).with_for_update()).first()
        if head is None:
            raise _unknown(regrade_id)
        if head.status != READY:
            raise RegradeRefused(_not_ready(conn, head), status=409, code="regrade-conflict")
        graded = conn.execute(
            sa.select(_j.submission_id, _j.new_result, _j.new_score, _j.new_max_score).where(
                _j.regrade_id == regrade_id, _j.status == GRADED
            )
        ).all()
        for row in graded:
            conn.execute(
                sa.update(submissions)
                .where(_s.id == row.submission_id)
                .values(result=row.new_result, score=row.new_score, max_score=row.new_max_score, updated_at=moment)
            )
        conn.execute(sa.update(regrades).where(_r.id == regrade_id).values(status=APPLIED, applied_at=moment))

    store.run(work)
    return get(store, regrade_id)


def _not_ready(conn: Connection, head: sa.Row) -> str:
    if head.status == GRADING:
        left = conn.execute(
            sa.select(sa.func.count()).where(_j.regrade_id == head.id, _j.status.in_(ACTIVE))
        ).scalar_one()
        return (
            f"regrade {head.id} of {head.exercise} is still grading ({left} submissions to go); "
            f"apply it once it is ready (`grader regrade show {head.id}`)"
        )
    if head.status == APPLIED:
        return f"regrade {head.id} of {head.exercise} was already applied; its new scores are the learners' scores"
    return (
        f"regrade {head.id} of {head.exercise} was cancelled by a later regrade of the same exercise; "
        "apply that one (`grader regrade list`)"
    )


# --- the report -----------------------------------------------------------------------------------


def _score(value: float | None, maximum: float | None) -> str:
    return "—" if value is None else f"{points_text(value)}/{points_text(maximum or 0.0)}"


def render(regrade: Regrade) -> str:
    """The change report as the CLI prints it."""
    head = f"regrade {regrade.id} of {regrade.exercise}: {regrade.status}"
    if regrade.status == GRADING:
        head += f" ({regrade.done}/{regrade.total} graded)"
    lines = [head, f"  {regrade.summary()}"]
    width = max((len(c.learner) for c in regrade.changes), default=0)
    for change in regrade.changes:
        old = _score(change.old_score, change.old_max_score)
        if change.kind == "failed":
            tail = f"{old}  failed, keeps its score: {change.message}"
        elif change.kind == "pending":
            tail = f"{old}  {change.status}"
        else:
            tail = f"{old} → {_score(change.new_score, change.new_max_score)}"
            tail += f"  {signed(change.difference or 0.0)}" if change.kind != "unchanged" else "  unchanged"
        lines.append(f"  {change.kind:<9} {change.learner:<{width}}  {tail}")
    if regrade.status == READY:
        lines.append(f"nothing replaced yet: `grader regrade apply {regrade.id}` makes these the learners' scores")
    elif regrade.status == APPLIED:
        lines.append("applied: the new scores replaced the old (the old results are kept with the regrade)")
    return "\n".join(lines)
