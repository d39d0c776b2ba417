"""Deadlines, late work and extensions (issue 19): the late policies' arithmetic, the counted submission both
ways, extensions for one learner, refusal at upload, what feedback, the gradebook and exports say — through
the library, the API and `grader deadlines` / `grader extensions`, on the real store (SQLite and PostgreSQL).

Times are injected, never waited for: a submission's received time is set in the store, and the service's
clock (``AppState.clock``) is replaced where the upload itself must be early or late."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import service_fakes
import sqlalchemy as sa
from conftest import EXERCISE, make_settings
from fastapi.testclient import TestClient

from grader import cli
from grader.errors import UsageError
from grader.grading.results import CheckResult, Result
from grader.service import accounts, deadlines, gradebook, queue
from grader.service.app import create_app
from grader.service.catalog import Exercise
from grader.service.deadlines import DAY_S, Deadline, parse_time, timing
from grader.service.server import settings_env
from grader.service.store import Store, submissions

DUE = "2026-12-20T23:59:00Z"
DUE_AT = parse_time(DUE)
BEFORE_DUE = DUE_AT - 30 * DAY_S  # "now" when the deadline is set: it is in the future
KNOWN = [EXERCISE]
EXERCISES = [Exercise(EXERCISE, "Learning ML engineering", 3.0)]
PENALTY = Deadline(EXERCISE, DUE_AT, "penalty", per_day=10, floor=50)


# --- the arithmetic -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("late_by_s", "days", "factor"),
    [
        (-1.0, 0, 1.0),  # before the due time
        (0.0, 0, 1.0),  # exactly on it: on time
        (1.0, 1, 0.9),  # one second late starts day 1
        (DAY_S, 1, 0.9),  # a whole day late is still day 1
        (DAY_S + 1, 2, 0.8),  # the next second starts day 2
        (4 * DAY_S + 1, 5, 0.5),  # five started days: −50%, at the floor
        (9 * DAY_S, 9, 0.5),  # −90% would go below the floor of 50%
    ],
)
def test_the_penalty_counts_started_days_and_stops_at_the_floor(late_by_s: float, days: int, factor: float) -> None:
    t = timing(PENALTY, DUE_AT + late_by_s)
    assert (t.late, t.days_late, t.factor) == (late_by_s > 0, days, pytest.approx(factor))
    assert t.counted(3.0) == pytest.approx(3.0 * factor)


def test_none_flags_late_work_and_refuse_counts_it_nothing() -> None:
    late = DUE_AT + 3600
    flagged = timing(Deadline(EXERCISE, DUE_AT, "none"), late)
    assert (flagged.late, flagged.counted(3.0)) == (True, 3.0)
    assert flagged.note(3.0) == "late by 1 h (accepted without penalty): 3 → 3"
    assert timing(Deadline(EXERCISE, DUE_AT, "refuse"), late).counted(3.0) == 0.0
    assert timing(None, late).late is False  # no deadline, never late
    assert timing(PENALTY, DUE_AT + 90, extended_to=DUE_AT + 3600).late is False  # the extension's due time counts


# --- a course on the real store -------------------------------------------------------------------


def _result(score: float) -> Result:
    check = CheckResult(
        id="1.1", name="the answer", hidden=False, points=score, max_points=3.0, status="pass" if score else "fail"
    )
    return Result(
        exercise=EXERCISE,
        submission="nb.ipynb",
        status="graded",
        score=score,
        max_score=3.0,
        duration_s=1.0,
        device="cpu",
        checks=(check,),
        isolation="bubblewrap sandbox",
    )


class Course:
    """Learners alice and bob, instructor ines; graded submissions received at chosen times."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.users = {n: accounts.add_user(store, n, instructor=n == "ines") for n in ("alice", "bob", "ines")}

    def graded(self, name: str, score: float, received_at: float) -> str:
        """A submission graded through the queue as a worker does, received (by the server) at ``received_at``."""
        user = self.users[name][0]
        sid = queue.enqueue(
            self.store, user_id=user.id, exercise=EXERCISE, filename="nb.ipynb", notebook=service_fakes.notebook()
        ).id
        job = queue.claim(self.store, "test-worker", lease_s=60, max_attempts=3)
        assert job is not None and job.id == sid
        assert queue.complete(self.store, sid, "test-worker", _result(score))
        self.store.run(
            lambda c: c.execute(sa.update(submissions).where(submissions.c.id == sid).values(created_at=received_at))
        )
        return sid

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.users[name][1]}"}


@pytest.fixture
def course(store: Store) -> Course:
    return Course(store)


def _set(store: Store, **kw: Any) -> Deadline:
    return deadlines.set_deadline(store, KNOWN, EXERCISE, due=DUE, now=BEFORE_DUE, **kw)


