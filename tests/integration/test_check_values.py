"""Grading by value, not by printed text: the wrong verdicts of issue 13, each with a real kernel.

Each test failed when a check's verdict came from comparing printed text:

- a correct answer that returns ``np.int64``/``np.True_`` lost points on a bare-expression check
  (NumPy 2 spells them ``np.int64(338350)``/``np.True_``);
- a function that *printed* the right number and returned ``None`` passed a bare-expression check
  (the learner's stdout and the displayed value were merged);
- a leftover debug ``print`` in correct code failed every check that called it;
- an otter-style visible check (``square_sum(1) == 1``) showed ``False`` without raising:
  self-check said PASS, grading FAIL.

Plus: values forged with the grader's MIME type by learner code are ignored, and a check's
comparison options (tolerance, order, dtype) come from its metadata.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode, v4
from toy_course import code

from grader.format import markers
from grader.grading.bundle import build_bundle
from grader.grading.engine import grade_notebook
from grader.grading.results import Result
from grader.grading.selfcheck import check_notebook
from grader.settings import Settings, load_settings

pytestmark = pytest.mark.slow

EXERCISE = "98-values"
SQUARES = '''def square_sum(n):
    """The sum of the squares 1² + … + n²."""
    # BEGIN SOLUTION
    return sum(k * k for k in range(1, n + 1))
    # END SOLUTION


def is_even(n):
    """Is n even?"""
    # BEGIN SOLUTION
    return n % 2 == 0
    # END SOLUTION'''
COUNTS = '''def team_counts(teams):
    """A DataFrame with one row per team: its name and how many tickets it got."""
    # BEGIN SOLUTION
    counts = pd.Series(teams).value_counts().sort_index()
    return pd.DataFrame({"team": counts.index, "tickets": counts.to_numpy()})
    # END SOLUTION'''
VISIBLE = "# Check 8.1: the smallest case, otter style\nsquare_sum(1) == 1"
HIDDEN_VALUE = "# Check 8.2: a larger sum, as a bare expression\nsquare_sum(100)"
HIDDEN_BOOL = "# Check 8.3: evenness\nis_even(4)"
HIDDEN_PRINT = '# Check 8.4: several sums, printed\nfor n in (2, 10):\n    print("n =", n, "->", square_sum(n))'
HIDDEN_FRAME = '# Check 8.5: counts per team\nteam_counts(["b", "a", "b", "c", "b"])'


def solution() -> NotebookNode:
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    title = v4.new_markdown_cell("# Values, not text")
    title.id = "title"
    nb.cells = [
        title,
        code("import numpy as np\nimport pandas as pd", "setup"),
        code(SQUARES, "ex-squares", markers.TAG_EXERCISE, {"id": "8.1"}),
        code(VISIBLE, "check-1", markers.TAG_CHECK, {"id": "8.1", "points": 1}),
        code(HIDDEN_VALUE, "check-2", markers.TAG_HIDDEN_CHECK, {"id": "8.2", "points": 1}),
        code(HIDDEN_BOOL, "check-3", markers.TAG_HIDDEN_CHECK, {"id": "8.3", "points": 1}),
        code(HIDDEN_PRINT, "check-4", markers.TAG_HIDDEN_CHECK, {"id": "8.4", "points": 1}),
        code(COUNTS, "ex-counts", markers.TAG_EXERCISE, {"id": "8.2"}),
        code(
            HIDDEN_FRAME,
            "check-5",
            markers.TAG_HIDDEN_CHECK,
            {"id": "8.5", "points": 1, "compare": {"ordered": False, "dtype": True}},
        ),
    ]
    return nb


def submission(squares: str | None = None, counts: str | None = None) -> bytes:
    nb = solution()
    nb.cells = [c for c in nb.cells if markers.TAG_HIDDEN_CHECK not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        if cell.id == "ex-squares" and squares is not None:
            cell.source = squares
        if cell.id == "ex-counts" and counts is not None:
            cell.source = counts
    nb.metadata[markers.META_GRADER] = {markers.META_EXERCISE: EXERCISE}
    return nbformat.writes(nb).encode()


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("values-course")
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\n", encoding="utf-8")
    (root / "_config.yml").write_text(
        "title: values\nrepository:\n  url: https://github.com/example/values\n  branch: main\n", encoding="utf-8"
    )
    (root / "solutions").mkdir()
    nbformat.write(solution(), root / "solutions" / f"{EXERCISE}.ipynb")
    settings = load_settings(root, build_dir=root / "_build", cell_timeout_s=60.0, grading_timeout_s=120.0)
    build_bundle(settings, EXERCISE)
    return settings


def grade(settings: Settings, data: bytes) -> Result:
    return grade_notebook(settings, data, exercise=EXERCISE, name="submission.ipynb")


def verdicts(result: Result) -> dict[str, str]:
    return {check.id: check.status for check in result.checks}


NUMPY_SPELLING = """def square_sum(n):
    return np.sum(np.square(np.arange(1, n + 1)))


def is_even(n):
    return np.mod(n, 2) == 0"""
PRINTS_INSTEAD_OF_RETURNING = """def square_sum(n):
    print(sum(k * k for k in range(1, n + 1)))


