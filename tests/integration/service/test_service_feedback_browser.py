"""Feedback back and grades out, in a real browser (headless Debian Chromium): a learner downloads their
feedback report from the submission page and opens it — a script in their own notebook does not run — and an
instructor downloads the Canvas export from the gradebook page."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import nbformat
import pytest
import service_fakes
from conftest import EXERCISE
from test_service_browser import _sign_in, _watch, browser, live  # noqa: F401 (fixtures used by name)

pytestmark = pytest.mark.slow

SCRIPTS = (
    "<script>window.__pwned = 'script'</script>"
    "<img src=x onerror=\"window.__pwned = 'onerror'\">"
    "<iframe src=\"javascript:parent.__pwned = 'iframe'\"></iframe>"
    "<a href=\"javascript:window.__pwned = 'link'\">click me</a>"
)


def _hostile_notebook(path: Path) -> Path:
    """The fake grader's notebook (check 1.1 passes, hidden 1.2 fails), with scripts in a cell and an output."""
    nb = nbformat.reads(service_fakes.notebook().decode(), as_version=4)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"# My answer\n\n{SCRIPTS}"))
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={"text/html": SCRIPTS, "text/plain": "x"})]
    check = nbformat.v4.new_code_cell("# Check 1.1: the answer is right\nassert answer == 42")
    check.metadata.update(tags=["check"], grader={"id": "1.1", "points": 2})
    nb.cells.append(check)
    path.write_text(nbformat.writes(nb))
    return path


def test_a_learner_downloads_their_report_from_the_submission_page(browser: Any, live: Any, tmp_path: Path) -> None:  # noqa: F811
    server, tokens = live
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    problems = _watch(page)
    _sign_in(page, server.url, tokens["alice"], "/submit")
    page.wait_for_selector("select#exercise")
    page.set_input_files("#file", str(_hostile_notebook(tmp_path / "mine.ipynb")))
    page.click("form[action='/submit'] button[type=submit]")
    page.wait_for_selector("#score", timeout=30_000)
    with page.expect_download() as download:
        page.click("#downloads a[href$='/report.html']")
    assert download.value.suggested_filename.startswith(f"feedback-{EXERCISE}-")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert problems == []
    context.close()

    # opened from disk, as a learner would, with the file's own CSP bypassed: the cleaning alone must hold
    offline = browser.new_context(bypass_csp=True, offline=True)
    report = offline.new_page()
    report.goto(saved.as_uri())
    report.get_by_text("click me").first.click()
    assert report.evaluate("typeof window.__pwned") == "undefined"
    assert report.locator("script, iframe").count() == 0
    assert report.locator("#report-score").inner_text() == "2/3 points"
    assert report.locator(".verdict.pass[data-check='1.1']").count() == 1
    assert "Check 1.2 (hidden): the edge case is handled" in report.locator("#report-checks").inner_text()
    assert report.locator("[data-check='1.2']").count() == 0  # named in the summary, never shown in the notebook
    offline.close()


def test_an_instructor_downloads_the_canvas_export_from_the_gradebook_page(
    browser: Any,  # noqa: F811
    live: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    server, tokens = live
    learner = browser.new_context()
    page = learner.new_page()
    _sign_in(page, server.url, tokens["alice"], "/submit")
    page.wait_for_selector("select#exercise")
    page.set_input_files("#file", str(_hostile_notebook(tmp_path / "a.ipynb")))
    page.click("form[action='/submit'] button[type=submit]")
    page.wait_for_selector("#score", timeout=30_000)
    learner.close()

    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    problems = _watch(page)
    _sign_in(page, server.url, tokens["ines"], "/gradebook")
    page.wait_for_selector("#exports")
    with page.expect_download() as download:
        page.click("#exports a[href$='format=canvas']")
    assert download.value.suggested_filename == "gradebook-canvas.csv"
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    column = next(i for i, name in enumerate(rows[0]) if name.endswith(f"({EXERCISE})"))
    assert rows[1][0] == "Points Possible"
    assert [(row[0], row[3], row[column]) for row in rows[2:]] == [("alice", "alice", "2")]
    assert problems == []
    context.close()
