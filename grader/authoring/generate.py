"""``grader assign``: the learner's notebook for one solution (:func:`make_exercise`), and for all.

:func:`assign` lints every ``solutions/*.ipynb`` first, then writes ``exercises/`` (or, with
``check=True``, only says what is stale); :func:`render_report` turns what it did into lines.
"""

from __future__ import annotations

import copy
import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nbformat import NotebookNode

from grader.authoring.colab import (
    SAFE_NAME,
    header_cell,
    host,
    repository,
    setup_cell,
    submit_cell,
    title_end,
    with_setup_cell,
)
from grader.authoring.files import declared_files, declared_names
from grader.authoring.lint import lint
from grader.authoring.manual import stub_answer, with_rubric_cells
from grader.authoring.stubs import has_marker, strip_solution
from grader.errors import AuthoringError, MarkerError, StaleExercises
from grader.format import markers
from grader.format.cells import cell_role, describe_cell
from grader.format.notebooks import notebook_text, read_notebook, write_notebook
from grader.format.rubric import manual_answers
from grader.settings import Settings

#: cell metadata that changes on every run and must not reach the generated file
_VOLATILE_CELL_META = ("execution", "ExecuteTime", "papermill")
_VOLATILE_NB_META = ("papermill", "widgets")


def _learner_cell(cell: NotebookNode, place: str) -> NotebookNode | None:
    """One solution cell as learners get it (changed in place), or ``None`` for a hidden check."""
    cell_id = cell.get("id")
    if not cell_id:
        raise AuthoringError(f"{place}: the cell has no id; save the notebook with Jupyter 4.5+ (JupyterLab 3+)")
    if cell_id in markers.GENERATED_IDS or str(cell_id).startswith(markers.RUBRIC_ID_PREFIX):
        raise AuthoringError(f"{place}: the cell id {cell_id!r} is reserved for generated cells; change it")
    role = cell_role(cell)
    if role == markers.TAG_HIDDEN_CHECK:
        return None
    if role == markers.TAG_EXERCISE:
        cell.source = strip_solution(cell.source, where=place)
    elif role == markers.TAG_MANUAL:
        stub_answer(cell, where=place)
    elif has_marker(cell.source, markdown=cell.cell_type == "markdown"):
        raise MarkerError(f"{place}: solution markers outside an exercise cell would be shipped to learners")
    for key in _VOLATILE_CELL_META:
        cell.metadata.pop(key, None)
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None
    return cell


def make_exercise(solution: NotebookNode, *, exercise_id: str, repo_url: str, branch: str) -> NotebookNode:
    """The learner's stub notebook for one solution notebook (pure: the input is not changed).

    Hidden checks are dropped, solution regions become stubs, outputs and execution counts are
    cleared, every remaining cell keeps its nbformat id (grading matches learner cells to the
    reference by id), ``nb.metadata["grader"]`` records the exercise id; each manual answer is
    stubbed and gets its rubric in a generated cell above it (:mod:`grader.authoring.manual`); under the title go a
    header cell (the "Open in Colab" badge where the host allows one, how to check and submit) and
    the Colab-only setup cell (which also fetches the files the solution declares), and a submit
    cell ends the notebook. ``repo_url`` may be ``""`` (no repository). Equal inputs give equal outputs.

    Raises:
        AuthoringError: a cell has no id, uses a reserved id, or a non-exercise cell holds a
            solution marker (it would be shipped as it is); a manual answer lacks its id, points
            or rubric, or its rubric's points do not add up; the repository URL is not a git URL;
            the declared files are malformed.
        MarkerError: an exercise cell's markers are unbalanced.
    """
    if not SAFE_NAME.match(exercise_id):
        raise AuthoringError(f"exercise id {exercise_id!r} must be a plain file stem like '03-data-assumptions'")
    url = host(repo_url, branch).badge_url(exercise_id)
    files = declared_names(solution, path=f"solutions/{exercise_id}.ipynb")
    try:
        answers = manual_answers(solution)
    except AuthoringError as exc:
        raise AuthoringError(f"solutions/{exercise_id}.ipynb, {exc}") from None
    nb = copy.deepcopy(solution)
    cells = []
    for index, cell in enumerate(nb.cells):
        learner = _learner_cell(cell, describe_cell(nb, index, path=f"solutions/{exercise_id}.ipynb", show="id"))
        if learner is not None:
            cells.append(learner)
    cells = with_rubric_cells(cells, answers)
    at = title_end(cells)
    generated = [header_cell(exercise_id, url), setup_cell(repo_url, branch, files)]
    nb.cells = [*cells[:at], *generated, *cells[at:], submit_cell(exercise_id)]
    for key in _VOLATILE_NB_META:
        nb.metadata.pop(key, None)
    nb.metadata[markers.META_GRADER] = {markers.META_EXERCISE: exercise_id, markers.META_GENERATED: True}
    nb.nbformat_minor = max(int(nb.get("nbformat_minor", 5)), 5)
    return nb


