"""Regrades (issue 19): a check is fixed after submissions were graded; every learner's counted submission is
graded again with the current check; the change report says who went down, who went up and by how much; the new
scores replace the old only when applied, and the old results are kept — through the library and the workers, the
API, `grader regrade` and the page in headless Chromium, on the real store (SQLite and PostgreSQL).

The course here is one exercise whose check lives in a file (``check.json`` in the data dir), read by the grade
function :func:`course_grade` at every grading, as the real engine reads the solution's current bundle:
"fixing the check" is rewriting that file. Its first version wrongly accepts 41 and wrongly refuses 43.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import sqlalchemy as sa
from conftest import AMQP_URL, EXERCISE, REPO, LiveServer, Processes, make_settings, wait_until
from fastapi.testclient import TestClient

from grader import cli
from grader.format.notebooks import parse_notebook
from grader.grading.devices import GradingDevice
from grader.grading.results import CheckResult, Result
from grader.service import (
    accounts,
    catalog,
    gradebook,
    leases,
    queue,
    registry,
    regrade,
    regrade_jobs,
    tasks,
    workers,
)
from grader.service.app import create_app
from grader.service.regrade import RegradeRefused
from grader.service.server import settings_env
from grader.service.store import Store, manual_grades, open_store, regrade_results, regrades, submissions
from grader.settings import Settings, load_settings

GRADE = "test_service_regrade:course_grade"
BUGGY = {"accepted": [41, 42], "version": 1}
FIXED = {"accepted": [42, 43], "version": 2}
#: each learner's answer: alice's wrong 41 passed the buggy check, bob's right 43 failed it
ANSWERS = {"alice": 41, "bob": 43, "carol": 42, "dave": 42}


def course_grade(settings: Settings, source: bytes, *, exercise: str | None, name: str) -> Result:
    """Check 1.1 (2 points): the answer is one the current check accepts; check 1.2 (1 point): it is a number.
    A notebook saying ``explode_after_fix`` breaks the grader (an infrastructure failure) once the check is fixed."""
    nb = parse_notebook(source, name=name)
    answer = nb.metadata.get("course", {}).get("answer")
    check = json.loads((settings.data_dir / "check.json").read_text())
    if nb.metadata.get("course", {}).get("explode_after_fix") and check["version"] > 1:
        raise RuntimeError("the grader broke on this notebook")
    checks = (
        CheckResult("1.1", "the answer is right", False, 2.0 if answer in check["accepted"] else 0.0, 2.0, "pass"),
        CheckResult("1.2", "the answer is a number", True, 1.0 if isinstance(answer, int) else 0.0, 1.0, "pass"),
    )
    checks = tuple(
        c if c.points else CheckResult(c.id, c.name, c.hidden, 0.0, c.max_points, "fail", "wrong") for c in checks
    )
    return Result(
        exercise=exercise,
        submission=name,
        status="graded",
        score=sum(c.points for c in checks),
        max_score=3.0,
        duration_s=0.01,
        device="cpu",
        checks=checks,
    )


def answer_notebook(answer: Any, **extra: Any) -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(f"answer = {answer!r}"))
    nb.metadata["course"] = {"answer": answer, **extra}
    return nbformat.writes(nb).encode()


def set_check(settings: Settings, check: dict[str, Any]) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "check.json").write_text(json.dumps(check))


def course_settings(tmp_path: Path, **overrides: Any) -> Settings:
    settings = make_settings(tmp_path, grade_function=GRADE, max_attempts=2, **overrides)
    set_check(settings, BUGGY)
    return settings


def grade_all(settings: Settings, store: Store) -> list[workers.Processed]:
    """Run the worker function until nothing is claimable (submissions first, then regrade jobs)."""
    done = []
    while (processed := workers.run_once(settings, store, course_grade, "test-worker")) is not None:
        done.append(processed)
    return done


def graded_course(settings: Settings, store: Store) -> dict[str, str]:
    """alice, bob, carol and dave submit (dave's notebook breaks the fixed grader), graded with the buggy check;
    alice also submitted a worse notebook first, which is not her counted one. Returns each counted submission."""
    people = {name: accounts.add_user(store, name)[0] for name in ANSWERS}
    accounts.add_user(store, "ines", instructor=True)
    queue.enqueue(
        store, user_id=people["alice"].id, exercise=EXERCISE, filename="a0.ipynb", notebook=answer_notebook("x")
    )
    counted = {}
    for name, answer in ANSWERS.items():
        extra = {"explode_after_fix": True} if name == "dave" else {}
        counted[name] = queue.enqueue(
            store,
            user_id=people[name].id,
            exercise=EXERCISE,
            filename=f"{name}.ipynb",
            notebook=answer_notebook(answer, **extra),
        ).id
    assert len(grade_all(settings, store)) == 5
    return counted


def scores(store: Store) -> dict[str, tuple[float, float, str]]:
    with store.read() as conn:
        rows = conn.execute(
            sa.select(submissions.c.id, submissions.c.score, submissions.c.max_score, submissions.c.result)
        )
        return {r.id: (r.score, r.max_score, r.result) for r in rows}


def instructor_id(store: Store) -> int:
    return next(u.id for u in accounts.list_users(store) if u.is_instructor)


@pytest.fixture
def course(store_url: str, tmp_path: Path) -> Iterator[tuple[Settings, Store, dict[str, str]]]:
    settings = course_settings(tmp_path, database_url=store_url)
    store = open_store(store_url)
    try:
        yield settings, store, graded_course(settings, store)
    finally:
        store.dispose()


def test_a_fixed_check_regrades_the_counted_submissions_reports_the_changes_and_applies_only_when_asked(
    course: tuple[Settings, Store, dict[str, str]],
) -> None:
    """Who went down comes first, then up; nothing is replaced before apply; apply replaces the automatic part
    only (manual grades stay), keeps the old results, and cannot happen twice."""
    settings, store, counted = course
    before = scores(store)
    assert [before[counted[n]][0] for n in ANSWERS] == [3.0, 1.0, 3.0, 3.0]
    with store.write() as conn:  # an instructor's manual grade on alice's answer: a regrade leaves it alone
        conn.execute(
            sa.insert(manual_grades).values(
                submission_id=counted["alice"], item="20.7", criteria="[0]", points=2.0, max_points=3.0,
                comment="clear", grader_id=instructor_id(store), graded_at=time.time(),
            )
        )  # fmt: skip

    set_check(settings, FIXED)
    started = regrade.start(store, settings, EXERCISE, instructor_id(store))
    assert (started.status, started.total, started.done) == ("grading", 4, 0)
    assert {c.submission_id for c in started.changes} == set(counted.values())  # alice's worse one is not counted

    with pytest.raises(RegradeRefused, match="still grading; wait for it") as second:
        regrade.start(store, settings, EXERCISE, instructor_id(store))
    assert second.value.status == 409
    with pytest.raises(RegradeRefused, match=r"still grading \(4 submissions to go\)"):
        regrade.apply(store, started.id)

    # a learner waiting for feedback goes before the regrade's jobs
    eve = accounts.add_user(store, "eve")[0]
    live = queue.enqueue(store, user_id=eve.id, exercise=EXERCISE, filename="eve.ipynb", notebook=answer_notebook(42))
    first = workers.run_once(settings, store, course_grade, "test-worker")
    assert first is not None and first.status == "graded"
    assert scores(store)[live.id][0] == 3.0 and regrade.get(store, started.id).done == 0

    deadline = time.monotonic() + 30
    while regrade.get(store, started.id).status == "grading":  # dave's job fails, is retried after 1 s, then fails
        assert time.monotonic() < deadline, "the regrade did not finish"
        if workers.run_once(settings, store, course_grade, "test-worker") is None:
            time.sleep(0.2)
    ready = regrade.get(store, started.id)
    assert ready.status == "ready" and ready.done == ready.total == 4
    assert [(c.learner, c.kind, c.difference) for c in ready.changes] == [
        ("alice", "down", -2.0),
        ("bob", "up", 2.0),
        ("carol", "unchanged", 0.0),
        ("dave", "failed", None),
    ]
    assert ready.summary() == "1 up (+2), 1 down (−2), 1 unchanged, 1 failed"
    assert "the grader broke on this notebook" in ready.changes[3].message
    assert scores(store) == {**before, live.id: scores(store)[live.id]}  # nothing replaced before apply

    applied = regrade.apply(store, started.id)
    assert applied.status == "applied" and applied.applied_at is not None
    after = scores(store)
    assert [after[counted[n]][0] for n in ANSWERS] == [1.0, 3.0, 3.0, 3.0]
    assert json.loads(after[counted["alice"]][2])["score"] == 1.0
    assert after[counted["dave"]] == before[counted["dave"]]  # a failed job keeps its old result
    with store.read() as conn:
        kept = dict(
            conn.execute(
                sa.select(regrade_results.c.submission_id, regrade_results.c.old_result).where(
                    regrade_results.c.regrade_id == started.id
                )
            ).all()
        )
        manual = conn.execute(sa.select(manual_grades.c.points, manual_grades.c.comment)).one()
    assert kept[counted["alice"]] == before[counted["alice"]][2]  # the old result is kept for good
    assert tuple(manual) == (2.0, "clear")
    _, best = gradebook.best_submissions(store)
    assert {b.learner: b.score for b in best if b.learner in ANSWERS} == {"alice": 1, "bob": 3, "carol": 3, "dave": 3}

    with pytest.raises(RegradeRefused, match="already applied"):
        regrade.apply(store, started.id)
    assert scores(store) == after


def test_bad_requests_are_refused_and_change_nothing(course: tuple[Settings, Store, dict[str, str]]) -> None:
    settings, store, _ = course
    other = next(e.id for e in catalog.list_exercises(settings) if e.id != EXERCISE)
    cases = [
        (lambda: regrade.start(store, settings, "99-nope", instructor_id(store)), 422, "no exercise '99-nope'"),
        (lambda: regrade.start(store, settings, other, instructor_id(store)), 422, "nobody has a graded submission"),
        (lambda: regrade.get(store, "no-such-id"), 404, "no regrade 'no-such-id'"),
        (lambda: regrade.apply(store, "no-such-id"), 404, "`grader regrade list`"),
    ]
    for call, status, words in cases:
        with pytest.raises(RegradeRefused, match=words) as refused:
            call()
        assert refused.value.status == status
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(regrades)).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(regrade_results)).scalar_one() == 0


def test_a_second_regrade_cancels_a_ready_one_that_was_never_applied(
    course: tuple[Settings, Store, dict[str, str]],
) -> None:
    settings, store, _ = course
    first = regrade.start(store, settings, EXERCISE, instructor_id(store))
    assert len(grade_all(settings, store)) == 4  # the check is unchanged: nobody moves, nothing fails
    assert regrade.get(store, first.id).status == "ready"
    assert regrade.get(store, first.id).summary() == "0 up, 0 down, 4 unchanged, 0 failed"
    second = regrade.start(store, settings, EXERCISE, instructor_id(store))
    assert regrade.get(store, first.id).status == "cancelled"
    with pytest.raises(RegradeRefused, match="cancelled by a later regrade"):
        regrade.apply(store, first.id)
    assert [r.id for r in regrade.listing(store)] == [second.id, first.id]


def test_a_regrade_job_whose_worker_died_is_claimed_again_and_fails_after_its_last_attempt(
    course: tuple[Settings, Store, dict[str, str]],
) -> None:
    """Leases as for submissions: an expired lease lets another worker take the job; the dead worker records
    nothing; a job whose last attempt's worker died fails (its submission keeps its score)."""
    settings, store, _ = course
    started = regrade.start(store, settings, EXERCISE, instructor_id(store))
    first = regrade_jobs.claim(store, "worker-a", lease_s=0.2, max_attempts=2)
    assert first is not None and first.attempts == 1
    time.sleep(0.3)
    second = regrade_jobs.claim(store, "worker-b", lease_s=0.2, max_attempts=2)
    assert second is not None and (second.submission_id, second.attempts) == (first.submission_id, 2)
    late = course_grade(settings, first.notebook, exercise=EXERCISE, name=first.filename)
    assert regrade_jobs.record(store, first, late) is False  # worker-a lost its lease: nothing recorded
    time.sleep(0.3)
    third = regrade_jobs.claim(store, "worker-c", lease_s=30, max_attempts=2)
    assert third is not None and third.submission_id != first.submission_id
    (failed,) = [c for c in regrade.get(store, started.id).changes if c.submission_id == first.submission_id]
    assert failed.kind == "failed" and "grading stopped 2 times without a result" in failed.message


def test_a_regrade_job_of_a_process_seen_dying_is_given_back_at_once(
    course: tuple[Settings, Store, dict[str, str]],
) -> None:
    """Whoever sees a worker process die (the supervisor, Celery's main process, a worker starting) gives its
    regrade jobs back at once, as a submission's: queued again, or failed after its last attempt."""
    settings, store, _ = course
    started = regrade.start(store, settings, EXERCISE, instructor_id(store))
    dead = subprocess.Popen(["true"])  # a real process of this machine, gone once reaped
    dead.wait()
    owner = leases.owner_name("worker").replace(f":{os.getpid()}:", f":{dead.pid}:")
    first = regrade_jobs.claim(store, owner, lease_s=600, max_attempts=2)
    assert first is not None and first.attempts == 1
    assert workers.release_dead_worker(settings, os.getpid(), store) == []  # a live process keeps its jobs
    assert workers.release_dead_worker(settings, dead.pid, store) == [first.submission_id]
    again = regrade_jobs.claim(store, owner, lease_s=600, max_attempts=2)  # at once: no lease to wait out
    assert again is not None and (again.submission_id, again.attempts) == (first.submission_id, 2)
    workers.release_dead_here(settings, store)  # a worker starting finds the dead process's last attempt
    (failed,) = [c for c in regrade.get(store, started.id).changes if c.submission_id == first.submission_id]
    assert failed.kind == "failed" and "grading stopped 2 times without a result" in failed.message


def test_a_cpu_worker_leaves_a_gpu_exercise_s_regrade_job_to_a_live_gpu_worker(
    course: tuple[Settings, Store, dict[str, str]],
) -> None:
    settings, store, _ = course
    with store.write() as conn:
        conn.execute(sa.update(submissions).values(device="gpu"))
    regrade.start(store, settings, EXERCISE, instructor_id(store))
    registry.register(store, "gpu-worker", GradingDevice("gpu", "Simulated GPU", "9.0", "550.54.15", "12.4"))
    assert regrade_jobs.claim(store, "cpu", lease_s=30, max_attempts=2, worker_ttl_s=30) is None
    taken = regrade_jobs.claim(store, "gpu", lease_s=30, max_attempts=2, gpu_worker=True, worker_ttl_s=30)
    assert taken is not None and taken.device == "gpu"
    registry.unregister(store, "gpu-worker")  # no GPU worker live: a CPU worker takes them (at smoke size)
    assert regrade_jobs.claim(store, "cpu", lease_s=30, max_attempts=2, worker_ttl_s=30) is not None


def test_grader_regrade_grades_here_prints_the_report_and_applies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no worker running, `grader regrade EXERCISE` grades the jobs itself; --apply replaces the scores."""
    settings = course_settings(tmp_path)
    store = open_store(settings)
    try:
        counted = graded_course(settings, store)
        for name, value in settings_env(settings).items():
            monkeypatch.setenv(name, value)
        set_check(settings, FIXED)
        assert cli.main(["regrade", EXERCISE]) == 0
        out = capsys.readouterr().out
        regrade_id = out.split()[1]
        lines = out.splitlines()
        assert lines[0] == (
            f"regrade {regrade_id} of {EXERCISE}: 4 counted submissions queued, graded with the current checks"
        )
        assert lines[1] == f"regrade {regrade_id} of {EXERCISE}: ready"
        assert lines[2] == "  1 up (+2), 1 down (−2), 1 unchanged, 1 failed"
        assert lines[3].split() == ["down", "alice", "3/3", "→", "1/3", "−2"]
        assert lines[4].split() == ["up", "bob", "1/3", "→", "3/3", "+2"]
        assert lines[5].split() == ["unchanged", "carol", "3/3", "→", "3/3", "unchanged"]
        assert lines[6].split()[:5] == ["failed", "dave", "3/3", "failed,", "keeps"]
        assert lines[7] == f"nothing replaced yet: `grader regrade apply {regrade_id}` makes these the learners' scores"
        assert scores(store)[counted["alice"]][0] == 3.0

        assert cli.main(["regrade", "list"]) == 0
        assert capsys.readouterr().out.split()[:4] == [regrade_id, EXERCISE, "ready", "4/4"]
        assert cli.main(["regrade", "apply", regrade_id]) == 0
        assert "applied: the new scores replaced the old" in capsys.readouterr().out
        assert scores(store)[counted["alice"]][0] == 1.0

        for argv, words in [
            (["regrade", "apply", regrade_id], "already applied"),
            (["regrade", "show", "nope"], "no regrade 'nope'"),
            (["regrade", "show"], "needs REGRADE_ID"),
            (["regrade", "99-nope"], "no exercise '99-nope'"),
            (["regrade", EXERCISE, "extra"], "did you mean `grader regrade start EXERCISE`"),
        ]:
            assert cli.main(argv) == 2, argv
            assert words in capsys.readouterr().err, argv
        assert scores(store)[counted["alice"]][0] == 1.0

        set_check(settings, BUGGY)  # `start` spelt out, with --apply: the scores go back
        assert cli.main(["regrade", "start", EXERCISE, "--apply"]) == 0
        out = capsys.readouterr().out
        assert "1 up (+2), 1 down (−2), 1 unchanged, 1 failed" not in out  # dave no longer breaks the grader
        assert "1 up (+2), 1 down (−2), 2 unchanged, 0 failed" in out and "applied:" in out
        assert scores(store)[counted["alice"]][0] == 3.0
    finally:
        store.dispose()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Settings, Store, dict[str, str]]]:
    settings = course_settings(tmp_path, build_dir=tmp_path / "no-book")
    store = open_store(settings)
    graded_course(settings, store)
    tokens = {name: accounts.reset_token(store, name) for name in ("alice", "ines")}
    set_check(settings, FIXED)
    yield settings, store, tokens
    store.dispose()


def test_the_api_starts_shows_and_applies_a_regrade_for_instructors_only(
    service: tuple[Settings, Store, dict[str, str]],
) -> None:
    settings, store, tokens = service
    ines = {"Authorization": f"Bearer {tokens['ines']}"}
    alice = {"Authorization": f"Bearer {tokens['alice']}"}
    with TestClient(create_app(settings, workers=1, store=store, grade=course_grade)) as client:
        assert client.post("/api/regrades", json={"exercise": EXERCISE}, headers=alice).status_code == 403
        assert client.get("/api/regrades", headers=alice).json()["error"]["code"] == "instructors-only"
        bad = client.post("/api/regrades", json={"exercise": "99-nope"}, headers=ines)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown-exercise"

        started = client.post("/api/regrades", json={"exercise": EXERCISE}, headers=ines)
        assert started.status_code == 202, started.text
        body = started.json()
        assert body["status"] == "grading" and body["progress"]["total"] == 4
        assert started.headers["location"] == f"/api/regrades/{body['id']}"
        again = client.post("/api/regrades", json={"exercise": EXERCISE}, headers=ines)
        assert again.status_code == 409 and again.json()["error"]["code"] == "regrade-conflict"

        url = f"/api/regrades/{body['id']}"
        ready = wait_until(
            lambda: (view := client.get(url, headers=ines).json())["status"] == "ready" and view,
            timeout_s=30,
            what="the regrade",
        )
        assert ready["summary"] == "1 up (+2), 1 down (−2), 1 unchanged, 1 failed"
        assert [(c["learner"], c["change"], c["difference"]) for c in ready["changes"]][:2] == [
            ("alice", "down", -2.0),
            ("bob", "up", 2.0),
        ]
        assert [r["id"] for r in client.get("/api/regrades", headers=ines).json()["regrades"]] == [body["id"]]
        assert client.post(f"{url}/apply", headers=alice).status_code == 403
        applied = client.post(f"{url}/apply", headers=ines)
        assert applied.status_code == 200 and applied.json()["status"] == "applied"
        twice = client.post(f"{url}/apply", headers=ines)
        assert twice.status_code == 409 and "already applied" in twice.json()["error"]["message"]
        assert client.get("/api/regrades/nope", headers=ines).status_code == 404
        spec = client.get("/api/openapi.json").json()
        assert {"/api/regrades", "/api/regrades/{regrade_id}", "/api/regrades/{regrade_id}/apply"} <= set(spec["paths"])


def test_an_instructor_regrades_from_the_page_in_a_real_browser(
    service: tuple[Settings, Store, dict[str, str]], tmp_path: Path
) -> None:
    """From the gradebook's link: start a regrade, watch it become ready, read the change report, apply it."""
    from playwright.sync_api import sync_playwright
    from test_service_browser import CHROMIUM, CHROMIUM_ARGS

    settings, store, tokens = service
    with (
        LiveServer(create_app(settings, workers=1, store=store, grade=course_grade)) as server,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(server.url + "/signin?next=/gradebook")
        page.fill("#token", tokens["ines"])
        page.click("button[type=submit]")
        page.click("#regrades-link a")
        page.wait_for_url("**/regrades")
        page.select_option("#exercise", EXERCISE)
        page.click("#start-regrade button")
        section = page.locator("section.regrade").first
        assert section.get_attribute("data-status") == "grading"
        # regrades.js follows the progress and reloads the page once the regrade is ready
        page.wait_for_selector("section.regrade[data-status='ready']", timeout=30_000)
        assert section.locator(".summary").inner_text() == "1 up (+2), 1 down (−2), 1 unchanged, 1 failed"
        rows = section.locator("table.changes tbody tr").all_inner_texts()
        assert rows[0].split() == ["down", "alice", "3/3", "1/3", "−2"]
        assert rows[1].split() == ["up", "bob", "1/3", "3/3", "+2"]
        page.screenshot(path=str(tmp_path / "regrades.png"), full_page=True)
        section.locator("form.apply button").click()
        page.wait_for_selector("section.regrade p.applied")
        assert page.locator("section.regrade").first.get_attribute("data-status") == "applied"
        page.goto(server.url + "/gradebook")
        assert "1/3" in page.locator("#gradebook").inner_text()
        assert problems == []
        browser.close()


@pytest.mark.slow
def test_a_check_fixed_in_the_real_solution_regrades_with_the_rebuilt_bundle(tmp_path: Path) -> None:
    """The real engine, the real sandbox, exercise 00 copied: its hidden check 0.2 first forgets the T4's
    capability (7, 5), so a bf16_is_native that says True there passes; the check is fixed in the solution,
    the bundle is rebuilt, and the regrade finds the wrong answer: 2 points down, the right one unchanged."""
    root = tmp_path / "course"
    for folder in ("solutions", "exercises"):
        (root / folder).mkdir(parents=True)
        shutil.copy(REPO / folder / f"{EXERCISE}.ipynb", root / folder)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO / name, root)
    solution_path = root / "solutions" / f"{EXERCISE}.ipynb"
    fixed = solution_path.read_text()
    assert fixed.count("(7, 0), (7, 5), (8, 0)") == 1
    solution_path.write_text(fixed.replace("(7, 0), (7, 5), (8, 0)", "(7, 0), (8, 0)"))  # the buggy check
    settings = load_settings(
        root,
        build_dir=root / "_build",
        data_dir=tmp_path / "service",
        grade_function="grader.grading.engine:grade_notebook",
        lease_s=60.0,
        worker_poll_s=0.05,
        submissions_per_minute=1000,
        sandbox=True,
    )
    right = (REPO / "solutions" / f"{EXERCISE}.ipynb").read_bytes()
    assert right.count(b"return tuple(capability) >= (8, 0)") == 1
    wrong = right.replace(b"return tuple(capability) >= (8, 0)", b"return tuple(capability) >= (7, 5)")
    store = open_store(settings)
    grade = workers.load_grade_function(settings)
    try:
        ids = {}
        for name, notebook in (("alice", wrong), ("bob", right)):
            user = accounts.add_user(store, name)[0]
            ids[name] = queue.enqueue(
                store, user_id=user.id, exercise=EXERCISE, filename=f"{name}.ipynb", notebook=notebook
            ).id
        instructor = accounts.add_user(store, "ines", instructor=True)[0]
        while workers.run_once(settings, store, grade, "test-worker") is not None:
            pass
        before = scores(store)
        assert before[ids["alice"]][0] == before[ids["bob"]][0] == before[ids["bob"]][1] > 0, before

        solution_path.write_text(fixed)  # the check is fixed
        started = regrade.start(store, settings, EXERCISE, instructor.id)
        while workers.run_once(settings, store, grade, "test-worker") is not None:
            pass
        ready = regrade.get(store, started.id)
        assert ready.status == "ready", regrade.render(ready)
        assert ready.summary() == "0 up, 1 down (−2), 1 unchanged, 0 failed", regrade.render(ready)
        assert scores(store) == before  # nothing replaced before apply
        regrade.apply(store, started.id)
        alice = json.loads(scores(store)[ids["alice"]][2])
        assert alice["score"] == before[ids["alice"]][0] - 2
        assert [c["status"] for c in alice["checks"] if c["id"] == "0.2"] == ["fail"]
    finally:
        store.dispose()


@pytest.mark.slow
def test_celery_workers_grade_a_regrade_started_through_the_api(
    tmp_path: Path, pg_url: str, processes: Processes
) -> None:
    """With a broker, the API sends one task per job; `grader worker --celery` grades them (a failed attempt is
    retried by its task after the back-off), and the report is the same as on the embedded queue."""
    settings = course_settings(tmp_path, database_url=pg_url, broker_url=AMQP_URL, lease_s=2.0)
    app = tasks.make_celery(settings)
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1)
        app.control.purge(connection=connection)  # messages left by an earlier, interrupted run
    store = open_store(settings)
    try:
        graded_course(settings, store)
        token = accounts.reset_token(store, "ines")
        set_check(settings, FIXED)
        processes.grader(settings, "worker", "--celery", "--concurrency", "2")
        wait_until(lambda: registry.live_workers(store, settings.worker_ttl_s), timeout_s=60, what="the Celery worker")
        with TestClient(create_app(settings, store=store)) as client:
            started = client.post(
                "/api/regrades", json={"exercise": EXERCISE}, headers={"Authorization": f"Bearer {token}"}
            )
            assert started.status_code == 202, started.text
            regrade_id = started.json()["id"]
        ready = wait_until(
            lambda: (found := regrade.get(store, regrade_id)).status == "ready" and found,
            timeout_s=60,
            what="Celery to grade the regrade",
        )
        assert ready.summary() == "1 up (+2), 1 down (−2), 1 unchanged, 1 failed", regrade.render(ready)
    finally:
        store.dispose()
