"""The embedded queue on SQLite and PostgreSQL: atomic claims, leases, retries, dead letters, limits."""

from __future__ import annotations

import json
import threading
import time
import typing

import pytest
import service_fakes
import sqlalchemy as sa

from grader.errors import QueueFull, RateLimited
from grader.grading.results import Result, ResultStatus
from grader.service import leases, queue
from grader.service.accounts import User
from grader.service.statuses import FINAL_STATUSES, SubmissionStatus
from grader.service.store import Store, submissions

LEASE_S = 30.0


def _enqueue(store: Store, user: User, data: bytes | None = None, **limits: int) -> queue.Enqueued:
    return queue.enqueue(
        store,
        user_id=user.id,
        exercise="ex",
        filename="nb.ipynb",
        notebook=data if data is not None else service_fakes.notebook(),
        **limits,
    )


def _row(store: Store, sid: str) -> sa.Row:
    with store.read() as conn:
        return conn.execute(sa.select(submissions).where(submissions.c.id == sid)).one()


def _graded(name: str = "nb.ipynb") -> Result:
    return Result(
        exercise="ex", submission=name, status="graded", score=1.0, max_score=2.0, duration_s=0.1, device="cpu"
    )


def _expire(store: Store, sid: str) -> None:
    with store.write() as conn:
        conn.execute(
            sa.update(submissions)
            .where(submissions.c.id == sid)
            .values(lease_expires_at=time.time() - 1, available_at=time.time() - 1)
        )


def test_a_double_submit_makes_one_job(store: Store, people: dict) -> None:
    """Does submitting the same notebook twice while it waits return the first job instead of a second?"""
    alice = people["alice"][0]
    data = service_fakes.notebook()
    first, second = _enqueue(store, alice, data), _enqueue(store, alice, data)
    assert first.created and not second.created
    assert second.id == first.id
    assert queue.queue_depth(store)["queued"] == 1


