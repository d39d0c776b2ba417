"""The exercises a learner can submit: ids, titles and points, read from the repository.

An exercise id is the stem of ``solutions/<id>.ipynb``; its title is the first heading of the
learner's ``exercises/<id>.ipynb`` (the id when there is none); its points are the sum over
the solution's graded cells, hidden ones included, and its answers an instructor grades
(``manual``); its device (``cpu``/``gpu``) is the solution's ``grader.device``, which routes its
submissions (:mod:`grader.service.registry`). Reading is cached per file modification time, so a
service picks up a new exercise without a restart.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

from grader.authoring import declared_device
from grader.errors import GraderError
from grader.format import markers
from grader.format.cells import graded_cells
from grader.format.notebooks import read_notebook
from grader.format.rubric import manual_answers
from grader.grading.bundle import known_exercises
from grader.settings import Settings

_HEADING = re.compile(r"^#{1,2}\s+(?P<title>\S.*?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    #: None when the solution cannot be read or its graded cells break the authoring rules (the
    #: grader will say why when a submission arrives)
    max_points: float | None
    #: the device the exercise asks to be graded on: ``cpu`` or ``gpu`` (``cpu`` when the solution
    #: names another: grading then says what is wrong with it)
    device: str = markers.DEVICE_CPU

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "max_points": self.max_points, "device": self.device}


def _read(path: Path) -> NotebookNode | None:
    try:
        return read_notebook(path)
    except GraderError:
        return None


def _title(exercise_path: Path, fallback: str) -> str:
    nb = _read(exercise_path)
    for cell in nb.cells if nb is not None else []:
        if cell.cell_type == "markdown":
            found = _HEADING.search(cell.source)
            if found:
                return found.group("title")
    return fallback


def _device(solution_path: Path) -> str:
    nb = _read(solution_path)
    try:
        return declared_device(nb, path=solution_path.name) if nb is not None else markers.DEVICE_CPU
    except GraderError:
        return markers.DEVICE_CPU


def _max_points(solution_path: Path) -> float | None:
    nb = _read(solution_path)
    if nb is None or not nb.cells:
        return None
    try:
        checks = graded_cells(nb)
        answers = manual_answers(nb)
    except GraderError:  # its graded cells or its rubrics break the authoring rules
        return None
    return sum((check.points for check in checks), 0.0) + sum((answer.points for answer in answers), 0.0)


_cache: dict[tuple[str, float, float], Exercise] = {}
_lock = threading.Lock()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def exercise_info(settings: Settings, exercise_id: str) -> Exercise:
    solution = settings.solutions_dir / f"{exercise_id}.ipynb"
    learner = settings.exercises_dir / f"{exercise_id}.ipynb"
    key = (str(solution), _mtime(solution), _mtime(learner))
    with _lock:
        if key not in _cache:
            _cache[key] = Exercise(
                id=exercise_id,
                title=_title(learner, exercise_id),
                max_points=_max_points(solution),
                device=_device(solution),
            )
        return _cache[key]


def list_exercises(settings: Settings) -> list[Exercise]:
    """Every exercise, in id order."""
    return [exercise_info(settings, exercise_id) for exercise_id in known_exercises(settings)]
