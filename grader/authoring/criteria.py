"""The authoring rules of criteria: public bounds, and words that can quote nothing but themselves.

A check may judge a value with ``mlcourse.checks.criterion(name, value, at_least=…, at_most=…,
cases=…)``. Feedback on a hidden check quotes the criterion's ``name``, its bound and ``cases``
(grading.results.criterion_missed), so

- ``name`` and ``cases`` must be string literals, and the bound a number literal: a name built
  at run time (``f"F1 of {team}"``) could carry a value or an input into the learner's feedback
  (an error);
- the bound must be stated in the notebook's Markdown (a criterion is a public promise: the
  learner should be able to score themselves against it); a bound the text never mentions is
  a warning. ``0.8`` is found as ``0.8``, ``0.80`` or ``80%``.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from nbformat import NotebookNode

from grader.authoring.stubs import python_code
from grader.format import markers
from grader.format.cells import cell_role, describe_cell

#: the function checks call (``criterion(...)`` or ``checks.criterion(...)``)
CRITERION = "criterion"
_BOUNDS = ("at_least", "at_most")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?|\.\d+)(\s*%)?")


@dataclass(frozen=True)
class CriterionCall:
    """One ``criterion(...)`` call in a check, as written."""

    line: int
    name: str | None  # None: not a string literal
    cases: str | None  # None: not a string literal (absent: the default, which is fine)
    bound: float | None  # the literal bound; None when absent (a truth criterion) or not a literal
    bound_literal: bool


def _literal_number(node: ast.expr) -> float | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _literal_number(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return float(node.value)
    return None


def _literal_text(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def criterion_calls(source: str) -> Iterator[CriterionCall]:
    """Every ``criterion(...)`` call in a cell's code (none when it does not parse)."""
    try:
        tree = ast.parse(python_code(source))
    except SyntaxError:
        return
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if called != CRITERION:
            continue
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        bound_node = next((keywords[k] for k in _BOUNDS if k in keywords), None)
        bound = None if bound_node is None else _literal_number(bound_node)
        yield CriterionCall(
            line=node.lineno,
            name=_literal_text(node.args[0]) if node.args else _literal_text(keywords.get("name")),
            cases=_literal_text(keywords["cases"]) if "cases" in keywords else "",
            bound=bound,
            bound_literal=bound_node is None or bound is not None,
        )


def _stated_numbers(nb: NotebookNode) -> list[float]:
    """Every number the notebook's Markdown states (``80%`` also as 0.8)."""
    numbers = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for match in _NUMBER.finditer(cell.get("source", "")):
            value = float(match.group(1))
            numbers.append(value / 100 if match.group(2) else value)
    return numbers


def criterion_problems(nb: NotebookNode, *, path: str) -> tuple[list[str], list[str]]:
    """(problems, warnings) of the criteria in the notebook's checks; see the module docs."""
    problems: list[str] = []
    warnings: list[str] = []
    stated = _stated_numbers(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell_role(cell) not in markers.GRADED_TAGS:
            continue
        for call in criterion_calls(cell.get("source", "")):
            place = f"{describe_cell(nb, index, path=path, show='id')}, line {call.line}"
            if call.name is None or call.cases is None:
                problems.append(
                    f"{place}: a criterion's name and cases must be string literals (feedback quotes them; "
                    "text built at run time could carry a value into it)"
                )
            if not call.bound_literal:
                problems.append(f"{place}: a criterion's bound must be a number literal, stated in the exercise text")
            elif call.bound is not None and not any(math.isclose(call.bound, n, rel_tol=1e-9) for n in stated):
                warnings.append(
                    f"{place}: the bound {call.bound:g} of criterion {call.name!r} is not stated in the notebook's "
                    "text; a criterion is public: say it where learners read the task"
                )
    return problems, warnings
