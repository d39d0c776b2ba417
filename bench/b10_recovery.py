"""B10: recovery from a dead worker: seconds from SIGKILL of the process grading a job to the job claimed again.

Two arms, each on real processes:

- ``embedded``: ``grader serve`` as an instructor starts it (a subprocess on 127.0.0.1, a fresh
  SQLite store, 2 grading worker processes under its supervisor);
- ``celery``: ``grader worker --celery --concurrency 1`` over RabbitMQ with a PostgreSQL store (a
  fresh schema), when both answer at ``GRADER_TEST_AMQP_URL`` / ``GRADER_TEST_POSTGRES_URL`` (the
  tests' loopback defaults); skipped, with the reason, when they do not.

Each round queues one submission from a new learner, waits until a worker claims it, reads the
lease owner's pid from the store, SIGKILLs that process and waits for the job's second claim.
The grade function holds the first attempt of every notebook (120 s, "an endless loop") and
grades the second at once, so each round ends with the job graded. Reported per arm: the seconds
from the kill to the second claim (``claimed_at``), and the seconds the dead worker's lease still
had to run (what the job waited for before leases were given back at once: ``GRADER_LEASE_S``,
60 s by default, less the time since its last renewal). Nothing here is a test: no time fails.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from bench.b1_grading import machine
from grader.grading.results import Result
from grader.service import accounts, queue
from grader.service.server import settings_env
from grader.service.store import Store, open_store, submissions
from grader.settings import Settings, load_settings

RESULTS = Path(__file__).resolve().parent / "results" / "b10.json"
EXERCISE = "00-learning-ml-engineering"
#: a folder where the grade function notes the notebooks it has seen (their first attempt is held)
ENV_SEEN = "B10_SEEN_DIR"
HOLD_S = 120.0
POSTGRES_URL = os.environ.get("GRADER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("GRADER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def held_grade(settings: Settings, source: bytes, *, exercise: str | None, name: str) -> Result:
    """Hold a notebook's first attempt (as an endless loop would, until the worker is killed); grade the next."""
    seen = Path(os.environ[ENV_SEEN]) / queue.sha256_of(source)
    first = not seen.exists()
    seen.touch()
    if first:
        time.sleep(HOLD_S)
    return Result(
        exercise=exercise, submission=name, status="graded", score=1.0, max_score=1.0, duration_s=0.0, device="none"
    )


def _row(store: Store, sid: str) -> sa.Row:
    with store.read() as conn:
        return conn.execute(
            sa.select(
                submissions.c.status,
                submissions.c.attempts,
                submissions.c.lease_owner,
                submissions.c.lease_expires_at,
                submissions.c.claimed_at,
            ).where(submissions.c.id == sid)
        ).one()


def _until(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:g} s")
        time.sleep(0.02)


def _round(store: Store, send: Callable[[str], None], index: int) -> dict[str, float]:
    """One kill: the seconds to the second claim, and what the dead worker's lease had left."""
    learner, _ = accounts.add_user(store, f"learner{index:03d}-{uuid.uuid4().hex[:6]}")
    notebook = json.dumps({"cells": [], "metadata": {"b10": uuid.uuid4().hex}, "nbformat": 4, "nbformat_minor": 5})
    sid = queue.enqueue(
        store, user_id=learner.id, exercise=EXERCISE, filename="nb.ipynb", notebook=notebook.encode()
    ).id
    send(sid)
    _until(lambda: _row(store, sid).status == "running", 120, "the first claim")
    first = _row(store, sid)
    pid = int(first.lease_owner.split(":")[1])
    time.sleep(0.5)  # well into grading: the worker has its lease and its heartbeat
    first = _row(store, sid)
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    _until(lambda: _row(store, sid).attempts >= 2, 120, "the second claim")
    again = _row(store, sid)
    _until(lambda: _row(store, sid).status == "graded", 120, "the second attempt's verdict")
    return {"reclaim_s": again.claimed_at - killed_at, "lease_left_s": first.lease_expires_at - killed_at}


