"""Tests that assert → checks that print the values they check (what a hidden check must do).

Grading compares what a check prints with what the same check printed when the solution ran,
so ``assert EXPR == EXPECTED`` becomes ``print(EXPR)``: the solution's run records the expected
value, and a learner's answer passes only when it prints the same (numbers within tolerance).
A learner's code cannot neutralise that from inside the kernel, as it could an assertion.

:func:`report_values` rewrites one test's source, statement by statement, keeping everything
else (comments, layout, loops around the asserts):

======================================================  ============================================
the test                                                becomes
======================================================  ============================================
``assert f(2) == 4`` (also ``4 == f(2)``, ``is``)       ``print(f(2))`` (the side that is not a literal)
``assert f(x) == g(x)``                                  ``print(f(x), g(x))``
``assert d(x) == {"a": 1}`` / ``== {1, 2}``             ``print(sorted((d(x)).items(), key=repr))`` /
                                                        ``print(sorted(d(x), key=repr))`` (order-free,
                                                        like ``==``)
``assert (a == b).all()``, ``np.all(a == b)``           ``print(a)``
``assert np.allclose(a, b)`` (``isclose``,              ``print(a)`` (numbers are compared within
``array_equal``, ``math.isclose``), no tolerance given  tolerance)
``assert_equal(a, b)``, ``assert_allclose(a, b)``,      ``print(a)``
``assert_frame_equal(a, b)`` … without tolerance
any other ``assert COND`` (``<``, ``in``,               ``print(bool(COND))``: True/False only — a
``isinstance``, explicit tolerances)                    *weak* check, listed for the author to review
the cell's last line ``f(2) == 4`` (otter, nbgrader)    ``print(f(2))``
an assert inside ``try: … except AssertionError``       kept as it is (listed)
======================================================  ============================================

The message of an assert is dropped (a hidden check's output is never shown to learners).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field

#: functions whose call compares two values and answers True/False
_CLOSE_FUNCTIONS = frozenset({"allclose", "isclose", "array_equal", "array_equiv"})
#: assertion functions (nose.tools, numpy.testing, pandas.testing, unittest) that compare two values
_EQUAL_ASSERTS = frozenset(
    {
        "assert_equal",
        "assert_equals",
        "assert_array_equal",
        "assert_allclose",
        "assert_almost_equal",
        "assert_array_almost_equal",
        "assert_approx_equal",
        "assert_frame_equal",
        "assert_series_equal",
        "assert_index_equal",
        "assert_list_equal",
        "assert_tuple_equal",
        "assert_dict_equal",
        "assert_set_equal",
        "assert_sequence_equal",
        "assertEqual",
        "assertAlmostEqual",
    }
)
#: calls whose value is a pass/fail answer, when a test ends with one
_BOOLEAN_CALLS = frozenset(
    {"isinstance", "issubclass", "hasattr", "callable", "all", "any", "startswith", "endswith", "exists"}
    | _CLOSE_FUNCTIONS
)
#: keyword arguments that widen a comparison: the printed value would be compared more strictly
_TOLERANCE_KEYWORDS = frozenset({"rtol", "atol", "rel_tol", "abs_tol", "decimal", "places", "significant", "delta"})
_CATCHES_ASSERTION = frozenset({"AssertionError", "Exception", "BaseException"})


@dataclass
class Reported:
    """One test rewritten to print values, and what the author should know about it."""

    source: str
    #: asserts (and final comparisons) that now print the values they compared
    printed: int = 0
    #: asserts that now print only True/False (a learner's code could fake that): their source lines
    booleans: list[str] = field(default_factory=list)
    #: assertions left as they were (caught by the test itself, or compared with a tolerance): source lines
    kept: list[str] = field(default_factory=list)
    #: the source is not Python this module can read (IPython magics): left as it was
    unreadable: bool = False


def _name(node: ast.expr) -> str:
    """``allclose`` for ``np.allclose``, ``f`` for ``f``; empty for anything else."""
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _constant(node: ast.expr) -> bool:
    """A literal (``4``, ``[1, 4]``, ``{"a": 1}``, ``-2.5``) or ``approx(...)``: the expected side of a test."""
    if isinstance(node, ast.Call) and _name(node.func) == "approx":
        return True
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _unordered(node: ast.expr) -> str | None:
    """``"dict"`` or ``"set"`` when ``node`` is such a literal or comprehension (``==`` ignores order)."""
    if isinstance(node, (ast.Dict, ast.DictComp)) or (isinstance(node, ast.Call) and _name(node.func) == "dict"):
        return "dict"
    if isinstance(node, (ast.Set, ast.SetComp)) or (
        isinstance(node, ast.Call) and _name(node.func) in ("set", "frozenset")
    ):
        return "set"
    return None


class _Rewriter:
    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = source.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        self.edits: list[tuple[int, int, str]] = []
        self.result = Reported(source)

    def _at(self, line: int, col: int) -> int:
        """The character index of an AST position (columns are UTF-8 byte offsets)."""
        text = self.lines[line - 1] if line - 1 < len(self.lines) else ""
        return self.starts[line - 1] + len(text.encode("utf-8")[:col].decode("utf-8", errors="ignore"))

    def segment(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.source, node) or ""

    def first_line(self, node: ast.AST) -> str:
        return self.segment(node).splitlines()[0].strip() if self.segment(node) else ""

    def replace(self, node: ast.stmt, text: str) -> None:
        end_line = node.end_lineno or node.lineno
        end_col = node.end_col_offset if node.end_col_offset is not None else 0
        self.edits.append((self._at(node.lineno, node.col_offset), self._at(end_line, end_col), text))

    def shown(self, node: ast.expr, other: ast.expr) -> str:
        """How one compared value is printed: as it is, or sorted when ``==`` ignores its order."""
        text = self.segment(node)
        kind = _unordered(other) or _unordered(node)
        if kind == "dict":
            return f"sorted(({text}).items(), key=repr)"
        if kind == "set":
            return f"sorted(({text}), key=repr)"
        return text

    def values(self, left: ast.expr, right: ast.expr) -> list[str] | None:
        """The values to print for ``left == right``: the sides that are not literals (``None``: both are)."""
        if _constant(left) and _constant(right):
            return None
        if _constant(right):
            return [self.shown(left, right)]
        if _constant(left):
            return [self.shown(right, left)]
        return [self.shown(left, right), self.shown(right, left)]

    def compared(self, test: ast.expr) -> list[str] | None:
        """The values a condition compares for equality, when it is such a condition (else ``None``)."""
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.Is)):
            return self.values(test.left, test.comparators[0])
        if isinstance(test, ast.Call):
            name = _name(test.func)
            inner: ast.expr | None = None
            if name == "all" and not test.args and isinstance(test.func, ast.Attribute):
                inner = test.func.value  # (a == b).all()
            elif name == "all" and len(test.args) == 1 and isinstance(test.func, ast.Attribute):
                inner = test.args[0]  # np.all(a == b)
            if inner is not None:
                return self.compared(inner) if isinstance(inner, ast.Compare) else None
            if name in _CLOSE_FUNCTIONS and len(test.args) >= 2:
                if any(k.arg in _TOLERANCE_KEYWORDS for k in test.keywords):
                    return None
                return self.values(test.args[0], test.args[1])
        return None

    def assertion(self, node: ast.Assert) -> None:
        shown = self.compared(node.test)
        if shown is not None:
            self.replace(node, f"print({', '.join(shown)})")
            self.result.printed += 1
        else:
            self.replace(node, f"print(bool({self.segment(node.test)}))")
            self.result.booleans.append(self.first_line(node))

    def assert_call(self, node: ast.Expr, call: ast.Call) -> None:
        """``assert_equal(a, b)`` and its kind: print the values, unless a tolerance is given."""
        if (
            _name(call.func) in _EQUAL_ASSERTS
            and len(call.args) >= 2
            and not any(k.arg in _TOLERANCE_KEYWORDS for k in call.keywords)
            and not any(isinstance(a, ast.Starred) for a in call.args[:2])
        ):
            shown = self.values(call.args[0], call.args[1])
            if shown is not None:
                self.replace(node, f"print({', '.join(shown)})")
                self.result.printed += 1
                return
        self.result.kept.append(self.first_line(node))

    def final(self, node: ast.Expr) -> None:
        """The cell's last line, shown by Jupyter: a comparison prints what it compares."""
        shown = self.compared(node.value)
        if shown is not None:
            self.replace(node, f"print({', '.join(shown)})")
            self.result.printed += 1
        elif _boolean(node.value):
            self.result.booleans.append(self.first_line(node))

    def apply(self) -> str:
        text = self.source
        for start, end, new in sorted(self.edits, reverse=True):
            text = text[:start] + new + text[end:]
        return text


