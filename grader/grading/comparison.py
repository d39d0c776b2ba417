"""Comparing a check cell's outputs with the reference: tolerant to noise, strict on values.

A cell's outputs become lines of text in three steps:

1. :func:`output_text` keeps what a person reads — stdout (streams merged, ``\\r`` and ``\\b``
   applied like a terminal) and the ``text/plain`` of displayed results — and drops stderr
   entirely, so warnings never fail correct work. Images are compared only by their presence.
2. :mod:`grader.grading.sanitize` removes what varies between correct runs (paths, addresses,
   timestamps, progress bars, colour codes).
3. Runs of spaces collapse to one and trailing blank lines go (column alignment in tables
   shifts when a number gets one digit longer).

Two line lists match when they have the same length and each pair of lines matches: the
text between numbers is equal, and each pair of numbers is close (``rtol``/``atol``; two
integers must be equal).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grader.grading.sanitize import DEFAULT_SANITIZERS, Sanitizer, sanitize

#: a decimal number, not glued to the end of a word ("x1" is text)
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_SPACES = re.compile(r"[ \t]+")
_CARRIAGE_RETURN = re.compile(r"^.*\r(?=[^\n])", re.MULTILINE)
_BACKSPACE = re.compile(r"[^\n]\x08")
#: how much of a line a difference message quotes
_QUOTE = 80


@dataclass(frozen=True)
class Tolerance:
    """How close two numbers must be: ``|a - b| <= atol + rtol * |b|`` (b the reference)."""

    rtol: float = 1e-6
    atol: float = 1e-9


#: rtol 1e-6, atol 1e-9
DEFAULT_TOLERANCE = Tolerance()


def _terminal(text: str) -> str:
    """Apply backspaces and carriage returns the way a terminal shows them."""
    previous = None
    while previous != text:
        previous, text = text, _BACKSPACE.sub("", text)
    return _CARRIAGE_RETURN.sub("", text)


def _display_text(data: Mapping[str, Any]) -> str:
    if "text/plain" in data:
        value = data["text/plain"]
        return "".join(value) if isinstance(value, list) else str(value)
    kinds = sorted(data)
    return f"<{', '.join(kinds)}>" if kinds else ""


def output_text(outputs: Iterable[Mapping[str, Any]]) -> list[str]:
    """The readable pieces of one cell's outputs: merged stdout first-in-place, then displays."""
    pieces: list[str] = []
    stdout_at: int | None = None
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            if output.get("name") != "stdout":
                continue
            text = output.get("text", "")
            text = "".join(text) if isinstance(text, list) else str(text)
            if stdout_at is None:
                stdout_at = len(pieces)
                pieces.append(text)
            else:
                pieces[stdout_at] += text
        elif kind in ("execute_result", "display_data"):
            pieces.append(_display_text(output.get("data", {})))
    if stdout_at is not None:
        pieces[stdout_at] = _terminal(pieces[stdout_at])
    return pieces


def comparable_lines(
    outputs: Iterable[Mapping[str, Any]], sanitizers: tuple[Sanitizer, ...] = DEFAULT_SANITIZERS
) -> list[str]:
    """Outputs as the lines that are compared: readable, sanitized, spaces normalised."""
    lines: list[str] = []
    for piece in output_text(outputs):
        for line in sanitize(piece, sanitizers).splitlines():
            lines.append(_SPACES.sub(" ", line).strip())
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _numbers_close(expected: str, actual: str, tolerance: Tolerance) -> bool:
    if expected == actual:
        return True
    integers = not any(c in token for token in (expected, actual) for c in ".eE")
    if integers:
        return int(expected) == int(actual)
    a, b = float(actual), float(expected)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=tolerance.rtol, abs_tol=tolerance.atol)


def lines_match(expected: str, actual: str, tolerance: Tolerance = DEFAULT_TOLERANCE) -> bool:
    """Equal text around the numbers, and every pair of numbers close."""
    if expected == actual:
        return True
    expected_parts, actual_parts = _NUMBER.split(expected), _NUMBER.split(actual)
    if expected_parts != actual_parts:
        return False
    return all(
        _numbers_close(e, a, tolerance) for e, a in zip(_NUMBER.findall(expected), _NUMBER.findall(actual), strict=True)
    )


def _quote(line: str) -> str:
    return repr(line if len(line) <= _QUOTE else line[: _QUOTE - 1] + "…")


def describe_difference(
    expected: Sequence[str], actual: Sequence[str], tolerance: Tolerance = DEFAULT_TOLERANCE
) -> str | None:
    """``None`` when the line lists match, else a one-line account of the first difference."""
    for number, (want, got) in enumerate(zip(expected, actual, strict=False), start=1):
        if not lines_match(want, got, tolerance):
            return f"line {number}: expected {_quote(want)}, got {_quote(got)}"
    if len(actual) > len(expected):
        return f"unexpected extra output at line {len(expected) + 1}: {_quote(actual[len(expected)])}"
    if len(expected) > len(actual):
        where = f"after line {len(actual)}" if actual else "nothing was printed"
        return f"missing output ({where}): expected {_quote(expected[len(actual)])}"
    return None


def compare_outputs(
    expected: Iterable[Mapping[str, Any]],
    actual: Iterable[Mapping[str, Any]],
    *,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    sanitizers: tuple[Sanitizer, ...] = DEFAULT_SANITIZERS,
) -> str | None:
    """Compare two cells' outputs; ``None`` when they match, else the first difference."""
    return describe_difference(comparable_lines(expected, sanitizers), comparable_lines(actual, sanitizers), tolerance)
