"""Manual grading in a real browser (headless Debian Chromium): an instructor opens the marking page from the
gradebook, reads a learner's answer (a Markdown heading, a plot), ticks criteria and saves with the keyboard,
moves between answers with it — and a learner's answer that tries to run a script in the instructor's page
renders inert. The learner's page then shows the rubric lines and the comment.

The service grades for real (the engine in the sandbox, one embedded worker) on the small exercise of
``tests/fixtures/manual/manual_exercise.py``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import REPO, LiveServer, wait_until
from test_service_browser import REAL_GRADE, _sign_in, _watch, browser  # noqa: F401 (the fixture is used by name)

from grader.service import accounts
from grader.service.app import create_app
from grader.service.store import open_store
from grader.settings import load_settings

sys.path.insert(0, str(REPO / "tests" / "fixtures" / "manual"))
import manual_exercise as build

pytestmark = pytest.mark.slow

#: what a hostile learner puts in their answer: every way it might try to run in the instructor's page
HOSTILE_MARKDOWN = (
    "# Totally normal answer\n\n"
    "<script>window.__pwned = 'script'</script>\n\n"
    "<img src=x onerror=\"window.__pwned = 'onerror'\">\n\n"
    "[click me](javascript:window.__pwned='link')\n\n"
    "<a href=\"javascript:window.__pwned = 'anchor'\">or me</a>\n"
)
HOSTILE_HTML = "<script>window.__pwned = 'output'</script><b>html output</b>"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    root = build.write_course(tmp_path / "course")
    settings = load_settings(
        root, data_dir=tmp_path / "service", build_dir=tmp_path / "no-book", grade_function=REAL_GRADE, sandbox=True
    )
    store = open_store(settings)
    tokens = {
        name: accounts.add_user(store, name, instructor=name == "ines")[1] for name in ("alice", "mallory", "ines")
    }
    with LiveServer(create_app(settings, workers=1, store=store)) as server:
        yield server, tokens
    store.dispose()


def _submit(server: LiveServer, token: str, notebook: bytes) -> str:
    """Submit through the API; the submission's id once it is graded."""
    auth = {"Authorization": f"Bearer {token}"}
    sent = httpx.post(
        f"{server.url}/api/submissions",
        headers=auth,
        data={"exercise": build.EXERCISE},
        files={"file": ("answers.ipynb", notebook)},
    )
    assert sent.status_code == 202, sent.text
    sid = str(sent.json()["id"])
    view = wait_until(
        lambda: (v := httpx.get(f"{server.url}/api/submissions/{sid}", headers=auth).json())["final"] and v,
        timeout_s=120,
        every_s=0.3,
        what="the grade",
    )
    assert view["status"] == "graded" and view["provisional"], view
    return sid


def test_an_instructor_grades_with_the_keyboard_and_a_hostile_answer_stays_inert(browser: Any, live: Any) -> None:  # noqa: F811
    server, tokens = live
    alice = _submit(server, tokens["alice"], build.submission())
    _submit(server, tokens["mallory"], build.submission(explanation=HOSTILE_MARKDOWN, html_output=HOSTILE_HTML))

    context = browser.new_context()
    page = context.new_page()
    problems = _watch(page)
    _sign_in(page, server.url, tokens["ines"], "/gradebook")
    page.wait_for_selector("#gradebook")
    assert "(provisional: 2 answers to grade)" in page.locator("#gradebook").inner_text()
    page.click("#manual-link a[href='/marking']")
    page.wait_for_selector("#waiting")
    assert page.locator("#waiting tbody tr").count() == 4
    page.click("#start")

    # alice's explanation: her Markdown rendered, the rubric ticked and saved with the keyboard
    page.wait_for_selector("#answer h2")
    assert page.locator("#answer h2").inner_text().startswith("My reasoning")
    assert page.locator("#learner").inner_text() == "alice"
    assert "s or Ctrl+Enter" in page.locator("#keys").inner_text()
    page.keyboard.press("1")
    page.keyboard.press("3")
    boxes = page.locator("input[name=criteria]")
    assert [boxes.nth(i).is_checked() for i in range(3)] == [True, False, True]
    assert page.locator("#ticked").inner_text() == "2"
    page.keyboard.press("c")
    page.keyboard.type("Name *where* the number comes from.")
    page.keyboard.press("Control+Enter")

    # saved, and on to her plot: the PNG output is an image the browser decoded
    page.wait_for_url("**/90.3?saved=*")
    assert (
        "of alice: 2/3; the submission's total is now 4/7 (provisional: 1 answer to grade)"
        in page.locator("#saved").inner_text()
    )
    assert page.locator("#answer-title").inner_text().startswith("Answer 90.3")
    plot = page.locator("#answer img[src^='data:image/png']")
    assert plot.is_visible() and plot.evaluate("img => img.naturalWidth") == 24
    page.keyboard.press("1")
    page.keyboard.press("2")
    page.keyboard.press("s")
    page.wait_for_url("**/90.2?saved=*")
    assert "of alice: 2/2; the submission's total is now 6/7." in page.locator("#saved").inner_text()

    # mallory's answer: rendered, inert
    assert page.locator("#learner").inner_text() == "mallory"
    assert page.locator("#answer h1").inner_text().startswith("Totally normal answer")
    page.get_by_text("click me").click()
    page.get_by_text("or me").click()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("#answer script, #answer iframe, #answer [onerror]").count() == 0
    assert page.locator("#answer a[href^='javascript']").count() == 0
    hostile = page.url.split("?")[0].removeprefix(server.url)

    # back to alice's explanation with the keys: the grade is there to change
    page.keyboard.press("k")
    page.wait_for_url("**/90.3")
    page.keyboard.press("ArrowLeft")
    page.wait_for_url("**/90.2")
    assert page.locator("#comment").input_value() == "Name *where* the number comes from."
    assert problems == []
    context.close()

    # the same page with its Content-Security-Policy bypassed: the cleaning alone must hold
    bare = browser.new_context(bypass_csp=True)
    again = bare.new_page()
    _sign_in(again, server.url, tokens["ines"], hostile)
    again.wait_for_selector("#answer h1")
    assert again.evaluate("typeof window.__pwned") == "undefined"
    again.get_by_text("click me").click()
    again.get_by_text("or me").click()
    assert again.evaluate("typeof window.__pwned") == "undefined"
    again.keyboard.press("j")  # mallory's code answer: an HTML output with a script
    again.wait_for_url("**/90.3")
    again.wait_for_selector("#answer img[src^='data:image/png']")
    assert again.get_by_text("html output").is_visible()  # the output's harmless HTML is shown
    assert again.evaluate("typeof window.__pwned") == "undefined"
    assert again.locator("#answer script").count() == 0
    bare.close()

    # alice reads her rubric lines and the comment
    learner = browser.new_context()
    mine = learner.new_page()
    _sign_in(mine, server.url, tokens["alice"], f"/submissions/{alice}")
    mine.wait_for_selector("#manual")
    assert mine.locator("#score").inner_text() == "6/7"
    assert mine.locator("#provisional").count() == 0
    explain = mine.locator(".manual-answer[data-answer='90.2']")
    awarded = [" ".join(t.split()) for t in explain.locator("li.awarded").all_inner_texts()]
    assert awarded == ["✓ awarded: Names the baseline (1)", "✓ awarded: Gives a number (1)"]
    assert explain.locator(".comment em").inner_text() == "where"
    learner.close()
