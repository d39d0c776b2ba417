"""Do an exercise's checks tell correct work from plausible mistakes?

A solution that scores full marks and a stub that scores zero prove little about the checks
in between. Each module ``tests/content/fixtures/<exercise id>.py`` holds submissions written
as replacements for exercise cells (keyed by ``metadata.grader.id``):

- ``ALTERNATIVE_CORRECT`` — correct work written another way: must score full marks;
- ``PLAUSIBLE_WRONG`` — a mistake a learner could make: must lose points, and, where
  ``EXPECTED_FAILURES`` names them, fail exactly those checks (with a real ``fail``, not a
  ``not-run``), so the check designed for the mistake is shown to be the one that catches it;
  a hidden check's feedback may quote no number but its criteria's public bounds and counts
  of cases ("macro-F1 below 0.5 on 1 of 3 held-out sets").

For two fixtures of each exercise, ``grader check`` on the learner's version (no hidden checks)
must give each visible check the verdict grading gives it: one verdict rule for self-check and
grading. The two: the first correct one, and the first wrong one that a visible check should
catch (else the first wrong one). The rule is the engine's, the same for every notebook; a self-
check of every fixture would cost one more execution each for no more proof.

Exercise cells a fixture does not replace keep the reference solution's source. A new lesson
adds its own fixture module; nothing here needs to change.
"""

from __future__ import annotations

import copy
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from nbformat import NotebookNode

from grader.authoring.criteria import criterion_calls
from grader.format import markers
from grader.format.cells import exercise_cells, graded_cells
from grader.format.notebooks import read_notebook, write_notebook
from grader.grading.engine import grade_notebook
from grader.grading.selfcheck import check_notebook
from grader.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: a fixture module needs at least this many fixtures of each kind
MIN_FIXTURES = 3


def _load(path: Path) -> ModuleType:
    name = "discrimination_" + "".join(c if c.isalnum() else "_" for c in path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, f"{path}: cannot be imported"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _modules() -> list[Path]:
    return sorted(p for p in FIXTURES.glob("*.py") if not p.name.startswith("_"))


def _cases() -> list[object]:
    cases = []
    for path in _modules():
        module = _load(path)
        for kind, table in (("correct", "ALTERNATIVE_CORRECT"), ("wrong", "PLAUSIBLE_WRONG")):
            for name in getattr(module, table, {}):
                cases.append(pytest.param(path.stem, name, kind, id=f"{path.stem}:{kind}:{name}"))
    return cases


def _solution(exercise: str) -> NotebookNode:
    return read_notebook(ROOT / "solutions" / f"{exercise}.ipynb")


def _exercise_ids(nb: NotebookNode) -> dict[str, str]:
    """``metadata.grader.id`` → source of every exercise cell."""
    return {cell.metadata["grader"]["id"]: cell.source for _, cell in exercise_cells(nb)}


def _with_replacements(solution: NotebookNode, replacements: dict[str, str]) -> NotebookNode:
    nb = copy.deepcopy(solution)
    for _, cell in exercise_cells(nb):
        exercise_id = cell.metadata["grader"]["id"]
        if exercise_id in replacements:
            cell.source = replacements[exercise_id]
    return nb


def _learner_version(nb: NotebookNode) -> NotebookNode:
    """What the learner has: the notebook without its hidden checks."""
    learner = copy.deepcopy(nb)
    learner.cells = [cell for cell in learner.cells if markers.TAG_HIDDEN_CHECK not in cell.metadata.get("tags", [])]
    return learner


_COUNTED = re.compile(r" on \d+ of \d+ ")
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e-?\d+)?")


def _unstated_numbers(message: str, solution: NotebookNode, check_id: str) -> set[str]:
    """Numbers a hidden check's feedback quotes besides its criteria's public bounds and case counts."""
    source = next(
        c.source
        for c in solution.cells
        if c.get("metadata", {}).get("grader", {}).get("id") == check_id
        and markers.TAG_HIDDEN_CHECK in c.metadata.get("tags", [])
    )
    calls = list(criterion_calls(source))
    bounds = {f"{call.bound:g}" for call in calls if call.bound is not None}
    words = sorted({w for call in calls for w in (call.name, call.cases) if w}, key=len, reverse=True)
    for word in words:  # the criteria's own words may hold digits ("macro-F1")
        message = message.replace(word, " ")
    return set(_NUMBER.findall(_COUNTED.sub(" ", message))) - bounds


