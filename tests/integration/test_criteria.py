"""Criteria: a hidden check judged against a public bound, whose feedback names what failed and how often.

A toy exercise asks for a classifier of integers (``is_big(x)``: ``x >= 50``) with accuracy of at
least 0.8 on each held-out set. The hidden check states that bound with
``mlcourse.checks.criterion``; the visible check scores the learner on fresh data with the same
call. Every test runs a real kernel through the real grading engine and self-check.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode, v4
from toy_course import code, write_course

from grader.format import markers
from grader.grading.bundle import build_bundle
from grader.grading.engine import grade_notebook
from grader.grading.results import Result
from grader.grading.selfcheck import check_notebook
from grader.settings import Settings

pytestmark = pytest.mark.slow

EXERCISE = "97-criteria"
ANSWER = '''def is_big(x):
    """True for 50 and above."""
    # BEGIN SOLUTION
    return x >= 50
    # END SOLUTION'''
VISIBLE = """# Check 7.1: score yourself on fresh numbers: accuracy at least 0.8
from mlcourse.checks import criterion

fresh = range(1000, 1100)
accuracy = sum(is_big(x - 1000) == (x - 1000 >= 50) for x in fresh) / 100
criterion("accuracy", accuracy, at_least=0.8, cases="fresh sets")
print("accuracy on fresh numbers:", accuracy)"""
HIDDEN = """# Check 7.2: accuracy of at least 0.8 on each held-out set, and answers that are truth values
from mlcourse.checks import criterion

for start in (0, 25, 40):
    numbers = range(start, start + 50)
    answers = [is_big(x) for x in numbers]
    criterion("every answer is True or False", all(a in (True, False) for a in answers), cases="held-out sets")
    accuracy = sum(a == (x >= 50) for a, x in zip(answers, numbers)) / 50
    criterion("accuracy", accuracy, at_least=0.8, cases="held-out sets")
print("three held-out sets scored")"""


def solution() -> NotebookNode:
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    title = v4.new_markdown_cell("# Criteria\n\nYour `is_big` must reach an accuracy of at least 0.8 on each set.")
    title.id = "title"
    nb.cells = [
        title,
        code(ANSWER, "ex-big", markers.TAG_EXERCISE, {"id": "7.1"}),
        code(VISIBLE, "check-1", markers.TAG_CHECK, {"id": "7.1", "points": 1}),
        code(HIDDEN, "check-2", markers.TAG_HIDDEN_CHECK, {"id": "7.2", "points": 2}),
    ]
    return nb


def submission(answer: str) -> bytes:
    nb = solution()
    nb.cells = [c for c in nb.cells if markers.TAG_HIDDEN_CHECK not in c.metadata.get("tags", [])]
    nb.cells[1].source = answer
    nb.metadata[markers.META_GRADER] = {markers.META_EXERCISE: EXERCISE}
    return nbformat.writes(nb).encode()


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = write_course(tmp_path_factory.mktemp("criteria-course"), EXERCISE, solution())
    build_bundle(settings, EXERCISE)
    return settings


def grade(settings: Settings, answer: str) -> Result:
    return grade_notebook(settings, submission(answer), exercise=EXERCISE, name="submission.ipynb")


def hidden(result: Result) -> tuple[str, str]:
    check = next(c for c in result.checks if c.id == "7.2")
    return check.status, check.message


# threshold 60: wrong on 50..59, which two of the three held-out sets contain (accuracy 0.8 and 0.8 → met;
# threshold 70: wrong on 50..69: set 0-49 all right, 25-74 has 20 wrong (0.6), 40-89 has 20 wrong (0.6)
LATE = "def is_big(x):\n    return x >= 70"
NEAR = "def is_big(x):\n    return x >= 55"  # 5 wrong in two sets: 0.9, a value other than the reference's 1.0
STRINGS = 'def is_big(x):\n    return "yes" if x >= 50 else "no"'


def test_the_solution_meets_its_criteria(course: Settings) -> None:
    """Does the reference earn every point when judged by its own criteria?"""
    result = grade(course, ANSWER)
    assert (result.score, result.max_score) == (3, 3), [(c.id, c.status, c.message) for c in result.checks]


def test_feedback_names_the_missed_criterion_and_on_how_many_cases(course: Settings) -> None:
    """Does a classifier that misses the bound on 2 of 3 sets hear exactly that, and nothing else?"""
    status, message = hidden(grade(course, LATE))
    assert status == "fail"
    assert message == "accuracy below 0.8 on 2 of 3 held-out sets"


def test_a_different_value_that_meets_the_bound_passes(course: Settings) -> None:
    """Is a criterion judged against its bound, not against the reference's value (0.9 where the reference has 1.0)?"""
    result = grade(course, NEAR)
    assert hidden(result) == ("pass", "")
    assert result.score == result.max_score


def test_a_truth_criterion_is_named_when_false(course: Settings) -> None:
    """Do answers that are not truth values fail the criterion that says so, on every set?"""
    status, message = hidden(grade(course, STRINGS))
    assert status == "fail"
    assert "every answer is True or False: false on 3 of 3 held-out sets" in message
    assert "accuracy below 0.8 on 3 of 3 held-out sets" in message


def test_the_wording_quotes_no_value(course: Settings) -> None:
    """Are the only numbers in a missed criterion's feedback its public bound and the counts of cases?"""
    for answer in (LATE, STRINGS, "def is_big(x):\n    return x >= 30"):
        _, message = hidden(grade(course, answer))
        numbers = set(re.findall(r"\d+(?:\.\d+)?", message))
        assert numbers <= {"0.8", "1", "2", "3"}, message


def test_patching_the_kernels_judgement_does_not_pass(course: Settings) -> None:
    """Can learner code that makes ``criterion`` think every value is met pass? No: the grader judges the value."""
    patched = LATE + "\n\nimport mlcourse.checks\nmlcourse.checks._met = lambda *args: True"
    status, message = hidden(grade(course, patched))
    assert status == "fail" and "accuracy below 0.8" in message


def test_a_visible_criterion_shows_the_learner_their_value(course: Settings, tmp_path: Path) -> None:
    """Does self-check on fresh data name the value, and grading's visible verdict agree with it?"""
    path = tmp_path / "work.ipynb"
    path.write_bytes(submission("def is_big(x):\n    return x >= 75"))
    checked = check_notebook(course, path)
    (check,) = checked.checks
    assert check.status == "fail"
    assert "accuracy >= 0.8 is not met: got 0.75" in check.message
    graded = grade(course, "def is_big(x):\n    return x >= 75")
    assert next(c for c in graded.checks if c.id == "7.1").status == "fail"


def test_a_criterion_on_the_last_line_is_not_also_compared_as_a_value() -> None:
    """Is a check whose last line is ``criterion(...)`` judged by the criterion only, not by its True/False too?"""
    from grader.grading.checkvalues import instrument

    source = (
        '# Check 7.3: the last line\nfrom mlcourse.checks import criterion\ncriterion("accuracy", 0.9, at_least=0.8)'
    )
    rewritten = instrument(source, "nonce", hidden=True)
    assert '.value(criterion("accuracy"' not in rewritten
    assert rewritten.endswith('criterion("accuracy", 0.9, at_least=0.8)')
    assert instrument("# Check 7.4: a value\nf(3)", "nonce", hidden=True).endswith(".value(f(3))")
