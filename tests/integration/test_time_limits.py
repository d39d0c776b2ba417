"""A submission's total time is bounded, not only each cell's, and the feedback names the limit that stopped it.

Graded for real (sandboxed kernel, pytest + nbval), on a toy exercise whose two exercise cells each
sleep well under the limit for one cell but together run past the limit for a whole notebook.
"""

from __future__ import annotations

import dataclasses

import nbformat
import pytest
from nbformat import NotebookNode, v4
from toy_course import code, write_course

from grader.format import markers
from grader.grading.bundle import build_bundle
from grader.grading.engine import grade_notebook
from grader.grading.results import render_text
from grader.settings import Settings

pytestmark = pytest.mark.slow

EXERCISE = "95-time-limits"
FIRST = "def double(x):\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION"
HIDDEN = markers.TAG_HIDDEN_CHECK
SECOND = "def triple(x):\n    # BEGIN SOLUTION\n    return 3 * x\n    # END SOLUTION"


def solution() -> NotebookNode:
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        code(FIRST, "ex-double", markers.TAG_EXERCISE, {"id": "5.1"}),
        code("# Check 5.1: doubles\nprint(double(21))", "check-1", HIDDEN, {"id": "5.1", "points": 1}),
        code(SECOND, "ex-triple", markers.TAG_EXERCISE, {"id": "5.2"}),
        code("# Check 5.2: triples\nprint(triple(14))", "check-2", HIDDEN, {"id": "5.2", "points": 1}),
    ]
    return nb


def slow_learner_copy(seconds: float) -> bytes:
    """The solution as submitted, each exercise cell sleeping ``seconds`` before it defines its function."""
    nb = solution()
    nb.cells = [c for c in nb.cells if markers.TAG_HIDDEN_CHECK not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        cell.source = f"import time\ntime.sleep({seconds})\n" + cell.source
    nb.metadata[markers.META_GRADER] = {markers.META_EXERCISE: EXERCISE}
    return nbformat.writes(nb).encode()


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The toy course, its grading bundle built under the usual limits (the reference run is not timed here)."""
    settings = write_course(tmp_path_factory.mktemp("course"), EXERCISE, solution())
    build_bundle(settings, EXERCISE)
    return settings


def test_a_notebook_of_slow_cells_is_stopped_at_the_limit_for_a_whole_notebook(course: Settings) -> None:
    """Two cells of 3 s each, under the 30 s limit for one cell, past the 4 s limit for the whole notebook: is
    grading stopped, and does the feedback say it was the whole notebook's limit?"""
    settings = dataclasses.replace(course, cell_timeout_s=30.0, grading_timeout_s=4.0)
    result = grade_notebook(settings, slow_learner_copy(3.0), name="submission.ipynb")
    assert result.status == "graded" and result.score < result.max_score
    assert result.message == (
        "stopped by a limit: grading a whole notebook may take 4 s (all its cells together); "
        "the cells after that point did not run"
    )
    assert result.checks[-1].message == "not run: grading stopped at the 4 s limit for a whole notebook"
    assert result.message in render_text(result)
