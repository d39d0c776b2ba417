"""The HTML feedback report and Gradescope's results.json (grader/grading/report.py), from `grader check/grade`.

The report is the learner's notebook rendered by nbconvert with our template: learner-made HTML must come out
inert. Asserted on the HTML, and in headless Chromium with the page's own CSP bypassed, so the sanitiser alone
has to keep every script from running.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from grader import cli
from grader.grading import report

REPO = Path(__file__).resolve().parents[2]
EXERCISE = "00-learning-ml-engineering"
CHROMIUM = Path("/usr/bin/chromium")
#: a 1x1 PNG: a plot the learner made, which the report must keep
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

HOSTILE_HTML = (
    "<script>window.__pwned = 'script'</script>"
    "<img src=x onerror=\"window.__pwned = 'onerror'\">"
    "<iframe src=\"javascript:parent.__pwned = 'iframe'\"></iframe>"
    '<a id="jslink" href="javascript:window.__pwned = \'link\'">click me</a>'
    '<img id="remote" src="https://example.com/track.png">'
    '<div onmouseover="window.__pwned = \'hover\'" id="hover">hover me</div>'
    f'<img id="plot" src="data:image/png;base64,{PIXEL}">'
)


def _hostile_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(f"# My answer\n\n{HOSTILE_HTML}"))
    code = nbformat.v4.new_code_cell("show()")
    code.outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": HOSTILE_HTML, "text/plain": "x"}),
        nbformat.v4.new_output("display_data", data={"application/javascript": "window.__pwned = 'js-output'"}),
        nbformat.v4.new_output("display_data", data={"text/markdown": HOSTILE_HTML}),
        nbformat.v4.new_output("display_data", data={"image/png": "not base64\" onerror=\"window.__pwned='png'"}),
        nbformat.v4.new_output("stream", text="<script>window.__pwned = 'stream'</script>\n"),
    ]
    nb.cells.append(code)
    check = nbformat.v4.new_code_cell("# Check 1.1: the answer is right\nassert answer == 42")
    check.metadata.update(tags=["check"], grader={"id": "1.1", "points": 2})
    check.metadata["grader_report_verdict"] = {"id": "1.1", "status": "pass", "label": "FORGED"}
    nb.cells.append(check)
    return nb


RESULT: dict[str, Any] = {
    "exercise": "ex",
    "submission": "mine.ipynb",
    "status": "graded",
    "score": 0.0,
    "max_score": 3.0,
    "isolation": "bubblewrap sandbox",
    "duration_s": 1.25,
    "checks": [
        {"id": "1.1", "name": "the answer is right", "hidden": False, "points": 0, "max_points": 2, "status": "fail"},
        {
            "id": "1.2",
            "name": "the edge case",
            "hidden": True,
            "points": 0,
            "max_points": 1,
            "status": "fail",
            "message": "output differs from the reference",
        },
    ],
}
RESULT["checks"][0]["message"] = "the answer was 41"


def test_learner_html_comes_out_inert_and_the_verdicts_sit_beside_their_cells() -> None:
    page = report.render_report(_hostile_notebook(), RESULT)
    lowered = page.lower()
    for dangerous in ("<script", "onerror", "onmouseover", "<iframe", "javascript:", "example.com"):
        assert dangerous not in lowered, dangerous
    assert lowered.count("__pwned") == 1  # only in the stream output, as text:
    assert "&lt;script&gt;window.__pwned" in page  # the stream output is shown, as text
    assert f"data:image/png;base64,{PIXEL}" in page  # the learner's own plot is kept
    assert "FORGED" not in page  # a verdict comes from the result, never from the notebook
    assert 'data-check="1.1"' in page and "Check 1.2 (hidden): the edge case" in page
    assert 'data-check="1.2"' not in page  # a hidden check is named in the summary, never placed in the notebook
    assert page.index("celltag_check") < page.index('data-check="1.1"')  # beside (after) its cell
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page  # nothing to fetch


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is not installed: `make system-packages` (or apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
        yield launched
        launched.close()


@pytest.mark.slow
def test_no_learner_script_runs_in_the_browser_even_without_the_pages_csp(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text(report.render_report(_hostile_notebook(), RESULT), encoding="utf-8")
    context = browser.new_context(bypass_csp=True, offline=True)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.get_by_text("hover me").first.hover()
    page.get_by_text("click me").first.click()
    page.wait_for_load_state()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("iframe, script").count() == 0
    assert page.locator("img[src^='data:image/png']").first.evaluate("img => img.naturalWidth") == 1
    assert page.locator(".verdict.fail[data-check='1.1']").inner_text().startswith("FAIL")
    assert requests == [path.as_uri()]  # the report loaded nothing else
    context.close()


def test_grade_writes_gradescopes_results_and_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Does `grader grade --gradescope --report` write what Gradescope's autograder reads, hidden checks after
    publishing with no detail, and the notebook with each visible check's verdict?"""
    results_json, html = tmp_path / "results.json", tmp_path / "feedback.html"
    notebook = REPO / "exercises" / f"{EXERCISE}.ipynb"
    code = cli.main(
        ["grade", str(notebook), "--unsafe-no-sandbox", "--gradescope", str(results_json), "--report", str(html)]
    )
    assert code == 1  # the stub loses points
    graded = json.loads(results_json.read_text())
    assert graded["score"] == 0.0 and len(graded["tests"]) == 5
    assert set(graded["tests"][0]) == {"name", "number", "score", "max_score", "status", "output", "visibility"}
    visibility = {t["number"]: t["visibility"] for t in graded["tests"]}
    assert visibility == {
        "0.1": "visible",
        "0.2": "after_published",
        "0.3": "after_published",
        "0.4": "visible",
        "0.5": "after_published",
    }
    assert sum(t["max_score"] for t in graded["tests"]) == 8.0
    page = html.read_text()
    placed = [part.split('"')[0] for part in page.split('data-check="')[1:]]
    assert placed == ["0.1", "0.4"] and "Check 0.5 (hidden)" in page and "<script" not in page


def test_gradescope_results_are_for_one_notebook(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notebook = str(REPO / "exercises" / f"{EXERCISE}.ipynb")
    out = tmp_path / "results.json"
    code = cli.main(["grade", notebook, notebook, "--unsafe-no-sandbox", "--gradescope", str(out)])
    assert code == 2 and not out.exists()
    assert "one submission at a time" in capsys.readouterr().err


def test_an_invalid_notebook_gets_a_report_that_says_why() -> None:
    result = {"exercise": "ex", "submission": "x.ipynb", "status": "invalid", "message": "not a notebook: fix it"}
    page = report.render_report(report.learner_notebook(b"{not json", name="x.ipynb"), result)
    assert "not graded (invalid submission)" in page and "not a notebook: fix it" in page
    assert report.gradescope_results(result) == {
        "score": 0.0,
        "output": "not graded (invalid submission)\nnot a notebook: fix it",
        "execution_time": 0.0,
        "tests": [],
    }
