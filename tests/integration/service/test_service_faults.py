"""Faults with real processes: workers killed mid-grade, poison submissions, a store that drops
its connections, retries after infrastructure failures, and overload."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import service_fakes
import sqlalchemy as sa
from conftest import EXERCISE, Processes, make_settings, terminate_backends, wait_until
from fastapi.testclient import TestClient

from grader.service import accounts, queue
from grader.service.app import create_app
from grader.service.server import WorkerProcesses
from grader.service.store import Store, open_store, submissions
from grader.service.workers import EmbeddedWorkers

pytestmark = pytest.mark.slow


def _status(store: Store, sid: str) -> sa.Row:
    with store.read() as conn:
        return conn.execute(
            sa.select(submissions.c.status, submissions.c.message, submissions.c.attempts).where(
                submissions.c.id == sid
            )
        ).one()


def _enqueue(store: Store, user: accounts.User, data: bytes) -> str:
    return queue.enqueue(store, user_id=user.id, exercise=EXERCISE, filename="nb.ipynb", notebook=data).id


def test_a_worker_killed_mid_grade_is_replaced_and_the_job_graded_exactly_once(
    store_url: str, store: Store, tmp_path: Path, processes: Processes
) -> None:
    """After SIGKILL of the worker grading a job, does another worker grade it once its lease expires — once?"""
    settings = make_settings(tmp_path, database_url=store_url, lease_s=1.5)
    alice, _ = accounts.add_user(store, "alice")
    sid = _enqueue(store, alice, service_fakes.notebook(tag="victim", sleep=2.0))
    first = processes.grader(settings, "worker")
    wait_until(lambda: service_fakes.log_lines(processes.log, "start", "victim") == 1, what="the first attempt")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    assert _status(store, sid).status == "running"  # the dead worker's lease still stands
    processes.grader(settings, "worker")
    wait_until(lambda: _status(store, sid).status == "graded", what="the job to be graded by the second worker")
    assert service_fakes.log_lines(processes.log, "start", "victim") == 2
    assert service_fakes.log_lines(processes.log, "done", "victim") == 1
    assert _status(store, sid).attempts == 2


def test_the_supervisor_releases_a_killed_workers_lease_at_once(
    store_url: str, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL the worker process grading a job: is the job claimed again before its lease would have expired,
    and is the learner told it is being graded again after a worker failure?"""
    settings = make_settings(tmp_path, database_url=store_url, lease_s=60.0)
    log = tmp_path / "fakegrade.log"
    monkeypatch.setenv(service_fakes.ENV_LOG, str(log))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(service_fakes.HERE), os.environ.get("PYTHONPATH", "")]))
    alice, _ = accounts.add_user(store, "alice")
    sid = _enqueue(store, alice, service_fakes.notebook(tag="victim", sleep=30.0))
    pool = WorkerProcesses(settings, 2, restart_delay_s=0.2).start()
    try:
        wait_until(lambda: service_fakes.log_lines(log, "start", "victim") == 1, what="the first attempt")
        first = service_fakes.claim_events(store, sid)
        pid = next(int(line.split()[2]) for line in log.read_text().splitlines() if line.startswith("start victim"))
        assert first.lease_owner.split(":")[1] == str(pid)
        killed_at = time.time()
        os.kill(pid, signal.SIGKILL)
        wait_until(
            lambda: service_fakes.claim_events(store, sid).attempts == 2,
            timeout_s=first.lease_expires_at - time.time() - 5,
            what="the job to be claimed again (before the dead worker's lease expires)",
        )
        again = service_fakes.claim_events(store, sid)
        assert again.status == "running" and again.lease_owner != first.lease_owner
        assert killed_at < again.claimed_at < first.lease_expires_at
        assert "graded again" in again.message and "worker" in again.message
        wait_until(lambda: service_fakes.log_lines(log, "start", "victim") == 2, what="the second attempt to start")
        print(f"from SIGKILL to the job claimed again: {again.claimed_at - killed_at:.2f} s (lease 60 s)")
    finally:
        pool.stop()


