"""Every lesson notebook of the course runs to the end under the smoke profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.book import lessons
from grader.settings import Settings, load_settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
#: shared with tests/content/test_site.py: a lesson executed (and cached) once serves both
BUILD_DIR = REPO / "_build" / "test-content"
LESSONS = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))


def content_settings() -> Settings:
    return load_settings(root=REPO, build_dir=BUILD_DIR)


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_runs_under_the_smoke_profile(name: str) -> None:
    """Does the lesson execute without an error, within its time limits, with profile='smoke'?

    A lesson is re-run whenever its cells, the course package or requirements.txt change; an
    unchanged lesson that already passed counts as passing (its cache key proves it).
    """
    (run,) = lessons.run_lessons(content_settings(), [name], profile="smoke")
    assert run.executed.is_file()
    assert run.status in ("executed", "cached")
