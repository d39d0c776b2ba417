"""``grader import``: read an assignment of another tool, convert it, lint it, write the solution notebook."""

from __future__ import annotations

import re
from pathlib import Path

from nbformat import NotebookNode

from grader import authoring
from grader.authoring.colab import SAFE_NAME
from grader.errors import AuthoringError, GraderError, UsageError
from grader.format.notebooks import read_notebook, write_notebook
from grader.importers import nbgrader, otter
from grader.importers.builder import Builder
from grader.importers.convert import ImportReport
from grader.settings import Settings

TOOLS = ("nbgrader", "otter")
#: files next to an nbgrader notebook that are not the assignment's own
_NOT_SHIPPED = re.compile(r"^(\.|__pycache__$|.*\.ipynb$)")
#: the repository the stub check uses (its header cells are not what is being checked)
_STUB_REPOSITORY = ("https://github.com/course/import", "main")
#: how many of those files the report names
_LISTED = 20


def default_exercise_id(path: Path) -> str:
    """An exercise id from a file name: ``Problem 1.ipynb`` → ``Problem-1``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-.")
    return stem or "imported"


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _siblings(path: Path) -> list[str]:
    """The other files and folders of an nbgrader assignment folder (images, data), at most :data:`_LISTED`."""
    entries = sorted(
        f"{p.name}/" if p.is_dir() else p.name for p in path.parent.iterdir() if not _NOT_SHIPPED.match(p.name)
    )
    if len(entries) > _LISTED:
        return [*entries[:_LISTED], f"… and {len(entries) - _LISTED} more"]
    return entries


def convert_notebook(
    tool: str, nb: NotebookNode, *, exercise_id: str, source: Path | None = None
) -> tuple[NotebookNode, Builder]:
    """The solution notebook for ``nb`` in ``tool``'s format (``source``: nbgrader lists its folder's files)."""
    if tool == "nbgrader":
        return nbgrader.convert(nb, exercise_id=exercise_id, shipped=_siblings(source) if source else ())
    if tool == "otter":
        return otter.convert(nb, exercise_id=exercise_id)
    raise UsageError(f"unknown tool {tool!r}; choose one of {', '.join(TOOLS)}")


def import_assignment(
    settings: Settings,
    tool: str,
    path: Path,
    *,
    exercise_id: str | None = None,
    output: Path | None = None,
    force: bool = False,
) -> ImportReport:
    """Convert ``path`` (an nbgrader source notebook, or otter's master notebook) into a solution notebook.

    Writes ``solutions/<exercise_id>.ipynb`` (or ``output``) when at least one check could be made;
    the report lists what each source cell became and, never silently, what could not be converted.
    The written notebook passes :func:`grader.authoring.lint` and its learner stub can be generated.

    Raises:
        UsageError: an unknown tool or a bad exercise id; the target exists (without ``force``); the
            notebook is not that tool's source format (a release or student version, say).
        InvalidNotebook: ``path`` is not a readable notebook.
        AuthoringError: the converted notebook breaks the authoring rules (nothing written).
    """
    exercise_id = exercise_id or (output.stem if output else default_exercise_id(path))
    if not SAFE_NAME.match(exercise_id):
        raise UsageError(f"exercise id {exercise_id!r} must be a plain file stem like '12-imported-problem'")
    target = output or settings.solutions_dir / f"{exercise_id}.ipynb"
    shown = _shown(target, settings.root)
    if target.exists() and not force:
        raise UsageError(f"{shown} exists; pass --force to replace it, or --id/--output to write elsewhere")
    solution, builder = convert_notebook(tool, read_notebook(path), exercise_id=exercise_id, source=path)
    if not builder.graded:
        return builder.report(tool=tool, source=str(path), output=None)
    try:
        authoring.lint(solution, path=shown)
        repo_url, branch = _STUB_REPOSITORY
        authoring.make_exercise(solution, exercise_id=exercise_id, repo_url=repo_url, branch=branch)
    except AuthoringError as exc:
        raise type(exc)(
            f"the notebook converted from {path} breaks the authoring rules; nothing written:\n{exc}"
        ) from None
    write_notebook(solution, target)
    return builder.report(tool=tool, source=str(path), output=shown)


def exit_code(report: ImportReport) -> int:
    """0 when something was converted (even with findings), 1 when nothing was."""
    return 0 if report.ok else GraderError.exit_code