def _self_checked(module: ModuleType, solution: NotebookNode) -> set[str]:
    """The fixtures whose self-check is compared with their grading: the first correct one, and the first
    wrong one that should fail a visible check (else the first wrong one)."""
    chosen = set(list(getattr(module, "ALTERNATIVE_CORRECT", {}))[:1])
    wrong = list(getattr(module, "PLAUSIBLE_WRONG", {}))
    visible = {cell.check_id for cell in graded_cells(solution) if not cell.hidden}
    expected = getattr(module, "EXPECTED_FAILURES", {})
    caught_in_sight = [name for name in wrong if set(expected.get(name, ())) & visible]
    chosen.update((caught_in_sight or wrong)[:1])
    return chosen


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The course's settings, with the grading bundles test_exercises.py builds (each built once, under a lock)."""
    return load_settings(root=ROOT, build_dir=ROOT / "_build" / "test-grading")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.stem)
def test_fixture_module_is_complete(path: Path) -> None:
    """Does the module name a real exercise, real exercise cells, and enough fixtures of each kind?"""
    module = _load(path)
    solution_path = ROOT / "solutions" / f"{path.stem}.ipynb"
    assert solution_path.is_file(), f"{path.name}: there is no solutions/{path.stem}.ipynb; name the module after it"
    exercise_ids = _exercise_ids(_solution(path.stem))
    correct = getattr(module, "ALTERNATIVE_CORRECT", {})
    wrong = getattr(module, "PLAUSIBLE_WRONG", {})
    assert len(correct) >= MIN_FIXTURES, f"{path.name}: write at least {MIN_FIXTURES} ALTERNATIVE_CORRECT fixtures"
    assert len(wrong) >= MIN_FIXTURES, f"{path.name}: write at least {MIN_FIXTURES} PLAUSIBLE_WRONG fixtures"
    assert not set(correct) & set(wrong), f"{path.name}: a fixture name is used in both tables"
    for name, replacements in {**correct, **wrong}.items():
        assert replacements, f"{path.name}: fixture {name!r} replaces nothing"
        unknown = set(replacements) - set(exercise_ids)
        assert not unknown, (
            f"{path.name}: fixture {name!r} replaces {sorted(unknown)}, not exercise ids {sorted(exercise_ids)}"
        )
        same = [i for i, source in replacements.items() if source.strip() == exercise_ids[i].strip()]
        assert not same, f"{path.name}: fixture {name!r} repeats the solution of exercise(s) {same}"
    expected = getattr(module, "EXPECTED_FAILURES", {})
    stray = set(expected) - set(wrong)
    assert not stray, f"{path.name}: EXPECTED_FAILURES names {sorted(stray)}, which are not PLAUSIBLE_WRONG fixtures"


@pytest.mark.slow
@pytest.mark.parametrize(("exercise", "name", "kind"), _cases())
def test_fixture_is_graded_as_expected(settings: Settings, tmp_path: Path, exercise: str, name: str, kind: str) -> None:
    """Does correct work written differently get full marks, and does each mistake lose points where it should?"""
    module = _load(FIXTURES / f"{exercise}.py")
    table = module.ALTERNATIVE_CORRECT if kind == "correct" else module.PLAUSIBLE_WRONG
    solution = _solution(exercise)
    submission = tmp_path / f"{name}.ipynb"
    write_notebook(_with_replacements(solution, table[name]), submission)

    result = grade_notebook(settings, submission, exercise=exercise, name=name)

    assert result.status == "graded", f"{name}: not graded ({result.status}): {result.message}"
    # one verdict rule: the learner's self-check judges every visible check as grading does
    if name in _self_checked(module, solution):
        learner = tmp_path / "learner" / f"{name}.ipynb"
        write_notebook(_learner_version(_with_replacements(solution, table[name])), learner)
        checked = {check.id: check.status for check in check_notebook(settings, learner).checks}
        graded = {check.id: check.status for check in result.checks if not check.hidden}
        assert checked == graded, f"{name}: grader check says {checked}, grading says {graded}"
    lost = {check.id: check for check in result.checks if check.points < check.max_points}
    report = "; ".join(f"{check.title}: {check.status} ({check.message})" for check in lost.values())
    if kind == "correct":
        assert not lost, f"{name} is correct but lost points: {report}"
        assert result.score == result.max_score
        return
    assert lost, f"{name} is wrong but scored full marks {result.score}/{result.max_score}"
    for check in lost.values():
        if check.hidden and check.status == "fail" and not check.message.startswith("raised"):
            leaked = _unstated_numbers(check.message, solution, check.id)
            assert not leaked, f"{name}: hidden check {check.id}'s feedback quotes {leaked}: {check.message!r}"
    expected = getattr(module, "EXPECTED_FAILURES", {}).get(name)
    if expected is not None:
        assert set(lost) == set(expected), f"{name} should fail exactly checks {sorted(expected)}; it lost {report}"
        not_failed = [check.title for check in lost.values() if check.status != "fail"]
        assert not not_failed, f"{name}: these checks did not run, so they did not catch the mistake: {not_failed}"
