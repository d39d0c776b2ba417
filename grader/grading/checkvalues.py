"""Check values: what a graded cell reports, through a channel of its own, and how it is compared.

Before a graded cell runs, the trusted side rewrites it (:func:`instrument`), splicing text so
line numbers stay the same:

- in a **hidden check**, every ``print(...)`` call written in the cell becomes
  ``__grader_report__.print(...)`` and a final bare expression becomes
  ``__grader_report__.value(...)``: both publish the values, typed, under
  :data:`mlcourse.checks.MIME` (see :mod:`mlcourse.checks`), and nothing else of the cell's
  output is compared — not the learner's own prints, not a displayed repr;
- in a **visible check**, a final bare expression becomes ``__grader_report__.final(...)``, which
  fails the check when it is ``False`` (an otter-style ``square(1) == 1``), exactly as self-check
  judges it; visible checks are never compared by output.

A **criterion** (``mlcourse.checks.criterion("macro-F1", f1, at_least=0.5, cases="held-out sets")``)
is a named value with a public bound. In a hidden check it is reported like the other values,
but judged against the bound the *reference* reported (never against the reference's value, and
never with the bound the learner's kernel sends): :func:`criteria_failed` counts, per criterion,
on how many of the check's cases it was not met, and feedback names it with those counts. In a
visible check it is an assertion, and the learner sees the value.

Each run gets a fresh nonce per cell; payloads without it (published by learner code with the
grader's MIME type) are ignored. A learner cannot produce a hidden check's expected values
without knowing them, so forging, reordering or suppressing payloads only loses the check.

Values are compared by type (:func:`compare_payloads`): integers exactly, floats (and an
integer against a float) with the tolerance, strings as text with the numbers in them
tolerant, lists in order, sets and dict keys unordered, arrays and tensors by shape and
element, DataFrames by column name. A check's cell metadata may say what matters::

    "grader": {"id": "3.2", "points": 2, "compare": {"rtol": 1e-3, "atol": 0, "ordered": false, "dtype": true}}

``ordered: false`` compares lists and DataFrame rows as multisets; ``dtype: true`` makes an
integer and a float different (an ``int64`` count column answered as ``float64``).
"""

from __future__ import annotations

import ast
import json
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from grader.grading.comparison import DEFAULT_TOLERANCE, Tolerance, lines_match
from grader.grading.sanitize import DEFAULT_SANITIZERS, sanitize

#: the payload MIME type (the same string as ``mlcourse.checks.MIME``, which the kernel imports)
MIME = "application/vnd.mlcourse.check-values+json"
#: the name the rewritten cell calls
REPORTER = "__grader_report__"
#: cell metadata key, under ``grader``, of a check's comparison options
META_COMPARE = "compare"
_QUOTE = 60
_SPACES = re.compile(r"[ \t]+")


@dataclass(frozen=True)
class CompareOptions:
    """What matters when a check's values are compared (cell metadata ``grader.compare``)."""

    tolerance: Tolerance = DEFAULT_TOLERANCE
    #: lists and DataFrame rows in order
    ordered: bool = True
    #: an integer and a float of equal value differ
    dtype: bool = False

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any], default: Tolerance) -> CompareOptions:
        spec = meta.get(META_COMPARE, {}) if isinstance(meta, Mapping) else {}
        spec = spec if isinstance(spec, Mapping) else {}
        tolerance = replace(
            default,
            **{k: float(spec[k]) for k in ("rtol", "atol") if isinstance(spec.get(k), (int, float))},
        )
        return cls(tolerance, bool(spec.get("ordered", True)), bool(spec.get("dtype", False)))


def new_nonce() -> str:
    return secrets.token_hex(12)


def _final_expression(tree: ast.Module) -> ast.Expr | None:
    last = tree.body[-1] if tree.body else None
    return last if isinstance(last, ast.Expr) else None


