"""The files an exercise ships (data, images): declared in the solution, checked, found on disk.

A solution lists them in its notebook metadata, as paths **relative to its own folder**
``solutions/`` — the very paths its code opens, so the solution runs as it is in Jupyter::

    "metadata": {"grader": {"files": ["data/tickets-sample.csv", "figures/pipeline.png"]}}

``grader assign`` copies each one to the same path under ``exercises/`` (next to the learner's
notebook, so the same relative path works there, on the site and, fetched by the Colab setup
cell, on Colab); grading puts them, read-only, in the kernel's working directory.

:func:`declaration_problems` is the part of the rule that needs no disk (run by
:func:`~grader.authoring.lint.lint`); :func:`declared_files` checks the files themselves.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from nbformat import NotebookNode

from grader.errors import AuthoringError
from grader.format import markers

#: the largest file an exercise may ship (the repository, every grading and every Colab
#: runtime carry it), and the most all of one exercise's files may weigh together
MAX_FILE_BYTES = 10_000_000
MAX_TOTAL_BYTES = 50_000_000
#: one part of a declared path: letters, digits, ``_``, ``-`` and ``.``, never first a dot or dash
_SAFE_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")

_WHERE = f"metadata {markers.META_GRADER}.{markers.META_FILES}"


def _declared(nb: NotebookNode) -> object:
    meta = nb.metadata.get(markers.META_GRADER, {})
    return meta.get(markers.META_FILES, []) if isinstance(meta, dict) else []


def _name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a declared path (``None``: it can)."""
    if not isinstance(name, str) or not name:
        return f"{name!r} is not a path; list paths relative to solutions/, like 'data/tickets.csv'"
    if name.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", name):
        return f"{name!r} is an absolute path; give it relative to solutions/, like 'data/tickets.csv'"
    parts = name.split("/")
    if ".." in parts or "\\" in name:
        return f"{name!r} leaves solutions/; keep the file under solutions/ and give its path from there"
    if any(not _SAFE_PART.match(part) for part in parts):
        return (
            f"{name!r}: each part of the path is letters, digits, '_', '-' and '.', not starting with a dot "
            "or a dash (no spaces, no '.', '..' or empty parts)"
        )
    if name.lower().endswith(".ipynb"):
        return f"{name!r} is a notebook; exercises/ holds the generated notebooks, so ship data and images only"
    return None


def declaration_problems(nb: NotebookNode, *, path: str) -> list[str]:
    """What is wrong with the solution's ``grader.files`` declaration, without looking at the disk."""
    declared = _declared(nb)
    if not isinstance(declared, list):
        return [
            f"{path}: {_WHERE} must be a list of paths relative to solutions/, "
            f'like ["data/tickets.csv"], not {type(declared).__name__}'
        ]
    problems = [f"{path}: {_WHERE}: {problem}" for name in declared if (problem := _name_problem(name))]
    names = [name for name in declared if isinstance(name, str)]
    twice = sorted({name for name in names if names.count(name) > 1})
    return problems + [f"{path}: {_WHERE}: {name!r} is listed twice" for name in twice]


def declared_names(nb: NotebookNode, *, path: str) -> tuple[str, ...]:
    """The declared paths, in the order declared.

    Raises:
        AuthoringError: the declaration is malformed (:func:`declaration_problems`).
    """
    problems = declaration_problems(nb, path=path)
    if problems:
        raise AuthoringError("\n".join(problems))
    declared = _declared(nb)
    return tuple(declared) if isinstance(declared, list) else ()


def declared_files(nb: NotebookNode, *, root: Path, solutions_dir: Path, path: str) -> dict[str, Path]:
    """The solution's declared files: declared path → the file under ``solutions_dir``.

    ``root`` is the repository: a declared file may be a link to a file elsewhere in it, never outside.

    Raises:
        AuthoringError: every problem at once, each naming the file: a malformed declaration,
            a file that is missing, not a plain file, outside the repository, or too large.
    """
    names = declared_names(nb, path=path)
    problems: list[str] = []
    found: dict[str, Path] = {}
    total = 0
    inside = root.resolve()
    for name in names:
        source = solutions_dir / PurePosixPath(name)
        where = f"{path}: {_WHERE}: {name!r}"
        if not source.exists():
            problems.append(f"{where}: there is no {source.relative_to(root).as_posix()}; add the file or drop it")
            continue
        if not source.resolve().is_relative_to(inside):
            problems.append(f"{where}: a link to {source.resolve()}, outside the repository; copy the file in")
            continue
        if not source.is_file():
            problems.append(f"{where}: not a plain file (a folder?); list each file it holds")
            continue
        size = source.stat().st_size
        total += size
        if size > MAX_FILE_BYTES:
            problems.append(
                f"{where}: {size:,} bytes, over the {MAX_FILE_BYTES / 1e6:g} MB limit for a shipped file; "
                "ship a smaller sample (or generate the data in the notebook)"
            )
            continue
        found[name] = source
    if total > MAX_TOTAL_BYTES and not problems:
        problems.append(
            f"{path}: {_WHERE}: the files weigh {total:,} bytes together, over the "
            f"{MAX_TOTAL_BYTES / 1e6:g} MB limit for one exercise; ship smaller samples"
        )
    if problems:
        raise AuthoringError("\n".join(problems))
    return found