def _caught_asserts(tree: ast.AST) -> set[int]:
    """Ids of the assert statements inside a ``try`` whose handler catches ``AssertionError``."""
    caught: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        catches = False
        for handler in node.handlers:
            kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            catches = catches or any(kind is None or _name(kind) in _CATCHES_ASSERTION for kind in kinds)
        if catches:
            for statement in node.body:
                caught.update(id(n) for n in ast.walk(statement) if isinstance(n, ast.Assert))
    return caught


def _is_assert_call(call: ast.Call) -> bool:
    """``assert_equal(...)``, ``np.testing.assert_allclose(...)``, ``self.assertEqual(...)``."""
    name = _name(call.func)
    return name.startswith("assert_") or name in _EQUAL_ASSERTS


def _final_expression(tree: ast.Module) -> ast.Expr | None:
    last = tree.body[-1] if tree.body else None
    if not isinstance(last, ast.Expr) or (isinstance(last.value, ast.Call) and _name(last.value.func) == "print"):
        return None
    return last


def report_values(source: str, *, final_expression: bool = True) -> Reported:
    """Rewrite a test so that it prints the values it checks (see the module docstring).

    ``final_expression``: also rewrite a comparison on the cell's last line (Jupyter shows its value;
    otter and nbgrader read that value as the test's result).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return Reported(source, unreadable=True)
    rewriter = _Rewriter(source)
    caught = _caught_asserts(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            if id(node) in caught:
                rewriter.result.kept.append(rewriter.first_line(node))
            else:
                rewriter.assertion(node)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and _is_assert_call(node.value):
            rewriter.assert_call(node, node.value)
    last = _final_expression(tree)
    if final_expression and last is not None and not (isinstance(last.value, ast.Call) and _is_assert_call(last.value)):
        rewriter.final(last)
    result = rewriter.result
    rewritten = rewriter.apply()
    try:
        ast.parse(rewritten)
    except SyntaxError:  # pragma: no cover - a rewrite is always a whole statement; keep the test if not
        return Reported(source, unreadable=True)
    result.source = rewritten
    return result


def prints_something(source: str) -> bool:
    """Whether a cell reports a value: a ``print`` call, or a last line that is an expression (not ``;``-ended)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    if _final_expression(tree) is not None and not source.rstrip().endswith(";"):
        return True
    return any(isinstance(node, ast.Call) and _name(node.func) == "print" for node in ast.walk(tree))


