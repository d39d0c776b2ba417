"""A learner's Jupyter that saves nbformat 4.4 drops cell ids: such a notebook is graded like any other.

The real exercise 00, finished with the solution's answers (and left as the stub), saved as
nbformat 4.4 without cell ids (and without cell metadata, as the worst case), is graded
through the whole pipeline: full marks for the answers, zero for the stub.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode

from grader.format.cells import exercise_cells
from grader.format.notebooks import read_notebook
from grader.grading.engine import grade_submissions
from grader.settings import Settings, load_settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXERCISE = "00-learning-ml-engineering"


def saved_as_4_4(nb: NotebookNode, path: Path, *, keep_metadata: bool) -> Path:
    raw = json.loads(nbformat.writes(nb))
    raw["nbformat_minor"] = 4
    for cell in raw["cells"]:
        del cell["id"]
        if not keep_metadata:
            cell["metadata"] = {}
    path.write_text(json.dumps(raw, indent=1), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(root=REPO, build_dir=tmp_path_factory.mktemp("old-nbformat"))


def test_a_notebook_saved_as_nbformat_4_4_is_graded(settings: Settings, tmp_path: Path) -> None:
    """Does the solved exercise saved without ids earn full marks, and the stub saved so earn zero?"""
    stub = read_notebook(REPO / "exercises" / f"{EXERCISE}.ipynb")
    answers = {cell.id: cell.source for cell in read_notebook(REPO / "solutions" / f"{EXERCISE}.ipynb").cells}
    solved = nbformat.from_dict(json.loads(nbformat.writes(stub)))
    for _, cell in exercise_cells(solved):
        cell.source = answers[cell.id]
    paths = [
        saved_as_4_4(solved, tmp_path / "solved.ipynb", keep_metadata=False),
        saved_as_4_4(solved, tmp_path / "solved-with-metadata.ipynb", keep_metadata=True),
        saved_as_4_4(stub, tmp_path / "stub.ipynb", keep_metadata=False),
    ]
    solved_result, with_metadata, stub_result = grade_submissions(settings, paths, exercise=EXERCISE, jobs=2)
    for result in (solved_result, with_metadata):
        assert (result.status, result.message) == ("graded", "")
        assert result.score == result.max_score > 0, [(c.id, c.status, c.message) for c in result.checks]
    assert (stub_result.status, stub_result.score) == ("graded", 0)
    assert all(c.status == "not-run" and "NotImplementedError" in c.message for c in stub_result.checks)