@dataclass(frozen=True)
class AssignReport:
    """What :func:`assign` did (or, with ``check=True``, found up to date), paths relative to the root."""

    written: tuple[Path, ...] = ()
    unchanged: tuple[Path, ...] = ()
    removed: tuple[Path, ...] = ()
    checked: bool = False
    #: what :func:`~grader.authoring.lint.lint` found allowed but probably a mistake, each naming file and cell
    warnings: tuple[str, ...] = ()


def _generate(settings: Settings) -> tuple[dict[Path, NotebookNode], dict[Path, Path], list[str]]:
    """The learner stub for every solution, keyed by its ``exercises/`` path; the files the
    solutions ship, each keyed by where its copy goes under ``exercises/``; the lint warnings.
    Lints all files first."""
    repo_url, branch = repository(settings)
    stubs: dict[Path, NotebookNode] = {}
    shipped: dict[Path, Path] = {}
    warnings: list[str] = []
    errors: list[AuthoringError] = []
    for solution_path in sorted(settings.solutions_dir.glob("*.ipynb")):
        nb = read_notebook(solution_path)
        path = solution_path.relative_to(settings.root).as_posix()
        try:
            warnings += lint(nb, path=path)
            stub = make_exercise(nb, exercise_id=solution_path.stem, repo_url=repo_url, branch=branch)
            files = declared_files(nb, root=settings.root, solutions_dir=settings.solutions_dir, path=path)
        except AuthoringError as exc:
            errors.append(exc)
            continue
        stubs[settings.exercises_dir / solution_path.name] = stub
        shipped.update({settings.exercises_dir / PurePosixPath(name): source for name, source in files.items()})
    if errors:
        error = MarkerError if all(isinstance(e, MarkerError) for e in errors) else AuthoringError
        raise error("\n".join(str(e) for e in errors))
    return stubs, shipped, warnings


def _lessons(settings: Settings) -> dict[Path, NotebookNode]:
    """Every lesson notebook with the generated Colab setup cell under its title."""
    repo_url, branch = repository(settings)
    return {
        path: with_setup_cell(read_notebook(path), repo_url, branch)
        for path in sorted(settings.notebooks_dir.glob("*.ipynb"))
    }


def _other_files(exercises_dir: Path) -> list[Path]:
    """Every file under ``exercises/`` but its notebooks (hidden files and caches left out): shipped copies."""
    found = []
    for path in exercises_dir.rglob("*") if exercises_dir.is_dir() else ():
        relative = path.relative_to(exercises_dir)
        if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
            continue
        if (path.is_dir() and not path.is_symlink()) or (len(relative.parts) == 1 and path.suffix == ".ipynb"):
            continue
        found.append(path)
    return sorted(found)


def _why_stale(root: Path, target: Path, shipped: dict[Path, Path]) -> str:
    shown = target.relative_to(root).as_posix()
    if target in shipped:
        what = "out of date with" if target.is_file() else "missing; copy it from"
        return f"  {shown}: {what} {shipped[target].relative_to(root).as_posix()}"
    if target.parent.name == "notebooks":
        return f"  {shown}: its Colab setup cell is missing or out of date"
    what = "out of date with" if target.is_file() else "missing; generate it from"
    return f"  {shown}: {what} solutions/{target.name}"


