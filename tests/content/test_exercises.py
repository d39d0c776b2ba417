"""The course's own exercises: generated stubs in sync, and every solution proven by verify."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader import cli
from grader.format import markers
from grader.grading import verify
from grader.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
EXERCISES = sorted(p.stem for p in (REPO / "solutions").glob("*.ipynb"))


def test_exercises_are_in_sync(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Does `grader assign --check` find exercises/ exactly as solutions/ generates it?"""
    for key in [k for k in os.environ if k.startswith(markers.ENV_PREFIX)]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(REPO)
    code = cli.main(["assign", "--check"])
    assert code == 0, capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("exercise", EXERCISES)
def test_exercise_verifies(exercise: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Does the solution score full marks, the stub zero on every check, and three gradings agree?"""
    settings = load_settings(root=REPO, build_dir=tmp_path_factory.mktemp(f"verify-{exercise}"))
    report = verify.verify(settings, [exercise])
    assert report.ok, verify.render_text(report)
    (only,) = report.exercises
    assert only.solution_score == only.max_score > 0
    assert only.stub_score == 0
