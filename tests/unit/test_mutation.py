"""Does the mutation-testing runner judge a suite as its docstring promises?"""

from __future__ import annotations

import pytest

from mlcourse.mutation import SuiteResult, collect_tests, killed, mutation_report, references, run_suite


def _adds(a: int, b: int) -> int:
    return a + b


def _subtracts(a: int, b: int) -> int:
    return a - b


def _crashes(a: int, b: int) -> int:
    raise ZeroDivisionError("planted")


def _adds_correctly(system):
    assert system(2, 3) == 5, "2 + 3 should be 5"


def _keeps_zero_neutral(system):
    assert system(7, 0) == 7


def test_collects_only_test_functions_in_definition_order():
    """Are only callables named test_* collected, in the namespace's order?"""
    namespace = {
        "test_b": _keeps_zero_neutral,
        "helper": len,
        "test_a": _adds_correctly,
        "test_value": 3,
        "TEST_x": _adds,
    }
    assert list(collect_tests(namespace)) == ["test_b", "test_a"]
    assert list(collect_tests(namespace, prefix="TEST_")) == ["TEST_x"]


def test_a_correct_system_passes_and_the_summary_says_so():
    """Does a suite pass on a correct system, with every test named in the result?"""
    result = run_suite({"test_adds": _adds_correctly, "test_zero_is_neutral": _keeps_zero_neutral}, _adds)
    assert result.passed
    assert result.tests == ("test_adds", "test_zero_is_neutral")
    assert result.summary() == "all 2 tests passed"


@pytest.mark.parametrize(
    ("system", "failed", "error"),
    [
        (_subtracts, ["test_adds"], "AssertionError: 2 + 3 should be 5"),
        (_crashes, ["test_adds", "test_zero_is_neutral"], "ZeroDivisionError: planted"),
    ],
)
def test_failures_name_the_test_and_the_error(system, failed, error):
    """Is any exception a failure, reported with its type and first line?"""
    result = run_suite({"test_adds": _adds_correctly, "test_zero_is_neutral": _keeps_zero_neutral}, system)
    assert not result.passed
    assert list(result.failures) == failed
    assert result.failures["test_adds"] == error
    assert result.summary().startswith(f"{len(failed)} of 2 tests failed:")


def test_long_messages_are_cut():
    """Does a page-long failure message become one short line?"""

    def test_long(system):
        raise AssertionError("x" * 1000 + "\nsecond line")

    message = run_suite({"test_long": test_long}, None).failures["test_long"]
    assert len(message) <= 300 and message.endswith("…") and "second line" not in message


def test_killed_when_any_test_fails_and_the_report_names_each_mutant():
    """Is a mutant killed by one failing test, and survived when all pass?"""
    tests = {"test_adds": _adds_correctly, "test_zero_is_neutral": _keeps_zero_neutral}
    assert killed(tests, _subtracts)
    assert not killed(tests, _adds)
    assert not killed({}, _crashes)
    assert mutation_report(tests, {"minus": _subtracts, "same": _adds}) == {"minus": True, "same": False}


def test_a_keyboard_interrupt_is_not_a_failure():
    """Does stopping the kernel still stop the run?"""

    def test_interrupted(system):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_suite({"test_interrupted": test_interrupted}, None)


def test_result_is_frozen():
    """Can a result not be edited after the run?"""
    result = SuiteResult(tests=("test_a",))
    with pytest.raises(AttributeError):
        result.tests = ()  # type: ignore[misc]


# --- references: tests that compare the system with its own code -----------------------------------------------

GIVEN_CODE = """
import dataclasses
from hypothesis import given, settings, strategies as st

def clean(text):
    return text.strip().lower()

@dataclasses.dataclass(frozen=True)
class System:
    clean: object

CORRECT = System(clean)

def expected(text):
    return clean(text)

def test_by_promise(sut):
    assert sut.clean("  A ") == "a"

def test_attribute_of_the_same_name(sut):
    clean = sut.clean
    assert clean(" B") == "b"

def test_direct(sut):
    assert sut.clean("A") == clean("A")

def test_through_a_helper(sut):
    assert sut.clean("A") == expected("A")

def test_with_correct(sut):
    assert sut.clean("A") == CORRECT.clean("A")

@settings(max_examples=3, deadline=None, database=None)
@given(text=st.text())
def test_property_with_a_lambda(sut, text):
    assert sut.clean(text) == (lambda t: clean(t))(text)

def _closure():
    copy = clean
    def test_closure(sut):
        assert sut.clean("A") == copy("A")
    return test_closure
"""


def test_references_names_each_test_that_uses_the_given_code_and_only_those() -> None:
    """Direct calls, calls through a helper, a lambda, a closure, a hypothesis test, CORRECT: each is named;
    tests that reach the system only through ``sut`` (even by a local of the same name) are not."""
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(compile(GIVEN_CODE, "<notebook>", "exec"), namespace)  # a notebook's namespace
    tests = collect_tests(namespace) | {"test_closure": namespace["_closure"]()}  # type: ignore[operator]
    targets = {"CORRECT": namespace["CORRECT"], "clean": namespace["clean"]}
    assert references(tests, targets) == {
        "test_direct": ["clean"],
        "test_through_a_helper": ["clean"],
        "test_with_correct": ["CORRECT"],
        "test_property_with_a_lambda": ["clean"],
        "test_closure": ["clean"],
    }
    assert "test_attribute_of_the_same_name" in tests and "test_by_promise" in tests