def test_concurrent_double_submits_still_make_one_job(store: Store, people: dict) -> None:
    """Does the one-job rule hold when the same submission arrives on several connections at once?"""
    alice = people["alice"][0]
    data = service_fakes.notebook()
    ids: list[str] = []
    threads = [threading.Thread(target=lambda: ids.append(_enqueue(store, alice, data).id)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1
    assert queue.queue_depth(store)["queued"] == 1


def test_the_same_notebook_after_its_grade_is_a_new_job(store: Store, people: dict) -> None:
    """Once a submission is final, is an identical resubmission graded again (the grader may have changed)?"""
    alice = people["alice"][0]
    data = service_fakes.notebook()
    first = _enqueue(store, alice, data)
    job = queue.claim(store, "w1", lease_s=LEASE_S, max_attempts=3)
    assert job is not None and queue.complete(store, job.id, "w1", _graded())
    again = _enqueue(store, alice, data)
    assert again.created and again.id != first.id


def test_each_job_is_claimed_by_exactly_one_of_many_workers(store: Store, people: dict) -> None:
    """Do eight workers claiming at once over twenty jobs each get distinct jobs, every job once?"""
    alice = people["alice"][0]
    queued = {_enqueue(store, alice).id for _ in range(20)}
    claimed: list[str] = []
    lock = threading.Lock()

    def work(owner: str) -> None:
        while (job := queue.claim(store, owner, lease_s=LEASE_S, max_attempts=3)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(queued)


def test_claims_take_the_oldest_job_first(store: Store, people: dict) -> None:
    """Is the queue first in, first out?"""
    alice = people["alice"][0]
    order = [_enqueue(store, alice).id for _ in range(3)]
    taken = [queue.claim(store, "w", lease_s=LEASE_S, max_attempts=3) for _ in order]
    assert [job.id for job in taken if job is not None] == order


def test_only_the_lease_holder_records_a_result(store: Store, people: dict) -> None:
    """After a lease expired and another worker took the job, is the first worker's late result refused?"""
    sid = _enqueue(store, people["alice"][0]).id
    first = queue.claim(store, "slow", lease_s=LEASE_S, max_attempts=3)
    assert first is not None
    _expire(store, sid)
    second = queue.claim(store, "fast", lease_s=LEASE_S, max_attempts=3)
    assert second is not None and second.id == sid and second.attempts == 2
    assert not leases.renew(store, sid, "slow", lease_s=LEASE_S)
    assert not queue.complete(store, sid, "slow", _graded("late"))
    assert queue.complete(store, sid, "fast", _graded("on time"))
    row = _row(store, sid)
    assert row.status == "graded"
    assert json.loads(row.result)["submission"] == "on time"


def test_a_live_lease_is_not_taken_and_renewal_extends_it(store: Store, people: dict) -> None:
    """Is a job whose worker keeps renewing its lease left alone by other workers?"""
    sid = _enqueue(store, people["alice"][0]).id
    assert queue.claim(store, "w1", lease_s=LEASE_S, max_attempts=3) is not None
    before = _row(store, sid).lease_expires_at
    assert queue.claim(store, "w2", lease_s=LEASE_S, max_attempts=3) is None
    time.sleep(0.01)
    assert leases.renew(store, sid, "w1", lease_s=LEASE_S)
    assert _row(store, sid).lease_expires_at > before


def test_an_infrastructure_failure_is_retried_with_a_message_then_dead_lettered(store: Store, people: dict) -> None:
    """Is a job that keeps failing on the grader's side retried, the learner told, and finally given up on?"""
    sid = _enqueue(store, people["alice"][0]).id
    for attempt in (1, 2):
        job = queue.claim(store, "w", lease_s=LEASE_S, max_attempts=3)
        assert job is not None and job.attempts == attempt
        assert queue.fail(store, job, "w", max_attempts=3) == "queued"
        row = _row(store, sid)
        assert row.status == "queued"
        assert "grading error, we will retry" in row.message
        assert queue.claim(store, "w", lease_s=LEASE_S, max_attempts=3) is None  # backing off
        _expire(store, sid)
    job = queue.claim(store, "w", lease_s=LEASE_S, max_attempts=3)
    assert job is not None and job.attempts == 3
    assert queue.fail(store, job, "w", max_attempts=3) == "error"
    row = _row(store, sid)
    assert row.status == "error"
    assert "failed 3 times" in row.message and "tell your instructor" in row.message
    assert json.loads(row.result)["status"] == "error"
    assert queue.claim(store, "w", lease_s=LEASE_S, max_attempts=3) is None


def test_a_job_whose_worker_keeps_dying_is_dead_lettered(store: Store, people: dict) -> None:
    """When every worker holding a job dies (its lease expires each time), does the job end as a clear error?"""
    sid = _enqueue(store, people["alice"][0]).id
    for _ in range(3):
        assert queue.claim(store, "doomed", lease_s=LEASE_S, max_attempts=3) is not None
        _expire(store, sid)
    assert queue.claim(store, "next", lease_s=LEASE_S, max_attempts=3) is None
    row = _row(store, sid)
    assert row.status == "error"
    assert "the grading process died each time" in row.message


def test_a_learner_caused_failure_is_final(store: Store, people: dict) -> None:
    """Is an invalid submission recorded as the verdict, not retried?"""
    sid = _enqueue(store, people["alice"][0]).id
    job = queue.claim(store, "w", lease_s=LEASE_S, max_attempts=3)
    assert job is not None
    verdict = Result(
        exercise="ex",
        submission="nb",
        status="invalid",
        score=0,
        max_score=0,
        duration_s=0,
        device="none",
        message="this notebook is for another exercise",
    )
    assert queue.complete(store, sid, "w", verdict)
    assert _row(store, sid).status == "invalid"
    _expire(store, sid)
    assert queue.claim(store, "w", lease_s=LEASE_S, max_attempts=3) is None


def test_complete_refuses_an_error_verdict(store: Store, people: dict) -> None:
    """Can an infrastructure error be recorded as if it were a verdict? (It must go through fail.)"""
    _enqueue(store, people["alice"][0])
    job = queue.claim(store, "w", lease_s=LEASE_S, max_attempts=3)
    assert job is not None
    broken = Result(exercise="ex", submission="nb", status="error", score=0, max_score=0, duration_s=0, device="none")
    with pytest.raises(ValueError, match="fail"):
        queue.complete(store, job.id, "w", broken)


@pytest.mark.parametrize(("limit", "submitted", "refused"), [(3, 3, False), (3, 4, True), (1, 2, True)])
def test_the_rate_limit_counts_a_learners_last_minute(
    store: Store, people: dict, limit: int, submitted: int, refused: bool
) -> None:
    """Is a learner's submission past the per-minute limit refused, with a wait, while others may still submit?"""
    alice, bob = people["alice"][0], people["bob"][0]
    outcomes = []
    for _ in range(submitted):
        try:
            outcomes.append(_enqueue(store, alice, per_minute=limit))
        except RateLimited as exc:
            assert f"the limit is {limit}" in str(exc)
            assert 1 <= exc.retry_after_s <= 60
            outcomes.append(None)
    assert (None in outcomes) == refused
    assert _enqueue(store, bob, per_minute=limit).created


def test_a_double_submit_does_not_count_against_the_rate_limit(store: Store, people: dict) -> None:
    """Does re-sending the same waiting notebook answer with its job rather than 'too many submissions'?"""
    alice = people["alice"][0]
    data = service_fakes.notebook()
    first = _enqueue(store, alice, data, per_minute=1)
    assert _enqueue(store, alice, data, per_minute=1).id == first.id


def test_a_full_queue_refuses_new_jobs(store: Store, people: dict) -> None:
    """Past max_queued waiting jobs, is a new submission refused with a retry hint?"""
    alice = people["alice"][0]
    for _ in range(2):
        _enqueue(store, alice, max_queued=2)
    with pytest.raises(QueueFull, match="busy") as refused:
        _enqueue(store, alice, max_queued=2)
    assert refused.value.retry_after_s >= 1


@pytest.mark.parametrize("state", ["graded", "leased", "backing-off", "missing"])
def test_claiming_one_submission_says_why_not(store: Store, people: dict, state: str) -> None:
    """Does the Celery path's claim-by-id do nothing for a final job and ask to wait for a leased one?"""
    sid = _enqueue(store, people["alice"][0]).id
    if state == "graded":
        job = queue.claim(store, "w", lease_s=LEASE_S, max_attempts=3)
        assert job is not None and queue.complete(store, sid, "w", _graded())
    elif state == "leased":
        assert queue.claim(store, "w", lease_s=LEASE_S, max_attempts=3) is not None
    elif state == "backing-off":
        job = queue.claim(store, "w", lease_s=LEASE_S, max_attempts=3)
        assert job is not None and queue.fail(store, job, "w", max_attempts=3) == "queued"
    found = queue.claim_submission(
        store, "no-such-id" if state == "missing" else sid, "celery", lease_s=LEASE_S, max_attempts=3
    )
    assert found.job is None
    if state in ("graded", "missing"):
        assert found.retry_in_s is None
    else:
        assert found.retry_in_s is not None and found.retry_in_s > 0


def test_needs_dispatch_finds_unsent_and_abandoned_jobs(store: Store, people: dict) -> None:
    """Does the Celery re-sender find jobs never sent and jobs whose worker died, but not those in hand?"""
    alice = people["alice"][0]
    unsent = _enqueue(store, alice).id
    sent = _enqueue(store, alice).id
    queue.mark_dispatched(store, [sent])
    abandoned = _enqueue(store, alice).id
    with store.write() as conn:  # claim "abandoned" specifically, then let its lease lapse
        conn.execute(
            sa.update(submissions)
            .where(submissions.c.id == abandoned)
            .values(status="running", attempts=1, lease_owner="dead", lease_expires_at=time.time() - 1)
        )
    found = queue.needs_dispatch(store, redispatch_after_s=600, max_attempts=3)
    assert {sid for sid, _device in found} == {unsent, abandoned}


def test_statuses_are_stored_as_the_same_plain_strings(store: Store, people: dict) -> None:
    """Does the store keep each status as its wire string, and are the final ones exactly a Result's statuses?"""
    sid = _enqueue(store, people["alice"][0]).id
    with store.read() as conn:
        raw = conn.execute(sa.text("SELECT status FROM submissions WHERE id = :id"), {"id": sid}).scalar_one()
    assert type(raw) is str and raw == "queued"
    assert [status.value for status in SubmissionStatus] == ["queued", "running", "graded", "invalid", "error"]
    assert {status.value for status in FINAL_STATUSES} == set(typing.get_args(ResultStatus))
    assert f"{SubmissionStatus.RUNNING}" == str(SubmissionStatus.RUNNING) == "running"
