"""The real course's feedback cannot carry a hidden check's source out of the sandbox.

Learner code runs in the kernel that later runs the hidden checks, so it can see their source
(an IPython ``pre_run_cell`` hook does). Whatever a later cell's feedback quotes is a channel:
a visible check's assertion message, an exception's class name. Graded feedback therefore
quotes neither after the first hidden check.
"""

from __future__ import annotations

import base64
from pathlib import Path

import nbformat
import pytest

from grader.format import markers
from grader.format.cells import exercise_cells
from grader.grading.engine import grade_notebook
from grader.grading.results import WITHHELD, render_html, render_json, render_text
from grader.settings import load_settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXERCISE = "00-learning-ml-engineering"

#: exercise 0.1, correct, plus a hook that keeps the source of every cell that runs after it
SPY = """
import builtins
builtins._seen = []
get_ipython().events.register("pre_run_cell", lambda info: builtins._seen.append(info.raw_cell))
"""
#: exercise 0.2: every call reports what the spy saw, encoded, in an assertion message
SMUGGLE = """
import base64, builtins
class LearningPlan:
    pass
def make_plan(goal, route, weekly_hours, project):
    seen = "\\n".join(builtins._seen)
    raise AssertionError("LEAK:" + base64.b64encode(seen.encode()).decode())
"""


def test_a_visible_check_after_a_hidden_one_does_not_quote_learner_text(tmp_path: Path) -> None:
    """Does check 0.4 (visible, after hidden 0.2 and 0.3) keep its message out of graded feedback?"""
    settings = load_settings(REPO)
    nb = nbformat.read(REPO / "exercises" / f"{EXERCISE}.ipynb", as_version=4)
    solution = nbformat.read(REPO / "solutions" / f"{EXERCISE}.ipynb", as_version=4)
    answers = {c.metadata[markers.META_GRADER][markers.META_ID]: c.source for _, c in exercise_cells(solution)}
    for _, cell in exercise_cells(nb):
        exercise_id = cell.metadata[markers.META_GRADER][markers.META_ID]
        cell.source = {"0.1": answers["0.1"] + SPY, "0.2": SMUGGLE}.get(exercise_id, answers[exercise_id])
    path = tmp_path / "spy.ipynb"
    nbformat.write(nb, path)
    result = grade_notebook(settings, path, exercise=EXERCISE)
    feedback = render_text(result) + render_json(result) + render_html([result])
    assert "LEAK:" not in feedback
    hidden_sources = [c.source for c in solution.cells if markers.TAG_HIDDEN_CHECK in c.metadata.get("tags", [])]
    for source in hidden_sources:
        encoded = base64.b64encode(source.encode()).decode()
        assert encoded[:24] not in feedback
    check_04 = next(c for c in result.checks if c.id == "0.4")
    assert check_04.status == "fail" and WITHHELD in check_04.message
