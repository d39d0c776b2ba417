"""Fair queues: learners take turns, one learner's backlog cannot hold every worker (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
import service_fakes
import sqlalchemy as sa
from conftest import EXERCISE, make_settings, wait_until

from grader.grading.results import Result
from grader.service import accounts, fairness, queue
from grader.service.accounts import User
from grader.service.store import Store, submissions
from grader.service.workers import EmbeddedWorkers

LEASE_S = 30.0


def _enqueue(store: Store, user: User, **fake: object) -> str:
    return queue.enqueue(
        store, user_id=user.id, exercise=EXERCISE, filename="nb.ipynb", notebook=service_fakes.notebook(**fake)
    ).id


def _claim(store: Store, owner: str, cap: int | None = 1) -> queue.Job | None:
    return queue.claim(store, owner, lease_s=LEASE_S, max_attempts=3, max_running_per_learner=cap)


def _graded() -> Result:
    return Result(
        exercise=EXERCISE, submission="nb.ipynb", status="graded", score=1, max_score=1, duration_s=0, device="cpu"
    )


def _starts(log: Path) -> list[str]:
    """The fake grader's tags in the order their gradings started."""
    if not log.is_file():
        return []
    return [line.split()[1] for line in log.read_text().splitlines() if line.startswith("start ")]


def test_a_learners_ten_looping_notebooks_do_not_keep_another_learner_waiting(
    store_url: str, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alice queues ten slow notebooks, then Bob one: is Bob's claimed before most of Alice's, by real workers?"""
    log = tmp_path / "fakegrade.log"
    monkeypatch.setenv(service_fakes.ENV_LOG, str(log))
    settings = make_settings(tmp_path, database_url=store_url)
    alice, _ = accounts.add_user(store, "alice")
    bob, _ = accounts.add_user(store, "bob")
    for i in range(10):
        _enqueue(store, alice, tag=f"alice{i}", sleep=1.0)  # stand-ins for endless loops, as far as the queue sees
    bobs = _enqueue(store, bob, tag="bob", sleep=0.0)

    def bob_graded() -> bool:
        with store.read() as conn:
            return conn.execute(sa.select(submissions.c.status).where(submissions.c.id == bobs)).scalar() == "graded"

    with EmbeddedWorkers(settings, store, service_fakes.grade, count=2):
        wait_until(bob_graded, timeout_s=60, what="Bob's submission to be graded")
        order = _starts(log)
    assert "bob" in order[:2], f"Bob's notebook was graded after {order.index('bob')} of Alice's: {order}"
    assert sum(tag.startswith("alice") for tag in order) <= 2


def test_claims_go_round_robin_the_learner_served_longest_ago_first(store: Store) -> None:
    """With Alice's three jobs queued before Bob's and Carol's, do claims alternate between learners?"""
    alice, bob, carol = (accounts.add_user(store, name)[0] for name in ("alice", "bob", "carol"))
    a = [_enqueue(store, alice) for _ in range(3)]
    b = [_enqueue(store, bob) for _ in range(2)]
    c = [_enqueue(store, carol)]
    taken = [_claim(store, f"w{i}", cap=None) for i in range(6)]
    assert [job.id for job in taken if job is not None] == [a[0], b[0], c[0], a[1], b[1], a[2]]


def test_a_learner_at_the_cap_waits_while_others_are_served(store: Store) -> None:
    """With one running job per learner, is Alice's second job held back until her first ends, and Bob's taken?"""
    alice, bob = (accounts.add_user(store, name)[0] for name in ("alice", "bob"))
    first, second = _enqueue(store, alice), _enqueue(store, alice)
    job = _claim(store, "w1")
    assert job is not None and job.id == first
    assert _claim(store, "w2") is None  # Alice is at the cap; nobody else waits
    bobs = _enqueue(store, bob)
    bob_job = _claim(store, "w2")
    assert bob_job is not None and bob_job.id == bobs
    assert queue.complete(store, first, "w1", _graded())
    again = _claim(store, "w1")
    assert again is not None and again.id == second


@pytest.mark.parametrize("cap", [0, None])
def test_without_a_cap_one_learner_may_use_every_worker(store: Store, cap: int | None) -> None:
    """Is ``max_running_per_learner`` 0 (or None) no cap at all: three claims take Alice's three jobs?"""
    alice = accounts.add_user(store, "alice")[0]
    ids = [_enqueue(store, alice) for _ in range(3)]
    taken = [_claim(store, f"w{i}", cap=cap) for i in range(3)]
    assert [job.id for job in taken if job is not None] == ids


def test_an_expired_lease_does_not_count_against_the_cap(store: Store) -> None:
    """Is a job whose worker died (lease expired) claimable again, though its learner has nothing else running?"""
    alice = accounts.add_user(store, "alice")[0]
    sid = _enqueue(store, alice)
    job = _claim(store, "w1")
    assert job is not None
    with store.write() as conn:
        conn.execute(sa.update(submissions).where(submissions.c.id == sid).values(lease_expires_at=0.0))
    again = _claim(store, "w2")
    assert again is not None and again.id == sid and again.attempts == 2


def test_a_celery_task_takes_the_fairest_job_and_holds_a_capped_learners(store: Store) -> None:
    """Does a task for Alice's second job grade Bob's (served never) instead, a task finding only Alice's
    capped jobs hold, and her held job come back once her running one ends?"""
    alice, bob = (accounts.add_user(store, name)[0] for name in ("alice", "bob"))
    first, second = _enqueue(store, alice), _enqueue(store, alice)
    bobs = _enqueue(store, bob)

    def task(sid: str, owner: str) -> queue.Claim:
        return queue.claim_submission(store, sid, owner, lease_s=LEASE_S, max_attempts=3, max_running_per_learner=1)

    taken = task(first, "t1")
    assert taken.job is not None and taken.job.id == first
    instead = task(second, "t2")  # Alice is at the cap: the task grades Bob's job
    assert instead.job is not None and instead.job.id == bobs
    held = task(second, "t3")
    assert held.job is None and held.held and held.retry_in_s is None
    assert fairness.held_back(store, alice.id, 1) == []
    assert queue.complete(store, first, "t1", _graded())
    assert fairness.held_back(store, alice.id, 1) == [(second, "cpu")]
    again = task(second, "t4")
    assert again.job is not None and again.job.id == second