def test_a_submission_that_kills_its_worker_every_time_is_dead_lettered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Does a poison notebook end as a clear error after max_attempts, while the service keeps grading others?"""
    settings = make_settings(tmp_path, lease_s=1.0, max_attempts=3)
    store = open_store(settings)
    log = tmp_path / "fakegrade.log"
    monkeypatch.setenv(service_fakes.ENV_LOG, str(log))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(service_fakes.HERE), os.environ.get("PYTHONPATH", "")]))
    pool = WorkerProcesses(settings, 1, restart_delay_s=0.2)
    try:
        alice, _ = accounts.add_user(store, "alice")
        poison = _enqueue(store, alice, service_fakes.notebook(tag="poison", action="kill"))
        pool.start()
        wait_until(
            lambda: _status(store, poison).status == "error",
            timeout_s=60,
            what="the poison submission to be dead-lettered",
        )
        row = _status(store, poison)
        assert row.attempts == 3
        assert "the grading process died each time" in row.message
        assert service_fakes.log_lines(log, "start", "poison") == 3
        # the supervisor gives the dead worker's job back (dead-lettering it) before it counts the restart
        wait_until(lambda: pool.restarts >= 3, timeout_s=30, what="the supervisor to restart the worker a third time")
        healthy = _enqueue(store, alice, service_fakes.notebook(tag="healthy"))
        wait_until(lambda: _status(store, healthy).status == "graded", what="a normal submission after the poison")
    finally:
        pool.stop()
        store.dispose()


@pytest.mark.parametrize(
    ("fake", "final", "attempts", "message"),
    [
        ({"action": "raise", "fail_times": 1}, "graded", 2, ""),
        ({"action": "raise"}, "error", 3, "failed 3 times"),
        ({"action": "error"}, "error", 3, "failed 3 times"),
        ({"action": "invalid"}, "invalid", 1, "another exercise"),
    ],
)
def test_infrastructure_failures_are_retried_and_learner_failures_are_final(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: dict, final: str, attempts: int, message: str
) -> None:
    """Is a grader-side failure retried (the learner told so meanwhile) and a learner-side one final at once?"""
    monkeypatch.setenv(service_fakes.ENV_LOG, str(tmp_path / "fakegrade.log"))
    settings = make_settings(tmp_path, max_attempts=3)
    alice, _ = accounts.add_user(store, "alice")
    sid = _enqueue(store, alice, service_fakes.notebook(**fake))
    seen_messages: set[str] = set()

    def final_status() -> bool:
        row = _status(store, sid)
        seen_messages.add(row.message)
        return row.status in ("graded", "invalid", "error")

    with EmbeddedWorkers(settings, store, service_fakes.grade, count=1):
        wait_until(final_status, timeout_s=30, what=f"a final status for {fake}")
    row = _status(store, sid)
    assert (row.status, row.attempts) == (final, attempts)
    assert message in row.message
    if attempts > 1:
        assert any("grading error, we will retry" in m for m in seen_messages)


def test_a_store_that_drops_every_connection_mid_run_loses_nothing(
    pg_url: str, tmp_path: Path, processes: Processes
) -> None:
    """With PostgreSQL terminating every backend of the service again and again mid-run, is every job graded?"""
    settings = make_settings(tmp_path, database_url=pg_url, lease_s=2.0)
    store = open_store(pg_url)
    application_name = sa.make_url(pg_url).query["application_name"]
    admin = sa.create_engine(sa.make_url(pg_url).difference_update_query(["options", "application_name"]))
    try:
        alice, _ = accounts.add_user(store, "alice")
        ids = [_enqueue(store, alice, service_fakes.notebook(tag=f"job{i}", sleep=0.4)) for i in range(16)]
        processes.grader(settings, "worker")
        wait_until(lambda: service_fakes.log_lines(processes.log, "start", "job0") == 1, what="grading to start")
        terminated, graded_then = 0, []
        for flap in range(60):  # a flapping store: every connection killed every 50 ms for 3 s
            if flap == 0:  # a second worker starts (opens the store, upgrades, registers) while it flaps
                processes.grader(settings, "worker")
            graded_then.append(queue.queue_depth(store)["graded"])
            with admin.begin() as conn:
                terminated += terminate_backends(conn, application_name)
            time.sleep(0.05)
        assert terminated > 0
        assert graded_then[0] < len(ids), "the connections were dropped only after the run"

        def all_graded() -> bool:
            with store.read() as conn:
                statuses = conn.execute(sa.select(submissions.c.status)).scalars().all()
            return sorted(statuses) == ["graded"] * len(ids)

        wait_until(all_graded, timeout_s=90, what="every job to be graded after the connection drops")
        for i in range(len(ids)):
            assert service_fakes.log_lines(processes.log, "done", f"job{i}") >= 1
        dead = [i for i, p in enumerate(processes.started) if p.poll() is not None]
        outputs = [processes.log.with_name(f"process-{i}.log").read_text(errors="replace")[-3000:] for i in dead]
        assert not dead, "a worker died with the store's connections:\n" + "\n---\n".join(outputs)
    finally:
        admin.dispose()
        store.dispose()


def test_an_overload_is_refused_politely_and_every_accepted_job_is_graded(tmp_path: Path) -> None:
    """In a burst past the rate limit and the queue cap, are refusals 429/503 and all accepted jobs graded?"""
    settings = make_settings(tmp_path, submissions_per_minute=6, max_queued=20)
    store = open_store(settings)
    tokens = [accounts.add_user(store, f"learner{i}")[1] for i in range(6)]
    accepted: set[str] = set()
    codes: list[int] = []
    try:
        with TestClient(create_app(settings, workers=2, store=store)) as client:
            for _ in range(8):
                for token in tokens:
                    response = client.post(
                        "/api/submissions",
                        headers={"Authorization": f"Bearer {token}"},
                        data={"exercise": EXERCISE},
                        files={"file": ("nb.ipynb", service_fakes.notebook(sleep=0.01))},
                    )
                    codes.append(response.status_code)
                    if response.status_code == 202:
                        accepted.add(response.json()["id"])
                    else:
                        assert response.headers["retry-after"].isdigit()

            def all_graded() -> bool:
                counts = queue.queue_depth(store)
                return counts["graded"] == len(accepted) and counts["queued"] == counts["running"] == 0

            wait_until(all_graded, timeout_s=60, what="every accepted submission to be graded")
        assert set(codes) <= {202, 429, 503}
        assert 429 in codes and codes.count(202) == len(accepted) <= 6 * 6
    finally:
        store.dispose()
