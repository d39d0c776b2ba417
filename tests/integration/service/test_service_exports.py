"""Getting grades out and feedback back: the gradebook's Canvas and long CSV exports, a submission's Gradescope
results and HTML feedback report — through the API, the pages' links and `grader gradebook export`, on the real
store (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat
import pytest
import sqlalchemy as sa
from conftest import EXERCISE, REPO, make_settings
from fastapi.testclient import TestClient

from grader.grading.results import CheckResult, Result
from grader.service import accounts, catalog, gradebook, queue
from grader.service.app import create_app
from grader.service.catalog import Exercise
from grader.service.server import settings_env
from grader.service.store import Store, submissions

TITLE = "Learning ML engineering"


def _notebook(tag: str) -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(f"My answer ({tag}) <script>window.__pwned = 1</script>"))
    check = nbformat.v4.new_code_cell("# Check 1.1: the answer is right\nassert answer == 42")
    check.metadata.update(tags=["check"], grader={"id": "1.1", "points": 2})
    nb.cells.append(check)
    return nbformat.writes(nb).encode()


def _result(exercise: str, passes: tuple[bool, bool]) -> Result:
    checks = tuple(
        CheckResult(
            id=f"1.{i + 1}",
            name=name,
            hidden=i == 1,
            points=float(points if ok else 0),
            max_points=float(points),
            status="pass" if ok else "fail",
            message="" if ok else "output differs from the reference",
        )
        for i, (name, points, ok) in enumerate([("the answer is right", 2, passes[0]), ("edge", 1, passes[1])])
    )
    return Result(
        exercise=exercise,
        submission="nb.ipynb",
        status="graded",
        score=sum(c.points for c in checks),
        max_score=3.0,
        duration_s=1.0,
        device="cpu",
        checks=checks,
        isolation="bubblewrap sandbox",
    )


def _graded(store: Store, user: accounts.User, exercise: str, passes: tuple[bool, bool]) -> str:
    """A submission, queued, claimed and graded through the queue as a worker does; its id."""
    sid = queue.enqueue(
        store, user_id=user.id, exercise=exercise, filename="nb.ipynb", notebook=_notebook(uuid.uuid4().hex)
    ).id
    job = queue.claim(store, "test-worker", lease_s=60, max_attempts=3)
    assert job is not None and job.id == sid
    assert queue.complete(store, sid, "test-worker", _result(exercise, passes))
    return sid


def _submitted_at(store: Store, sid: str) -> str:
    created = store.run(
        lambda c: c.execute(sa.select(submissions.c.created_at).where(submissions.c.id == sid)).scalar()
    )
    assert created is not None
    return datetime.fromtimestamp(created, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class Course:
    """Learners alice (two graded submissions), bob (one), carl (none); instructor ines (one, never exported)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.users = {
            name: accounts.add_user(store, name, instructor=name == "ines") for name in ("alice", "bob", "carl", "ines")
        }
        self.alice_first = _graded(store, self.user("alice"), EXERCISE, (True, False))
        self.alice_best = _graded(store, self.user("alice"), EXERCISE, (True, True))
        self.bob = _graded(store, self.user("bob"), EXERCISE, (False, True))
        _graded(store, self.user("ines"), EXERCISE, (True, True))

    def user(self, name: str) -> accounts.User:
        return self.users[name][0]

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.users[name][1]}"}


@pytest.fixture
def course(store: Store) -> Course:
    return Course(store)


EXERCISES = [Exercise(EXERCISE, TITLE, 3.0), Exercise("99-capstone", "The capstone", 10.0)]


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_canvas_export_is_canvas_gradebook_import(course: Course) -> None:
    """Does it have Canvas's columns, a Points Possible row, one row per learner (none for instructors)?"""
    assert _rows(gradebook.export(course.store, EXERCISES, "canvas")) == [
        [
            "Student",
            "ID",
            "SIS User ID",
            "SIS Login ID",
            "Section",
            f"{TITLE} ({EXERCISE})",
            "The capstone (99-capstone)",
        ],
        ["Points Possible", "", "", "", "", "3", "10"],
        ["alice", "", "", "alice", "", "3", ""],
        ["bob", "", "", "bob", "", "1", ""],
        ["carl", "", "", "carl", "", "", ""],
    ]


def test_the_long_export_has_one_row_per_learner_and_exercise(course: Course) -> None:
    """Does each row name the counted (best) submission and when it arrived, and say which are missing?"""
    rows = list(csv.DictReader(io.StringIO(gradebook.export(course.store, EXERCISES, "long"))))
    assert [(r["learner"], r["exercise"], r["status"]) for r in rows] == [
        ("alice", EXERCISE, "graded"),
        ("alice", "99-capstone", "missing"),
        ("bob", EXERCISE, "graded"),
        ("bob", "99-capstone", "missing"),
        ("carl", EXERCISE, "missing"),
        ("carl", "99-capstone", "missing"),
    ]
    alice, bob = rows[0], rows[2]
    assert (alice["score"], alice["max_score"], alice["submission_id"]) == ("3", "3", course.alice_best)
    assert alice["submitted_at"] == _submitted_at(course.store, course.alice_best)
    assert (bob["score"], bob["submission_id"]) == ("1", course.bob)
    assert rows[1] | {"learner": ""} == dict.fromkeys(rows[1], "") | {"exercise": "99-capstone", "status": "missing"}