@contextmanager
def _embedded(tmp: Path, seen: Path) -> Iterator[tuple[Store, Callable[[str], None], str]]:
    settings = load_settings(
        data_dir=tmp / "serve",
        port=0,
        service_workers=2,
        grade_function="bench.b10_recovery:held_grade",
        sandbox=False,  # the grade function runs no learner code
    )
    env = {**os.environ, **settings_env(settings), ENV_SEEN: str(seen), "PYTHONPATH": _pythonpath()}
    log_path = tmp / "service.log"
    with log_path.open("w") as log:
        service = subprocess.Popen(
            [sys.executable, "-m", "grader", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    store: Store | None = None
    try:
        _until(lambda: "Ctrl-C" in log_path.read_text() or service.poll() is not None, 60, "the service to start")
        if service.poll() is not None:
            raise RuntimeError(f"the service did not start:\n{log_path.read_text()}")
        store = open_store(settings)
        yield store, lambda _sid: None, "grader serve: 2 worker processes under its supervisor, SQLite"
    finally:
        service.terminate()
        service.wait(60)
        if store is not None:
            store.dispose()


@contextmanager
def _celery(tmp: Path, seen: Path) -> Iterator[tuple[Store, Callable[[str], None], str]]:
    from grader.service import tasks

    schema = f"b10_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    settings = load_settings(
        data_dir=tmp / "celery",
        database_url=url.render_as_string(hide_password=False),
        broker_url=AMQP_URL,
        grade_function="bench.b10_recovery:held_grade",
        sandbox=False,
    )
    store = open_store(settings)
    app = tasks.make_celery(settings)
    with app.connection_for_write() as connection:
        app.control.purge(connection=connection)
    env = {**os.environ, **settings_env(settings), ENV_SEEN: str(seen), "PYTHONPATH": _pythonpath()}
    with (tmp / "celery.log").open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "grader", "worker", "--celery", "--concurrency", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield store, lambda sid: tasks.send(app, sid), "grader worker --celery --concurrency 1, RabbitMQ, PostgreSQL"
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        store.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _pythonpath() -> str:
    return os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])


def _summary(rounds: list[dict[str, float]]) -> dict[str, object]:
    reclaim = [r["reclaim_s"] for r in rounds]
    left = [r["lease_left_s"] for r in rounds]
    return {
        "rounds": [{k: round(v, 3) for k, v in r.items()} for r in rounds],
        "reclaim_median_s": round(statistics.median(reclaim), 3),
        "reclaim_min_s": round(min(reclaim), 3),
        "reclaim_max_s": round(max(reclaim), 3),
        "lease_left_median_s": round(statistics.median(left), 3),
    }


def run(repeats: int, arms: list[str], console: Console) -> dict[str, object]:
    found: dict[str, object] = {}
    makers = {"embedded": _embedded, "celery": _celery}
    for arm in arms:
        with tempfile.TemporaryDirectory(prefix="b10-") as folder:
            tmp = Path(folder)
            seen = tmp / "seen"
            seen.mkdir()
            try:
                with makers[arm](tmp, seen) as (store, send, what):
                    rounds = []
                    for index in range(repeats + 1):  # round 0 warms up (imports, first claim)
                        measured = _round(store, send, index)
                        seconds = measured["reclaim_s"]
                        console.log(f"{arm:>9} round {index}: claimed again {seconds:.2f} s after the kill")
                        if index:
                            rounds.append(measured)
                    found[arm] = {"what": what, **_summary(rounds)}
            except (OSError, sa.exc.OperationalError, TimeoutError, RuntimeError) as exc:
                reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                found[arm] = {"skipped": reason}
                console.log(f"{arm}: skipped ({reason})")
    return {
        "benchmark": "B10",
        "what": "seconds from SIGKILL of the process grading a job to the job's second claim",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "lease_s": load_settings().lease_s,
        "arms": found,
    }


def render(result: dict[str, object], console: Console) -> None:
    table = Table(title=f"B10 · {result['what']}")
    for column in ("arm", "claimed again after the kill (median, min–max)", "the lease had left (median)"):
        table.add_column(column)
    for arm, data in result["arms"].items():  # type: ignore[attr-defined]
        if "skipped" in data:
            table.add_row(arm, data["skipped"], "")
            continue
        table.add_row(
            arm,
            f"{data['reclaim_median_s']} s ({data['reclaim_min_s']}–{data['reclaim_max_s']} s)",
            f"{data['lease_left_median_s']} s",
        )
    console.print(table)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench b10", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="kills per arm after a warm-up kill (default 5)")
    parser.add_argument("--arms", default="embedded,celery", help="embedded, celery or both (default both)")
    args, _ = parser.parse_known_args(argv)
    console = Console(stderr=True)
    result = run(args.repeats, [a.strip() for a in args.arms.split(",") if a.strip()], console)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    render(result, Console())
    return 0
