"""Tolerant output comparison: forgiving about noise and rounding, strict about values and text."""

from __future__ import annotations

from typing import Any

import pytest

from grader.grading.comparison import Tolerance, comparable_lines, compare_outputs, lines_match


def stdout(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout", "text": text}


def stderr(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stderr", "text": text}


def result(text: str) -> dict[str, Any]:
    return {"output_type": "execute_result", "data": {"text/plain": text}, "metadata": {}, "execution_count": 1}


@pytest.mark.parametrize(
    ("expected", "actual", "match"),
    [
        ("1.0", "1.0000001", True),
        ("1.0", "1.1", False),
        ("accuracy 0.93", "accuracy 0.9300000000000002", True),
        ("accuracy 0.93", "accuracy 0.92", False),
        ("2", "2.0", True),
        ("1000000", "1000001", False),  # integers are counts: exact
        ("0.0", "1e-12", True),  # atol 1e-9
        ("nan", "nan", True),
        ("[1, 2.5]", "[1, 2.5000000001]", True),
        ("[1, 2.5]", "[1, 2.5, 3]", False),
        ("team billing", "team Billing", False),
        ("mean 2", "median 2", False),
        ("x1 = 3", "x2 = 3", False),
        ("-1.5", "1.5", False),
    ],
)
def test_line_tolerance(expected: str, actual: str, match: bool) -> None:
    """Are numbers compared with tolerance and the text around them exactly?"""
    assert lines_match(expected, actual) is match


def test_tolerance_can_be_widened() -> None:
    """Does a looser rtol accept what the default refuses?"""
    assert not lines_match("1.0", "1.001")
    assert lines_match("1.0", "1.001", Tolerance(rtol=1e-2))


@pytest.mark.parametrize(
    ("expected", "actual", "difference"),
    [
        ([stdout("2\n")], [stdout("2\n"), stderr("UserWarning: slow\n")], None),
        ([stdout("2\n")], [stdout("2"), stdout("\n")], None),
        ([stdout("a  b\n")], [stdout("a b   \n\n")], None),
        ([stdout("done\n")], [stdout("  0%|          | 0/3\r100%|██████████| 3/3 [00:00<00:00]\ndone\n")], None),
        ([stdout("saved /tmp/tmpa1/v.txt\n")], [stdout("saved /tmp/tmpzz9/v.txt\n")], None),
        ([result("<A at 0x7f00aa11bb22>")], [result("<A at 0x7f00cc33dd44>")], None),
        ([stdout("2\n")], [stdout("3\n")], "line 1: expected '2', got '3'"),
        ([stdout("2\n")], [stdout("2\ndebug\n")], "unexpected extra output at line 2: 'debug'"),
        ([stdout("2\n3\n")], [stdout("2\n")], "missing output (after line 1): expected '3'"),
        ([stdout("2\n")], [], "missing output (nothing was printed): expected '2'"),
        ([result("2")], [stdout("2\n")], None),  # what is read, not how it was shown
    ],
)
def test_outputs(expected: list[dict[str, Any]], actual: list[dict[str, Any]], difference: str | None) -> None:
    """Is stderr ignored, noise sanitized, and a real difference described in one line?"""
    assert compare_outputs(expected, actual) == difference


def test_carriage_returns_apply_like_a_terminal() -> None:
    """Does only the final state of a line rewritten with \\r count?"""
    assert comparable_lines([stdout("step 1\rstep 2\rstep 3\n")]) == ["step 3"]


def test_images_count_by_presence() -> None:
    """Is a plot compared as 'there is an image', not pixel by pixel?"""
    png = {"output_type": "display_data", "data": {"image/png": "iVBOR..."}, "metadata": {}}
    other = {"output_type": "display_data", "data": {"image/png": "AAAA..."}, "metadata": {}}
    assert compare_outputs([png], [other]) is None
    assert compare_outputs([png], []) is not None
