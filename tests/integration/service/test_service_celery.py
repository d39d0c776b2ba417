"""Scale-out: Celery workers (real `grader worker --celery` processes) over RabbitMQ and Redis, PostgreSQL store."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import service_fakes
import sqlalchemy as sa
from conftest import AMQP_URL, EXERCISE, REDIS_URL, Processes, make_settings, wait_until
from fastapi.testclient import TestClient

from grader.service import accounts, tasks
from grader.service.app import create_app
from grader.service.store import Store, open_store, submissions
from grader.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(params=["rabbitmq", "redis"])
def broker_url(request: pytest.FixtureRequest) -> str:
    return AMQP_URL if request.param == "rabbitmq" else REDIS_URL


@pytest.fixture
def celery_settings(tmp_path: Path, pg_url: str, broker_url: str) -> Iterator[Settings]:
    settings = make_settings(tmp_path, database_url=pg_url, broker_url=broker_url, lease_s=2.0)
    app = tasks.make_celery(settings)
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)
            app.control.purge(connection=connection)  # messages left by an earlier, interrupted run
    except Exception as exc:
        pytest.fail(
            f"the broker at {broker_url} is not reachable ({exc}); start it, or set "
            "GRADER_TEST_AMQP_URL / GRADER_TEST_REDIS_URL"
        )
    yield settings


@pytest.fixture
def pg_store(celery_settings: Settings) -> Iterator[Store]:
    opened = open_store(celery_settings)
    yield opened
    opened.dispose()


def _status(store: Store, sid: str) -> sa.Row:
    with store.read() as conn:
        return conn.execute(
            sa.select(submissions.c.status, submissions.c.attempts, submissions.c.message).where(
                submissions.c.id == sid
            )
        ).one()


def _submit(client: TestClient, token: str, data: bytes) -> str:
    response = client.post(
        "/api/submissions",
        headers={"Authorization": f"Bearer {token}"},
        data={"exercise": EXERCISE},
        files={"file": ("nb.ipynb", data)},
    )
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_the_celery_configuration_is_at_least_once_and_fair(celery_settings: Settings) -> None:
    """Is the app set for late acks, redelivery when a worker dies, one prefetched message, and time limits?"""
    conf = tasks.make_celery(celery_settings).conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit > conf.task_soft_time_limit > celery_settings.grading_timeout_s


def test_submissions_through_the_api_are_graded_by_celery_workers(
    celery_settings: Settings, pg_store: Store, processes: Processes
) -> None:
    """Does a submission posted to the API reach a Celery worker through the broker and come back graded?"""
    processes.grader(celery_settings, "worker", "--celery", "--concurrency", "2")
    _, token = accounts.add_user(pg_store, "alice")
    with TestClient(create_app(celery_settings, store=pg_store)) as client:
        ids = [_submit(client, token, service_fakes.notebook(tag=f"c{i}")) for i in range(4)]
        for sid in ids:
            wait_until(
                lambda sid=sid: _status(pg_store, sid).status == "graded", timeout_s=60, what=f"Celery to grade {sid}"
            )
        view = client.get(f"/api/submissions/{ids[0]}", headers={"Authorization": f"Bearer {token}"}).json()
    assert (view["score"], view["max_score"]) == (2.0, 3.0)
    assert all(service_fakes.log_lines(processes.log, "done", f"c{i}") == 1 for i in range(4))


def test_a_task_delivered_many_times_grades_once(
    celery_settings: Settings, pg_store: Store, processes: Processes
) -> None:
    """Is the task idempotent per submission id: three messages for one submission, one grading?"""
    from grader.service import queue

    alice, _ = accounts.add_user(pg_store, "alice")
    sid = queue.enqueue(
        pg_store,
        user_id=alice.id,
        exercise=EXERCISE,
        filename="nb.ipynb",
        notebook=service_fakes.notebook(tag="dup", sleep=0.3),
    ).id
    app = tasks.make_celery(celery_settings)
    for _ in range(3):
        tasks.send(app, sid)
    processes.grader(celery_settings, "worker", "--celery", "--concurrency", "2")
    wait_until(lambda: _status(pg_store, sid).status == "graded", timeout_s=60, what="the duplicated job")
    wait_until(lambda: service_fakes.log_lines(processes.log, "start", "dup") >= 1, what="the log")
    assert service_fakes.log_lines(processes.log, "done", "dup") == 1
    assert _status(pg_store, sid).attempts == 1


def test_a_celery_worker_process_killed_mid_grade_is_redelivered_and_graded_once(
    celery_settings: Settings, pg_store: Store, processes: Processes
) -> None:
    """With task_reject_on_worker_lost, is the job of a SIGKILLed pool process graded by the next one, once?"""
    processes.grader(celery_settings, "worker", "--celery", "--concurrency", "1")
    _, token = accounts.add_user(pg_store, "alice")
    with TestClient(create_app(celery_settings, store=pg_store)) as client:
        sid = _submit(client, token, service_fakes.notebook(tag="victim", sleep=2.0))
        wait_until(
            lambda: service_fakes.log_lines(processes.log, "start", "victim") == 1,
            timeout_s=60,
            what="the first attempt to start",
        )
        child = next(
            int(line.split()[2]) for line in processes.log.read_text().splitlines() if line.startswith("start victim")
        )
        os.kill(child, signal.SIGKILL)
        wait_until(
            lambda: _status(pg_store, sid).status == "graded",
            timeout_s=60,
            what="the redelivered task to grade the job",
        )
    assert service_fakes.log_lines(processes.log, "start", "victim") == 2
    assert service_fakes.log_lines(processes.log, "done", "victim") == 1


def test_a_poison_submission_is_dead_lettered_under_celery_too(
    celery_settings: Settings, pg_store: Store, processes: Processes
) -> None:
    """Does a notebook that kills every Celery pool process end as a clear error after max_attempts?"""
    processes.grader(celery_settings, "worker", "--celery", "--concurrency", "1")
    _, token = accounts.add_user(pg_store, "alice")
    with TestClient(create_app(celery_settings, store=pg_store)) as client:
        sid = _submit(client, token, service_fakes.notebook(tag="poison", action="kill"))
        wait_until(lambda: _status(pg_store, sid).status == "error", timeout_s=90, what="the dead letter")
        healthy = _submit(client, token, service_fakes.notebook(tag="after"))
        wait_until(
            lambda: _status(pg_store, healthy).status == "graded",
            timeout_s=60,
            what="a normal submission after the poison",
        )
    row = _status(pg_store, sid)
    assert row.attempts == celery_settings.max_attempts
    assert "died each time" in row.message


def _starts(log: Path) -> list[str]:
    """The fake grader's tags in the order their gradings started."""
    if not log.is_file():
        return []
    return [line.split()[1] for line in log.read_text().splitlines() if line.startswith("start ")]


