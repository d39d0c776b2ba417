"""The grading bundle of one exercise: hidden checks and reference outputs, never shipped.

``build_bundle(settings, "00-learning-ml-engineering")`` runs ``solutions/<id>.ipynb`` through
the grading runner itself (:func:`grader.grading.runner.run_notebook`: pytest + nbval, a fresh kernel,
the same sanitizers), so reference outputs come from exactly the pipeline that grades. It keeps
a **template**: the solution's cells in order, hidden checks included, every exercise cell's
source replaced by the learner stub, and each graded cell carrying its reference outputs.
Grading fills the template's exercise cells with the learner's code (:mod:`grader.grading.engine`).

Bundles live in ``settings.bundle_dir / <id>/`` (``_build/grading/``, never in ``exercises/``
or the site) and are rebuilt when the solution file, a file it ships, the grader version or the
kernel change. The files a solution ships (metadata ``grader.files``) are kept in the bundle's
``files/``: the reference run and every grading read those same bytes, read-only, in the
kernel's working directory.

Raises :class:`~grader.errors.AuthoringError` when the solution breaks the authoring rules,
fails one of its own checks, or has a hidden check that prints nothing.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

import grader
from grader import authoring
from grader.errors import AuthoringError, GraderError, InvalidNotebook, UsageError
from grader.format import markers
from grader.format.cells import GradedCell, cell_role, describe_cell, graded_cells
from grader.format.notebooks import parse_notebook, read_notebook, write_notebook
from grader.format.rubric import ManualAnswer, manual_answers
from grader.grading.comparison import DEFAULT_TOLERANCE, Tolerance, comparable_lines
from grader.grading.placement import KernelSetup
from grader.grading.runner import RunOutcome, run_notebook
from grader.sandbox.limits import ResourceLimits
from grader.settings import Settings

TEMPLATE_NAME = "template.ipynb"
META_NAME = "bundle.json"
#: the folder of a bundle that holds the files the exercise ships
FILES_NAME = "files"
#: bump when what a bundle records changes, so older bundles are rebuilt
#: (2: typed check values; 3: manual answers emptied)
BUNDLE_FORMAT = 3


@dataclass(frozen=True)
class Bundle:
    """What grading one exercise needs."""

    exercise: str
    #: the solution's cells with stubbed exercise sources and reference outputs on graded cells
    template: NotebookNode
    #: the graded cells (visible and hidden checks), in order
    checks: tuple[GradedCell, ...]
    #: sha256 over the solution file, the grader version and the kernel name
    key: str
    path: Path
    tolerance: Tolerance = DEFAULT_TOLERANCE

    @property
    def limits(self) -> ResourceLimits:
        """The sandbox limits of this exercise (defaults, or the solution's own overrides)."""
        return ResourceLimits.for_notebook(self.template)

    @property
    def device(self) -> str:
        """The device the exercise asks for (solution metadata ``grader.device``): ``cpu`` or ``gpu``."""
        meta = self.template.metadata.get(markers.META_GRADER, {})
        return str(meta.get(markers.META_DEVICE, markers.DEVICE_CPU)) if isinstance(meta, dict) else markers.DEVICE_CPU

    @property
    def max_score(self) -> float:
        """The points grading gives (the manual answers' are an instructor's to give)."""
        return sum(check.points for check in self.checks)

    @property
    def manual(self) -> tuple[ManualAnswer, ...]:
        """The exercise's manually graded answers, with their rubrics."""
        return tuple(manual_answers(self.template, strict=False))

    @property
    def files(self) -> dict[str, Path]:
        """The files the exercise ships (declared path → its copy in the bundle); empty for most."""
        meta = self.template.metadata.get(markers.META_GRADER, {})
        names = meta.get(markers.META_FILES, []) if isinstance(meta, dict) else []
        return {name: self.path / FILES_NAME / name for name in names}


def known_exercises(settings: Settings) -> list[str]:
    """Exercise ids: the stems of ``solutions/*.ipynb``."""
    return sorted(p.stem for p in settings.solutions_dir.glob("*.ipynb"))


def exercise_device(settings: Settings, exercise: str) -> str:
    """The device ``solutions/<exercise>.ipynb`` asks to be graded on (``cpu``/``gpu``), read without running it.

    Raises:
        AuthoringError: the solution cannot be read, or names another device.
    """
    path = settings.solutions_dir / f"{exercise}.ipynb"
    try:
        solution = read_notebook(path)
    except InvalidNotebook as exc:
        raise AuthoringError(str(exc)) from None
    return authoring.declared_device(solution, path=f"solutions/{exercise}.ipynb")


def bundle_key(
    solution: bytes,
    *,
    kernel_name: str,
    sandboxed: bool = True,
    files: Sequence[tuple[str, bytes]] = (),
    setup: KernelSetup | None = None,
) -> str:
    """What a bundle is built from: grader, format, kernel, isolation, the solution, the files it ships,
    and for a GPU exercise how its kernel is set up (variant and environment)."""
    digest = hashlib.sha256()
    isolation = b"sandbox" if sandboxed else b"none"
    shipped = [part for name, data in files for part in (name.encode(), data)]
    variant = (
        [setup.variant.encode(), json.dumps(setup.env, sort_keys=True).encode()] if setup and setup.variant else []
    )
    for part in (
        grader.__version__.encode(),
        str(BUNDLE_FORMAT).encode(),
        kernel_name.encode(),
        isolation,
        solution,
        *shipped,
        *variant,
    ):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def reference_notebook(solution: NotebookNode) -> NotebookNode:
    """The solution as the reference run executes it: outputs cleared, metadata minimal."""
    nb = copy.deepcopy(solution)
    nb.metadata = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def _check_reference(exercise: str, solution: NotebookNode, checks: list[GradedCell], outcome: RunOutcome) -> None:
    path = f"solutions/{exercise}.ipynb"
    graded = {check.index for check in checks}
    for index, cell in enumerate(solution.cells):
        if cell.cell_type != "code":
            continue
        record = outcome.cells.get(index)
        where = describe_cell(solution, index, path=path, show="check")
        if record is None:
            raise AuthoringError(
                f"{where}: the reference run never reached this cell "
                f"({'killed at the wall-clock limit' if outcome.killed else 'the runner stopped early'}); "
                f"make the solution run in well under the limits (cell timeout, grading timeout)"
            )
        if record["status"] == "passed":
            continue
        reason = record.get("reason")
        if reason == "error":
            detail = record.get("last_line") or record.get("ename", "an exception")
        elif reason == "timeout":
            detail = "timed out"
        elif reason in ("kernel-died", "stopped"):
            detail = "the kernel died"
        else:
            detail = f"the runner failed ({record.get('detail', reason)})"
        what = "the solution fails its own check" if index in graded else "the solution raises here"
        raise AuthoringError(f"{where}: {what}: {detail}; fix the solution so that every cell runs cleanly")
    for check in checks:
        outputs = outcome.cells[check.index].get("outputs", [])
        if check.hidden and not comparable_lines(outputs):
            raise AuthoringError(
                f"{describe_cell(solution, check.index, path=path, show='check')}: hidden check prints nothing; "
                "hidden checks must print the values they compare, because assert-only checks can be "
                "defeated by learner code"
            )


def make_template(exercise: str, solution: NotebookNode, outcome: RunOutcome) -> NotebookNode:
    """The grading template: stubbed exercise sources, reference outputs on graded cells only."""
    template = reference_notebook(solution)
    template.metadata = {markers.META_GRADER: {markers.META_EXERCISE: exercise}}
    limits = solution.metadata.get(markers.META_GRADER, {})
    limits = limits.get(markers.META_LIMITS) if isinstance(limits, dict) else None
    if limits:  # the exercise's own sandbox limits apply when grading too (Bundle.limits)
        template.metadata[markers.META_GRADER][markers.META_LIMITS] = limits
    files = solution.metadata.get(markers.META_GRADER, {})
    files = files.get(markers.META_FILES) if isinstance(files, dict) else None
    if files:  # the files it ships, kept in the bundle's files/ (Bundle.files)
        template.metadata[markers.META_GRADER][markers.META_FILES] = list(files)
    device = solution.metadata.get(markers.META_GRADER, {})
    device = device.get(markers.META_DEVICE) if isinstance(device, dict) else None
    if device:  # the device it asks for (Bundle.device)
        template.metadata[markers.META_GRADER][markers.META_DEVICE] = device
    for index, cell in enumerate(template.cells):
        role = cell_role(cell)
        if role == markers.TAG_EXERCISE:
            where = describe_cell(template, index, path=f"solutions/{exercise}.ipynb")
            cell.source = authoring.strip_solution(cell.source, where=where)
        elif role == markers.TAG_MANUAL:  # graded by a person from the submitted notebook: nothing runs here
            cell.source = ""
            if cell.cell_type == "code":
                cell.outputs = []
        elif role in markers.GRADED_TAGS:
            outputs = outcome.cells[index].get("outputs", [])
            cell.outputs = [nbformat.from_dict(output) for output in outputs]
            for output in cell.outputs:
                if output.get("output_type") == "execute_result":
                    output.setdefault("execution_count", 1)
                    output.setdefault("metadata", {})
                elif output.get("output_type") == "display_data":
                    output.setdefault("metadata", {})
            cell.execution_count = 1
    return template


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder per bundle at a time (threads and processes alike)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _load(exercise: str, folder: Path, key: str) -> Bundle | None:
    meta_path, template_path = folder / META_NAME, folder / TEMPLATE_NAME
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("key") != key:
            return None
        template = parse_notebook(template_path.read_bytes(), name=str(template_path), max_bytes=1 << 40)
    except (OSError, ValueError, GraderError):
        return None
    return Bundle(exercise, template, tuple(graded_cells(template)), key, folder)


def _shipped(settings: Settings, exercise: str, data: bytes) -> dict[str, Path]:
    """The files ``solutions/<exercise>.ipynb`` (its bytes: ``data``) declares it ships."""
    path = f"solutions/{exercise}.ipynb"
    try:
        solution = parse_notebook(data, name=path, max_bytes=1 << 40)
    except InvalidNotebook as exc:
        raise AuthoringError(str(exc)) from None
    return authoring.declared_files(solution, root=settings.root, solutions_dir=settings.solutions_dir, path=path)


def build_bundle(settings: Settings, exercise_id: str, setup: KernelSetup | None = None) -> Bundle:
    """The bundle of one exercise, from the cache when neither the solution nor its files have changed.

    ``setup``: how a GPU exercise's kernel is set up on this worker (:func:`grader.grading.placement.
    kernel_setup`); each variant (``gpu``, ``cpu-smoke``) is a bundle of its own, ``<id>@<variant>/``,
    whose reference outputs come from the solution run the same way.

    Raises:
        UsageError: there is no ``solutions/<exercise_id>.ipynb``.
        AuthoringError: the solution breaks the rules, fails its own checks, has a silent hidden
            check, or declares files that are missing or too large.
    """
    solution_path = settings.solutions_dir / f"{exercise_id}.ipynb"
    if not solution_path.is_file():
        known = ", ".join(known_exercises(settings)) or "none"
        raise UsageError(f"no solutions/{exercise_id}.ipynb (known exercises: {known})")
    data = solution_path.read_bytes()
    shipped = _shipped(settings, exercise_id, data)
    contents = [(name, source.read_bytes()) for name, source in shipped.items()]
    key = bundle_key(data, kernel_name=settings.kernel_name, sandboxed=settings.sandbox, files=contents, setup=setup)
    name = f"{exercise_id}@{setup.variant}" if setup is not None and setup.variant else exercise_id
    folder = settings.bundle_dir / name
    cached = _load(exercise_id, folder, key)
    if cached is not None:
        return cached
    with _locked(settings.bundle_dir / f".{name}.lock"):
        cached = _load(exercise_id, folder, key)  # built by someone else while we waited
        if cached is not None:
            return cached
        return _build(settings, exercise_id, solution_path, key, folder, contents, setup or KernelSetup())


def _build(
    settings: Settings,
    exercise: str,
    solution_path: Path,
    key: str,
    folder: Path,
    files: list[tuple[str, bytes]],
    setup: KernelSetup,
) -> Bundle:
    try:
        solution = read_notebook(solution_path)
    except InvalidNotebook as exc:
        raise AuthoringError(str(exc)) from None
    authoring.lint(solution, path=f"solutions/{exercise}.ipynb")
    checks = graded_cells(solution)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{exercise}-", dir=folder.parent))
    try:
        for name, content in files:  # the bytes the key covers, run and graded with
            (staging / FILES_NAME / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / FILES_NAME / name).write_bytes(content)
        outcome = run_notebook(
            reference_notebook(solution),
            kernel_name=settings.kernel_name,
            cell_timeout_s=settings.cell_timeout_s,
            wall_timeout_s=settings.grading_timeout_s,
            mode="record",
            sandbox=ResourceLimits.for_notebook(solution) if settings.sandbox else None,
            files={name: staging / FILES_NAME / name for name, _ in files} or None,
            kernel_env=setup.env,
            gpus=setup.gpus,
        )
        if not outcome.cells and not outcome.killed:
            raise AuthoringError(
                f"solutions/{exercise}.ipynb: the reference run produced no results "
                f"(runner exit code {outcome.returncode}); the end of its log:\n{outcome.log_tail}"
            )
        if outcome.kernel_start_error is not None:
            raise UsageError(
                f"the grading kernel {settings.kernel_name!r} did not start ({outcome.kernel_start_error}); "
                "install it (`python -m ipykernel install --user`) or set GRADER_KERNEL_NAME"
            )
        _check_reference(exercise, solution, checks, outcome)
        template = make_template(exercise, solution, outcome)
        write_notebook(template, staging / TEMPLATE_NAME)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    meta = {
        "key": key,
        "exercise": exercise,
        "grader": grader.__version__,
        "kernel": settings.kernel_name,
        "device": outcome.device,
    }
    (staging / META_NAME).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    if folder.exists():
        shutil.rmtree(folder)
    staging.replace(folder)
    return Bundle(exercise, template, tuple(checks), key, folder)
