"""The embedded job queue: the submissions table itself, with time-limited leases.

A submission moves through::

    queued ──claim──> running ──complete──> graded | invalid     (final: the learner's verdict)
      ^                 │  │
      │                 │  └──fail (infrastructure: the grade function raised or said "error")──┐
      └──── retry ──────┘     attempts < max_attempts: back to queued after a short back-off     │
            (lease expired:   attempts = max_attempts: error (dead-lettered, final)  <───────────┘
             the worker died)

- **Claim** is one atomic conditional ``UPDATE … RETURNING`` (on PostgreSQL its sub-select
  takes ``FOR UPDATE SKIP LOCKED``; on SQLite the transaction is ``BEGIN IMMEDIATE``): a job
  is claimed by exactly one worker. Claiming counts an attempt.
- A claim is a **lease** until ``lease_expires_at``; the worker renews it while grading
  (:func:`grader.service.leases.renew`, from a heartbeat thread). A job whose lease expired (its
  worker died or hung) is claimable again, or dead-lettered if it used up its attempts; a worker
  seen dying has its leases given back at once (:mod:`grader.service.leases`). Either way the
  learner reads that their notebook is being graded again after a worker failure.
- **Only the lease holder records a result**: :func:`complete` and :func:`fail` are
  conditional on ``lease_owner``; a worker that lost its lease records nothing.
- **Fairness** (:mod:`grader.service.fairness`): learners take turns (the one served longest ago
  first), and a learner with ``max_running_per_learner`` jobs being graded gets no other claimed.
- A double submit (same learner, exercise and notebook bytes while one is queued or
  running) returns the existing job: a unique index makes that hold under concurrency.
- **Devices** (:mod:`grader.service.registry`): a job whose exercise wants a GPU is claimed by a
  GPU worker while one is live; a CPU worker claims it only when none is (and grades it at
  smoke size). A GPU worker claims GPU jobs first, then CPU jobs when no GPU job waits.

Both the embedded workers and the Celery tasks use these functions (see :mod:`grader.service.workers`).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from grader.errors import QueueFull, RateLimited
from grader.format import markers
from grader.grading.results import Result, dead_letter_message, retrying_message, worker_lost_message
from grader.service import fairness, leases
from grader.service.registry import GPU_QUEUE, live_gpu_clause
from grader.service.statuses import ACTIVE_STATUSES, FINAL_STATUSES, VERDICTS, SubmissionStatus
from grader.service.store import Store, submissions, users

_s = submissions.c


# --- records ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """A claimed submission: what a worker needs to grade it."""

    id: str
    user_id: int
    exercise: str
    filename: str
    notebook: bytes
    sha256: str
    attempts: int
    lease_owner: str
    #: the device the exercise asks for (``cpu``/``gpu``); the worker's own decides how it is graded
    device: str = markers.DEVICE_CPU


@dataclass(frozen=True)
class Enqueued:
    id: str
    status: str
    #: False when an identical submission was already queued or running (a double submit)
    created: bool


@dataclass(frozen=True)
class Claim:
    """What :func:`claim_submission` found: a job to grade, a wait, or nothing to do."""

    job: Job | None = None
    #: the job exists but cannot be claimed yet (leased by a live worker, or backing off)
    retry_in_s: float | None = None
    #: the status the submission had (``None``: no such submission)
    status: str | None = None
    #: a GPU job offered to a CPU worker while a GPU worker is live: send it to the GPU queue instead
    reroute: bool = False
    #: claimable, but its learner is at the cap of running jobs: set aside until one of theirs ends
    held: bool = False


def _job(row: sa.Row) -> Job:
    return Job(
        id=row.id,
        user_id=row.user_id,
        exercise=row.exercise,
        filename=row.filename,
        notebook=bytes(row.notebook),
        sha256=row.sha256,
        attempts=row.attempts,
        lease_owner=row.lease_owner,
        device=row.device,
    )


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- enqueue ----------------------------------------------------------------------------------


def enqueue(
    store: Store,
    *,
    user_id: int,
    exercise: str,
    filename: str,
    notebook: bytes,
    per_minute: int | None = None,
    max_queued: int | None = None,
    device: str = markers.DEVICE_CPU,
) -> Enqueued:
    """Queue a submission, or return the identical one already queued or running.

    ``device``: what the exercise asks for (its solution's ``grader.device``), never the submission's word.

    Raises:
        RateLimited: the learner made ``per_minute`` submissions in the last minute.
        QueueFull: ``max_queued`` jobs are already waiting.
    """
    digest = sha256_of(notebook)

    def work(conn: Connection) -> Enqueued:
        now = time.time()
        if store.dialect == "postgresql":  # one learner's submissions are decided one at a time
            conn.execute(sa.select(users.c.id).where(users.c.id == user_id).with_for_update())
        existing = conn.execute(
            sa.select(_s.id, _s.status).where(
                _s.user_id == user_id, _s.exercise == exercise, _s.sha256 == digest, _s.status.in_(ACTIVE_STATUSES)
            )
        ).first()
        if existing is not None:
            return Enqueued(id=existing.id, status=existing.status, created=False)
        if per_minute is not None:
            recent = (
                conn.execute(
                    sa.select(_s.created_at)
                    .where(_s.user_id == user_id, _s.created_at > now - 60.0)
                    .order_by(_s.created_at)
                )
                .scalars()
                .all()
            )
            if len(recent) >= per_minute:
                wait = recent[len(recent) - per_minute] + 60.0 - now
                raise RateLimited(
                    f"you made {len(recent)} submissions in the last minute (the limit is {per_minute}); "
                    f"wait {max(1, round(wait))} s and submit again",
                    retry_after_s=wait,
                )
        if max_queued is not None:
            waiting = conn.execute(sa.select(sa.func.count()).where(_s.status == SubmissionStatus.QUEUED)).scalar_one()
            if waiting >= max_queued:
                raise QueueFull(
                    f"the grader is busy ({waiting} submissions waiting); submit again in a minute",
                    retry_after_s=30.0,
                )
        new_id = str(uuid.uuid4())
        conn.execute(
            sa.insert(submissions).values(
                id=new_id,
                user_id=user_id,
                exercise=exercise,
                filename=filename,
                notebook=notebook,
                sha256=digest,
                status=SubmissionStatus.QUEUED,
                result=None,
                message="",
                attempts=0,
                lease_owner=None,
                lease_expires_at=None,
                available_at=now,
                dispatched_at=None,
                created_at=now,
                updated_at=now,
                device=device,
            )
        )
        return Enqueued(id=new_id, status=SubmissionStatus.QUEUED, created=True)

    return store.run(work)


# --- claim, renew, record ---------------------------------------------------------------------


def _routable(now: float, *, gpu_worker: bool, worker_ttl_s: float) -> sa.ColumnElement[bool]:
    """What a worker may take: a GPU worker anything; a CPU worker a GPU job only while no GPU worker is live."""
    if gpu_worker:
        return sa.true()
    return sa.or_(_s.device != markers.DEVICE_GPU, ~live_gpu_clause(now, worker_ttl_s))


def _claimable(now: float, max_attempts: int) -> sa.ColumnElement[bool]:
    return sa.and_(
        _s.attempts < max_attempts,
        sa.or_(
            sa.and_(_s.status == SubmissionStatus.QUEUED, _s.available_at <= now),
            sa.and_(_s.status == SubmissionStatus.RUNNING, _s.lease_expires_at < now),
        ),
    )


def _claim_values(owner: str, now: float, lease_s: float, max_attempts: int) -> dict[str, Any]:
    """A claim's changes; taking over a job whose worker died (still ``running``, its lease expired) also
    tells the learner that their notebook is being graded again."""
    return {
        "status": SubmissionStatus.RUNNING,
        "attempts": _s.attempts + 1,
        "lease_owner": owner,
        "lease_expires_at": now + lease_s,
        "claimed_at": now,
        "updated_at": now,
        "message": sa.case(
            *[
                (sa.and_(_s.status == SubmissionStatus.RUNNING, _s.attempts == n), worker_lost_message(n, max_attempts))
                for n in range(1, max_attempts)
            ],
            else_=_s.message,
        ),
    }


def _anything_to_do(store: Store) -> bool:
    """A cheap read: is any job queued, or running (perhaps on an expired lease)? Idle workers poll this,
    so an empty queue never takes SQLite's write lock."""
    return store.run(
        lambda conn: conn.execute(sa.select(_s.id).where(_s.status.in_(ACTIVE_STATUSES)).limit(1)).first() is not None,
        write=False,
    )


#: picks a claim tries when a concurrent claim took its learner to the cap first (PostgreSQL)
CLAIM_TRIES = 3


def _claim_fairest(
    conn: Connection,
    dialect: str,
    owner: str,
    now: float,
    ready: sa.ColumnElement[bool],
    *,
    lease_s: float,
    max_attempts: int,
    first: Sequence[sa.ColumnElement[Any]] = (),
) -> Job | None:
    """In one transaction: claim the fairest ``ready`` job (:mod:`grader.service.fairness`), or None."""
    for _ in range(CLAIM_TRIES):
        pick = conn.execute(
            sa.select(_s.id, _s.user_id)
            .select_from(submissions.join(users, users.c.id == _s.user_id))
            .where(ready)
            .order_by(*first, *fairness.turn_order())
            .limit(1)
            .with_for_update(skip_locked=True, of=submissions)
        ).first()
        if pick is None:
            return None
        fairness.lock_learner(conn, dialect, pick.user_id)  # then re-check the cap in the update
        row = conn.execute(
            sa.update(submissions)
            .where(_s.id == pick.id, ready)
            .values(**_claim_values(owner, now, lease_s, max_attempts))
            .returning(*submissions.c)
        ).first()
        if row is not None:
            fairness.take_turn(conn, pick.user_id, now)
            return _job(row)
    return None


def claim(
    store: Store,
    owner: str,
    *,
    lease_s: float,
    max_attempts: int,
    gpu_worker: bool = False,
    worker_ttl_s: float = 30.0,
    max_running_per_learner: int | None = None,
) -> Job | None:
    """Claim the fairest claimable job for ``owner`` (a unique worker name), or None if there is none.

    Fairest (:mod:`grader.service.fairness`): of the learner served longest ago, the oldest; none of a
    learner with ``max_running_per_learner`` jobs being graded (None or 0: no cap).
    ``gpu_worker``: GPU jobs first; otherwise GPU jobs only while no GPU worker is live (``worker_ttl_s``).
    """
    if not _anything_to_do(store):
        return None

    def work(conn: Connection) -> Job | None:
        now = time.time()
        leases.dead_letter(conn, now, max_attempts)
        ready = sa.and_(
            _claimable(now, max_attempts),
            _routable(now, gpu_worker=gpu_worker, worker_ttl_s=worker_ttl_s),
            fairness.under_cap(now, max_running_per_learner),
        )
        first = [sa.case((_s.device == markers.DEVICE_GPU, 0), else_=1)] if gpu_worker else []
        return _claim_fairest(
            conn, store.dialect, owner, now, ready, lease_s=lease_s, max_attempts=max_attempts, first=first
        )

    return store.run(work)


def claim_submission(
    store: Store,
    submission_id: str,
    owner: str,
    *,
    lease_s: float,
    max_attempts: int,
    gpu_worker: bool = False,
    worker_ttl_s: float = 30.0,
    max_running_per_learner: int | None = None,
) -> Claim:
    """What a Celery task for one submission claims (the fairest job of its device), or why it claims nothing.

    A task is one grading's worth of work for its queue, not a promise about its own submission:
    it claims the fairest claimable job of the same device as ``submission_id`` (that submission when
    it is the fairest), so learners take turns whatever order the broker delivers in. Every queued
    job was sent a task, and a task claims at most one job, so none is left without one.

    Nothing is claimed when nothing of that device is claimable; then: a GPU job offered to a CPU
    worker while a GPU worker is live says ``reroute``; a job whose learner is at the cap says
    ``held`` (and is marked not dispatched: it is sent again when one of that learner's jobs ends, or
    by the re-sender); a job leased or backing off says when to try again; a final one, nothing.
    """

    def work(conn: Connection) -> Claim:
        now = time.time()
        leases.dead_letter(conn, now, max_attempts)
        claimable = _claimable(now, max_attempts)
        routable = _routable(now, gpu_worker=gpu_worker, worker_ttl_s=worker_ttl_s)
        state = conn.execute(
            sa.select(
                _s.status,
                _s.device,
                _s.lease_expires_at,
                _s.available_at,
                claimable.label("ready"),
                routable.label("routable"),
            ).where(_s.id == submission_id)
        ).first()
        if state is None:
            return Claim()
        if state.status not in FINAL_STATUSES and state.ready and not state.routable:  # a GPU worker is live
            return Claim(status=state.status, reroute=True)
        ready = sa.and_(
            claimable, routable, fairness.under_cap(now, max_running_per_learner), _s.device == state.device
        )
        job = _claim_fairest(conn, store.dialect, owner, now, ready, lease_s=lease_s, max_attempts=max_attempts)
        if job is not None:
            return Claim(job=job, status=SubmissionStatus.RUNNING)
        if state.status in FINAL_STATUSES:
            return Claim(status=state.status)
        if state.ready:  # claimable, yet not claimed: its learner is at the cap
            conn.execute(sa.update(submissions).where(_s.id == submission_id).values(dispatched_at=None))
            return Claim(status=state.status, held=True)
        until = state.lease_expires_at if state.status == SubmissionStatus.RUNNING else state.available_at
        return Claim(retry_in_s=max(0.5, (until or now) - now + 0.1), status=state.status)

    return store.run(work)


def complete(store: Store, job_id: str, owner: str, result: Result) -> bool:
    """Record a verdict (``graded`` or ``invalid``); False when ``owner`` no longer holds the lease."""
    if result.status not in VERDICTS:
        raise ValueError(f"complete() records verdicts, not {result.status!r}; infrastructure errors go to fail()")
    data = result.to_dict()

    def work(conn: Connection) -> bool:
        return (
            conn.execute(
                sa.update(submissions)
                .where(_s.id == job_id, _s.lease_owner == owner, _s.status == SubmissionStatus.RUNNING)
                .values(
                    status=result.status,
                    result=json.dumps(data),
                    message=result.message,
                    score=result.score,
                    max_score=result.max_score,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=time.time(),
                )
            ).rowcount
            == 1
        )

    return store.run(work)


def backoff_s(failed_attempts: int) -> float:
    """How long a job waits before its next attempt: 1 s, 2 s, 4 s … at most 30 s."""
    return min(30.0, 2.0 ** max(0, failed_attempts - 1))


def fail(store: Store, job: Job, owner: str, *, max_attempts: int) -> SubmissionStatus | None:
    """An infrastructure failure: back to ``queued`` (after :func:`backoff_s`) or, out of attempts, ``error``.

    Returns the new status, or None when ``owner`` no longer holds the lease.
    """
    delay = backoff_s(job.attempts)

    def work(conn: Connection) -> SubmissionStatus | None:
        now = time.time()
        mine = sa.and_(_s.id == job.id, _s.lease_owner == owner, _s.status == SubmissionStatus.RUNNING)
        if job.attempts >= max_attempts:
            message = dead_letter_message(job.attempts, worker_died=False)
            row = conn.execute(sa.select(_s.exercise, _s.filename).where(mine)).first()
            if row is None:
                return None
            values: dict[str, Any] = leases.dead_letter_values(row, message)
        else:
            values = {
                "status": SubmissionStatus.QUEUED,
                "message": retrying_message(job.attempts, max_attempts),
                "available_at": now + delay,
            }
        changed = conn.execute(
            sa.update(submissions).where(mine).values(**values, lease_owner=None, lease_expires_at=None, updated_at=now)
        ).rowcount
        return values["status"] if changed == 1 else None

    return store.run(work)


# --- reading ----------------------------------------------------------------------------------


def queue_depth(store: Store) -> dict[str, int]:
    """How many submissions are in each status."""
    rows = store.run(
        lambda conn: conn.execute(sa.select(_s.status, sa.func.count()).group_by(_s.status)).all(), write=False
    )
    counts = dict.fromkeys((status.value for status in SubmissionStatus), 0)
    counts.update({row[0]: int(row[1]) for row in rows})
    return counts


def needs_dispatch(
    store: Store, *, redispatch_after_s: float, max_attempts: int, worker_ttl_s: float = 30.0
) -> list[tuple[str, str]]:
    """Jobs a Celery task should be (re)sent for, with their device: never dispatched, dispatched long ago,
    whose lease expired, or sent to the GPU queue while no GPU worker is live (none would take it).

    Sending a task twice is harmless (a task for a graded or leased job does nothing), so this
    errs on the side of sending.
    """

    def work(conn: Connection) -> list[tuple[str, str]]:
        now = time.time()
        leases.dead_letter(conn, now, max_attempts)
        queued = sa.and_(_s.status == SubmissionStatus.QUEUED, _s.available_at <= now)
        stale = sa.or_(
            sa.and_(queued, sa.or_(_s.dispatched_at.is_(None), _s.dispatched_at < now - redispatch_after_s)),
            sa.and_(queued, _s.routed_to == GPU_QUEUE, ~live_gpu_clause(now, worker_ttl_s)),
            sa.and_(_s.status == SubmissionStatus.RUNNING, _s.lease_expires_at < now),
        )
        rows = conn.execute(sa.select(_s.id, _s.device).where(stale).order_by(_s.created_at)).all()
        return [(row.id, row.device) for row in rows]

    return store.run(work)


def mark_dispatched(store: Store, ids: list[str], routed_to: str | None = None) -> None:
    if not ids:
        return
    values: dict[str, Any] = {"dispatched_at": time.time()} | ({"routed_to": routed_to} if routed_to else {})
    store.run(lambda conn: conn.execute(sa.update(submissions).where(_s.id.in_(ids)).values(**values)))
