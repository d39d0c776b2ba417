"""The course's own exercises: generated stubs in sync, and every solution proven by verify."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader import cli
from grader.authoring import colab
from grader.format import markers
from grader.format.notebooks import read_notebook
from grader.grading import verify
from grader.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
#: grading bundles built once for the content tests (keyed by the solution's bytes, built under a lock),
#: shared with test_discrimination.py and between pytest-xdist workers
GRADING_BUILD_DIR = REPO / "_build" / "test-grading"
EXERCISES = sorted(p.stem for p in (REPO / "solutions").glob("*.ipynb"))


def test_exercises_are_in_sync(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Does `grader assign --check` find exercises/ exactly as solutions/ generates it?"""
    for key in [k for k in os.environ if k.startswith(markers.ENV_PREFIX)]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(REPO)
    code = cli.main(["assign", "--check"])
    assert code == 0, capsys.readouterr().err


LEARNER_NOTEBOOKS = sorted(
    p.relative_to(REPO).as_posix() for folder in ("notebooks", "exercises") for p in (REPO / folder).glob("*.ipynb")
)


@pytest.mark.parametrize("notebook", LEARNER_NOTEBOOKS)
def test_every_learner_notebook_can_set_itself_up_on_colab(notebook: str) -> None:
    """Does each lesson and exercise have the generated Colab setup cell under its title, as assign makes it?"""
    nb = read_notebook(REPO / notebook)
    ids = [cell.get("id") for cell in nb.cells]
    assert markers.COLAB_SETUP_ID in ids, f"{notebook}: no Colab setup cell; run `grader assign`"
    at = ids.index(markers.COLAB_SETUP_ID)
    assert nb.cells[0].source.startswith("#") and at <= 2, f"{notebook}: the setup cell belongs under the title"
    repo_url, branch = colab.repository(load_settings(root=REPO))
    assert nb.cells[at].source == colab.setup_cell(repo_url, branch).source
    if notebook.startswith("exercises/"):
        assert ids[-1] == markers.SUBMIT_ID, f"{notebook}: an exercise ends with its submit cell"


@pytest.mark.slow
@pytest.mark.parametrize("exercise", EXERCISES)
def test_exercise_verifies(exercise: str) -> None:
    """Does the solution score full marks, the stub zero on every check, and its gradings agree?

    Two gradings of the solution (``grader verify`` makes three) and the bundle's reference run:
    three executions that must agree, at a quarter less of the suite's time.
    """
    settings = load_settings(root=REPO, build_dir=GRADING_BUILD_DIR)
    report = verify.verify(settings, [exercise], reruns=2)
    assert report.ok, verify.render_text(report)
    (only,) = report.exercises
    assert only.solution_score == only.max_score > 0
    assert only.stub_score == 0
