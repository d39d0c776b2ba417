"""The default sanitizers: each step removes one kind of run-to-run noise, and nothing else."""

from __future__ import annotations

import pytest

from grader.grading.sanitize import DEFAULT_SANITIZERS, sanitize

STEPS = {step.name: step for step in DEFAULT_SANITIZERS}


@pytest.mark.parametrize(
    ("step", "text", "expected"),
    [
        ("ansi-codes", "\x1b[31mred\x1b[0m and \x1b[1;32mbold green\x1b[39m", "red and bold green"),
        ("ansi-codes", "no codes here", "no codes here"),
        ("progress-bars", "before\n 40%|████      | 4/10 [00:01<00:02,  2.9it/s]\nafter\n", "before\nafter\n"),
        ("progress-bars", "100%|██████████| 10/10 [00:00<00:00, 1234.56it/s]", ""),
        ("progress-bars", "accuracy 40% | recall 30% |", "accuracy 40% | recall 30% |"),
        ("ipykernel-paths", "File /tmp/ipykernel_4123/2837466.py:3", "File <ipykernel-cell>:3"),
        ("temp-paths", "saved to /tmp/tmpab12cd/values.txt", "saved to <tmp-path>"),
        ("temp-paths", "saved to '/var/folders/x1/T/tmpq/out.csv'", "saved to '<tmp-path>'"),
        ("temp-paths", "/home/learner/data.csv stays", "/home/learner/data.csv stays"),
        ("memory-addresses", "<Model object at 0x7f3a2c1b5e50>", "<Model object at 0x<address>>"),
        ("memory-addresses", "mask 0xff", "mask 0xff"),
        ("iso-datetimes", "run at 2026-03-01T12:34:56.789+00:00 done", "run at <datetime> done"),
        ("iso-datetimes", "run at 2026-03-01 12:34:56 done", "run at <datetime> done"),
        ("iso-datetimes", "split date 2026-03-01 is data", "split date 2026-03-01 is data"),
    ],
)
def test_each_step(step: str, text: str, expected: str) -> None:
    """Does each step remove exactly its kind of noise, and leave look-alike data alone?"""
    assert STEPS[step].apply(text) == expected


def test_order_colour_before_progress_bar() -> None:
    """Is a coloured progress bar still removed (colour codes go first)?"""
    assert sanitize("\x1b[32m 50%|█████     | 5/10 [00:01<00:01]\x1b[0m\nresult 3\n") == "result 3\n"


def test_step_names_are_unique() -> None:
    """Can every step be referred to by its name?"""
    assert len(STEPS) == len(DEFAULT_SANITIZERS)
