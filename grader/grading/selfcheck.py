"""``grader check``: the learner's self-check, with the visible checks only.

It runs the learner's notebook as they wrote it — their cells, in their order, with the
visible check cells it contains — in a fresh kernel whose working directory is the notebook's
own folder. A check passes when its cell runs without an error; there is no bundle, no hidden
check and no reference output here (those are the grader's, see :mod:`grader.grading.engine`).
The files the exercise ships are next to it in ``exercises/``; a notebook kept elsewhere gets
those it lacks copied next to it (read-only, as the Colab setup cell fetches them), never
replacing a file that is there.

Manually graded answers (``manual`` cells) do not run and score nothing here, as in grading: the
result lists them (:attr:`Result.manual`, "graded by an instructor"), read from the course's
``exercises/<id>.ipynb`` when it is there, else from the learner's notebook.

This runs unsandboxed on purpose: it is the learner's code on the learner's machine.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

from nbformat import NotebookNode

from grader import authoring
from grader.errors import AuthoringError, InvalidNotebook
from grader.format import markers
from grader.format.cells import GradedCell, cell_role, graded_cells
from grader.format.notebooks import read_notebook
from grader.format.rubric import ManualAnswer, manual_answers
from grader.grading import results
from grader.grading.assembly import learner_source
from grader.grading.engine import read_submission, with_cell_ids
from grader.grading.results import Result
from grader.grading.runner import run_notebook
from grader.grading.scoring import Timeouts, score_checks
from grader.settings import Settings


def self_check_notebook(nb: NotebookNode) -> NotebookNode:
    """The learner's notebook as it is run: hidden checks (if any), manual answers (grading does not run
    them either) and the submit cell dropped, outputs cleared."""
    runnable = copy.deepcopy(nb)
    runnable.cells = [
        cell
        for cell in runnable.cells
        if cell_role(cell) not in (markers.TAG_HIDDEN_CHECK, markers.TAG_MANUAL) and cell.get("id") != markers.SUBMIT_ID
    ]
    for cell in runnable.cells:
        cell.source = learner_source(cell)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return runnable


def visible_checks(nb: NotebookNode) -> list[GradedCell]:
    """The ``check`` cells, read leniently: a learner may have touched a title or the metadata."""
    return [check for check in graded_cells(nb, strict=False) if not check.hidden]


def exercise_files(settings: Settings, exercise: object) -> dict[str, Path]:
    """The files ``exercise`` ships, from this course's ``solutions/`` (none when it has no such solution)."""
    if not isinstance(exercise, str) or Path(exercise).name != exercise or exercise.startswith("."):
        return {}
    path = f"solutions/{exercise}.ipynb"
    try:
        solution = read_notebook(settings.solutions_dir / f"{exercise}.ipynb")
        return authoring.declared_files(solution, root=settings.root, solutions_dir=settings.solutions_dir, path=path)
    except (InvalidNotebook, AuthoringError):  # the author's problem, which `grader assign` reports
        return {}


def exercise_manual(settings: Settings, exercise: object, nb: NotebookNode) -> tuple[ManualAnswer, ...]:
    """The exercise's manual answers: from ``exercises/<exercise>.ipynb`` when the course has it, else from ``nb``."""
    if isinstance(exercise, str) and Path(exercise).name == exercise and not exercise.startswith("."):
        try:
            return tuple(manual_answers(read_notebook(settings.exercises_dir / f"{exercise}.ipynb"), strict=False))
        except (InvalidNotebook, OSError):
            pass
    return tuple(manual_answers(nb, strict=False))


def check_notebook(settings: Settings, path: Path) -> Result:
    """Run a learner's notebook with its visible checks; pass = the check cell ran without error."""
    started = time.perf_counter()
    name = str(path)
    try:
        nb = read_submission(path, name=name)
    except InvalidNotebook as exc:
        return results.invalid(name, str(exc), duration_s=time.perf_counter() - started)
    meta = nb.metadata.get(markers.META_GRADER)
    exercise = meta.get(markers.META_EXERCISE) if isinstance(meta, dict) else None
    if isinstance(exercise, str) and exercise:  # saved without cell ids: the submit cell is known by its id
        nb = with_cell_ids(settings, nb, exercise)
    runnable = self_check_notebook(nb)
    checks = visible_checks(runnable)
    if not checks:
        return results.invalid(
            name,
            f"{name}: no check cells (code cells tagged {markers.TAG_CHECK!r}); start from the notebook "
            "in exercises/, which has them",
            exercise=exercise,
            duration_s=time.perf_counter() - started,
        )
    outcome = run_notebook(
        runnable,
        kernel_name=settings.kernel_name,
        cell_timeout_s=settings.cell_timeout_s,
        wall_timeout_s=settings.grading_timeout_s,
        mode="run",
        workdir=path.resolve().parent,
        files=exercise_files(settings, exercise) or None,
    )
    scored = score_checks(runnable, checks, outcome, Timeouts(settings.cell_timeout_s, settings.grading_timeout_s))
    return Result(
        exercise=exercise if isinstance(exercise, str) else path.stem,
        submission=name,
        status="error" if scored.grading_error else "graded",
        score=scored.score,
        max_score=scored.max_score,
        duration_s=time.perf_counter() - started,
        device=outcome.device,
        checks=scored.checks,
        message=results.grading_error(outcome.runner_failure()) if scored.grading_error else "",
        isolation=results.LOCAL_SELF_CHECK,
        manual=exercise_manual(settings, exercise, nb),
    )