def _calls_own_function(tree: ast.Module, last: ast.Expr) -> bool:
    """Whether the last line calls a function the cell defines (a test function: it shows nothing)."""
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    return isinstance(last.value, ast.Call) and isinstance(last.value.func, ast.Name) and last.value.func.id in defined


def _boolean(node: ast.expr) -> bool:
    """An expression whose value is a pass/fail answer (``x == 1``, ``isinstance(x, int)``, ``not x``)."""
    if isinstance(node, (ast.Compare, ast.BoolOp)) or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)):
        return True
    if isinstance(node, ast.Constant):
        return isinstance(node.value, bool)
    return isinstance(node, ast.Call) and _name(node.func) in _BOOLEAN_CALLS


def _shown_last(source: str) -> tuple[ast.Module, ast.Expr] | None:
    """The cell's last line when Jupyter shows its value (a bare expression, not ``print``, not ``;``-ended)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    last = _final_expression(tree)
    if last is None or source.rstrip().endswith(";") or _calls_own_function(tree, last):
        return None
    if isinstance(last.value, ast.Call) and _name(last.value.func) == "display":
        return None
    return tree, last


def shows_value(source: str) -> bool:
    """Whether a test's last line shows a value to compare (``square(4)``), not a pass/fail answer or nothing."""
    shown = _shown_last(source)
    if shown is None:
        return False
    value = shown[1].value
    return not _boolean(value) and not (isinstance(value, ast.Constant) and value.value is None)