@pytest.fixture
def client(course: Course, store_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, database_url=store_url)
    with TestClient(create_app(settings, workers=0, store=course.store)) as test_client:
        yield test_client


def test_instructors_download_each_export_with_a_filename(course: Course, client: TestClient, tmp_path: Path) -> None:
    exercises = catalog.list_exercises(make_settings(tmp_path))
    for fmt, filename in [
        ("canvas", "gradebook-canvas.csv"),
        ("long", "gradebook-long.csv"),
        ("wide", "gradebook.csv"),
    ]:
        response = client.get(f"/api/gradebook.csv?format={fmt}", headers=course.auth("ines"))
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        assert response.headers["content-disposition"] == f'attachment; filename="{filename}"'
        assert response.text == gradebook.export(course.store, exercises, fmt)  # type: ignore[arg-type]
        assert (response.headers["X-Grader-Provisional"], response.headers["X-Grader-Answers-To-Grade"]) == ("0", "0")
    canvas = _rows(client.get("/api/gradebook.csv?format=canvas", headers=course.auth("ines")).text)
    assert canvas[1][0] == "Points Possible" and [r[0] for r in canvas[2:]] == ["alice", "bob", "carl"]


def test_exports_are_for_instructors_and_an_unknown_format_is_refused(course: Course, client: TestClient) -> None:
    assert client.get("/api/gradebook.csv?format=canvas", headers=course.auth("alice")).status_code == 403
    response = client.get("/api/gradebook.csv?format=moodle", headers=course.auth("ines"))
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "unknown-format",
        "message": "no gradebook format 'moodle'; the formats: wide, canvas, long",
    }


def test_a_learner_downloads_their_feedback_report_and_gradescope_results(course: Course, client: TestClient) -> None:
    sid = course.alice_first
    response = client.get(f"/api/submissions/{sid}/report.html", headers=course.auth("alice"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.headers["content-disposition"] == f'attachment; filename="feedback-{EXERCISE}-{sid[:8]}.html"'
    page = response.text
    assert "My answer" in page and "<script" not in page  # their notebook, inert
    assert 'data-check="1.1"' in page and "Check 1.2 (hidden): edge" in page and 'data-check="1.2"' not in page
    graded = client.get(f"/api/submissions/{sid}/gradescope.json", headers=course.auth("alice")).json()
    assert graded["score"] == 2.0
    assert [(t["name"], t["score"], t["max_score"], t["visibility"], t["output"]) for t in graded["tests"]] == [
        ("Check 1.1: the answer is right", 2.0, 2.0, "visible", ""),
        ("Check 1.2 (hidden): edge", 0.0, 1.0, "after_published", "output differs from the reference"),
    ]
    # an instructor may read it; another learner gets the same 404 as for no submission at all
    assert client.get(f"/api/submissions/{sid}/report.html", headers=course.auth("ines")).status_code == 200
    for path in ("report.html", "gradescope.json"):
        assert client.get(f"/api/submissions/{sid}/{path}", headers=course.auth("bob")).status_code == 404


def test_a_submission_not_graded_yet_has_no_report(course: Course, client: TestClient) -> None:
    sid = queue.enqueue(
        course.store, user_id=course.user("carl").id, exercise=EXERCISE, filename="n.ipynb", notebook=b"{}"
    ).id
    for path in ("report.html", "gradescope.json"):
        response = client.get(f"/api/submissions/{sid}/{path}", headers=course.auth("carl"))
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "not-graded-yet"
    assert client.get(f"/api/submissions/{sid}", headers=course.auth("carl")).json()["status"] == "queued"


def test_the_pages_link_the_downloads(course: Course, client: TestClient) -> None:
    client.post(
        "/signin",
        data={"token": course.users["ines"][1], "next": "/gradebook"},
        headers={"Origin": "http://testserver"},
    )
    book = client.get("/gradebook").text
    assert 'href="/api/gradebook.csv?format=canvas"' in book and 'href="/api/gradebook.csv?format=long"' in book
    page = client.get(f"/submissions/{course.alice_first}").text
    assert f'href="/api/submissions/{course.alice_first}/report.html"' in page


def test_grader_gradebook_export_writes_each_format(course: Course, store_url: str, tmp_path: Path) -> None:
    """Does `grader gradebook export --format canvas --output FILE` write what the API serves, and say so?"""
    settings = make_settings(tmp_path, database_url=store_url)
    env: dict[str, Any] = {**os.environ, **settings_env(settings)}
    out = tmp_path / "canvas.csv"
    done = subprocess.run(
        [sys.executable, "-m", "grader", "gradebook", "export", "--format", "canvas", "--output", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote the canvas gradebook (4 rows under the header) to {out}\n"
    assert out.read_text() == gradebook.export(course.store, catalog.list_exercises(settings), "canvas")
    done = subprocess.run(
        [sys.executable, "-m", "grader", "gradebook", "export", "--format", "moodle"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "invalid choice: 'moodle'" in done.stderr
