"""Grading submissions: read → pick the exercise → assemble → run under nbval → score.

Each step is a small function; :func:`grade_notebook` strings them together for one
submission and :func:`grade_submissions` grades many in parallel. A submission that is not a
gradable notebook (not JSON, wrong format, too large, unknown or different exercise) becomes
a :class:`~grader.grading.results.Result` with status ``invalid`` and a message saying what to do —
never an exception. A solution that breaks the authoring rules is the instructor's problem and
raises :class:`~grader.errors.AuthoringError`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING

from nbformat import NotebookNode

from grader.errors import InvalidNotebook
from grader.format import markers
from grader.format.cellids import lacks_cell_ids, recover_cell_ids
from grader.format.cells import cell_role
from grader.format.notebooks import DEFAULT_MAX_BYTES, parse_notebook, read_notebook
from grader.grading import results
from grader.grading.assembly import assemble
from grader.grading.bundle import Bundle, build_bundle, exercise_device, known_exercises
from grader.grading.placement import KernelSetup, Placement, cpu_placement, kernel_setup
from grader.grading.results import Result
from grader.grading.runner import RunOutcome, run_notebook
from grader.grading.scoring import Timeouts, score_checks, stopped_by
from grader.sandbox.doctor import require_sandbox
from grader.settings import Settings

if TYPE_CHECKING:
    from grader.grading.warm import WarmPool


def read_submission(source: Path | bytes, *, name: str, max_bytes: int = DEFAULT_MAX_BYTES) -> NotebookNode:
    """Parse a submission (a path or its bytes).

    Raises:
        InvalidNotebook: unreadable, too large, not JSON, not nbformat 4, or not a valid notebook.
    """
    if isinstance(source, Path):
        try:
            size = source.stat().st_size
        except OSError as exc:
            raise InvalidNotebook(f"{name}: cannot be read ({exc.strerror}); check the path") from None
        if size > max_bytes:
            raise InvalidNotebook(
                f"{name}: the file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit; "
                "clear the outputs (Edit → Clear All Outputs) and save again"
            )
        source = source.read_bytes()
    return parse_notebook(source, name=name, max_bytes=max_bytes)


def resolve_exercise(settings: Settings, nb: NotebookNode, exercise: str | None, *, name: str) -> str:
    """The exercise id: ``exercise`` if given, else the notebook's ``metadata.grader.exercise``.

    Raises:
        InvalidNotebook: no id anywhere, or an id with no ``solutions/<id>.ipynb``.
    """
    known = known_exercises(settings)
    listing = ", ".join(known) or "none"
    if exercise is None:
        meta = nb.metadata.get(markers.META_GRADER)
        exercise = meta.get(markers.META_EXERCISE) if isinstance(meta, dict) else None
        if not isinstance(exercise, str) or not exercise:
            raise InvalidNotebook(
                f"{name}: the notebook does not say which exercise it is (no metadata "
                f"{markers.META_GRADER}.{markers.META_EXERCISE}); start from the notebook in exercises/, "
                f"or name the exercise with --exercise (known exercises: {listing})"
            )
    if exercise not in known:
        raise InvalidNotebook(f"{name}: unknown exercise {exercise[:100]!r}; known exercises: {listing}")
    return exercise


def with_cell_ids(
    settings: Settings, submission: NotebookNode, exercise: str, template: NotebookNode | None = None
) -> NotebookNode:
    """``submission`` with an id on every cell: those saved without one (nbformat 4.4 or older) get theirs back.

    The ids are recovered (:func:`grader.format.cellids.recover_cell_ids`) from the exercise
    notebook the learner started from, ``exercises/<exercise>.ipynb``, or, without that file,
    from ``template`` (the grading bundle's) less its hidden checks. With neither, when every
    cell has an id, or when the notebook's metadata names another exercise, the submission is
    returned as it is.
    """
    if not lacks_cell_ids(submission) or Path(exercise).name != exercise or exercise.startswith("."):
        return submission
    meta = submission.metadata.get(markers.META_GRADER)
    named = meta.get(markers.META_EXERCISE) if isinstance(meta, dict) else None
    if isinstance(named, str) and named != exercise:  # the notebook says it is another exercise
        return submission
    try:
        reference = read_notebook(settings.exercises_dir / f"{exercise}.ipynb")
    except InvalidNotebook:
        if template is None:
            return submission
        reference = copy.deepcopy(template)
        reference.cells = [cell for cell in reference.cells if cell_role(cell) != markers.TAG_HIDDEN_CHECK]
    return recover_cell_ids(submission, reference)


def run_assembled(
    settings: Settings,
    nb: NotebookNode,
    bundle: Bundle,
    *,
    pool: WarmPool | None = None,
    setup: KernelSetup | None = None,
) -> RunOutcome:
    """Execute the assembled notebook in a fresh grading kernel, comparing graded outputs.

    With ``pool``, the kernel is a warm one from the pool (used once) when the pool serves this
    exercise's limits and has a runner ready; otherwise it is started cold, as without a pool.
    A warm run that left no verdict at all (its runner died) is run again cold. An exercise
    that ships files is always started cold: they are put in the work directory before its
    kernel starts, and a warm kernel started before the exercise was known. So is a GPU
    exercise (``setup``: its GPU or its smoke-size environment is the job's own).
    """
    setup = setup or KernelSetup()
    limits = bundle.limits if settings.sandbox else None
    files = bundle.files
    warm = pool is not None and not files and not setup.variant and pool.serves(settings, limits)
    runner = pool.acquire() if pool is not None and warm else None
    if runner is not None:
        outcome = runner.run(nb, wall_timeout_s=settings.grading_timeout_s, mode="compare", tolerance=bundle.tolerance)
        if outcome.cells or outcome.finished or outcome.killed:
            return outcome
    return run_notebook(
        nb,
        kernel_name=settings.kernel_name,
        cell_timeout_s=settings.cell_timeout_s,
        wall_timeout_s=settings.grading_timeout_s,
        mode="compare",
        tolerance=bundle.tolerance,
        sandbox=limits,
        files=files or None,
        kernel_env=setup.env,
        gpus=setup.gpus,
    )


def grade_notebook(
    settings: Settings,
    source: Path | bytes,
    *,
    exercise: str | None = None,
    name: str | None = None,
    pool: WarmPool | None = None,
    placement: Placement | None = None,
) -> Result:
    """Grade one submission against its exercise's visible and hidden checks.

    ``name`` is how messages refer to the submission (default: the path, or "submission").
    ``pool``: take the kernel from this warm pool when it serves the exercise (:mod:`grader.grading.warm`).
    ``placement``: the worker grading it (:mod:`grader.grading.placement`); the result's device is
    that worker's own. Default: this machine's CPU, so a GPU exercise is graded at smoke size.

    Raises:
        AuthoringError: the exercise's solution breaks the authoring rules or fails its checks.
        UsageError: the grading kernel (``settings.kernel_name``) does not start.
    """
    started = time.perf_counter()
    label = name or (str(source) if isinstance(source, Path) else "submission")
    if settings.sandbox:
        require_sandbox()
    placement = placement or cpu_placement(results.LOCAL_CPU)
    try:
        submission = read_submission(source, name=label)
        exercise = resolve_exercise(settings, submission, exercise, name=label)
        wanted = exercise_device(settings, exercise)  # the solution's wish, never the submission's
        setup = kernel_setup(wanted, placement)
        bundle = build_bundle(settings, exercise, setup)
        submission = with_cell_ids(settings, submission, exercise, bundle.template)
        assembly = assemble(bundle.template, submission, name=label, exercise=exercise)
    except InvalidNotebook as exc:
        return results.invalid(label, str(exc), exercise=exercise, duration_s=time.perf_counter() - started)
    outcome = run_assembled(settings, assembly.notebook, bundle, pool=pool, setup=setup)
    limits = Timeouts(settings.cell_timeout_s, settings.grading_timeout_s)
    scored = score_checks(assembly.notebook, assembly.checks(bundle.checks), outcome, limits)
    notes = [stopped_by(assembly.notebook, outcome, limits)]
    notes.append(results.missing_exercises(assembly.missing) if assembly.missing else None)
    message = "; ".join(note for note in notes if note)
    if scored.grading_error:
        message = results.grading_error(outcome.runner_failure())
    return Result(
        exercise=exercise,
        submission=label,
        status="error" if scored.grading_error else "graded",
        score=0.0 if scored.grading_error else scored.score,
        max_score=bundle.max_score,
        duration_s=time.perf_counter() - started,
        device=placement.device.label,  # the worker's own, not what the learner's kernel says of itself
        checks=scored.checks,
        message=message,
        isolation=outcome.isolation,
        device_info=placement.device,
        wanted_device=wanted,
        device_note=setup.note,
        manual=bundle.manual,
    )


def grade_submissions(
    settings: Settings, paths: Sequence[Path], *, exercise: str | None = None, jobs: int = 1
) -> list[Result]:
    """Grade many submissions, ``jobs`` at a time (a progress bar on stderr); results in input order.

    Each submission gets its own fresh kernel; nothing is shared between them but the bundle.
    """
    from tqdm import tqdm

    with (
        ThreadPoolExecutor(max_workers=max(1, jobs)) as pool,
        tqdm(total=len(paths), desc="grading", unit="nb", disable=True if len(paths) < 2 else None) as bar,
    ):
        futures = [pool.submit(grade_notebook, settings, path, exercise=exercise) for path in paths]
        for _ in as_completed(futures):
            bar.update(1)
    return [future.result() for future in futures]
