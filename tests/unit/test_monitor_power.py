"""Do exercise 04's monitor checks tell a monitor that meets the spec from one that does not?

The spec (``solutions/04-data-monitoring.ipynb``): recall at least 0.8 on every kind of drift,
false alarms on at most 10% of clean windows. A check counts alerts over a fixed number of
windows and passes when the rate clears its bound, so with binomial counts (each window alerts
independently, with the monitor's true rate) its sizes and bound fix how often a monitor passes.
Issue 15 asks, for each check:

- a monitor that meets the spec with room (recall 0.85 on every kind, 8% false alarms) passes
  with probability at least 0.95;
- a monitor at twice the allowed error (recall 0.6 on a kind, i.e. a miss rate of 0.4; 20% false
  alarms) fails with probability at least 0.95.

The sizes and bounds are read from the check cells' source, so shrinking the streams, or moving
a bound, fails this test. Before issue 15, check 4.4 (10 windows per kind, recall >= 0.8) passed
such a monitor with probability 0.45 and check 4.5 (48 windows, rate <= 0.1) with 0.66.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom

SOLUTION = Path(__file__).resolve().parents[2] / "solutions" / "04-data-monitoring.ipynb"

#: what "meets the spec" and "twice the allowed error" mean (issue 15)
GOOD_RECALL, BAD_RECALL = 0.85, 0.6
GOOD_FALSE_ALARMS, BAD_FALSE_ALARMS = 0.08, 0.20
#: how sure each verdict must be
POWER = 0.95

#: cell id -> what the check measures; the hidden checks and their visible twins on other seeds
RECALL_CHECKS = ("check-4-4", "check-4-6")
FALSE_ALARM_CHECKS = ("check-4-5", "check-4-7")


def pass_probability(windows: int, rate: float, bound: float, *, at_least: bool) -> float:
    """P(a check passes) when each of ``windows`` windows alerts independently with probability ``rate``.

    The check passes when ``alerts / windows >= bound`` (``at_least``) or ``<= bound``, computed as
    the check computes it (a float division), so the count where it flips is the check's own.
    """
    alerts = np.arange(windows + 1)
    shares = alerts / windows
    passing = shares >= bound if at_least else shares <= bound
    return float(binom.pmf(alerts[passing], windows, rate).sum())


@dataclass(frozen=True)
class Check:
    """A monitor check as its source states it: streams, windows per stream, kinds, the criterion's bound."""

    source: str
    streams: int
    windows: int
    seeds: tuple[int, ...]
    kinds: int
    bound: float
    at_least: bool

    @property
    def per_kind(self) -> int:
        return self.streams * self.windows


def _cells() -> dict[str, str]:
    nb = json.loads(SOLUTION.read_text(encoding="utf-8"))
    return {cell["id"]: "".join(cell["source"]) for cell in nb["cells"]}


def _constants(tree: ast.Module) -> dict[str, object]:
    """The cell's top-level ``NAME = literal`` and ``A, B = literal, literal`` assignments."""
    found: dict[str, object] = {}
    for node in tree.body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target, value = node.targets[0], node.value
        if isinstance(target, ast.Name):
            try:
                found[target.id] = ast.literal_eval(value)
            except ValueError:
                continue
        elif isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
            for name, item in zip(target.elts, value.elts, strict=True):
                if isinstance(name, ast.Name):
                    try:
                        found[name.id] = ast.literal_eval(item)
                    except ValueError:
                        continue
    return found


def _criterion(tree: ast.Module) -> tuple[float, bool]:
    """The bound of the cell's one criterion call, and whether it is a lower bound."""
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "criterion"
    ]
    assert len(calls) == 1, f"expected one criterion(...) call, found {len(calls)}"
    bounds = {kw.arg: ast.literal_eval(kw.value) for kw in calls[0].keywords if kw.arg in ("at_least", "at_most")}
    assert len(bounds) == 1, f"the criterion should have one bound, has {bounds}"
    (kind, bound), *_ = bounds.items()
    return float(bound), kind == "at_least"


def _first_seeds(tree: ast.Module, constants: dict[str, object]) -> tuple[int, ...]:
    """Each seed range's first seed: the DRIFTS table's, or the ``range(first, first + STREAMS)`` literal's."""
    if "DRIFTS" in constants:
        return tuple(int(first) for _, _, first in constants["DRIFTS"])  # type: ignore[attr-defined]
    firsts = [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "range"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ]
    assert len(firsts) == 1, f"expected one range(first_seed, ...) of seeds, found {firsts}"
    return (int(firsts[0]),)


def read_check(cell_id: str) -> Check:
    source = _cells()[cell_id]
    tree = ast.parse(source)
    constants = _constants(tree)
    streams, windows = int(constants["STREAMS"]), int(constants["WINDOWS"])  # type: ignore[call-overload]
    firsts = _first_seeds(tree, constants)
    seeds = tuple(first + k for first in firsts for k in range(streams))
    kinds = len(constants["DRIFTS"]) if "DRIFTS" in constants else 1  # type: ignore[arg-type]
    bound, at_least = _criterion(tree)
    return Check(source, streams, windows, seeds, kinds, bound, at_least)