def wrap_last(source: str, wrap: Callable[[str], str], *, booleans_only: bool = False) -> str:
    """The last line, when Jupyter shows its value, rewritten by ``wrap`` (given its source text).

    Used when tests are merged into one cell, where only the last line is shown: each test's
    last line becomes ``print(...)`` (hidden) or ``assert ...`` (visible, ``booleans_only``).
    """
    shown = _shown_last(source)
    if shown is None or (booleans_only and not _boolean(shown[1].value)):
        return source
    rewriter = _Rewriter(source)
    rewriter.replace(shown[1], wrap(rewriter.segment(shown[1].value)))
    return rewriter.apply()


def call_test_function(source: str) -> str:
    """A cell that only defines ``def test_x(a, b)`` (otter's exception-based tests) also calls it.

    Otter passes each parameter the global of that name (``env``: all globals); the call does the same.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
        return source
    function = tree.body[0]
    arguments = ["globals()" if a.arg == "env" else a.arg for a in function.args.args]
    return f"{source.rstrip()}\n\n{function.name}({', '.join(arguments)})"


# --- the report -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One thing the author should know, at one place of the source notebook."""

    #: where, in the source notebook: ``cell 14 (grade_id 'part-a')``, ``cell 9 (question q2)``
    place: str
    message: str


@dataclass(frozen=True)
class ImportReport:
    """What ``grader import`` made of an assignment: what became what, and what it left to the author."""

    #: ``nbgrader`` or ``otter``
    tool: str
    #: the source notebook as given
    source: str
    exercise: str
    #: the solution notebook written, or ``None`` when nothing could be converted (nothing written)
    output: str | None
    #: each source cell converted, and what it became
    converted: tuple[Finding, ...] = ()
    #: what could not be converted (graded by hand, written answers, files, ...): never silently dropped
    not_converted: tuple[Finding, ...] = ()
    #: converted, but differently from the source: worth a look before publishing
    review: tuple[Finding, ...] = ()
    exercises: int = 0
    checks: int = 0
    hidden_checks: int = 0
    #: points of the checks and of the manual answers
    points: float = 0.0
    #: written answers an instructor grades (``manual`` cells)
    manual_answers: int = 0

    @property
    def ok(self) -> bool:
        """Whether something was converted (and written)."""
        return self.output is not None


def points_text(value: float) -> str:
    """``1 point``, ``0.5 points``, ``2 points``."""
    return f"{value:g} point{'' if value == 1 else 's'}"


def render_report(report: ImportReport) -> str:
    """The report as the CLI prints it: a summary line, then each section, one finding a line."""
    if report.ok:
        hidden = f" ({report.hidden_checks} hidden)" if report.hidden_checks else ""
        lines = [
            f"imported {report.tool} assignment {report.source} as {report.output}: "
            f"{report.exercises} exercise{'s' if report.exercises != 1 else ''}, "
            f"{report.checks} check{'s' if report.checks != 1 else ''}{hidden}, "
            + (
                f"{report.manual_answers} answer{'s' if report.manual_answers != 1 else ''} graded by an instructor, "
                if report.manual_answers
                else ""
            )
            + points_text(report.points)
        ]
    else:
        lines = [f"nothing in {report.source} could be converted to a graded exercise; nothing written"]
    sections = (
        ("converted", report.converted),
        ("NOT converted: grade or rewrite these yourself", report.not_converted),
        ("review: converted, but not exactly as the source had it", report.review),
    )
    for title, findings in sections:
        if findings:
            lines.append(f"{title} ({len(findings)}):")
            lines += [f"  {f.place}: {f.message}" for f in findings]
    if report.ok:
        lines.append(f"next: `grader assign`, then `grader verify {report.exercise}`")
    return "\n".join(lines)
