"""Results: one object, three renderings, and wording that never leaks a hidden check."""

from __future__ import annotations

import html
import json

import pytest

from grader.grading import results
from grader.grading.results import CheckResult, Result

SECRET = "expected 0.4375"


def make_result(**changes: object) -> Result:
    checks = (
        CheckResult("3.1", "labels are all known teams", False, 1, 1, "pass"),
        CheckResult(
            "3.2",
            "the split keeps each customer on one side",
            False,
            0,
            2,
            "fail",
            "AssertionError: customer 'c-0192' appears in train and test",
        ),
        CheckResult(
            "3.3",
            "catches duplicated tickets",
            True,
            0,
            2,
            "not-run",
            results.not_run_exercise_raised("exercise 3.2", "NotImplementedError"),
        ),
        CheckResult("3.4", "no alarm on clean data", True, 3, 3, "pass"),
    )
    fields: dict[str, object] = dict(
        exercise="03-data-assumptions",
        submission="exercises/03-data-assumptions.ipynb",
        status="graded",
        score=4,
        max_score=8,
        duration_s=2.5,
        device="cpu",
        checks=checks,
        isolation="bubblewrap sandbox",
    )
    fields.update(changes)
    return Result(**fields)  # type: ignore[arg-type]


def test_text_is_one_line_per_check_with_the_reason_below() -> None:
    """Does the text show a headline, PASS/FAIL/NOT RUN per check, '(hidden)' and the reason?"""
    lines = results.render_text(make_result()).splitlines()
    assert lines[0] == "exercises/03-data-assumptions.ipynb: 4/8 points"
    assert lines[1].split() == ["PASS", "Check", "3.1:", "labels", "are", "all", "known", "teams", "1/1"]
    assert lines[2].split()[0] == "FAIL" and lines[2].endswith("0/2")
    assert lines[3].strip() == "AssertionError: customer 'c-0192' appears in train and test"
    assert lines[4].startswith("  NOT RUN Check 3.3 (hidden): catches duplicated tickets")
    assert lines[5].strip() == "not run: exercise 3.2 raised NotImplementedError"
    assert len(lines) == 7


def test_json_matches_the_schema() -> None:
    """Is the JSON one line holding exactly the documented fields?"""
    text = results.render_json(make_result())
    assert "\n" not in text
    data = json.loads(text)
    assert set(data) == {
        "exercise",
        "submission",
        "status",
        "score",
        "max_score",
        "duration_s",
        "device",
        "message",
        "isolation",
        "device_info",
        "wanted_device",
        "device_note",
        "checks",
        "manual",
    }
    assert set(data["checks"][0]) == {"id", "name", "hidden", "points", "max_points", "status", "message"}
    assert [c["status"] for c in data["checks"]] == ["pass", "fail", "not-run", "pass"]
    assert data["score"] == 4 and data["max_score"] == 8


def test_all_renderings_come_from_the_same_object() -> None:
    """Do text, JSON and HTML show the same check names and statuses?"""
    result = make_result()
    text, page = results.render_text(result), results.render_html([result])
    data = json.loads(results.render_json(result))
    for check in data["checks"]:
        assert check["name"] in text and check["name"] in page


def test_html_escapes_everything() -> None:
    """Can output from learner code inject markup into the feedback page?"""
    evil = CheckResult("1.1", "runs", False, 0, 1, "fail", "ValueError: <script>alert('x')</script>")
    page = results.render_html([make_result(checks=(evil,), submission="<img src=x onerror=alert(1)>.ipynb")])
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<script" not in page.lower().replace("&lt;script", "")


@pytest.mark.parametrize("hidden", [True, False])
def test_hidden_failures_never_quote_the_exception(hidden: bool) -> None:
    """Does a hidden check's failure hide the exception text (which may hold the expected value)?"""
    message = results.raised("AssertionError", f"AssertionError: {SECRET}", hidden=hidden)
    assert (SECRET in message) is not hidden
    assert "AssertionError" in message


@pytest.mark.parametrize("hidden", [True, False])
def test_hidden_mismatch_shows_no_diff(hidden: bool) -> None:
    """Does only a visible check's output difference quote the expected line?"""
    message = results.output_differs(f"line 1: {SECRET}, got '0.5'", hidden=hidden)
    assert message.startswith("output differs from the reference")
    assert (SECRET in message) is not hidden


def test_hidden_failure_may_name_the_learners_function() -> None:
    """Can a hidden failure say where in the learner's own code it broke?"""
    message = results.raised("ValueError", "ValueError: secret", hidden=True, where="scale() (exercise 9.2)")
    assert message == "raised ValueError in scale() (exercise 9.2)"


def _graded(score: float) -> Result:
    return make_result(score=score, max_score=8)


