"""End to end with the real grading engine: the lesson-00 solution gets full marks, its stub gets zero —
through the API with embedded workers, and through `grader serve` started as a learner's instructor would."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXERCISE, REPO, make_settings, wait_until
from fastapi.testclient import TestClient

from grader.service import accounts
from grader.service.app import create_app
from grader.service.server import settings_env
from grader.service.store import open_store
from mlcourse.submit import submit

pytestmark = pytest.mark.slow

SOLUTION = REPO / "solutions" / f"{EXERCISE}.ipynb"
STUB = REPO / "exercises" / f"{EXERCISE}.ipynb"
REAL_GRADE = "grader.grading.engine:grade_notebook"


def test_the_solution_gets_full_marks_and_the_stub_zero_through_the_api(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, grade_function=REAL_GRADE, lease_s=30.0, sandbox=True)
    store = open_store(settings)
    _, token = accounts.add_user(store, "alice")
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with TestClient(create_app(settings, workers=2, store=store)) as client:
            ids = {}
            for label, path in (("solution", SOLUTION), ("stub", STUB)):
                response = client.post(
                    "/api/submissions",
                    headers=headers,
                    data={"exercise": EXERCISE},
                    files={"file": (path.name, path.read_bytes())},
                )
                assert response.status_code == 202, response.text
                ids[label] = response.json()["id"]

            def final(sid: str) -> dict | None:
                view = client.get(f"/api/submissions/{sid}", headers=headers).json()
                return view if view["final"] else None

            solution = wait_until(lambda: final(ids["solution"]), timeout_s=240, every_s=0.5, what="the solution")
            stub = wait_until(lambda: final(ids["stub"]), timeout_s=240, every_s=0.5, what="the stub")
    finally:
        store.dispose()
    assert solution["status"] == "graded", solution["message"]
    assert solution["max_score"] > 0 and solution["score"] == solution["max_score"]
    assert all(check["status"] == "pass" for check in solution["checks"])
    assert stub["status"] == "graded", stub["message"]
    assert stub["score"] == 0 and stub["max_score"] == solution["max_score"]
    assert any(check["message"].startswith("not run") or check["status"] == "fail" for check in stub["checks"])


def test_grader_service_starts_with_an_instructor_token_and_grades(tmp_path: Path) -> None:
    """Does `grader serve` print its URL and a first instructor token, grade via submit(), and stop cleanly?"""
    settings = make_settings(tmp_path, grade_function=REAL_GRADE, lease_s=30.0, sandbox=True)
    env = {**os.environ, **settings_env(settings)}
    log = (tmp_path / "service.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "grader", "serve", "--port", "0", "--workers", "1"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        text = wait_until(
            lambda: (
                (tmp_path / "service.log").read_text() if "Ctrl-C" in (tmp_path / "service.log").read_text() else None
            ),
            timeout_s=60,
            what="the service to start",
        )
        url = re.search(r"grader service at (http://127\.0\.0\.1:\d+/)", text).group(1)
        token = text.split("shown only now):")[1].split()[0]
        result = submit(EXERCISE, token=token, url=url, notebook=SOLUTION, timeout_s=240, show=False, progress=False)
        assert result["status"] == "graded" and result["score"] == result["max_score"] > 0
        process.send_signal(signal.SIGTERM)  # what a process manager sends
        assert process.wait(30) == 0
        workers = subprocess.run(["pgrep", "-s", str(process.pid), "-f", "grader worker"], capture_output=True)
        assert workers.stdout == b"", "a worker process outlived the service"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
    again = subprocess.run(
        [sys.executable, "-m", "grader", "users", "list"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert "instructor" in again.stdout  # the account made on the first start persists
