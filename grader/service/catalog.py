"""The exercises a learner can submit: ids, titles and points, read from the repository.

An exercise id is the stem of ``solutions/<id>.ipynb``; its title is the first heading of the
learner's ``exercises/<id>.ipynb`` (the id when there is none); its points are the sum over
the solution's graded cells, hidden ones included. Reading is cached per file modification
time, so a service picks up a new exercise without a restart.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.format import markers
from grader.grading.bundle import known_exercises
from grader.settings import Settings

_HEADING = re.compile(r"^#{1,2}\s+(?P<title>\S.*?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    #: None when the solution cannot be read (the grader will say why when a submission arrives)
    max_points: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "max_points": self.max_points}


def _cells(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    cells = data.get("cells") if isinstance(data, dict) else None
    return [cell for cell in cells if isinstance(cell, dict)] if isinstance(cells, list) else []


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _title(exercise_path: Path, fallback: str) -> str:
    for cell in _cells(exercise_path):
        if cell.get("cell_type") == "markdown":
            found = _HEADING.search(_source(cell))
            if found:
                return found.group("title")
    return fallback


def _max_points(solution_path: Path) -> float | None:
    cells = _cells(solution_path)
    if not cells:
        return None
    total = 0.0
    for cell in cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if any(tag in markers.GRADED_TAGS for tag in tags):
            meta = cell.get("metadata", {}).get(markers.META_GRADER, {})
            points = meta.get(markers.META_POINTS) if isinstance(meta, dict) else None
            if isinstance(points, (int, float)):
                total += float(points)
    return total


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
            _cache[key] = Exercise(id=exercise_id, title=_title(learner, exercise_id),
                                   max_points=_max_points(solution))
        return _cache[key]


def list_exercises(settings: Settings) -> list[Exercise]:
    """Every exercise, in id order."""
    return [exercise_info(settings, exercise_id) for exercise_id in known_exercises(settings)]
