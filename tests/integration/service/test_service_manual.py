"""Manual grading in the service, on the real store (SQLite and PostgreSQL): the answers waiting for an
instructor, a grade through the API, the CLI and the pages, the total (automatic + manual, provisional until
every answer is graded) in the gradebook, its exports, the learner's feedback — and bad input refused,
changing nothing.

The submissions are graded once, by the real engine in the sandbox (real kernels) on a small exercise with one
check and two manual answers (``tests/fixtures/manual/manual_exercise.py``), and recorded per store through the queue as
a worker records them."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import REPO
from fastapi.testclient import TestClient

from grader.grading.engine import grade_notebook
from grader.grading.results import Result
from grader.service import accounts, deadlines, gradebook, manual, queue
from grader.service.app import create_app
from grader.service.catalog import list_exercises
from grader.service.server import settings_env
from grader.service.store import Store, manual_grades, open_store
from grader.settings import load_settings

sys.path.insert(0, str(REPO / "tests" / "fixtures" / "manual"))
import manual_exercise as build

pytestmark = pytest.mark.slow

EX = build.EXERCISE


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The exercise's course root, and three notebooks graded for real: right, wrong, the answer cell deleted."""
    root = build.write_course(tmp_path_factory.mktemp("course"))
    settings = load_settings(root, data_dir=root / "grading-service", sandbox=True)
    gone = json.loads(build.submission(right=True))
    gone["cells"] = [c for c in gone["cells"] if c.get("id") != "answer-90-2"]
    notebooks = {
        "right": build.submission(right=True),
        "wrong": build.submission(right=False, explanation="# Why\n\nBecause.\n\n<b>bold</b>"),
        "gone": json.dumps(gone).encode(),
    }
    results = {k: grade_notebook(settings, nb, exercise=EX, name=f"{k}.ipynb") for k, nb in notebooks.items()}
    assert {k: (r.status, r.score, r.max_score) for k, r in results.items()} == {
        "right": ("graded", 2.0, 2.0),
        "wrong": ("graded", 0.0, 2.0),
        "gone": ("graded", 2.0, 2.0),
    }
    return {"root": root, "notebooks": notebooks, "results": results}