def _long(store: Store, counting: str) -> dict[str, dict[str, str]]:
    text = gradebook.export(store, EXERCISES, "long", counting)
    return {row["learner"]: row for row in csv.DictReader(io.StringIO(text))}


def test_the_counted_submission_is_the_best_after_penalty_or_the_latest_on_time(course: Course) -> None:
    """alice: 2 points on time, then 3 points two started days late (−20%: 2.4). Best counts 2.4; latest-on-time 2."""
    _set(course.store, policy="penalty", per_day=10, floor=50)
    on_time = course.graded("alice", 2.0, DUE_AT - 3600)
    late = course.graded("alice", 3.0, DUE_AT + DAY_S + 1)
    rows = _long(course.store, "best")
    alice = rows["alice"]
    assert (alice["submission_id"], alice["score"], alice["raw_score"], alice["status"]) == (late, "2.4", "3", "late")
    assert (alice["due"], alice["late_by_s"]) == (DUE, str(int(DAY_S + 1)))
    assert alice["late_note"] == "late by 1 d 1 min (penalty 20% for 2 started days): 3 → 2.4"
    assert rows["bob"]["status"] == "missing"

    alice = _long(course.store, "latest-on-time")["alice"]
    assert (alice["submission_id"], alice["score"], alice["status"], alice["late_note"]) == (on_time, "2", "graded", "")

    book = gradebook.gradebook(course.store, KNOWN, "best")
    assert book.scores["alice"][EXERCISE] == pytest.approx(2.4)
    assert book.late == {"alice": {EXERCISE: "late by 1 d 1 min (penalty 20% for 2 started days): 3 → 2.4"}}
    canvas = list(csv.reader(io.StringIO(gradebook.export(course.store, EXERCISES, "canvas", "latest-on-time"))))
    assert canvas[2][:1] + canvas[2][5:] == ["alice", "2"]


def test_latest_on_time_falls_back_to_the_latest_when_none_was_on_time(course: Course) -> None:
    _set(course.store, policy="none")
    course.graded("bob", 3.0, DUE_AT + 60)
    last = course.graded("bob", 1.0, DUE_AT + 120)
    bob = _long(course.store, "latest-on-time")["bob"]
    assert (bob["submission_id"], bob["score"], bob["status"]) == (last, "1", "late")  # flagged, not penalised


def test_an_extension_moves_one_learners_deadline_only(course: Course) -> None:
    _set(course.store, policy="penalty", per_day=50, floor=0)
    course.graded("alice", 3.0, DUE_AT + 3600)
    course.graded("bob", 3.0, DUE_AT + 3600)
    granted = deadlines.grant_extension(
        course.store, KNOWN, "alice", EXERCISE, until="2026-12-21T01:00Z", now=BEFORE_DUE
    )
    assert granted == {"learner": "alice", "exercise": EXERCISE, "due": "2026-12-21T01:00:00Z", "was": DUE}
    rows = _long(course.store, "best")
    assert (rows["alice"]["score"], rows["alice"]["status"], rows["alice"]["due"]) == ("3", "graded", granted["due"])
    assert (rows["bob"]["score"], rows["bob"]["status"], rows["bob"]["due"]) == ("1.5", "late", DUE)
    assert deadlines.listing(course.store)[0]["extensions"] == [{"learner": "alice", "due": "2026-12-21T01:00:00Z"}]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"due": "2026-11-01T00:00Z"}, r"the due time 2026-11-01T00:00:00Z is in the past .*--allow-past"),
        ({"due": "next friday"}, r"--due 'next friday' is not an ISO 8601 time"),
        ({"due": "2026-12-20T23:59"}, r"has no time zone; end it with Z"),
        ({"policy": "lenient"}, r"no late policy 'lenient'; the policies: none, penalty, refuse"),
        ({"policy": "penalty", "per_day": 150}, r"--per-day 150 is outside 0–100"),
        ({"policy": "penalty", "floor": -1}, r"--floor -1 is outside 0–100"),
        ({"policy": "none", "per_day": 10}, r"--per-day and --floor are for the penalty policy"),
        ({"exercise": "99-nope"}, r"unknown exercise '99-nope'; the exercises: " + EXERCISE),
    ],
)
def test_a_bad_deadline_is_refused_and_changes_nothing(course: Course, kw: dict[str, Any], message: str) -> None:
    _set(course.store, policy="refuse")
    args: dict[str, Any] = {"due": DUE, "policy": "none", "now": parse_time("2026-12-01T00:00Z"), **kw}
    exercise = args.pop("exercise", EXERCISE)
    with pytest.raises(UsageError, match=message):
        deadlines.set_deadline(course.store, KNOWN, exercise, **args)
    assert deadlines.listing(course.store)[0]["policy"] == "refuse"


