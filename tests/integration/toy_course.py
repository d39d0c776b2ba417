"""Small courses built in code for the integration tests: one cell builder, one course root."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat import NotebookNode, v4

from grader.format import markers
from grader.settings import Settings, load_settings

#: the _config.yml of a toy course (a GitHub URL, so assign makes badges)
CONFIG = "title: toy\nrepository:\n  url: https://github.com/example/toy\n  branch: main\n"


def code(source: str, cell_id: str, role: str | None = None, grader: dict[str, object] | None = None) -> NotebookNode:
    """A code cell with a fixed id, an optional role tag and optional ``grader`` metadata."""
    cell = v4.new_code_cell(source)
    cell.id = cell_id
    if role:
        cell.metadata["tags"] = [role]
    if grader:
        cell.metadata[markers.META_GRADER] = grader
    return cell


def write_course(root: Path, exercise: str, solution: NotebookNode) -> Settings:
    """A course root holding one solution, with the timeouts the toy tests grade under."""
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\n", encoding="utf-8")
    (root / "_config.yml").write_text(CONFIG, encoding="utf-8")
    (root / "solutions").mkdir(exist_ok=True)
    nbformat.write(solution, root / "solutions" / f"{exercise}.ipynb")
    return load_settings(
        root, build_dir=root / "_build", cell_timeout_s=60.0, grading_timeout_s=120.0, kernel_name="python3"
    )
