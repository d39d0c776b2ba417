"""Solution markers → learner stubs: :func:`strip_solution`, and the lines that look like markers.

A region ``# BEGIN SOLUTION`` … ``# END SOLUTION``, or a line ending in ``# SOLUTION``, becomes
:data:`grader.format.markers.CODE_STUB`. Near misses (``#begin solution``) are found too, because
a misspelt marker would ship the solution to learners.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass

from grader.errors import MarkerError
from grader.format import markers


def _loose_region(marker: str) -> re.Pattern[str]:
    """A case-insensitive pattern for a line that opens like ``marker`` in any spelling.

    ``# BEGIN SOLUTION`` itself, nbgrader's ``### BEGIN SOLUTION``, ``#begin_solution``,
    ``<!-- BEGIN SOLUTION -->``, ``BEGIN-SOLUTION``: any number of leading ``#`` (or other
    punctuation, but not a backtick: `` `# BEGIN SOLUTION` `` in prose only mentions it).
    """
    words = marker.lstrip("#").split()
    return re.compile(r"^[^\w`]*" + r"[\s_-]*".join(re.escape(w) for w in words) + r"\b", re.IGNORECASE)


_LOOSE_REGION = tuple(_loose_region(m) for m in (markers.BEGIN_SOLUTION, markers.END_SOLUTION))
#: a line ending like ``# SOLUTION`` in any spelling: ``#solution``, ``## Solution``, ``# SOLUTION.``
_LOOSE_SUFFIX = re.compile(r"#+\s*" + re.escape(markers.SOLUTION_SUFFIX.lstrip("# ")) + r"[^\w`]*$", re.IGNORECASE)
#: a Markdown heading that is only the word (``## Solution``): prose, not a marker
_HEADING = re.compile(r"^#+\s*" + re.escape(markers.SOLUTION_SUFFIX.lstrip("# ")) + r"\W*$", re.IGNORECASE)


@dataclass
class _Stub:
    """Where a stub goes: the marker's indentation and, as a fallback, that of the code it replaces."""

    number: int
    marker_indent: str
    content_indent: str | None = None


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _render(plan: list[str | _Stub], *, use_content_indent: bool) -> str:
    lines: list[str] = []
    for step in plan:
        if isinstance(step, _Stub):
            indent = step.marker_indent
            if use_content_indent and step.content_indent is not None:
                indent = step.content_indent
            line = indent + markers.CODE_STUB
            if lines and lines[-1] == line:  # consecutive stubs at one indent say the same thing once
                continue
            lines.append(line)
        else:
            lines.append(step)
    return "\n".join(lines)


def python_code(source: str) -> str:
    """A cell's source as plain Python: IPython magics (``%timeit``, ``!ls``) translated."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython ships with the grader's environment
        return source
    return str(TransformerManager().transform_cell(source))


def _syntax_error(source: str) -> SyntaxError | None:
    """The error Python reports for ``source`` (IPython magics translated first), or ``None``."""
    try:
        ast.parse(python_code(source))
    except SyntaxError as exc:
        return exc
    return None


def _plan(source: str, where: str) -> list[str | _Stub]:
    """The cell's lines, each solution region or ``# SOLUTION`` line replaced by a :class:`_Stub`."""
    plan: list[str | _Stub] = []
    current: _Stub | None = None
    for number, line in enumerate(source.splitlines(), start=1):
        marker = line.strip()
        if marker == markers.BEGIN_SOLUTION:
            if current is not None:
                raise MarkerError(
                    f"{where}, line {number}: nested {marker!r}; close the region opened on line "
                    f"{current.number} with {markers.END_SOLUTION!r} first"
                )
            current = _Stub(number, _indent(line))
            plan.append(current)
        elif marker == markers.END_SOLUTION:
            if current is None:
                raise MarkerError(f"{where}, line {number}: {marker!r} without {markers.BEGIN_SOLUTION!r}")
            current = None
        elif current is not None:
            if marker and current.content_indent is None:
                current.content_indent = _indent(line)
        elif line.rstrip().endswith(markers.SOLUTION_SUFFIX):
            plan.append(_Stub(number, _indent(line), _indent(line)))
        else:
            plan.append(line)
    if current is not None:
        raise MarkerError(
            f"{where}, line {current.number}: {markers.BEGIN_SOLUTION!r} is never closed; "
            f"add {markers.END_SOLUTION!r} after the solution"
        )
    return plan


def strip_solution(source: str, *, where: str) -> str:
    """Replace each solution region, and each line ending in ``# SOLUTION``, with the learner stub.

    A region ``# BEGIN SOLUTION`` … ``# END SOLUTION`` becomes one line raising
    ``NotImplementedError``, indented like the marker; a line ending in ``# SOLUTION`` becomes the
    same stub, indented like that line. If a valid cell would become invalid Python that way (the
    markers indented differently from the code they enclose), the stubs take the indentation of
    the enclosed code instead.

    Raises:
        MarkerError: a region is nested, unclosed, or closed without being opened; or the cell
            is no longer valid Python once the solution is removed.
    """
    plan = _plan(source, where)
    result = _render(plan, use_content_indent=False)
    stubs = [step for step in plan if isinstance(step, _Stub)]
    if not stubs or _syntax_error(source) is not None or _syntax_error(result) is None:
        return result
    fallback = _render(plan, use_content_indent=True)
    error = _syntax_error(fallback)
    if error is None:
        return fallback
    raise MarkerError(
        f"{where}, line {stubs[0].number}: without the solution the cell is not valid Python "
        f"({error.msg}); indent the markers like the code they enclose and mark whole statements"
    )


def marker_lines(source: str, *, markdown: bool = False) -> Iterable[tuple[int, str]]:
    """``(line number, line)`` of every line that is, or looks like, a solution marker.

    ``markdown``: the source of a Markdown cell, where a heading that is only the word
    (``## Solution``) is prose, and a marker mentioned in backticks is not one.
    """
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if markdown and _HEADING.match(stripped):
            continue
        if any(p.match(stripped) for p in _LOOSE_REGION) or _LOOSE_SUFFIX.search(line):
            yield number, line


def has_marker(source: str, *, markdown: bool = False) -> bool:
    """Whether any line is, or looks like, a solution marker (``markdown``: see :func:`marker_lines`)."""
    return any(True for _ in marker_lines(source, markdown=markdown))


def near_misses(source: str, where: str) -> list[str]:
    """Lines that look like markers but are not spelled exactly (they would ship the solution)."""
    exact = (markers.BEGIN_SOLUTION, markers.END_SOLUTION)
    problems = []
    for number, line in marker_lines(source):
        stripped = line.strip()
        if stripped in exact or line.rstrip().endswith(markers.SOLUTION_SUFFIX):
            continue
        wanted = next(
            (m for m, p in zip(exact, _LOOSE_REGION, strict=True) if p.match(stripped)),
            markers.SOLUTION_SUFFIX,
        )
        problems.append(f"{where}, line {number}: {stripped!r} looks like a marker; spell it exactly {wanted!r}")
    return problems
