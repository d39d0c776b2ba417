"""Fair claims: learners take turns, and no learner holds more than a few workers.

One learner's backlog (ten notebooks that loop until their time limit) must not keep everybody
else waiting. Two rules decide which queued job a worker takes, in the same transaction as the
claim (:func:`grader.service.queue.claim`):

- **Turns.** Among the jobs a worker may take, the one whose learner was served longest ago goes
  first (``users.last_claimed_at``, set by every claim; a learner never served goes before all),
  then the oldest of that learner's jobs. So learners are served round-robin, whatever the order
  their submissions arrived in.
- **A cap.** A learner with ``settings.max_running_per_learner`` jobs being graded (leases that
  have not expired) gets no other job claimed until one ends, even when a worker is idle: a
  worker kept free is what lets a learner who submits a minute later be graded at once. 0 turns
  the cap off.

On PostgreSQL the cap holds under concurrent claims because a claim locks its learner's
``users`` row before the conditional update that re-checks the cap; on SQLite every claim is
one ``BEGIN IMMEDIATE`` transaction anyway.

With Celery the broker, not the store, hands out tasks, in the order they were sent; so a task
claims the fairest job of its submission's device rather than its own submission
(:func:`grader.service.queue.claim_submission`). A task that finds only jobs of learners at the
cap does nothing; when one of that learner's jobs ends, tasks are sent for the learner's jobs
that the cap now lets through (:func:`held_back`).
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from grader.service.statuses import SubmissionStatus
from grader.service.store import Store, submissions, users

_s = submissions.c
#: the same table again, for "this learner's other jobs" inside a query over submissions
_mine = submissions.alias("mine")


def cap_of(max_running_per_learner: int | None) -> int | None:
    """The cap as a number of jobs, or None for no cap (0 or None)."""
    return max_running_per_learner if max_running_per_learner and max_running_per_learner > 0 else None


def running_of(user_id: sa.ColumnElement[int] | int, now: float) -> sa.ScalarSelect[int]:
    """SQL: how many of a learner's jobs are being graded now (running, on a lease that has not expired)."""
    m = _mine.c
    return (
        sa.select(sa.func.count())
        .where(m.user_id == user_id, m.status == SubmissionStatus.RUNNING, m.lease_expires_at >= now)
        .scalar_subquery()
    )


def under_cap(now: float, max_running_per_learner: int | None) -> sa.ColumnElement[bool]:
    """SQL, over ``submissions``: the job's learner may have one more job graded now."""
    cap = cap_of(max_running_per_learner)
    return sa.true() if cap is None else running_of(_s.user_id, now) < cap


def turn_order() -> list[sa.ColumnElement[float]]:
    """ORDER BY terms (with ``users`` joined): the learner served longest ago first, then the oldest job."""
    return [sa.func.coalesce(users.c.last_claimed_at, 0.0), _s.available_at, _s.created_at]


def take_turn(conn: Connection, user_id: int, now: float) -> None:
    """Record that ``user_id`` was served now (their next job waits for every learner served before)."""
    conn.execute(sa.update(users).where(users.c.id == user_id).values(last_claimed_at=now))


def lock_learner(conn: Connection, dialect: str, user_id: int) -> None:
    """On PostgreSQL, hold the learner's row until commit: claims of one learner's jobs then see each other."""
    if dialect == "postgresql":
        conn.execute(sa.select(users.c.id).where(users.c.id == user_id).with_for_update())


def held_back(store: Store, user_id: int, max_running_per_learner: int | None) -> list[tuple[str, str]]:
    """A learner's queued jobs (id, device) that the cap now lets through, oldest first: with Celery, their
    tasks were set aside while the learner was at the cap and are sent again when one of theirs ends."""
    cap = cap_of(max_running_per_learner)
    if cap is None:
        return []

    def work(conn: Connection) -> list[tuple[str, str]]:
        now = time.time()
        free = cap - int(conn.execute(sa.select(running_of(user_id, now))).scalar_one())
        if free <= 0:
            return []
        rows = conn.execute(
            sa.select(_s.id, _s.device)
            .where(_s.user_id == user_id, _s.status == SubmissionStatus.QUEUED, _s.available_at <= now)
            .order_by(_s.available_at, _s.created_at)
            .limit(free)
        ).all()
        return [(row.id, row.device) for row in rows]

    return store.run(work, write=False)
