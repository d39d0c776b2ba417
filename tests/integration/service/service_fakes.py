"""A real but trivial grade function for the service's tests, driven by the notebook's metadata.

``metadata.fake`` says what to do::

    {"checks": [{"id": "1.1", "name": "…", "points": 2, "pass": true}, …],
     "sleep": 0.5,              # seconds to "grade" for
     "action": "raise" | "error" | "invalid" | "kill",
     "fail_times": 2,           # with "raise": raise only on the first 2 attempts
     "tag": "job-7",            # names the job in the log
     "device": "NVIDIA H100"}   # the device this fake *claims* graded it (a learner's spoof: the
                                # worker must replace it with its own)

When ``FAKEGRADE_LOG`` is set, every start and every finished grading appends a line
``start|done <tag> <pid>`` to that file (so a test can count how often a job was graded).
Importable by worker subprocesses: tests put this folder on their ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import nbformat
import sqlalchemy as sa

from grader.errors import InvalidNotebook
from grader.format.notebooks import parse_notebook
from grader.grading import results
from grader.grading.results import CheckResult, Result
from grader.service.store import Store, submissions
from grader.settings import Settings

ENV_LOG = "FAKEGRADE_LOG"
HERE = Path(__file__).resolve().parent


def _log(event: str, tag: str) -> None:
    path = os.environ.get(ENV_LOG)
    if path:
        with open(path, "a", encoding="utf-8") as stream:
            stream.write(f"{event} {tag} {os.getpid()}\n")


def log_lines(path: Path, event: str, tag: str) -> int:
    """How many times ``event`` was logged for ``tag``."""
    if not path.is_file():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line.split()[:2] == [event, tag])


def grade(settings: Settings, source: bytes, *, exercise: str | None, name: str) -> Result:
    started = time.perf_counter()
    try:
        nb = parse_notebook(source, name=name)
    except InvalidNotebook as exc:
        return results.invalid(name, str(exc), exercise=exercise)
    spec: dict[str, Any] = dict(nb.metadata.get("fake", {}))
    tag = str(spec.get("tag", "untagged"))
    _log("start", tag)
    time.sleep(float(spec.get("sleep", 0.0)))
    action = spec.get("action")
    if action == "raise":
        limit = spec.get("fail_times")
        log = os.environ.get(ENV_LOG)
        attempts = log_lines(Path(log), "start", tag) if log else 1
        if limit is None or attempts <= int(limit):
            raise RuntimeError("the fake grader broke (an infrastructure failure)")
    if action == "error":
        return Result(
            exercise=exercise,
            submission=name,
            status="error",
            score=0.0,
            max_score=0.0,
            duration_s=time.perf_counter() - started,
            device="cpu",
            message=results.grading_error("the fake runner stopped"),
        )
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "invalid":
        return results.invalid(name, "fake: this notebook is for another exercise", exercise=exercise)
    checks = tuple(
        CheckResult(
            id=str(c["id"]),
            name=str(c["name"]),
            hidden=bool(c.get("hidden", False)),
            points=float(c["points"]) if c["pass"] else 0.0,
            max_points=float(c["points"]),
            status="pass" if c["pass"] else "fail",
            message="" if c["pass"] else "output differs",
        )
        for c in spec.get("checks", [])
    )
    _log("done", tag)
    return Result(
        exercise=exercise,
        submission=name,
        status="graded",
        score=sum(c.points for c in checks),
        max_score=sum(c.max_points for c in checks),
        duration_s=time.perf_counter() - started,
        device=str(spec.get("device", "cpu")),
        checks=checks,
    )


def notebook(*, checks: list[dict[str, Any]] | None = None, tag: str | None = None, **fake: Any) -> bytes:
    """A valid notebook whose ``metadata.fake`` drives :func:`grade` (unique unless ``tag`` repeats)."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("answer = 42"))
    nb.metadata["fake"] = {
        "checks": checks
        if checks is not None
        else [
            {"id": "1.1", "name": "the answer is right", "points": 2, "pass": True},
            {"id": "1.2", "name": "the edge case is handled", "points": 1, "pass": False, "hidden": True},
        ],
        "tag": tag or uuid.uuid4().hex,
        **fake,
    }
    return nbformat.writes(nb).encode("utf-8")


def claim_events(store: Store, sid: str) -> sa.Row:
    """A submission's status, attempts and lease, when it was last claimed, and its message."""
    with store.read() as conn:
        return conn.execute(
            sa.select(
                submissions.c.status,
                submissions.c.attempts,
                submissions.c.lease_owner,
                submissions.c.lease_expires_at,
                submissions.c.claimed_at,
                submissions.c.message,
            ).where(submissions.c.id == sid)
        ).one()
