"""An nbgrader assignment and an otter-grader assignment, imported, verified and graded with real kernels.

Both are small and built here in code, in each tool's own format. Each is imported into a
temporary course root with :func:`grader.importers.import_assignment`, proved by
:func:`grader.grading.verify.verify` (solution full marks, stub zero, stable re-runs), and three
submissions of each are graded: the right answer (full marks), a wrong one (loses points) and a
differently written right one (full marks). The scores are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from grader import authoring, importers
from grader.format import markers
from grader.format.cells import cell_role
from grader.format.notebooks import read_notebook
from grader.grading.engine import grade_notebook
from grader.grading.results import Result
from grader.grading.verify import verify
from grader.settings import Settings, load_settings

pytestmark = pytest.mark.slow

NBGRADER_ID = "21-means"
OTTER_ID = "22-squares"


def nbgrader_cell(cell: NotebookNode, grade_id: str, *, solution: bool = False, points: float | None = None):
    meta = {"grade": points is not None, "grade_id": grade_id, "locked": False, "schema_version": 3}
    meta["solution"] = solution
    if points is not None:
        meta["points"] = points
    cell.metadata["nbgrader"] = meta
    return cell


def nbgrader_assignment() -> NotebookNode:
    """nbgrader's source version: two answers; visible asserts, hidden tests that assert, one in a loop."""
    mean = '''def mean_of(values):
    """The arithmetic mean of a list of numbers."""
    ### BEGIN SOLUTION
    return sum(values) / len(values)
    ### END SOLUTION'''
    shares = '''def shares(counts):
    """Each count as a share of the total, in order."""
    ### BEGIN SOLUTION
    total = sum(counts)
    return [c / total for c in counts]
    ### END SOLUTION'''
    mean_tests = textwrap.dedent(
        '''\
        """Check that mean_of averages."""
        assert mean_of([1, 2, 3]) == 2
        ### BEGIN HIDDEN TESTS
        assert mean_of([0.1, 0.2, 0.4]) == 0.7 / 3, "wrong mean"
        for n in range(1, 5):
            assert mean_of(list(range(n))) == (n - 1) / 2
        ### END HIDDEN TESTS'''
    )
    share_tests = textwrap.dedent(
        '''\
        """Check that shares sum to one and keep the order."""
        ### BEGIN HIDDEN TESTS
        assert shares([1, 3]) == [0.25, 0.75]
        assert abs(sum(shares([2, 5, 9])) - 1) < 1e-9
        ### END HIDDEN TESTS'''
    )
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Means and shares"),
            nbgrader_cell(new_code_cell(mean), "mean_of", solution=True),
            nbgrader_cell(new_code_cell(mean_tests), "mean_tests", points=2),
            nbgrader_cell(new_code_cell(shares), "shares", solution=True),
            nbgrader_cell(new_code_cell(share_tests), "share_tests", points=2),
            nbgrader_cell(new_markdown_cell("Means hide outliers."), "why", solution=True, points=1),
        ]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def otter_assignment() -> NotebookNode:
    """otter's master notebook: two questions, public and hidden tests, points per test and per question."""

    def raw(text: str) -> NotebookNode:
        return new_raw_cell(textwrap.dedent(text).strip())

    nb = new_notebook(
        cells=[
            raw("# ASSIGNMENT CONFIG\nname: squares\nfiles:\n    - data.csv"),
            new_markdown_cell("# Squares and evens"),
            raw("# BEGIN QUESTION\nname: q1\npoints: 3"),
            new_markdown_cell("Define `square`."),
            raw("# BEGIN SOLUTION"),
            new_code_cell("def square(x):\n    return x * x # SOLUTION"),
            raw("# END SOLUTION"),
            raw("# BEGIN TESTS"),
            new_code_cell("square(3) == 9"),
            new_code_cell("# HIDDEN\nsquare(-4) == 16"),
            new_code_cell(
                '""" # BEGIN TEST CONFIG\nhidden: true\npoints: 1\n""" # END TEST CONFIG\nassert square(1.5) == 2.25'
            ),
            raw("# END TESTS"),
            raw("# END QUESTION"),
            raw("# BEGIN QUESTION\nname: q2\nall_or_nothing: true\npoints: 2"),
            raw("# BEGIN SOLUTION"),
            new_code_cell("evens = [n for n in range(10) if n % 2 == 0] # SOLUTION"),
            raw("# END SOLUTION"),
            raw("# BEGIN TESTS"),
            new_code_cell("len(evens) == 5"),
            new_code_cell("# HIDDEN\nevens == [0, 2, 4, 6, 8]"),
            raw("# END TESTS"),
            raw("# END QUESTION"),
            raw("# BEGIN QUESTION\nname: q3\nmanual: true\npoints: 1"),
            new_markdown_cell("Why is `square(-x) == square(x)`?"),
            raw("# BEGIN SOLUTION"),
            new_markdown_cell("Because a negative times a negative is positive."),
            raw("# END SOLUTION"),
            raw("# END QUESTION"),
        ]
    )
    for number, cell in enumerate(nb.cells, start=1):
        cell.id = f"cell-{number}"
    nb.cells[5].id, nb.cells[15].id = "square", "evens"  # the answer cells (their ids stay in the solution)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


