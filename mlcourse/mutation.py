"""Mutation testing for a notebook's test suite: run test functions against a system and its mutants.

A *test* here is a plain function that takes the system under test as its only argument and
raises (usually ``AssertionError``) when the system breaks a promise. A *mutant* is the system
with one planted bug. A suite is judged twice: it must pass on the correct system (no false
alarm), and it *kills* a mutant when at least one of its tests fails on it.

    >>> def test_adds(system):
    ...     assert system(2, 3) == 5
    >>> tests = collect_tests({"test_adds": test_adds, "helper": len})
    >>> run_suite(tests, lambda a, b: a + b).passed
    True
    >>> killed(tests, lambda a, b: a - b)
    True

Tests run in this process, one after the other, in the order they were defined: nothing here
isolates them from each other, so a test must not change the system or shared data.
"""

from __future__ import annotations

import dis
import inspect
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SuiteResult", "collect_tests", "killed", "mutation_report", "references", "run_suite"]

#: how much of a failure's message a report keeps (a hypothesis failure can run to pages)
_MESSAGE_CHARS = 300

Test = Callable[[Any], object]


@dataclass(frozen=True)
class SuiteResult:
    """What one run of a suite against one system gave: each failed test with its error."""

    tests: tuple[str, ...]
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when every test passed."""
        return not self.failures

    def summary(self) -> str:
        """One line per failed test (``name: ErrorType: message``), or that all passed."""
        if self.passed:
            return f"all {len(self.tests)} tests passed"
        lines = [f"{len(self.failures)} of {len(self.tests)} tests failed:"]
        lines += [f"  {name}: {error}" for name, error in self.failures.items()]
        return "\n".join(lines)


def collect_tests(namespace: Mapping[str, Any], prefix: str = "test_") -> dict[str, Test]:
    """The functions of ``namespace`` (``globals()`` in a notebook) whose names start with ``prefix``,
    in the order they were defined."""
    return {name: value for name, value in namespace.items() if name.startswith(prefix) and callable(value)}


def _describe(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else ""
    text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 1] + "…"


def run_suite(tests: Mapping[str, Test], system: Any) -> SuiteResult:
    """Call every test with ``system``; a test fails when it raises any ``Exception``."""
    failures: dict[str, str] = {}
    for name, test in tests.items():
        try:
            test(system)
        except Exception as error:  # any exception is a failed test, as in pytest
            failures[name] = _describe(error)
    return SuiteResult(tests=tuple(tests), failures=failures)


def killed(tests: Mapping[str, Test], mutant: Any) -> bool:
    """True when at least one test fails on ``mutant``. Stops at the first failing test."""
    for test in tests.values():
        try:
            test(mutant)
        except Exception:  # any exception kills the mutant
            return True
    return False


def mutation_report(tests: Mapping[str, Test], mutants: Mapping[str, Any]) -> dict[str, bool]:
    """For each named mutant, whether the suite kills it."""
    return {name: killed(tests, mutant) for name, mutant in mutants.items()}


def _function(value: Any) -> types.FunctionType | None:
    """The plain function behind a test or helper (a hypothesis ``@given`` test's inner test, a wrapper's
    ``__wrapped__``), or None for anything else."""
    value = getattr(getattr(value, "hypothesis", None), "inner_test", None) or value
    if callable(value):
        value = inspect.unwrap(value)
    return value if isinstance(value, types.FunctionType) else None


def _loaded(code: types.CodeType) -> Iterator[tuple[str, str]]:
    """(how, name) of every global and closure variable ``code`` loads, nested functions and lambdas included
    (an attribute such as ``sut.clean_text`` is not a load of ``clean_text``)."""
    for instruction in dis.get_instructions(code):
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            yield "global", str(instruction.argval)
        elif instruction.opname in ("LOAD_DEREF", "LOAD_CLASSDEREF"):
            yield "closure", str(instruction.argval)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _loaded(constant)


def references(tests: Mapping[str, Test], targets: Mapping[str, Any]) -> dict[str, list[str]]:
    """For each test that uses one of ``targets`` (compared by identity: the very objects), the names of those
    it uses, directly or through the functions of its own module it calls.

    A test that compares the system under test with the system's own code (``sut.clean_text(t) ==
    clean_text(t)``, ``sut.route(...) == CORRECT.route(...)``) proves nothing: it passes on the correct
    system and fails on every mutant, whatever the mutant got wrong. Tests that touch only ``sut`` and data
    give an empty report.
    """
    found: dict[str, list[str]] = {}
    for name, test in tests.items():
        start = _function(test)
        todo, seen, used = ([start] if start is not None else []), set(), set()
        while todo:
            function = todo.pop()
            if id(function) in seen:
                continue
            seen.add(id(function))
            cells = dict(zip(function.__code__.co_freevars, function.__closure__ or (), strict=False))
            for how, variable in _loaded(function.__code__):
                if how == "global" and variable in function.__globals__:
                    value = function.__globals__[variable]
                elif how == "closure" and variable in cells:
                    try:
                        value = cells[variable].cell_contents
                    except ValueError:  # an empty cell
                        continue
                else:
                    continue
                hits = {target for target, obj in targets.items() if value is obj}
                used |= hits
                helper = _function(value)
                if not hits and helper is not None and helper.__module__ == function.__module__:
                    todo.append(helper)  # a helper of the notebook's: what it uses, the test uses
        if used:
            found[name] = sorted(used)
    return found