def test_a_past_deadline_is_set_when_allowed(course: Course) -> None:
    found = deadlines.set_deadline(course.store, KNOWN, EXERCISE, due=DUE, allow_past=True, now=DUE_AT + 1)
    assert found.due_at == DUE_AT


@pytest.mark.parametrize(
    ("learner", "exercise", "until", "message"),
    [
        ("zoe", EXERCISE, "2026-12-22T00:00Z", r"no learner 'zoe'"),
        ("ines", EXERCISE, "2026-12-22T00:00Z", r"no learner 'ines'"),  # an instructor has no deadline
        ("alice", "99-nope", "2026-12-22T00:00Z", r"unknown exercise '99-nope'"),
        ("alice", EXERCISE, "2026-11-02T00:00Z", r"the extension 2026-11-02T00:00:00Z is in the past"),
        ("alice", EXERCISE, "soon", r"--until 'soon' is not an ISO 8601 time"),
    ],
)
def test_a_bad_extension_is_refused_and_changes_nothing(
    course: Course, learner: str, exercise: str, until: str, message: str
) -> None:
    _set(course.store)
    with pytest.raises(UsageError, match=message):
        deadlines.grant_extension(course.store, KNOWN, learner, exercise, until=until, now=BEFORE_DUE)
    assert deadlines.listing(course.store)[0]["extensions"] == []


def test_an_extension_needs_a_deadline(course: Course) -> None:
    with pytest.raises(UsageError, match=rf"{EXERCISE} has no deadline to extend; set one first"):
        deadlines.grant_extension(course.store, KNOWN, "alice", EXERCISE, until=DUE, now=BEFORE_DUE)


# --- the API and the pages --------------------------------------------------------------------------


@pytest.fixture
def client(course: Course, store_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, database_url=store_url)
    with TestClient(create_app(settings, workers=0, store=course.store)) as test_client:
        test_client.app.state.grader.clock = lambda: BEFORE_DUE  # type: ignore[attr-defined]
        yield test_client


def _at(client: TestClient, now: float) -> None:
    client.app.state.grader.clock = lambda: now  # type: ignore[attr-defined]


def _upload(client: TestClient, course: Course, name: str) -> Any:
    files = {"file": ("nb.ipynb", service_fakes.notebook(tag=uuid.uuid4().hex))}
    return client.post("/api/submissions", headers=course.auth(name), data={"exercise": EXERCISE}, files=files)


def test_instructors_set_deadlines_and_extensions_through_the_api(course: Course, client: TestClient) -> None:
    body = {"due": "2026-12-20T23:59Z", "policy": "penalty", "per_day": 10, "floor": 50}
    response = client.put(f"/api/deadlines/{EXERCISE}", headers=course.auth("ines"), json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "exercise": EXERCISE,
        "due": DUE,
        "policy": "penalty",
        "per_day": 10.0,
        "floor": 50.0,
        "rule": "−10% a started day late, never below 50%",
    }
    response = client.put(
        f"/api/deadlines/{EXERCISE}/extensions/bob", headers=course.auth("ines"), json={"until": "2026-12-22T12:00Z"}
    )
    assert response.status_code == 200 and response.json()["due"] == "2026-12-22T12:00:00Z"
    listed = client.get("/api/deadlines", headers=course.auth("ines")).json()["deadlines"]
    assert [(d["exercise"], d["extensions"]) for d in listed] == [
        (EXERCISE, [{"learner": "bob", "due": "2026-12-22T12:00:00Z"}])
    ]
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {"/api/deadlines", "/api/deadlines/{exercise}", "/api/deadlines/{exercise}/extensions/{learner}"} <= set(
        paths
    )


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (f"/api/deadlines/{EXERCISE}", {"due": "2026-01-01T00:00Z"}, "is in the past"),
        (f"/api/deadlines/{EXERCISE}", {"due": DUE, "policy": "penalty", "floor": 101}, "--floor 101 is outside 0–100"),
        ("/api/deadlines/99-nope", {"due": DUE}, "unknown exercise '99-nope'"),
        (f"/api/deadlines/{EXERCISE}/extensions/zoe", {"until": DUE}, "no learner 'zoe'"),
    ],
)
def test_bad_deadlines_through_the_api_are_422_and_change_nothing(
    course: Course, client: TestClient, path: str, body: dict[str, Any], message: str
) -> None:
    _set(course.store, policy="none")
    before = deadlines.listing(course.store)
    response = client.put(path, headers=course.auth("ines"), json=body)
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid-deadline", response.text
    assert message in response.json()["error"]["message"]
    assert deadlines.listing(course.store) == before


