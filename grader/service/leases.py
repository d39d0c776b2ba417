"""Leases: who holds a job, how the holder keeps it, and how a dead holder's jobs are given back at once.

A claim (:func:`grader.service.queue.claim`) is a lease held by an **owner**, a name unique to one
thread of one process on one machine: ``<host>:<pid>:<label>:<random>`` (:func:`owner_name`). The
holder renews it every third of ``settings.lease_s`` while it grades (:func:`renew`); a lease that
is not renewed expires and the job is claimed again.

Waiting for the lease to expire is the last resort. Whoever *sees* a grading process die gives
its leases back at once (:func:`release_process`), since the owner names the process:

- ``grader serve``'s supervisor, when one of its ``grader worker`` processes exits
  (:class:`grader.service.server.WorkerProcesses`);
- a Celery worker's main process, when a pool process dies under a task (:mod:`grader.service.tasks`);
- any worker as it starts, for the processes of its own machine that are gone
  (:func:`release_dead_here`): a ``grader worker`` restarted by systemd gives back what it held
  before it was killed.

A job given back is queued again at once, with a message saying it is being graded again after a
worker failure, or, when that was its last attempt, ends as an ``error`` (dead-lettered).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from grader.grading.results import Result, dead_letter_message, worker_lost_message
from grader.service.statuses import SubmissionStatus
from grader.service.store import Store, submissions

_s = submissions.c


def owner_name(label: str = "worker") -> str:
    """A lease owner's name, unique to this thread of this process on this machine."""
    return f"{socket.gethostname()}:{os.getpid()}:{label}:{uuid.uuid4().hex[:8]}"


def owner_process(owner: str) -> tuple[str, int] | None:
    """The (host, pid) an owner name was made in, or None for a name not made by :func:`owner_name`."""
    host, _, rest = owner.partition(":")
    pid, _, _ = rest.partition(":")
    return (host, int(pid)) if host and pid.isdigit() else None


def owner_dead(owner: str, host: str, dead: set[int] | None) -> bool:
    """Is lease ``owner`` a process of ``host`` that is one of ``dead`` (None: one of this machine's found
    gone)? The test both lease tables (submissions', regrade jobs') use to give back a dead holder's jobs."""
    found = owner_process(owner)
    if found is None or found[0] != host:
        return False
    return found[1] in dead if dead is not None else not process_alive(found[1])


def process_alive(pid: int) -> bool:
    """Is process ``pid`` of this machine running (a zombie, dead but not yet reaped, is not)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z"
    return True


def renew(store: Store, job_id: str, owner: str, *, lease_s: float) -> bool:
    """Extend ``owner``'s lease; False when the lease was lost (expired and taken, given back, or finished)."""

    def work(conn: Connection) -> bool:
        return (
            conn.execute(
                sa.update(submissions)
                .where(_s.id == job_id, _s.lease_owner == owner, _s.status == SubmissionStatus.RUNNING)
                .values(lease_expires_at=time.time() + lease_s)
            ).rowcount
            == 1
        )

    return store.run(work)


def error_result(row: sa.Row, message: str) -> str:
    """A dead-lettered job's Result, as stored (``row`` has the job's exercise and filename)."""
    result = Result(
        exercise=row.exercise,
        submission=row.filename,
        status=SubmissionStatus.ERROR.value,
        score=0.0,
        max_score=0.0,
        duration_s=0.0,
        device="none",
        message=message,
    )
    return json.dumps(result.to_dict())


def dead_letter_values(row: sa.Row, message: str) -> dict[str, Any]:
    """The columns of a job that becomes a final error with ``message`` (``row`` as for :func:`error_result`)."""
    return {
        "status": SubmissionStatus.ERROR,
        "message": message,
        "result": error_result(row, message),
        "score": 0.0,
        "max_score": 0.0,
    }


def dead_letter(conn: Connection, now: float, max_attempts: int, submission_id: str | None = None) -> int:
    """Jobs that used up their attempts (the last one's lease expired) become final errors."""
    used_up = sa.and_(
        _s.attempts >= max_attempts,
        sa.or_(
            _s.status == SubmissionStatus.QUEUED,
            sa.and_(_s.status == SubmissionStatus.RUNNING, _s.lease_expires_at < now),
        ),
    )
    query = sa.select(_s.id, _s.exercise, _s.filename, _s.status, _s.attempts).where(used_up)
    if submission_id is not None:
        query = query.where(_s.id == submission_id)
    count = 0
    for row in conn.execute(query).all():
        message = dead_letter_message(row.attempts, worker_died=row.status == SubmissionStatus.RUNNING)
        count += conn.execute(
            sa.update(submissions)
            .where(_s.id == row.id, used_up)
            .values(**dead_letter_values(row, message), lease_owner=None, lease_expires_at=None, updated_at=now)
        ).rowcount
    return count


def _give_back(conn: Connection, row: sa.Row, now: float, max_attempts: int) -> bool:
    """Queue one job again at once (or dead-letter it after its last attempt); False if its lease moved on."""
    held = sa.and_(_s.id == row.id, _s.lease_owner == row.lease_owner, _s.status == SubmissionStatus.RUNNING)
    if row.attempts >= max_attempts:
        values = dead_letter_values(row, dead_letter_message(row.attempts, worker_died=True))
    else:
        values = {
            "status": SubmissionStatus.QUEUED,
            "message": worker_lost_message(row.attempts, max_attempts),
            "available_at": now,
            "dispatched_at": None,
        }
    changed = conn.execute(
        sa.update(submissions).where(held).values(**values, lease_owner=None, lease_expires_at=None, updated_at=now)
    ).rowcount
    return changed == 1


def _release(store: Store, host: str, dead: set[int] | None, *, max_attempts: int) -> list[str]:
    """Give back the running jobs whose owner is on ``host`` and is one of ``dead`` (None: a process found gone)."""

    def work(conn: Connection) -> list[str]:
        now = time.time()
        rows = conn.execute(
            sa.select(_s.id, _s.exercise, _s.filename, _s.attempts, _s.lease_owner).where(
                _s.status == SubmissionStatus.RUNNING, _s.lease_owner.like(f"{host}:%")
            )
        ).all()
        return [
            row.id
            for row in rows
            if owner_dead(row.lease_owner, host, dead) and _give_back(conn, row, now, max_attempts)
        ]

    return store.run(work)


def release_process(store: Store, pid: int, *, max_attempts: int, host: str | None = None) -> list[str]:
    """Give back at once every lease held by process ``pid`` on ``host`` (default: this machine), which the
    caller saw die. Returns the ids of the jobs given back."""
    return _release(store, host or socket.gethostname(), {pid}, max_attempts=max_attempts)


def release_dead_here(store: Store, *, max_attempts: int) -> list[str]:
    """Give back the leases held by processes of this machine that are no longer running."""
    return _release(store, socket.gethostname(), None, max_attempts=max_attempts)