def _is_print(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"


def _reports_itself(node: ast.AST) -> bool:
    """A call that reports through the channel on its own: ``print``, ``criterion(...)``, ``report(...)``."""
    if _is_print(node):
        return True
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return name in ("criterion", "report")


def instrument(source: str, nonce: str, *, hidden: bool) -> str:
    """The check cell's source, rewritten to report its values (see the module docs); line numbers kept.

    Source that does not parse (or uses IPython syntax) is returned unchanged: it fails as it is.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def at(lineno: int, col: int) -> int:
        # ast columns are UTF-8 byte offsets
        return offsets[lineno - 1] + len(lines[lineno - 1].encode("utf-8")[:col].decode("utf-8", "replace"))

    edits: list[tuple[int, int, str]] = []  # (start, end, replacement)
    final = _final_expression(tree)
    if hidden:
        for node in ast.walk(tree):
            if _is_print(node):
                func = node.func  # type: ignore[attr-defined]
                start = at(func.lineno, func.col_offset)
                edits.append((start, at(func.end_lineno, func.end_col_offset), f"{REPORTER}.print"))
    if final is not None and not _reports_itself(final.value):
        value = final.value
        start, end = at(value.lineno, value.col_offset), at(value.end_lineno, value.end_col_offset)  # type: ignore[arg-type]
        method = "value" if hidden else "final"
        edits.append((start, start, f"{REPORTER}.{method}("))
        edits.append((end, end, ")"))
    text = source
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:start] + replacement + text[end:]
    preamble = (
        f"import mlcourse.checks as __grader_checks__; "
        f"{REPORTER} = __grader_checks__._current = "
        f"__grader_checks__.Reporter({json.dumps(nonce)}, hidden={hidden}); "
    )
    # on the first line, so every later line keeps its number (a check's first line is its title comment)
    return preamble + text


def payloads(outputs: Iterable[Mapping[str, Any]], nonce: str | None = None) -> list[dict[str, Any]]:
    """The reported payloads among a cell's outputs, in order; only this run's (``nonce``) when given."""
    found = []
    for output in outputs:
        if output.get("output_type") not in ("display_data", "execute_result"):
            continue
        payload = output.get("data", {}).get(MIME)
        if isinstance(payload, str):
            try:
                payload = json.loads(payload)
            except ValueError:
                continue
        if not isinstance(payload, dict) or (nonce is not None and payload.get("nonce") != nonce):
            continue
        found.append({"kind": payload.get("kind"), "values": payload.get("values", [])})
    return found


def _quote(value: Any) -> str:
    text = json.dumps(value.get("v") if isinstance(value, dict) else value, default=str)
    return text if len(text) <= _QUOTE else text[: _QUOTE - 1] + "…"


def _float(value: Any) -> float:
    return float(value)  # "nan", "inf" and "-inf" are how the kernel spells those


def _numbers(expected: dict[str, Any], actual: dict[str, Any], options: CompareOptions) -> str | None:
    if expected["t"] == "int" and actual["t"] == "int":
        return None if expected["v"] == actual["v"] else "a different number"
    if options.dtype and expected["t"] != actual["t"]:
        return f"a {actual['t']} where an {expected['t']} was expected"
    a, b = _float(actual["v"]), _float(expected["v"])
    if math.isnan(a) or math.isnan(b):
        return None if math.isnan(a) and math.isnan(b) else "a different number"
    tolerance = options.tolerance
    return None if math.isclose(a, b, rel_tol=tolerance.rtol, abs_tol=tolerance.atol) else "a different number"


def _sequence(expected: list[Any], actual: list[Any], options: CompareOptions, ordered: bool) -> str | None:
    if len(expected) != len(actual):
        return f"{len(actual)} items where {len(expected)} were expected"
    if ordered:
        for position, (e, a) in enumerate(zip(expected, actual, strict=True)):
            difference = compare_value(e, a, options)
            if difference is not None:
                return f"item {position}: {difference}"
        return None
    unmatched = list(actual)
    for e in expected:
        match = next((i for i, a in enumerate(unmatched) if compare_value(e, a, options) is None), None)
        if match is None:
            return "the items differ (in any order)"
        unmatched.pop(match)
    return None


def _frames(expected: dict[str, Any], actual: dict[str, Any], options: CompareOptions) -> str | None:
    want = {c["name"]: c for c in expected["columns"]}
    got = {c["name"]: c for c in actual["columns"]}
    if set(want) != set(got):
        return f"columns {sorted(got)} where {sorted(want)} were expected"
    if options.dtype:
        for name, column in want.items():
            if column["kind"] != got[name]["kind"]:
                return f"column {name!r} has dtype kind {got[name]['kind']!r}, expected {column['kind']!r}"
    if options.ordered:
        for name in want:
            difference = _sequence(want[name]["v"], got[name]["v"], options, ordered=True)
            if difference is not None:
                return f"column {name!r}, {difference}"
        return None
    names = sorted(want)

    def rows(frame: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"t": "list", "v": [frame[n]["v"][i] for n in names]} for i in range(len(frame[names[0]]["v"]))]

    return None if not names else _sequence(rows(want), rows(got), options, ordered=False)


def _lines(text: str) -> list[str]:
    lines = [_SPACES.sub(" ", line).strip() for line in sanitize(text, DEFAULT_SANITIZERS).splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _text_equal(expected: str, actual: str, tolerance: Tolerance) -> bool:
    """Text as the printed-output comparison sees it: sanitized, spaces normalised, numbers tolerant."""
    if expected == actual:
        return True
    want, got = _lines(expected), _lines(actual)
    return len(want) == len(got) and all(lines_match(w, g, tolerance) for w, g in zip(want, got, strict=True))


def compare_value(expected: dict[str, Any], actual: dict[str, Any], options: CompareOptions) -> str | None:
    """``None`` when two encoded values are equal under ``options``, else what differs (no values quoted)."""
    kinds = {expected.get("t"), actual.get("t")}
    if kinds <= {"int", "float"}:
        return _numbers(expected, actual, options)
    if expected.get("t") != actual.get("t"):
        return f"a {actual.get('t')} where a {expected.get('t')} was expected"
    kind = expected["t"]
    if kind in ("none",):
        return None
    if kind == "bool":
        return None if expected["v"] is actual["v"] else "a different truth value"
    if kind in ("str", "repr"):
        return None if _text_equal(str(expected["v"]), str(actual["v"]), options.tolerance) else "different text"
    if kind == "list":
        return _sequence(expected["v"], actual["v"], options, options.ordered)
    if kind == "set":
        return _sequence(expected["v"], actual["v"], options, ordered=False)
    if kind == "dict":

        def pairs(d: dict[str, Any]) -> list[dict[str, Any]]:
            return [{"t": "list", "v": pair} for pair in d["v"]]

        return _sequence(pairs(expected), pairs(actual), options, ordered=False)
    if kind == "array":
        if expected["shape"] != actual["shape"]:
            return f"shape {tuple(actual['shape'])} where {tuple(expected['shape'])} was expected"
        if (expected["kind"] == "b") != (actual["kind"] == "b") or (
            options.dtype and expected["kind"] != actual["kind"]
        ):
            return f"dtype kind {actual['kind']!r} where {expected['kind']!r} was expected"

        def as_items(arr: dict[str, Any]) -> list[dict[str, Any]]:
            kind = {"b": "bool", "i": "int"}.get(arr["kind"], "float")
            return [{"t": kind, "v": x} for x in arr["v"]]

        return _sequence(as_items(expected), as_items(actual), options, ordered=True)
    if kind == "frame":
        return _frames(expected, actual, options)
    return None if expected == actual else "a different value"


@dataclass(frozen=True)
class Criterion:
    """A criterion as the reference reported it, and on how many of its cases the learner missed it."""

    name: str
    op: str  # "at_least", "at_most" or "holds" (mlcourse.checks)
    bound: float | None
    cases: str
    failed: int = 0
    total: int = 0


def _criterion_fields(payload: dict[str, Any]) -> tuple[str, Any, str, float | None, str] | None:
    """(name, encoded value, op, bound, cases) of a criterion payload, or ``None`` when malformed."""
    values = payload.get("values")
    if not isinstance(values, list) or len(values) != 5 or not all(isinstance(v, dict) for v in values):
        return None
    name, value, op, bound, cases = values
    if name.get("t") != "str" or op.get("v") not in CRITERION_OPS or cases.get("t") != "str":
        return None
    number = bound.get("v") if bound.get("t") in ("int", "float") else None
    return str(name["v"]), value, str(op["v"]), None if number is None else _float(number), str(cases["v"])


#: the comparisons a criterion may make (``mlcourse.checks.AT_LEAST``, ``AT_MOST``, ``HOLDS``)
CRITERION_OPS = ("at_least", "at_most", "holds")


def _criterion_met(value: Any, op: str, bound: float | None) -> bool:
    kind = value.get("t") if isinstance(value, dict) else None
    if op == "holds":
        return kind == "bool" and value["v"] is True
    if kind not in ("int", "float", "bool") or bound is None:
        return False
    number = _float(value["v"])
    if math.isnan(number):
        return False
    return number >= bound if op == "at_least" else number <= bound


def criteria_failed(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[Criterion]:
    """The reference's criteria, in order of first appearance, each with the cases the learner missed.

    Cases pair up by position among the payloads; a case the learner did not report (or
    reported under another name) counts as missed. Only criteria missed at least once are returned.
    """
    tallies: dict[str, Criterion] = {}
    for position, want in enumerate(expected):
        if want.get("kind") != "criterion":
            continue
        fields = _criterion_fields(want)
        if fields is None:
            continue
        name, _, op, bound, cases = fields
        got = actual[position] if position < len(actual) else {}
        mine = _criterion_fields(got) if got.get("kind") == "criterion" else None
        met = mine is not None and mine[0] == name and _criterion_met(mine[1], op, bound)
        tally = tallies.get(name, Criterion(name, op, bound, cases))
        tallies[name] = replace(tally, failed=tally.failed + (not met), total=tally.total + 1)
    return [tally for tally in tallies.values() if tally.failed]


def compare_payloads(
    expected: list[dict[str, Any]], actual: list[dict[str, Any]], options: CompareOptions
) -> str | None:
    """``None`` when the reported values match the reference's, else the first difference (no values quoted).

    Criteria are not compared here (see :func:`criteria_failed`), only that one was reported in its place.
    """
    for number, (want, got) in enumerate(zip(expected, actual, strict=False), start=1):
        what = "printed" if want.get("kind") == "print" else "final"
        if want.get("kind") != got.get("kind"):
            return f"reported value {number}: a {got.get('kind')} where a {want.get('kind')} was expected"
        if want.get("kind") == "criterion":
            continue
        difference = _sequence(want["values"], got["values"], options, ordered=True)
        if difference is not None:
            return f"{what} value {number}: {difference.replace('item ', 'part ', 1)}"
    if len(actual) > len(expected):
        return f"{len(actual)} values reported where {len(expected)} were expected"
    if len(expected) > len(actual):
        return f"only {len(actual)} of {len(expected)} expected values were reported"
    return None