def test_learners_may_not_set_deadlines(course: Course, client: TestClient) -> None:
    response = client.put(f"/api/deadlines/{EXERCISE}", headers=course.auth("alice"), json={"due": DUE})
    assert response.status_code == 403 and deadlines.listing(course.store) == []
    assert client.get("/api/deadlines", headers=course.auth("alice")).status_code == 403


def test_refuse_refuses_a_late_upload_naming_the_deadline_unless_extended(course: Course, client: TestClient) -> None:
    _set(course.store, policy="refuse")
    _at(client, DUE_AT)  # exactly on the due time: accepted
    assert _upload(client, course, "alice").status_code == 202
    _at(client, DUE_AT + 1)
    response = _upload(client, course, "alice")
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "deadline-passed",
        "message": f"the deadline of {EXERCISE} was {DUE} and it is now 2026-12-20T23:59:01Z: late work is "
        "refused for this exercise; ask your instructor for an extension",
    }
    deadlines.grant_extension(course.store, KNOWN, "bob", EXERCISE, until="2026-12-21T23:59Z", now=BEFORE_DUE)
    assert _upload(client, course, "bob").status_code == 202  # bob's extension
    assert _upload(client, course, "alice").status_code == 403  # alice still refused


def test_feedback_says_late_by_how_much_and_what_the_policy_did(course: Course, client: TestClient) -> None:
    _set(course.store, policy="penalty", per_day=10, floor=50)
    late = course.graded("alice", 3.0, DUE_AT + 2 * 3600)
    on_time = course.graded("bob", 3.0, DUE_AT - 60)
    view = client.get(f"/api/submissions/{late}", headers=course.auth("alice")).json()
    assert view["deadline"] == {
        "due": DUE,
        "extended": False,
        "late": True,
        "late_by_s": 7200.0,
        "days_late": 1,
        "policy": "penalty",
        "raw_score": 3.0,
        "counted_score": 2.7,
        "note": "late by 2 h (penalty 10% for 1 started day): 3 → 2.7",
    }
    assert client.get(f"/api/submissions/{on_time}", headers=course.auth("bob")).json()["deadline"]["late"] is False
    client.cookies.set("grader_token", course.users["alice"][1])
    page = client.get(f"/submissions/{late}").text
    assert 'id="deadline" data-late="true"' in page
    assert f"Late: due {DUE}; late by 2 h (penalty 10% for 1 started day): 3 → 2.7 points count." in page
    report = client.get(f"/api/submissions/{late}/report.html", headers=course.auth("alice")).text
    assert "late by 2 h (penalty 10% for 1 started day): 3 → 2.7 points count." in report
    client.cookies.set("grader_token", course.users["ines"][1])
    book = client.get("/gradebook").text
    assert 'class="late" title="late by 2 h (penalty 10% for 1 started day): 3 → 2.7"' in book and "2.7/3" in book


# --- the CLI ----------------------------------------------------------------------------------------


def test_the_cli_sets_lists_and_extends(
    course: Course, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in settings_env(make_settings(tmp_path, database_url=store_url)).items():
        monkeypatch.setenv(name, value)
    argv = ["deadlines", "set", EXERCISE, "--due", "2099-12-20T23:59Z", "--policy", "penalty", "--per-day", "10"]
    assert cli.main([*argv, "--floor", "50"]) == 0
    assert capsys.readouterr().out == (
        f"{EXERCISE} is due 2099-12-20T23:59:00Z; penalty: −10% a started day late, never below 50%\n"
    )
    assert cli.main(["extensions", "grant", "bob", EXERCISE, "--until", "2099-12-22T12:00Z"]) == 0
    assert capsys.readouterr().out == (
        f"bob may submit {EXERCISE} until 2099-12-22T12:00:00Z (the others: 2099-12-20T23:59:00Z)\n"
    )
    assert cli.main(["deadlines", "list"]) == 0
    assert capsys.readouterr().out == (
        f"{EXERCISE}  due 2099-12-20T23:59:00Z  penalty: −10% a started day late, never below 50%\n"
        "    extension: bob until 2099-12-22T12:00:00Z\n"
    )
    assert cli.main(["deadlines", "set", EXERCISE, "--due", "2020-01-01T00:00Z"]) == 2
    assert "error: the due time 2020-01-01T00:00:00Z is in the past" in capsys.readouterr().err
    assert cli.main(["extensions", "grant", "zoe", EXERCISE, "--until", "2099-12-22T12:00Z"]) == 2
    assert "error: no learner 'zoe'" in capsys.readouterr().err
    assert deadlines.listing(course.store)[0]["due"] == "2099-12-20T23:59:00Z"