def test_celery_workers_let_learners_take_turns(
    celery_settings: Settings, pg_store: Store, processes: Processes
) -> None:
    """Alice sends ten slow notebooks, then Bob one: with one Celery worker, is Bob's graded second, not eleventh?"""
    _, alice_token = accounts.add_user(pg_store, "alice")
    _, bob_token = accounts.add_user(pg_store, "bob")
    with TestClient(create_app(celery_settings, store=pg_store)) as client:
        for i in range(10):
            _submit(client, alice_token, service_fakes.notebook(tag=f"alice{i}", sleep=0.2))
        bobs = _submit(client, bob_token, service_fakes.notebook(tag="bob"))
        processes.grader(celery_settings, "worker", "--celery", "--concurrency", "1")
        wait_until(lambda: _status(pg_store, bobs).status == "graded", timeout_s=60, what="Bob's submission")
        order = _starts(processes.log)
        assert order.index("bob") <= 1, f"Bob's notebook was graded after {order.index('bob')} of Alice's: {order}"
        # Alice's notebooks held back at the cap are sent again as each of hers ends: all are graded, once
        wait_until(
            lambda: all(service_fakes.log_lines(processes.log, "done", f"alice{i}") for i in range(10)),
            timeout_s=60,
            what="every one of Alice's notebooks to be graded",
        )
    assert sorted(_starts(processes.log)) == sorted(["bob", *(f"alice{i}" for i in range(10))])


def test_a_killed_celery_pool_process_releases_its_lease_at_once(
    celery_settings: Settings, pg_store: Store, processes: Processes
) -> None:
    """SIGKILL the pool process grading a job: does the Celery worker release its lease at once, so that the
    redelivered task claims the job again before the lease would have expired?"""
    settings = dataclasses.replace(celery_settings, lease_s=60.0)
    processes.grader(settings, "worker", "--celery", "--concurrency", "1")
    _, token = accounts.add_user(pg_store, "alice")
    with TestClient(create_app(settings, store=pg_store)) as client:
        sid = _submit(client, token, service_fakes.notebook(tag="victim", sleep=30.0))
        wait_until(
            lambda: service_fakes.log_lines(processes.log, "start", "victim") == 1,
            timeout_s=60,
            what="the first attempt",
        )
    first = service_fakes.claim_events(pg_store, sid)
    child = next(
        int(line.split()[2]) for line in processes.log.read_text().splitlines() if line.startswith("start victim")
    )
    killed_at = time.time()
    os.kill(child, signal.SIGKILL)
    wait_until(
        lambda: service_fakes.claim_events(pg_store, sid).attempts == 2,
        timeout_s=first.lease_expires_at - time.time() - 5,
        what="the redelivered task to claim the job again (before the dead process's lease expires)",
    )
    again = service_fakes.claim_events(pg_store, sid)
    assert again.status == "running" and again.lease_owner != first.lease_owner
    assert killed_at < again.claimed_at < first.lease_expires_at
    assert "graded again" in again.message
    print(f"from SIGKILL to the job claimed again: {again.claimed_at - killed_at:.2f} s (lease {settings.lease_s:g} s)")
