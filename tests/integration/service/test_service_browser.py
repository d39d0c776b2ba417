"""The pages in a real browser (headless Debian Chromium driven by Playwright): sign in, submit, watch the
grade arrive, read the feedback, open the gradebook — with the strict CSP in force and no script errors."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import service_fakes
from conftest import EXERCISE, LiveServer, make_settings

from grader.service import accounts
from grader.service.app import create_app
from grader.service.store import open_store

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is not installed: `make system-packages` (or apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    settings = make_settings(tmp_path, build_dir=tmp_path / "no-book")
    store = open_store(settings)
    tokens = {name: accounts.add_user(store, name, instructor=name == "ines")[1] for name in ("alice", "ines")}
    app = create_app(settings, workers=1, store=store)
    with LiveServer(app) as server:  # uvicorn runs the app's lifespan: the grading thread starts with it
        yield server, tokens
    store.dispose()


def _watch(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def _sign_in(page: Any, base: str, token: str, path: str) -> None:
    page.goto(base + path)
    page.fill("#token", token)
    page.click("button[type=submit]")


def test_a_learner_signs_in_submits_and_watches_the_grade_arrive(browser: Any, live: Any, tmp_path: Path) -> None:
    server, tokens = live
    notebook = tmp_path / "my-work.ipynb"
    notebook.write_bytes(service_fakes.notebook(sleep=1.5))
    context = browser.new_context()
    page = context.new_page()
    problems = _watch(page)
    _sign_in(page, server.url, tokens["alice"], "/submit")
    page.wait_for_selector("select#exercise")
    assert page.locator("select#exercise option").first.get_attribute("value") == EXERCISE
    page.set_input_files("#file", str(notebook))
    page.click("form[action='/submit'] button[type=submit]")
    page.wait_for_url("**/submissions/*")
    assert page.locator("#status").inner_text().startswith(("queued", "running"))
    page.wait_for_selector("#score", timeout=30_000)  # grader.js polls, then reloads with the feedback
    assert page.locator("#score").inner_text() == "2/3"
    verdicts = page.locator("#checks tbody tr td.verdict").all_inner_texts()
    assert verdicts == ["PASS", "FAIL"]
    assert "Check 1.2 (hidden)" in page.locator("#checks").inner_text()
    page.screenshot(path=str(tmp_path / "feedback.png"), full_page=True)
    page.goto(server.url + "/submit")
    assert "my-work.ipynb" in page.locator("table").inner_text()
    assert [p for p in problems if "Content Security Policy" in p or "Refused" in p] == []
    assert problems == []
    context.close()


def test_an_instructor_opens_the_gradebook_and_downloads_the_csv(browser: Any, live: Any, tmp_path: Path) -> None:
    server, tokens = live
    learner = browser.new_context()
    page = learner.new_page()
    _sign_in(page, server.url, tokens["alice"], "/submit")
    page.wait_for_selector("select#exercise")
    notebook = tmp_path / "a.ipynb"
    notebook.write_bytes(service_fakes.notebook())
    page.set_input_files("#file", str(notebook))
    page.click("form[action='/submit'] button[type=submit]")
    page.wait_for_selector("#score", timeout=30_000)
    learner.close()

    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    problems = _watch(page)
    _sign_in(page, server.url, tokens["ines"], "/gradebook")
    page.wait_for_selector("#gradebook")
    row = page.locator("#gradebook tbody tr", has_text="alice").inner_text()
    assert "2/3" in row
    rates = page.locator("table.rates tbody tr").all_inner_texts()
    assert [r.split("\t")[1:] for r in rates] == [["1/1", "100%"], ["0/1", "0%"]]
    with page.expect_download() as download:
        page.click("a[href='/api/gradebook.csv']")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    columns = list(rows[0])
    assert columns[0] == "learner" and columns[-1] == "total" and EXERCISE in columns
    alice = next(row for row in rows if row["learner"] == "alice")
    assert (alice[EXERCISE], alice["total"]) == ("2", "2")
    page.screenshot(path=str(tmp_path / "gradebook.png"), full_page=True)
    assert problems == []
    context.close()


REAL_GRADE = "grader.grading.engine:grade_notebook"


@pytest.fixture
def live_real(tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    """The service with the real grading engine, in the sandbox, on the course's own lesson-00 exercise."""
    settings = make_settings(
        tmp_path, build_dir=tmp_path / "no-book", grade_function=REAL_GRADE, sandbox=True, lease_s=60.0
    )
    store = open_store(settings)
    token = accounts.add_user(store, "bea")[1]
    app = create_app(settings, workers=1, store=store)
    with LiveServer(app) as server:
        yield server, token
    store.dispose()


@pytest.mark.parametrize(("artefact", "expect_full"), [("solutions", True), ("exercises", False)])
def test_a_notebook_submitted_through_the_page_is_graded_for_real(
    browser: Any, live_real: Any, artefact: str, expect_full: bool
) -> None:
    """Does the solution submitted through the page get full marks, and the learner's stub zero?"""
    server, token = live_real
    notebook = Path(__file__).resolve().parents[3] / artefact / f"{EXERCISE}.ipynb"
    context = browser.new_context()
    page = context.new_page()
    problems = _watch(page)
    _sign_in(page, server.url, token, "/submit")
    page.wait_for_selector("select#exercise")
    page.select_option("select#exercise", EXERCISE)
    page.set_input_files("#file", str(notebook))
    page.click("form[action='/submit'] button[type=submit]")
    page.wait_for_url("**/submissions/*")
    page.wait_for_selector("#score", timeout=180_000)
    got, total = page.locator("#score").inner_text().split("/")
    verdicts = page.locator("#checks tbody tr td.verdict").all_inner_texts()
    assert float(total) > 0 and len(verdicts) >= 3
    if expect_full:
        assert float(got) == float(total) and set(verdicts) == {"PASS"}
    else:
        assert float(got) == 0 and "PASS" not in verdicts
    assert problems == []
    context.close()