@pytest.fixture
def service(course: dict[str, Any], store_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The service on this store: alice (right) and bob (wrong) submitted, each graded; ines the instructor."""
    settings = load_settings(course["root"], data_dir=tmp_path / "service", database_url=store_url, sandbox=False)
    store = open_store(settings)
    people = {name: accounts.add_user(store, name, instructor=name == "ines") for name in ("alice", "bob", "ines")}
    ids = {name: _record(store, people[name][0], course, kind) for name, kind in (("alice", "right"), ("bob", "wrong"))}
    try:
        with TestClient(create_app(settings, store=store)) as client:
            yield {"settings": settings, "store": store, "people": people, "ids": ids, "client": client}
    finally:
        store.dispose()


def _record(store: Store, user: accounts.User, course: dict[str, Any], kind: str) -> str:
    """A submission queued, claimed and completed with its real result, as a worker does; its id."""
    notebook = course["notebooks"][kind] + b" " * (uuid.uuid4().int % 7)  # not a duplicate of another's
    sid = queue.enqueue(store, user_id=user.id, exercise=EX, filename=f"{kind}.ipynb", notebook=notebook).id
    job = queue.claim(store, "test-worker", lease_s=60, max_attempts=3)
    assert job is not None and job.id == sid
    result: Result = course["results"][kind]
    assert queue.complete(store, sid, "test-worker", result)
    time.sleep(0.01)  # distinct received times: alice's is the oldest
    return sid


def _headers(service: dict[str, Any], name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {service['people'][name][1]}"}


def _page(service: dict[str, Any], name: str, path: str) -> str:
    """A page as ``name`` reads it (signed in with the cookie the sign-in form sets)."""
    client = service["client"]
    client.cookies.set("grader_token", service["people"][name][1])
    try:
        return str(client.get(path).text)
    finally:
        client.cookies.clear()


def _grades(store: Store) -> list[tuple[Any, ...]]:
    rows = store.run(lambda conn: conn.execute(sa.select(manual_grades)).all(), write=False)
    return sorted(tuple(r) for r in rows)


def _long(service: dict[str, Any]) -> dict[str, dict[str, str]]:
    text = service["client"].get("/api/gradebook.csv?format=long", headers=_headers(service, "ines")).text
    return {row["learner"]: row for row in csv.DictReader(io.StringIO(text))}


def test_grading_the_waiting_answers_makes_the_total_and_clears_provisional(service: dict[str, Any]) -> None:
    """Does the queue list each counted submission's answers oldest first, and does each grade move the total —
    in the API, the gradebook, its exports and the learner's feedback — until nothing is provisional?"""
    client, ines, alice = service["client"], _headers(service, "ines"), _headers(service, "alice")
    sid = service["ids"]["alice"]
    waiting = client.get("/api/manual", headers=ines).json()
    assert [(w["learner"], w["answer"]["id"]) for w in waiting["waiting"]] == [
        ("alice", "90.2"),
        ("alice", "90.3"),
        ("bob", "90.2"),
        ("bob", "90.3"),
    ]
    assert waiting["graded"] == []
    mine = client.get("/api/submissions", headers=alice).json()["submissions"]
    assert [(m["score"], m["max_score"], m["provisional"]) for m in mine] == [(2.0, 7.0, True)]
    view = client.get(f"/api/submissions/{sid}", headers=alice).json()
    assert (view["score"], view["max_score"], view["provisional"]) == (2.0, 7.0, True)
    assert view["provisional_note"] == "provisional: 2 answers to grade"
    assert [line["graded"] for line in view["manual_lines"]] == [False, False]
    book = gradebook.gradebook(service["store"], [EX])
    assert book.scores["alice"][EX] == 2.0 and book.max_scores[EX] == 7.0
    assert book.provisional["alice"][EX] == "provisional: 2 answers to grade"
    assert (_long(service)["alice"]["score"], _long(service)["alice"]["provisional"]) == ("2", "2")
    for fmt in ("wide", "canvas", "long"):  # each export says beside it how much is provisional
        response = client.get(f"/api/gradebook.csv?format={fmt}", headers=ines)
        assert response.headers["X-Grader-Provisional"] == "2" and response.headers["X-Grader-Answers-To-Grade"] == "4"
    page = _page(service, "ines", "/gradebook")
    assert "(provisional: 2 answers to grade)" in page and 'href="/marking"' in page

    first = client.put(f"/api/manual/{sid}/90.2", headers=ines, json={"criteria": [0, 2], "comment": "Good *start*."})
    assert first.status_code == 200, first.text
    assert first.json()["grade"]["points"] == 2.0
    assert (first.json()["total"]["score"], first.json()["total"]["provisional"]) == (4.0, True)
    second = client.put(f"/api/manual/{sid}/90.3", headers=ines, json={"criteria": [0, 1], "comment": ""}).json()
    assert (second["total"]["score"], second["total"]["max_score"], second["total"]["provisional"]) == (6.0, 7.0, False)
    again = client.put(f"/api/manual/{sid}/90.2", headers=ines, json={"criteria": [0], "comment": "Name the number."})
    assert again.json()["total"]["score"] == 5.0  # a grade given again replaces the first

    view = client.get(f"/api/submissions/{sid}", headers=alice).json()
    assert (view["score"], view["max_score"], view["provisional"], view["automatic_score"]) == (5.0, 7.0, False, 2.0)
    mine = client.get("/api/submissions", headers=alice).json()["submissions"]
    assert [(m["score"], m["max_score"], m["provisional"]) for m in mine] == [(5.0, 7.0, False)]
    explain = view["manual_lines"][0]
    assert [r["awarded"] for r in explain["rubric"]] == [True, False, False]
    assert (explain["points"], explain["comment"]) == (1.0, "Name the number.")
    assert _long(service)["alice"]["provisional"] == "" and _long(service)["alice"]["score"] == "5"
    response = client.get("/api/gradebook.csv", headers=ines)
    wide = list(csv.DictReader(io.StringIO(response.text)))
    assert {r["learner"]: r[EX] for r in wide} == {"alice": "5", "bob": "0"}
    assert (response.headers["X-Grader-Provisional"], response.headers["X-Grader-Answers-To-Grade"]) == ("1", "2")
    canvas = list(csv.reader(io.StringIO(client.get("/api/gradebook.csv?format=canvas", headers=ines).text)))
    assert canvas[1][0] == "Points Possible" and canvas[1][-1] == "7"  # the check's 2 and the answers' 3 + 2
    listed = {e["id"]: e["max_points"] for e in client.get("/api/exercises").json()["exercises"]}
    assert listed[EX] == 7.0
    assert gradebook.gradebook(service["store"], [EX]).provisional == {"bob": {EX: "provisional: 2 answers to grade"}}
    page = _page(service, "alice", f"/submissions/{sid}")
    assert "Name the number." in page and "waiting for an instructor" not in page and 'id="provisional"' not in page
    report = client.get(f"/api/submissions/{sid}/report.html", headers=alice).text
    assert "Answer 90.2: Why the baseline comes first · 1/3 points" in report and "✓ Names the baseline (1)" in report
    gradescope = client.get(f"/api/submissions/{sid}/gradescope.json", headers=alice).json()
    assert gradescope["score"] == 5.0
    assert [(t["name"], t["score"], t["max_score"]) for t in gradescope["tests"][1:]] == [
        ("Answer 90.2: Why the baseline comes first", 1.0, 3.0),
        ("Answer 90.3: Read the learning curve", 2.0, 2.0),
    ]
    queue_now = client.get("/api/manual", headers=ines).json()
    assert [(w["learner"], w["answer"]["id"]) for w in queue_now["waiting"]] == [("bob", "90.2"), ("bob", "90.3")]
    assert [g["grade"]["points"] for g in queue_now["graded"]] == [2.0, 1.0]


def test_bad_grades_are_refused_with_clear_errors_and_change_nothing(service: dict[str, Any]) -> None:
    """Unknown answer or submission, criterion 7 of 3, a criterion twice, a learner calling: refused, nothing kept."""
    client, ines, sid = service["client"], _headers(service, "ines"), service["ids"]["bob"]
    cases = [
        (
            f"/api/manual/{sid}/9.9",
            {"criteria": [0]},
            422,
            "has no manual answer '9.9'; its manual answers: 90.2, 90.3",
        ),
        (f"/api/manual/{sid}/90.2", {"criteria": [6]}, 422, "has 3 rubric criteria (numbered 1 to 3); there is no "),
        (f"/api/manual/{sid}/90.2", {"criteria": [1, 1]}, 422, "criterion 2 is given twice"),
        (f"/api/manual/{sid}/90.2", {"criteria": [-1]}, 422, "there is no criterion 0"),
        ("/api/manual/no-such-id/90.2", {"criteria": [0]}, 404, "no graded submission 'no-such-id'"),
        (f"/api/manual/{sid}/90.2", {"criteria": "all"}, 422, "criteria"),
    ]
    for path, body, status, words in cases:
        answer = client.put(path, headers=ines, json=body)
        assert answer.status_code == status, (path, body, answer.text)
        assert words in answer.json()["error"]["message"], answer.text
    for learner_call in (
        client.get("/api/manual", headers=_headers(service, "alice")),
        client.get(f"/api/manual/{sid}", headers=_headers(service, "bob")),
        client.put(f"/api/manual/{sid}/90.2", headers=_headers(service, "bob"), json={"criteria": [0, 1, 2]}),
    ):
        assert learner_call.status_code == 403 and learner_call.json()["error"]["code"] == "instructors-only"
    assert "bob is a learner; manual grading is for instructors" in _page(service, "bob", "/marking")
    assert client.get("/marking", follow_redirects=False).headers["location"] == "/signin?next=/marking"
    assert _grades(service["store"]) == []
    with pytest.raises(Exception, match="only instructors grade"):
        manual.grade(service["store"], sid, "90.2", [0], "", service["people"]["bob"][0])
    assert _grades(service["store"]) == []
    assert client.get(f"/api/submissions/{sid}", headers=_headers(service, "bob")).json()["provisional"] is True


def test_the_marking_page_saves_a_form_and_the_late_policy_applies_to_the_total(
    service: dict[str, Any], course: dict[str, Any]
) -> None:
    """Does the page show the answer (a deleted cell said plainly), save a same-origin form (and refuse another
    origin's), and does a penalty deadline count the total less?"""
    client, store = service["client"], service["store"]
    client.cookies.set("grader_token", service["people"]["ines"][1])
    gone = _record(store, service["people"]["ines"][0], course, "gone")  # an instructor's own: never counted
    page = client.get(f"/marking/{gone}/90.2")
    assert page.status_code == 200 and manual.MISSING in page.text
    assert "default-src 'self'; script-src 'self'" in page.headers["content-security-policy"]
    sid = service["ids"]["bob"]
    page = client.get(f"/marking/{sid}/90.2")
    assert "<h1>Why" in page.text and "<b>bold</b>" in page.text and 'id="next"' in page.text
    refused = client.post(
        f"/marking/{sid}/90.2", data={"criteria": ["0"]}, headers={"Origin": "https://elsewhere.example"}
    )
    assert refused.status_code == 403 and _grades(store) == []
    origin = {"Origin": str(client.base_url)}
    bad = client.post(f"/marking/{sid}/90.2", data={"criteria": ["5"]}, headers=origin)
    assert bad.status_code == 422 and "there is no criterion 6" in bad.text and _grades(store) == []
    deadlines.set_deadline(
        store,
        [e.id for e in list_exercises(service["settings"])],
        EX,
        due="2020-01-01T00:00Z",
        policy="penalty",
        per_day=100,
        floor=50,
        allow_past=True,
    )
    saved = client.post(
        f"/marking/{sid}/90.2", data={"criteria": ["0", "1"], "comment": "ok"}, headers=origin, follow_redirects=False
    )
    assert saved.status_code == 303 and saved.headers["location"].startswith(f"/marking/{sid}/90.3?saved=")
    shown = client.get(saved.headers["location"]).text
    assert "Saved Answer 90.2: Why the baseline comes first of bob: 2/3; the submission&#39;s total is now 2/7" in shown
    book = gradebook.gradebook(store, [EX])
    assert book.scores["bob"][EX] == 1.0  # 2 points, half kept by the floor of the late policy
    assert "2 → 1" in book.late["bob"][EX]


def test_the_cli_lists_shows_and_grades(service: dict[str, Any]) -> None:
    """Do `grader manual list`, `show` and `grade` print the ids, the rubric and the new total — and refuse a bad
    criterion with a message and exit code 2, changing nothing?"""
    env = {**os.environ, **settings_env(service["settings"])}

    def grader(*args: str, command: str = "manual") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "grader", command, *args], cwd=REPO, env=env, capture_output=True, text=True
        )

    sid = service["ids"]["alice"]
    listed = grader("list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("4 answers to grade (oldest first):")
    assert f"  {sid}  90.2   alice" in listed.stdout
    shown = grader("show", sid)
    assert "[ ] 3. Gives a number (1)" in shown.stdout and "## My reasoning" in shown.stdout
    bad = grader("grade", sid, "90.2", "--criteria", "1,7")
    assert bad.returncode == 2 and "there is no criterion 7" in bad.stderr and _grades(service["store"]) == []
    done = grader("grade", sid, "90.2", "--criteria", "1,3", "--comment", "Clear.")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"graded alice · {EX} · Answer 90.2: Why the baseline comes first: 2/3 (criteria 1, 3); "
        "total 4/7 (provisional: 1 answer to grade)"
    )
    assert "[x] 1. Names the baseline (1)" in grader("show", sid).stdout
    exported = grader("export", "--format", "canvas", command="gradebook")
    assert exported.returncode == 0 and exported.stdout.startswith("Student,")  # the CSV itself stays plain
    assert exported.stderr.strip() == (
        "warning: 2 scores are provisional: 3 answers still to grade by hand count 0 for now "
        "(`grader manual list` lists them; the page is /marking)"
    )
