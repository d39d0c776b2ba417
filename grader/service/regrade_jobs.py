"""Regrade jobs: one per submission of a regrade (:mod:`grader.service.regrade`), claimed and graded like submissions.

A job moves ``queued ──claim──> running ──record──> graded | failed`` (an ``invalid`` verdict fails it); a
failed attempt (:func:`fail`: the grade function raised or said ``error``) goes back to ``queued`` after a
back-off, up to ``max_attempts``, then ``failed``. A claim is one conditional update with a lease
(``lease_owner``, ``lease_expires_at``) that the worker renews (:func:`renew`); a job whose worker died is
claimed again when its lease expires (or at once, when a process that saw it die gives it back: :func:`release`),
or fails when that was its last attempt. Only the lease holder records.
When a regrade's last job ends, the regrade becomes ``ready``. The submission itself is never touched here
(nothing goes through :func:`grader.service.queue.complete`): :func:`grader.service.regrade.apply` does that.
The worker function is :func:`grader.service.workers.process_regrade`.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from grader.format.markers import DEVICE_GPU
from grader.grading.results import Result
from grader.service import leases
from grader.service.registry import live_gpu_clause
from grader.service.regrade import ACTIVE, FAILED, GRADED, GRADING, QUEUED, READY, RUNNING
from grader.service.statuses import SubmissionStatus
from grader.service.store import Store, regrade_results, regrades, submissions

_r = regrades.c
_j = regrade_results.c
_s = submissions.c


@dataclass(frozen=True)
class RegradeJob:
    """A claimed regrade job: what a worker needs to grade it (the submission's notebook as submitted)."""

    regrade_id: str
    submission_id: str
    exercise: str
    filename: str
    notebook: bytes
    device: str
    attempts: int
    lease_owner: str


def _claimable(now: float, max_attempts: int) -> sa.ColumnElement[bool]:
    return sa.and_(
        _j.attempts < max_attempts,
        sa.or_(
            sa.and_(_j.status == QUEUED, _j.available_at <= now),
            sa.and_(_j.status == RUNNING, _j.lease_expires_at < now),
        ),
    )


def _finish_if_done(conn: Connection, regrade_id: str, now: float) -> None:
    left = conn.execute(sa.select(_j.submission_id).where(_j.regrade_id == regrade_id, _j.status.in_(ACTIVE)).limit(1))
    if left.first() is None:
        conn.execute(
            sa.update(regrades).where(_r.id == regrade_id, _r.status == GRADING).values(status=READY, finished_at=now)
        )


def _died_message(attempts: int) -> str:
    """Why a job failed when the grading process died on every attempt."""
    return f"grading stopped {attempts} times without a result (the grading process died)"


def _expire(conn: Connection, now: float, max_attempts: int) -> None:
    """Jobs whose last attempt's worker died (lease expired, no attempts left) fail; their regrade may be done."""
    used_up = sa.and_(
        _j.attempts >= max_attempts,
        sa.or_(_j.status == QUEUED, sa.and_(_j.status == RUNNING, _j.lease_expires_at < now)),
    )
    rows = conn.execute(sa.select(_j.regrade_id, _j.submission_id).where(used_up)).all()
    for row in rows:
        conn.execute(
            sa.update(regrade_results)
            .where(_j.regrade_id == row.regrade_id, _j.submission_id == row.submission_id, used_up)
            .values(
                status=FAILED,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
                message=_died_message(max_attempts),
            )
        )
        _finish_if_done(conn, row.regrade_id, now)


def pending(store: Store) -> bool:
    """A cheap read: is any regrade job queued or running? (Idle workers poll this.)"""
    return store.run(
        lambda conn: (
            conn.execute(sa.select(_j.submission_id).where(_j.status.in_(ACTIVE)).limit(1)).first() is not None
        ),
        write=False,
    )


def claim(
    store: Store,
    owner: str,
    *,
    lease_s: float,
    max_attempts: int,
    gpu_worker: bool = False,
    worker_ttl_s: float = 30.0,
) -> RegradeJob | None:
    """Claim the oldest claimable regrade job for ``owner`` (a lease of ``lease_s``), or None.

    Routed as submissions are (:mod:`grader.service.registry`): a job of a GPU exercise goes to a GPU worker
    while one is live (a CPU worker would grade it at smoke size, against another bundle); a GPU worker takes
    GPU jobs first.
    """
    if not pending(store):
        return None

    def work(conn: Connection) -> RegradeJob | None:
        now = time.time()
        _expire(conn, now, max_attempts)
        ready = _claimable(now, max_attempts)
        routable = sa.true() if gpu_worker else sa.or_(_s.device != DEVICE_GPU, ~live_gpu_clause(now, worker_ttl_s))
        first = [sa.case((_s.device == DEVICE_GPU, 0), else_=1)] if gpu_worker else []
        pick = conn.execute(
            sa.select(_j.regrade_id, _j.submission_id)
            .join(regrades, _r.id == _j.regrade_id)
            .join(submissions, _s.id == _j.submission_id)
            .where(ready, routable)
            .order_by(*first, _r.created_at, _j.submission_id)
            .limit(1)
            .with_for_update(skip_locked=True, of=regrade_results)
        ).first()
        if pick is None:
            return None
        mine = sa.and_(_j.regrade_id == pick.regrade_id, _j.submission_id == pick.submission_id)
        changed = conn.execute(
            sa.update(regrade_results)
            .where(mine, ready)
            .values(
                status=RUNNING,
                attempts=_j.attempts + 1,
                lease_owner=owner,
                lease_expires_at=now + lease_s,
                updated_at=now,
            )
        ).rowcount
        if changed != 1:
            return None
        row = conn.execute(
            sa.select(_j.attempts, _s.exercise, _s.filename, _s.notebook, _s.device)
            .join(submissions, _s.id == _j.submission_id)
            .where(mine)
        ).one()
        return RegradeJob(
            regrade_id=pick.regrade_id,
            submission_id=pick.submission_id,
            exercise=row.exercise,
            filename=row.filename,
            notebook=bytes(row.notebook),
            device=row.device,
            attempts=row.attempts,
            lease_owner=owner,
        )

    return store.run(work)


def _held(job: RegradeJob) -> sa.ColumnElement[bool]:
    return sa.and_(
        _j.regrade_id == job.regrade_id,
        _j.submission_id == job.submission_id,
        _j.lease_owner == job.lease_owner,
        _j.status == RUNNING,
    )


def renew(store: Store, job: RegradeJob, *, lease_s: float) -> bool:
    """Extend the job's lease; False when it was lost."""
    return store.run(
        lambda conn: (
            conn.execute(
                sa.update(regrade_results).where(_held(job)).values(lease_expires_at=time.time() + lease_s)
            ).rowcount
            == 1
        )
    )


def record(store: Store, job: RegradeJob, result: Result) -> bool:
    """Keep a verdict as the job's new result (``graded``), or fail the job for an ``invalid`` one;
    the submission is not touched. False when the lease was lost."""

    def work(conn: Connection) -> bool:
        now = time.time()
        if result.status == SubmissionStatus.GRADED:
            values: dict[str, Any] = {
                "status": GRADED,
                "new_score": result.score,
                "new_max_score": result.max_score,
                "new_result": json.dumps(result.to_dict()),
                "message": "",
            }
        else:
            values = {"status": FAILED, "message": f"{result.status}: {result.message}"}
        changed = conn.execute(
            sa.update(regrade_results)
            .where(_held(job))
            .values(**values, lease_owner=None, lease_expires_at=None, updated_at=now)
        ).rowcount
        if changed == 1:
            _finish_if_done(conn, job.regrade_id, now)
        return changed == 1

    return store.run(work)


def fail(store: Store, job: RegradeJob, message: str, *, max_attempts: int, backoff_s: float) -> str | None:
    """A failed attempt: queued again after ``backoff_s``, or, out of attempts, ``failed`` (the submission
    keeps its old result). Returns the job's new state, or None when the lease was lost."""

    def work(conn: Connection) -> str | None:
        now = time.time()
        status = FAILED if job.attempts >= max_attempts else QUEUED
        changed = conn.execute(
            sa.update(regrade_results)
            .where(_held(job))
            .values(
                status=status,
                message=message,
                available_at=now + backoff_s,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
        ).rowcount
        if changed != 1:
            return None
        if status == FAILED:
            _finish_if_done(conn, job.regrade_id, now)
        return status

    return store.run(work)


def release(store: Store, pids: set[int] | None, *, max_attempts: int, host: str | None = None) -> list[str]:
    """Give back at once the running jobs of processes ``pids`` on ``host`` (default: this machine), which the
    caller saw die; ``pids`` None: those of this machine's processes that are gone. A job is queued again at
    once, or fails when that was its last attempt (:mod:`grader.service.leases` does the same for
    submissions). Returns the submission ids given back."""
    host = host or socket.gethostname()

    def work(conn: Connection) -> list[str]:
        now = time.time()
        rows = conn.execute(
            sa.select(_j.regrade_id, _j.submission_id, _j.attempts, _j.lease_owner).where(
                _j.status == RUNNING, _j.lease_owner.like(f"{host}:%")
            )
        ).all()
        released = []
        for row in rows:
            if not leases.owner_dead(row.lease_owner, host, pids):
                continue
            last = row.attempts >= max_attempts
            held = sa.and_(
                _j.regrade_id == row.regrade_id,
                _j.submission_id == row.submission_id,
                _j.lease_owner == row.lease_owner,
                _j.status == RUNNING,
            )
            message = _died_message(row.attempts) if last else "the grading process died; graded again"
            changed = conn.execute(
                sa.update(regrade_results)
                .where(held)
                .values(
                    status=FAILED if last else QUEUED,
                    message=message,
                    available_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
            ).rowcount
            if changed == 1:
                released.append(row.submission_id)
                if last:
                    _finish_if_done(conn, row.regrade_id, now)
        return released

    return store.run(work)


# --- Celery: which jobs need a task ------------------------------------------------------------------


def devices(store: Store, regrade_id: str) -> list[str]:
    """The device of each queued job of a regrade (one Celery task is sent per job, to its device's queue)."""
    return list(
        store.run(
            lambda conn: (
                conn.execute(
                    sa.select(_s.device)
                    .join(regrade_results, _j.submission_id == _s.id)
                    .where(_j.regrade_id == regrade_id, _j.status == QUEUED)
                )
                .scalars()
                .all()
            ),
            write=False,
        )
    )


def stale(store: Store, *, older_than_s: float) -> list[str]:
    """Queued jobs untouched for ``older_than_s`` (their task was lost, or never sent), one device each; marks
    them touched, so the re-sender sends each once a round. A task that finds nothing to claim does nothing."""

    def work(conn: Connection) -> list[str]:
        now = time.time()
        waiting = sa.and_(_j.status == QUEUED, _j.available_at <= now, _j.updated_at < now - older_than_s)
        rows = conn.execute(
            sa.select(_j.regrade_id, _j.submission_id, _s.device)
            .join(submissions, _s.id == _j.submission_id)
            .where(waiting)
        ).all()
        for row in rows:
            conn.execute(
                sa.update(regrade_results)
                .where(_j.regrade_id == row.regrade_id, _j.submission_id == row.submission_id, waiting)
                .values(updated_at=now)
            )
        return [row.device for row in rows]

    return store.run(work)