def is_even(n):
    return n % 2 == 0"""
DEBUG_PRINTS = """def square_sum(n):
    total = 0
    for k in range(1, n + 1):
        total += k * k
        print("debug:", k, total)
    return total


def is_even(n):
    print("checking", n)
    return not n & 1"""
OFF_BY_ONE = """def square_sum(n):
    return sum(k * k for k in range(n))


def is_even(n):
    return n % 2 == 0"""


def test_the_solution_scores_full_marks(course: Settings) -> None:
    """Does the reference, submitted, earn every point through the value channel?"""
    result = grade(course, submission())
    assert (result.score, result.max_score) == (5, 5), verdicts(result)


def test_numpy_scalars_are_the_numbers_they_spell(course: Settings) -> None:
    """Is ``np.int64(338350)`` the integer 338350, and ``np.True_`` True, for a bare-expression check?"""
    result = grade(course, submission(squares=NUMPY_SPELLING))
    assert verdicts(result) == {"8.1": "pass", "8.2": "pass", "8.3": "pass", "8.4": "pass", "8.5": "pass"}


def test_printing_the_answer_is_not_returning_it(course: Settings) -> None:
    """Does a function that prints the right number and returns None fail the bare-expression check?"""
    result = grade(course, submission(squares=PRINTS_INSTEAD_OF_RETURNING))
    assert verdicts(result)["8.2"] == "fail"
    assert verdicts(result)["8.4"] == "fail"  # "n = 2 -> None"
    assert verdicts(result)["8.3"] == "pass"


def test_debug_prints_do_not_cost_points(course: Settings) -> None:
    """Does correct code with leftover debug prints keep full marks, visible and hidden checks alike?"""
    result = grade(course, submission(squares=DEBUG_PRINTS))
    assert (result.score, result.max_score) == (5, 5), [(c.id, c.status, c.message) for c in result.checks]


def test_an_otter_style_visible_check_fails_in_self_check_and_in_grading(course: Settings, tmp_path: Path) -> None:
    """Does ``square_sum(1) == 1`` evaluating to False fail both ``grader check`` and grading, alike?"""
    data = submission(squares=OFF_BY_ONE)
    graded = grade(course, data)
    path = tmp_path / "work.ipynb"
    path.write_bytes(data)
    checked = check_notebook(course, path)
    assert verdicts(graded)["8.1"] == "fail"
    assert {c.id: c.status for c in checked.checks} == {"8.1": "fail"}


def test_dataframe_rows_in_another_order_pass_when_order_does_not_matter(course: Settings) -> None:
    """With ``ordered: false``, are reordered rows right, and float counts wrong under ``dtype: true``?"""
    reordered = COUNTS.replace(".sort_index()", ".sort_values(ascending=False)")
    assert verdicts(grade(course, submission(counts=reordered)))["8.5"] == "pass"
    as_floats = COUNTS.replace("counts.to_numpy()", "counts.to_numpy().astype(float)")
    assert verdicts(grade(course, submission(counts=as_floats)))["8.5"] == "fail"


def test_values_forged_by_learner_code_are_ignored(course: Settings) -> None:
    """Can learner code that publishes the grader's MIME type itself pass a check it gets wrong? No."""
    forged = OFF_BY_ONE.replace(
        "    return sum(k * k for k in range(n))",
        "    from IPython.display import display\n"
        "    display({'application/vnd.mlcourse.check-values+json': "
        "{'nonce': 'guess', 'kind': 'value', 'values': [{'t': 'int', 'v': 338350}]}}, raw=True)\n"
        "    return sum(k * k for k in range(n))",
    )
    result = grade(course, submission(squares=forged))
    assert verdicts(result)["8.2"] == "fail"


def test_a_helper_in_a_cell_of_the_learners_own_runs_in_grading_as_in_self_check(
    course: Settings, tmp_path: Path
) -> None:
    """Does an answer that uses a helper the learner wrote in a new cell work in grading, as it does locally?"""
    nb = nbformat.reads(submission(squares=SQUARES.replace("sum(k * k", "sum(sq(k)")).decode(), as_version=4)
    helper = v4.new_code_cell("def sq(k):\n    return k * k")
    helper.id = "my-helper"
    nb.cells.insert(2, helper)  # after the setup cell, before the exercise that uses it
    data = nbformat.writes(nb).encode()
    result = grade(course, data)
    assert (result.score, result.max_score) == (5, 5), [(c.id, c.status, c.message) for c in result.checks]
    path = tmp_path / "work.ipynb"
    path.write_bytes(data)
    assert [c.status for c in check_notebook(course, path).checks] == ["pass"]


def test_suppressing_the_reported_values_does_not_pass(course: Settings) -> None:
    """Can learner code that silences the grader's display (to hide a wrong value) pass? No: nothing reported fails."""
    silenced = OFF_BY_ONE + "\n\nimport IPython.display\nIPython.display.display = lambda *a, **k: None"
    result = grade(course, submission(squares=silenced))
    assert verdicts(result)["8.2"] == "fail" and verdicts(result)["8.4"] == "fail"