def _why_orphan(root: Path, exercises_dir: Path, orphan: Path) -> str:
    shown = orphan.relative_to(root).as_posix()
    if orphan.parent == exercises_dir and orphan.suffix == ".ipynb":
        return f"  {shown}: has no solutions/{orphan.name}; remove it"
    return f"  {shown}: no solution ships it (metadata {markers.META_GRADER}.{markers.META_FILES}); remove it"


def _stale(settings: Settings, changed: list[Path], orphans: list[Path], shipped: dict[Path, Path]) -> StaleExercises:
    root = settings.root
    lines = [_why_stale(root, target, shipped) for target in changed]
    lines += [_why_orphan(root, settings.exercises_dir, orphan) for orphan in orphans]
    return StaleExercises(
        "exercises/ (or a lesson's setup cell) is not what `grader assign` generates:\n"
        + "\n".join(lines)
        + "\nrun `grader assign` and commit exercises/ and notebooks/"
    )


def _copy(source: Path, target: Path) -> None:
    """``source``'s bytes at ``target``, replaced at once (never half-written)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)


def _remove(path: Path, exercises_dir: Path) -> None:
    """Remove ``path``, then the folders under ``exercises/`` it leaves empty."""
    path.unlink()
    folder = path.parent
    while folder != exercises_dir and folder.is_relative_to(exercises_dir) and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def assign(settings: Settings, *, check: bool = False) -> AssignReport:
    """Generate ``exercises/<name>.ipynb`` from every ``solutions/<name>.ipynb``, copy the files
    each solution ships next to it (``exercises/<declared path>``), and write the Colab setup cell
    of every ``notebooks/<name>.ipynb`` (the rest of a lesson is left as it is).

    Files whose content would not change are left alone; exercises without a solution, and
    other files under ``exercises/`` that no solution ships, are removed. Nothing is written
    unless every solution passes :func:`lint` and its declared files exist; lint's warnings
    come back in the report (they never stop anything).

    Raises:
        AuthoringError / MarkerError: a solution breaks the authoring rules (all files reported).
        StaleExercises: with ``check=True``, when ``exercises/`` differs from what would be generated.
    """
    exercises, shipped, warnings = _generate(settings)
    stubs = {**exercises, **_lessons(settings)}
    changed: list[Path] = []
    unchanged: list[Path] = []
    for target, stub in stubs.items():
        current = target.read_text(encoding="utf-8") if target.is_file() else None
        (unchanged if current == notebook_text(stub) else changed).append(target)
    for target, source in shipped.items():
        same = target.is_file() and not target.is_symlink() and target.read_bytes() == source.read_bytes()
        (unchanged if same else changed).append(target)
    names = {target.name for target in stubs}
    orphans = sorted(p for p in settings.exercises_dir.glob("*.ipynb") if p.name not in names)
    orphans += [p for p in _other_files(settings.exercises_dir) if p not in shipped and p not in orphans]

    def relative(paths: list[Path]) -> tuple[Path, ...]:
        return tuple(path.relative_to(settings.root) for path in paths)

    if check:
        if changed or orphans:
            raise _stale(settings, changed, orphans, shipped)
        return AssignReport(unchanged=relative(unchanged), checked=True, warnings=tuple(warnings))
    for target in changed:
        if target in shipped:
            _copy(shipped[target], target)
        else:
            write_notebook(stubs[target], target)
    for orphan in orphans:
        _remove(orphan, settings.exercises_dir)
    return AssignReport(
        written=relative(changed), unchanged=relative(unchanged), removed=relative(orphans), warnings=tuple(warnings)
    )


def render_report(report: AssignReport) -> str:
    """One line per exercise file: ``written``, ``unchanged`` / ``up to date``, or ``removed``."""
    same = "up to date" if report.checked else "unchanged"
    rows = [("written", p) for p in report.written]
    rows += [(same, p) for p in report.unchanged]
    rows += [("removed", p) for p in report.removed]
    if not rows:
        return "no solutions/*.ipynb found; nothing to generate"
    width = max(len(verb) for verb, _ in rows)
    return "\n".join(f"{verb:<{width}}  {path.as_posix()}" for verb, path in sorted(rows, key=lambda r: str(r[1])))