#: exercise sources of three submissions per assignment: right, wrong, right but written differently
SUBMISSIONS = {
    NBGRADER_ID: {
        "right": None,
        "wrong": {  # floor division: right on the visible check's whole numbers, wrong on the hidden ones
            "mean_of": "def mean_of(values):\n    return sum(values) // len(values)",
            "shares": "def shares(counts):\n    return [c / max(counts) for c in counts]",
        },
        "alternative": {
            "mean_of": "import statistics\n\ndef mean_of(values):\n    return statistics.fmean(values)",
            "shares": (
                "def shares(counts):\n    result = []\n    total = 0\n    for c in counts:\n        total += c\n"
                "    for c in counts:\n        result.append(c / total)\n    return result"
            ),
        },
    },
    OTTER_ID: {
        "right": None,
        "wrong": {"square": "def square(x):\n    return x * abs(x)", "evens": "evens = list(range(0, 10, 3))"},
        "alternative": {"square": "def square(x):\n    return x ** 2", "evens": "evens = list(range(0, 10, 2))"},
    },
}


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("course")
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\n", encoding="utf-8")
    (root / "_config.yml").write_text(
        "title: imported\nrepository:\n  url: https://github.com/example/imported\n  branch: main\n", encoding="utf-8"
    )
    (root / "solutions").mkdir()
    sources = tmp_path_factory.mktemp("sources")
    nbformat.write(nbgrader_assignment(), sources / "means.ipynb")
    nbformat.write(otter_assignment(), sources / "squares.ipynb")
    settings = load_settings(
        root, build_dir=root / "_build", cell_timeout_s=60.0, grading_timeout_s=120.0, kernel_name="python3"
    )
    for tool, name, exercise in (("nbgrader", "means", NBGRADER_ID), ("otter", "squares", OTTER_ID)):
        report = importers.import_assignment(settings, tool, sources / f"{name}.ipynb", exercise_id=exercise)
        print(f"\n{importers.render_report(report)}")
        assert report.ok
    return settings


def submission(settings: Settings, exercise: str, sources: dict[str, str] | None) -> bytes:
    """The learner's exercise notebook (as `grader assign` makes it) with exercise cells answered by cell id."""
    solution = read_notebook(settings.solutions_dir / f"{exercise}.ipynb")
    stub = authoring.make_exercise(
        solution, exercise_id=exercise, repo_url="https://github.com/example/i", branch="main"
    )
    answers = {c.id: c.source for c in solution.cells if cell_role(c) == markers.TAG_EXERCISE}
    for cell in stub.cells:
        if cell.id in answers:
            cell.source = (sources or {}).get(cell.id, answers[cell.id])
    return nbformat.writes(stub).encode()


def test_imported_assignments_verify(course: Settings) -> None:
    """Do both imported assignments verify: solution full marks, stub zero on every check, stable re-runs?"""
    report = verify(course)
    for exercise in report.exercises:
        scores = f"solution {exercise.solution_score:g}/{exercise.max_score:g}, stub {exercise.stub_score:g}"
        print(f"verify {exercise.exercise}: {scores}")
    assert report.ok, [e.problems for e in report.exercises]
    assert {e.exercise: (e.solution_score, e.max_score, e.stub_score) for e in report.exercises} == {
        NBGRADER_ID: (4, 4, 0),
        OTTER_ID: (5, 5, 0),
    }


@pytest.mark.parametrize("exercise", [NBGRADER_ID, OTTER_ID])
def test_right_wrong_and_alternative_submissions(course: Settings, exercise: str) -> None:
    """Does the right answer earn full marks, a wrong one lose points, a differently written right one full marks?"""
    scores: dict[str, Result] = {}
    for kind, answers in SUBMISSIONS[exercise].items():
        data = submission(course, exercise, answers)
        scores[kind] = grade_notebook(course, data, exercise=exercise, name=f"{exercise}-{kind}.ipynb")
    for kind, result in scores.items():
        verdicts = ", ".join(f"{c.id} {c.status} {c.points:g}/{c.max_points:g}" for c in result.checks)
        print(f"{exercise} {kind}: {result.score:g}/{result.max_score:g} ({verdicts})")
    assert scores["right"].score == scores["right"].max_score > 0
    assert scores["wrong"].status == "graded" and scores["wrong"].score < scores["wrong"].max_score
    assert scores["alternative"].score == scores["alternative"].max_score
    assert Path(course.solutions_dir / f"{exercise}.ipynb").is_file()