@pytest.mark.parametrize("cell_id", RECALL_CHECKS)
def test_recall_check_has_the_power_it_claims(cell_id: str) -> None:
    """Does a monitor with recall 0.85 on every kind pass, and one with recall 0.6 on any kind fail, 95% of the time?"""
    check = read_check(cell_id)
    assert check.at_least, f"{cell_id}: recall should be bounded from below"
    assert check.kinds == 4, f"{cell_id}: the exercise names four kinds of drift, the check has {check.kinds}"
    per_kind = pass_probability(check.per_kind, GOOD_RECALL, check.bound, at_least=True)
    passes = per_kind**check.kinds  # every kind must pass; the kinds' streams are independent
    fails = 1 - pass_probability(check.per_kind, BAD_RECALL, check.bound, at_least=True)  # one kind is enough
    assert passes >= POWER, (
        f"{cell_id}: a monitor with recall {GOOD_RECALL} passes with probability {passes:.3f} "
        f"({check.per_kind} windows per kind, bound {check.bound})"
    )
    assert fails >= POWER, (
        f"{cell_id}: a monitor with recall {BAD_RECALL} on one kind fails with probability {fails:.3f} "
        f"({check.per_kind} windows per kind, bound {check.bound})"
    )


@pytest.mark.parametrize("cell_id", FALSE_ALARM_CHECKS)
def test_false_alarm_check_has_the_power_it_claims(cell_id: str) -> None:
    """Does a monitor with 8% false alarms pass, and one with 20% fail, 95% of the time?"""
    check = read_check(cell_id)
    assert not check.at_least, f"{cell_id}: the false-alarm rate should be bounded from above"
    passes = pass_probability(check.per_kind, GOOD_FALSE_ALARMS, check.bound, at_least=False)
    fails = 1 - pass_probability(check.per_kind, BAD_FALSE_ALARMS, check.bound, at_least=False)
    assert passes >= POWER, (
        f"{cell_id}: a monitor with {GOOD_FALSE_ALARMS:.0%} false alarms passes with probability {passes:.3f} "
        f"({check.per_kind} windows, bound {check.bound})"
    )
    assert fails >= POWER, (
        f"{cell_id}: a monitor with {BAD_FALSE_ALARMS:.0%} false alarms fails with probability {fails:.3f} "
        f"({check.per_kind} windows, bound {check.bound})"
    )


@pytest.mark.parametrize("pair", [RECALL_CHECKS, FALSE_ALARM_CHECKS], ids=["recall", "false-alarms"])
def test_visible_twin_scores_like_the_hidden_check_on_other_seeds(pair: tuple[str, str]) -> None:
    """Does the visible check score as the hidden one does (sizes, bound), on streams the hidden one never uses?"""
    hidden, visible = (read_check(cell_id) for cell_id in pair)
    assert (visible.streams, visible.windows, visible.kinds, visible.bound, visible.at_least) == (
        hidden.streams,
        hidden.windows,
        hidden.kinds,
        hidden.bound,
        hidden.at_least,
    )
    assert not set(visible.seeds) & set(hidden.seeds), f"{pair}: the visible check reuses the hidden seeds"


def test_the_exercise_text_states_how_the_checks_decide() -> None:
    """Does the exercise text state each decision as the checks make it ("at least 41 of the 56 windows")?"""
    text = "\n".join(source for cell_id, source in _cells().items() if cell_id.startswith("ex2-task"))
    recall, false_alarms = read_check(RECALL_CHECKS[0]), read_check(FALSE_ALARM_CHECKS[0])
    n = recall.per_kind
    fewest = next(k for k in range(n + 1) if k / n >= recall.bound)
    assert f"at least {fewest} of the {n}" in text
    m = false_alarms.per_kind
    most = max(k for k in range(m + 1) if k / m <= false_alarms.bound)
    assert f"at most {most} of the {m}" in text


def test_pass_probability_against_a_hand_computed_case() -> None:
    """P(at least 8 of 10 | 0.85) = sum of C(10, k) 0.85^k 0.15^(10-k) for k = 8, 9, 10."""
    expected = sum(math.comb(10, k) * 0.85**k * 0.15 ** (10 - k) for k in (8, 9, 10))
    assert pass_probability(10, 0.85, 0.8, at_least=True) == pytest.approx(expected)
    # the checks before issue 15: four kinds of 10 windows, and 48 clean windows
    assert pass_probability(10, 0.85, 0.8, at_least=True) ** 4 == pytest.approx(0.4526, abs=1e-4)
    assert pass_probability(48, 0.08, 0.1, at_least=False) == pytest.approx(0.6615, abs=1e-4)
