"""Reading and writing notebooks: the one place that turns bytes into a validated notebook.

Everything that opens a notebook (lessons, authoring, grading) goes through
:func:`read_notebook`, so a malformed file always produces the same clear
:class:`~grader.errors.InvalidNotebook` message instead of a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from grader.errors import InvalidNotebook

#: notebooks larger than this are refused before parsing (50 MB submissions are invalid)
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
#: JSON nested deeper than this is refused (a notebook is never deeper than ~10 levels)
MAX_DEPTH = 64


def _depth_ok(text: str) -> bool:
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def parse_notebook(data: bytes, *, name: str, max_bytes: int = DEFAULT_MAX_BYTES) -> NotebookNode:
    """Parse and validate notebook bytes; raise InvalidNotebook naming ``name`` and the fix."""
    if len(data) > max_bytes:
        raise InvalidNotebook(
            f"{name}: the file is {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit; "
            "clear the outputs (Edit → Clear All Outputs) and save again"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidNotebook(
            f"{name}: not UTF-8 text (byte {exc.start}); upload the .ipynb file that Jupyter saved"
        ) from None
    if not _depth_ok(text):
        raise InvalidNotebook(f"{name}: JSON nested more than {MAX_DEPTH} levels deep; this is not a notebook")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidNotebook(
            f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "upload the .ipynb file that Jupyter saved, not a copy edited by hand"
        ) from None
    if not isinstance(raw, dict) or "nbformat" not in raw:
        raise InvalidNotebook(f"{name}: JSON but not a Jupyter notebook (no 'cells' or 'nbformat' field)")
    if raw.get("nbformat") != 4:
        raise InvalidNotebook(
            f"{name}: notebook format {raw.get('nbformat')!r} is not supported; save it with Jupyter 4.x or later"
        )
    if "cells" not in raw:
        raise InvalidNotebook(f"{name}: JSON but not a Jupyter notebook (no 'cells' or 'nbformat' field)")
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several unrelated types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidNotebook(f"{name}: not a valid notebook ({first[:200]}); re-save it from Jupyter") from None
    return nb


def read_notebook(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> NotebookNode:
    """Read and validate a notebook file."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidNotebook(f"{path}: cannot be read ({exc.strerror})") from None
    if size > max_bytes:
        raise InvalidNotebook(
            f"{path}: the file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit; "
            "clear the outputs (Edit → Clear All Outputs) and save again"
        )
    return parse_notebook(path.read_bytes(), name=str(path), max_bytes=max_bytes)


def notebook_text(nb: NotebookNode) -> str:
    """The exact text :func:`write_notebook` writes for ``nb``."""
    return nbformat.writes(nb) + "\n"


def write_notebook(nb: NotebookNode, path: Path) -> None:
    """Write a notebook atomically (never leaves a half-written file behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(notebook_text(nb), encoding="utf-8")
    tmp.replace(path)