@pytest.mark.parametrize(
    ("batch", "code"),
    [
        ([_graded(8)], 0),
        ([_graded(8), _graded(7)], 1),
        ([_graded(8), results.invalid("x.ipynb", "not JSON")], 4),
        ([results.invalid("x.ipynb", "not JSON"), make_result(status="error", score=0)], 9),
        ([], 0),
    ],
)
def test_exit_codes(batch: list[Result], code: int) -> None:
    """Does the exit code say the worst thing that happened (error > invalid > lost points)?"""
    assert results.exit_code(batch) == code


def test_invalid_result_says_what_to_do() -> None:
    """Does an invalid submission render its message instead of checks?"""
    text = results.render_text(results.invalid("x.ipynb", "x.ipynb: not valid JSON; upload the .ipynb file"))
    assert text.splitlines() == [
        "x.ipynb: not graded (invalid submission)",
        "  x.ipynb: not valid JSON; upload the .ipynb file",
    ]


@pytest.mark.parametrize(
    "isolation, warned", [("none", True), ("bubblewrap sandbox", False), (results.LOCAL_SELF_CHECK, False)]
)
def test_every_report_says_when_grading_ran_without_a_sandbox(isolation: str, warned: bool) -> None:
    """Does every rendering (text, JSON, HTML) say so when learner code ran unsandboxed?"""
    result = make_result(isolation=isolation)
    assert (results.UNSANDBOXED in results.render_text(result)) is warned
    assert (html.escape(results.UNSANDBOXED) in results.render_html([result])) is warned
    assert json.loads(results.render_json(result))["isolation"] == isolation


# --- points as people read them ---------------------------------------------------------------

THIRDS = (
    CheckResult("1.1", "a third of the points", False, 8 / 3, 8 / 3, "pass"),
    CheckResult("1.2", "half a point", False, 0, 0.5, "fail", "output differs from the reference"),
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2, "2"),
        (2.0, "2"),
        (2.5, "2.5"),
        (8 / 3, "2.67"),
        (2 / 3, "0.67"),
        (0.1 + 0.2, "0.3"),
        (0, "0"),
        (-0.0001, "0"),
    ],
)
def test_points_are_shown_rounded_to_two_decimals(value: float, text: str) -> None:
    """Are points shown as 2, 2.5 or 2.67 (never 2.6666666666666665), trailing zeros dropped?"""
    assert results.points_text(value) == text


def test_fractional_points_are_rounded_in_text_and_html_and_exact_in_json() -> None:
    """Do text and HTML feedback show 2.67 while the JSON keeps the exact score?"""
    result = make_result(score=8 / 3, max_score=8 / 3 + 0.5, checks=THIRDS)
    text, page = results.render_text(result), results.render_html([result])
    assert text.splitlines()[0] == "exercises/03-data-assumptions.ipynb: 2.67/3.17 points"
    assert text.splitlines()[1].endswith("2.67/2.67") and text.splitlines()[2].endswith("0/0.5")
    assert "<td>2.67/2.67</td>" in page and "2.67/3.17 points" in page
    assert "2.666" not in text + page
    data = json.loads(results.render_json(result))
    assert data["score"] == 8 / 3 and data["checks"][0]["points"] == 8 / 3


def test_submit_feedback_shows_points_rounded() -> None:
    """Does the learner's submit() feedback (text and HTML, from the JSON result) show 2.67 too?"""
    from mlcourse import submit

    data = json.loads(results.render_json(make_result(score=8 / 3, max_score=8 / 3 + 0.5, checks=THIRDS)))
    text, page = submit.render_text(data), submit.render_html(data)
    assert text.splitlines()[0] == "03-data-assumptions: 2.67/3.17 points"
    assert "2.67/2.67" in text and "2.67/2.67" in page and "0/0.5" in page
    assert "2.666" not in text + page


def test_gradebook_csv_shows_points_rounded() -> None:
    """Does the instructor's gradebook CSV show each best score and the total rounded (2.67, 3.33)?"""
    from grader.service.gradebook import Gradebook, to_csv

    book = Gradebook(["00-a", "01-b"], {"ada": {"00-a": 8 / 3, "01-b": 2 / 3}, "bo": {"00-a": 1.5}}, {"00-a": 3.0})
    assert to_csv(book).splitlines() == ["learner,00-a,01-b,total", "ada,2.67,0.67,3.33", "bo,1.5,,1.5"]


def test_service_templates_show_points_through_the_points_filter() -> None:
    """Does every page of the service format points with the `points` filter (2.67), not '%g' (2.66667)?"""
    from pathlib import Path

    import jinja2

    from grader.service import app

    folder = Path(app.TEMPLATES_DIR)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(folder), autoescape=True)
    env.filters["points"] = results.points_text
    env.filters["utc"] = str
    assert env.from_string("{{ x | points }}/{{ y | points }}").render(x=8 / 3, y=3.0) == "2.67/3"
    for template in sorted(folder.glob("*.html")):
        source = template.read_text(encoding="utf-8")
        env.parse(source)  # every template still compiles
        for line in source.splitlines():
            if "'%g' %" in line:
                assert "max_upload_mb" in line and "score" not in line and "points" not in line, (template, line)
