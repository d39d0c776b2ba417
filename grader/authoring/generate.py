"""``grader assign``: the learner's notebook for one solution (:func:`make_exercise`), and for all.

:func:`assign` lints every ``solutions/*.ipynb`` first, then writes ``exercises/`` (or, with
``check=True``, only says what is stale); :func:`render_report` turns what it did into lines.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from nbformat import NotebookNode

from grader.authoring.colab import (
    SAFE_NAME,
    colab_url,
    header_cell,
    repository,
    setup_cell,
    submit_cell,
    title_end,
    with_setup_cell,
)
from grader.authoring.lint import lint
from grader.authoring.stubs import has_marker, strip_solution
from grader.errors import AuthoringError, MarkerError, StaleExercises
from grader.format import markers
from grader.format.cells import cell_role, describe_cell
from grader.format.notebooks import notebook_text, read_notebook, write_notebook
from grader.settings import Settings

#: cell metadata that changes on every run and must not reach the generated file
_VOLATILE_CELL_META = ("execution", "ExecuteTime", "papermill")
_VOLATILE_NB_META = ("papermill", "widgets")


def _learner_cell(cell: NotebookNode, place: str) -> NotebookNode | None:
    """One solution cell as learners get it (changed in place), or ``None`` for a hidden check."""
    cell_id = cell.get("id")
    if not cell_id:
        raise AuthoringError(f"{place}: the cell has no id; save the notebook with Jupyter 4.5+ (JupyterLab 3+)")
    if cell_id in markers.GENERATED_IDS:
        raise AuthoringError(f"{place}: the cell id {cell_id!r} is reserved for the generated header; change it")
    role = cell_role(cell)
    if role == markers.TAG_HIDDEN_CHECK:
        return None
    if role == markers.TAG_EXERCISE:
        cell.source = strip_solution(cell.source, where=place)
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
    reference by id), ``nb.metadata["grader"]`` records the exercise id; under the title go a
    header cell (badge, how to check and submit) and the Colab-only setup cell, and a submit
    cell ends the notebook. Equal inputs give equal outputs.

    Raises:
        AuthoringError: a cell has no id, uses a reserved id, or a non-exercise cell holds a
            solution marker (it would be shipped as it is); the repository URL is not GitHub's.
        MarkerError: an exercise cell's markers are unbalanced.
    """
    if not SAFE_NAME.match(exercise_id):
        raise AuthoringError(f"exercise id {exercise_id!r} must be a plain file stem like '03-data-assumptions'")
    url = colab_url(exercise_id=exercise_id, repo_url=repo_url, branch=branch)
    nb = copy.deepcopy(solution)
    cells = []
    for index, cell in enumerate(nb.cells):
        learner = _learner_cell(cell, describe_cell(nb, index, path=f"solutions/{exercise_id}.ipynb", show="id"))
        if learner is not None:
            cells.append(learner)
    at = title_end(cells)
    generated = [header_cell(exercise_id, url), setup_cell(repo_url, branch)]
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


def _generate(settings: Settings) -> tuple[dict[Path, NotebookNode], list[str]]:
    """The learner stub for every solution, keyed by its ``exercises/`` path, and the lint warnings;
    lints all files first."""
    repo_url, branch = repository(settings)
    stubs: dict[Path, NotebookNode] = {}
    warnings: list[str] = []
    errors: list[AuthoringError] = []
    for solution_path in sorted(settings.solutions_dir.glob("*.ipynb")):
        nb = read_notebook(solution_path)
        try:
            warnings += lint(nb, path=solution_path.relative_to(settings.root).as_posix())
            stub = make_exercise(nb, exercise_id=solution_path.stem, repo_url=repo_url, branch=branch)
        except AuthoringError as exc:
            errors.append(exc)
            continue
        stubs[settings.exercises_dir / solution_path.name] = stub
    if errors:
        error = MarkerError if all(isinstance(e, MarkerError) for e in errors) else AuthoringError
        raise error("\n".join(str(e) for e in errors))
    return stubs, warnings


def _lessons(settings: Settings) -> dict[Path, NotebookNode]:
    """Every lesson notebook with the generated Colab setup cell under its title."""
    repo_url, branch = repository(settings)
    return {
        path: with_setup_cell(read_notebook(path), repo_url, branch)
        for path in sorted(settings.notebooks_dir.glob("*.ipynb"))
    }


def _why_stale(root: Path, target: Path) -> str:
    if target.parent.name == "notebooks":
        return f"  {target.relative_to(root).as_posix()}: its Colab setup cell is missing or out of date"
    what = "out of date with" if target.is_file() else "missing; generate it from"
    return f"  {target.relative_to(root).as_posix()}: {what} solutions/{target.name}"


def _stale(root: Path, changed: list[Path], orphans: list[Path]) -> StaleExercises:
    lines = [_why_stale(root, t) for t in changed]
    lines += [f"  {p.relative_to(root).as_posix()}: has no solutions/{p.name}; remove it" for p in orphans]
    return StaleExercises(
        "exercises/ (or a lesson's setup cell) is not what `grader assign` generates:\n"
        + "\n".join(lines)
        + "\nrun `grader assign` and commit exercises/ and notebooks/"
    )


def assign(settings: Settings, *, check: bool = False) -> AssignReport:
    """Generate ``exercises/<name>.ipynb`` from every ``solutions/<name>.ipynb``, and the Colab
    setup cell of every ``notebooks/<name>.ipynb`` (the rest of a lesson is left as it is).

    Files whose content would not change are left alone; exercises without a solution are
    removed. Nothing is written unless every solution passes :func:`lint`; its warnings come back
    in the report (they never stop anything).

    Raises:
        AuthoringError / MarkerError: a solution breaks the authoring rules (all files reported).
        StaleExercises: with ``check=True``, when ``exercises/`` differs from what would be generated.
    """
    exercises, warnings = _generate(settings)
    stubs = {**exercises, **_lessons(settings)}
    changed: list[Path] = []
    unchanged: list[Path] = []
    for target, stub in stubs.items():
        current = target.read_text(encoding="utf-8") if target.is_file() else None
        (unchanged if current == notebook_text(stub) else changed).append(target)
    names = {target.name for target in stubs}
    orphans = sorted(p for p in settings.exercises_dir.glob("*.ipynb") if p.name not in names)

    def relative(paths: list[Path]) -> tuple[Path, ...]:
        return tuple(path.relative_to(settings.root) for path in paths)

    if check:
        if changed or orphans:
            raise _stale(settings.root, changed, orphans)
        return AssignReport(unchanged=relative(unchanged), checked=True, warnings=tuple(warnings))
    for target in changed:
        write_notebook(stubs[target], target)
    for orphan in orphans:
        orphan.unlink()
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
