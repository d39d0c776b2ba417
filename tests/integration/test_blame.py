"""Which exercise a check that cannot run names, with real kernels (issue 13).

The exercise (``97-blame``): three exercise cells, a check after each. Exercise 9.1 defines
``mean_of`` and the helper ``predict_all(model, values)`` and binds ``result``; exercise 9.3
defines a class ``Shift`` (a model whose ``predict`` is the exercise) and binds ``result`` again.
Left as its stub, exercise 9.3 raises ``NotImplementedError`` in ``Shift.predict`` (reached through
exercise 9.1's helper) and, at the top level, before ``result`` is bound again, so a check that
prints ``result`` would read exercise 9.1's value.
"""

from __future__ import annotations

import nbformat
import pytest
from nbformat import NotebookNode, v4
from toy_course import code, write_course

from grader.format import markers
from grader.grading.bundle import Bundle, build_bundle
from grader.grading.engine import grade_notebook
from grader.grading.results import Result
from grader.settings import Settings

pytestmark = pytest.mark.slow

EXERCISE = "97-blame"
FIRST = '''def mean_of(values):
    """The arithmetic mean of a list of numbers."""
    # BEGIN SOLUTION
    return sum(values) / len(values)
    # END SOLUTION


def predict_all(model, values):
    """model.predict(v) for every value v, as a list."""
    # BEGIN SOLUTION
    return [model.predict(v) for v in values]
    # END SOLUTION


result = mean_of(TRAIN)'''
SECOND = '''def spread(values):
    """The largest value minus the smallest."""
    # BEGIN SOLUTION
    return max(values) - min(values)
    # END SOLUTION'''
THIRD = '''class Shift:
    """A model that predicts x + k."""

    def __init__(self, k):
        self.k = k

    def predict(self, x):
        # BEGIN SOLUTION
        return x + self.k
        # END SOLUTION


# BEGIN SOLUTION
model = Shift(1.0)
# END SOLUTION
result = mean_of(predict_all(model, TRAIN))'''
NOT_DONE_3 = "not run: exercise 9.3 raised NotImplementedError"


def solution() -> NotebookNode:
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        code("TRAIN = [1.0, 2.0, 6.0]", "setup"),
        code(FIRST, "ex-1", markers.TAG_EXERCISE, {"id": "9.1"}),
        code(
            "# Check 9.1: the mean of [1, 2, 3] is 2\nassert mean_of([1, 2, 3]) == 2",
            "check-1",
            markers.TAG_CHECK,
            {"id": "9.1", "points": 1},
        ),
        code(SECOND, "ex-2", markers.TAG_EXERCISE, {"id": "9.2"}),
        code(
            "# Check 9.2: the spread of TRAIN\nprint(spread(TRAIN))",
            "check-2",
            markers.TAG_HIDDEN_CHECK,
            {"id": "9.2", "points": 1},
        ),
        code(THIRD, "ex-3", markers.TAG_EXERCISE, {"id": "9.3"}),
        code(
            "# Check 9.3: Shift adds its constant\nprint(predict_all(Shift(2.0), [1.0, 2.0]))",
            "check-3",
            markers.TAG_HIDDEN_CHECK,
            {"id": "9.3", "points": 1},
        ),
        code(
            "# Check 9.4: the mean of the shifted TRAIN\nprint(result)",
            "check-4",
            markers.TAG_HIDDEN_CHECK,
            {"id": "9.4", "points": 1},
        ),
    ]
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return write_course(tmp_path_factory.mktemp("course"), EXERCISE, solution())


@pytest.fixture(scope="module")
def bundle(course: Settings) -> Bundle:
    return build_bundle(course, EXERCISE)


def submission(bundle: Bundle, *stubbed: str, **sources: str) -> NotebookNode:
    """The solution as submitted: the exercise cells ``stubbed`` left as their stubs, others replaced by id."""
    nb = solution()
    nb.cells = [c for c in nb.cells if markers.TAG_HIDDEN_CHECK not in c.metadata.get("tags", [])]
    stubs = {c.id: c.source for c in bundle.template.cells if c.id in stubbed}
    for cell in nb.cells:
        cell.source = sources.get(cell.id, stubs.get(cell.id, cell.source))
    nb.metadata[markers.META_GRADER] = {markers.META_EXERCISE: EXERCISE}
    return nb


def grade(settings: Settings, nb: NotebookNode) -> Result:
    return grade_notebook(settings, nbformat.writes(nb).encode(), name="submission.ipynb")


def verdicts(result: Result) -> list[tuple[str, str, str]]:
    return [(c.id, c.status, c.message) for c in result.checks]


def test_solution_scores_full_marks(course: Settings, bundle: Bundle) -> None:
    """Does the toy's own solution earn every point?"""
    result = grade(course, submission(bundle))
    assert (result.score, result.max_score) == (4, 4), verdicts(result)


def test_a_stub_in_exercise_3_is_blamed_on_exercise_3(course: Settings, bundle: Bundle) -> None:
    """Only exercise 9.3 left as its stub: do its checks name 9.3 (not 9.1, whose helper called the stub)?

    Check 9.4 prints ``result``: exercise 9.3 raised before binding it again, so the check would
    print exercise 9.1's value; it is not run, naming exercise 9.3, instead of "output differs".
    """
    result = grade(course, submission(bundle, "ex-3"))
    assert verdicts(result) == [
        ("9.1", "pass", ""),
        ("9.2", "pass", ""),
        ("9.3", "not-run", NOT_DONE_3),
        ("9.4", "not-run", NOT_DONE_3),
    ]


def test_a_done_method_still_passes_when_the_rest_is_a_stub(course: Settings, bundle: Bundle) -> None:
    """Shift.predict written, the top-level stub left: does check 9.3 pass while 9.4 is not run?"""
    done = THIRD.replace(
        "        # BEGIN SOLUTION\n        return x + self.k\n        # END SOLUTION", "        return x + self.k"
    )
    stub = f"{done.split('# BEGIN SOLUTION')[0]}{markers.CODE_STUB}\nresult = mean_of(predict_all(model, TRAIN))"
    result = grade(course, submission(bundle, **{"ex-3": stub}))
    assert verdicts(result)[2:] == [("9.3", "pass", ""), ("9.4", "not-run", NOT_DONE_3)]


def test_the_whole_stub_names_each_exercise(course: Settings, bundle: Bundle) -> None:
    """Every exercise left as its stub: does each check name its own exercise?"""
    result = grade(course, submission(bundle, "ex-1", "ex-2", "ex-3"))
    assert result.score == 0
    assert [m for _, _, m in verdicts(result)] == [
        "not run: exercise 9.1 raised NotImplementedError",
        "not run: exercise 9.2 raised NotImplementedError",
        "not run: exercise 9.1 raised NotImplementedError",  # predict_all, the first stub check 9.3 reaches
        NOT_DONE_3,
    ]
