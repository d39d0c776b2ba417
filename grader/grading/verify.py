"""``grader verify``: prove that every exercise grades what it claims to.

For each ``solutions/<id>.ipynb``:

1. its grading bundle builds (the solution passes its own checks, hidden checks print);
2. the solution, graded as a submission, scores full marks;
3. the blank stub (:func:`grader.authoring.make_exercise` of the solution) scores **zero on
   every graded check** — a check the stub passes cannot fail, and must be fixed;
4. three gradings of the solution give identical verdicts (no flaky checks).

Manually graded answers (:mod:`grader.format.rubric`) are not graded here: the report lists each
(id, points, the rubric's total), the lint refuses a rubric whose points do not add up, and the
stub must keep every answer cell for the learner to write in. Their points are never part of the
automatic scores above.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import nbformat

from grader import authoring
from grader.errors import AuthoringError, UsageError, VerificationFailed
from grader.format.notebooks import read_notebook
from grader.format.rubric import ManualAnswer, learner_answer
from grader.grading.bundle import build_bundle, known_exercises
from grader.grading.engine import grade_notebook
from grader.grading.results import Result, points_text
from grader.settings import Settings

#: gradings of the solution compared for stability
RERUNS = 3
#: the stub's generated header cells are never graded, so any GitHub address does for them
_STUB_REPOSITORY = ("https://github.com/course/verify", "main")


@dataclass(frozen=True)
class ExerciseReport:
    """What verification found for one exercise; no problems means it verifies."""

    exercise: str
    problems: tuple[str, ...]
    max_score: float = 0.0
    solution_score: float | None = None
    stub_score: float | None = None
    duration_s: float = 0.0
    #: gradings of the solution compared (besides the bundle's reference run)
    reruns: int = RERUNS
    #: the manually graded answers (an instructor scores them; not in the scores above)
    manual: tuple[ManualAnswer, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class VerifyReport:
    exercises: tuple[ExerciseReport, ...]

    @property
    def ok(self) -> bool:
        return all(exercise.ok for exercise in self.exercises)


def _verdicts(result: Result) -> list[tuple[str, str, float]]:
    return [(check.id, check.status, check.points) for check in result.checks]


def _solution_problems(exercise: str, result: Result) -> list[str]:
    if result.status != "graded":
        return [f"solutions/{exercise}.ipynb graded as a submission: {result.status}: {result.message}"]
    return [
        f"solutions/{exercise}.ipynb: Check {c.id} ({c.name}) does not pass on the solution: {c.status}: {c.message}"
        for c in result.checks
        if c.status != "pass"
    ]


def _stub_problems(exercise: str, result: Result) -> list[str]:
    if result.status != "graded":
        return [f"the stub of {exercise} graded as a submission: {result.status}: {result.message}"]
    return [
        f"solutions/{exercise}.ipynb: Check {c.id} ({c.name}) gives {points_text(c.points)} points to the blank stub; "
        "it cannot fail, so make it depend on the learner's answer"
        for c in result.checks
        if c.points > 0
    ]


def _manual_problems(exercise: str, answers: tuple[ManualAnswer, ...], stub: nbformat.NotebookNode) -> list[str]:
    """A manual answer the learner's stub lacks could never be written, so never graded."""
    return [
        f"solutions/{exercise}.ipynb: {answer.label} has no cell in the learner's stub; "
        "run `grader assign` with the current grader"
        for answer in answers
        if learner_answer(stub, answer) is None
    ]


def _stability_problems(exercise: str, runs: list[Result]) -> list[str]:
    problems = []
    first = _verdicts(runs[0])
    for number, run in enumerate(runs[1:], start=2):
        for (check_id, status, _), (_, other, _) in zip(first, _verdicts(run), strict=False):
            if status != other:
                problems.append(
                    f"solutions/{exercise}.ipynb: Check {check_id} is not deterministic: {status} on the first "
                    f"grading, {other} on grading {number}; seed the randomness or print rounded values"
                )
    return problems


def verify_exercise(settings: Settings, exercise: str, *, jobs: int = 1, reruns: int = RERUNS) -> ExerciseReport:
    """Verify one exercise (see the module docstring for what is checked); ``reruns`` ≥ 2 gradings compared."""
    reruns = max(2, reruns)
    started = time.perf_counter()
    try:
        bundle = build_bundle(settings, exercise)
    except AuthoringError as exc:
        return ExerciseReport(exercise, (str(exc),), duration_s=time.perf_counter() - started)
    solution = read_notebook(settings.solutions_dir / f"{exercise}.ipynb")
    repo_url, branch = _STUB_REPOSITORY
    stub = authoring.make_exercise(solution, exercise_id=exercise, repo_url=repo_url, branch=branch)
    sources = [("stub", nbformat.writes(stub).encode())] + [
        (f"solution run {n}", (settings.solutions_dir / f"{exercise}.ipynb").read_bytes()) for n in range(reruns)
    ]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        graded = list(
            pool.map(
                lambda item: grade_notebook(settings, item[1], exercise=exercise, name=f"{exercise} ({item[0]})"),
                sources,
            )
        )
    stub_result, runs = graded[0], graded[1:]
    problems = _solution_problems(exercise, runs[0]) + _stub_problems(exercise, stub_result)
    problems += _stability_problems(exercise, runs)
    problems += _manual_problems(exercise, bundle.manual, stub)
    return ExerciseReport(
        exercise,
        tuple(problems),
        max_score=bundle.max_score,
        solution_score=runs[0].score,
        stub_score=stub_result.score,
        duration_s=time.perf_counter() - started,
        reruns=reruns,
        manual=bundle.manual,
    )


def verify(
    settings: Settings, ids: list[str] | None = None, *, jobs: int | None = None, reruns: int = RERUNS
) -> VerifyReport:
    """Verify the named exercises (default: every ``solutions/*.ipynb``).

    Raises:
        UsageError: an id has no ``solutions/<id>.ipynb``.
    """
    known = known_exercises(settings)
    unknown = [i for i in ids or [] if i not in known]
    if unknown:
        raise UsageError(f"no solution for {', '.join(unknown)}; known exercises: {', '.join(known) or 'none'}")
    workers = jobs if jobs is not None else min(2, os.cpu_count() or 1)
    return VerifyReport(
        tuple(verify_exercise(settings, exercise, jobs=workers, reruns=reruns) for exercise in ids or known)
    )


def to_json(report: VerifyReport) -> dict[str, Any]:
    """The report as JSON-ready data (``grader verify --json``)."""
    return {
        "ok": report.ok,
        "exercises": [
            {
                "exercise": e.exercise,
                "ok": e.ok,
                "max_score": e.max_score,
                "solution_score": e.solution_score,
                "stub_score": e.stub_score,
                "duration_s": round(e.duration_s, 3),
                "problems": list(e.problems),
                "manual": [
                    {**answer.to_dict(), "rubric_total": sum(c.points for c in answer.rubric)} for answer in e.manual
                ],
            }
            for e in report.exercises
        ],
    }


def manual_line(answer: ManualAnswer) -> str:
    """``manual  Answer 20.7: Why the small scorer ships: 4 points, rubric 2 + 2 = 4, graded by an instructor``"""
    parts = " + ".join(points_text(c.points) for c in answer.rubric)
    total = points_text(sum(c.points for c in answer.rubric))
    points = points_text(answer.points)
    return f"manual  {answer.label}: {points} points, rubric {parts} = {total}, graded by an instructor"


def render_text(report: VerifyReport) -> str:
    """One line per exercise, its manual answers and its problems indented under it."""
    if not report.exercises:
        return "no solutions/*.ipynb found; nothing to verify"
    lines = []
    for e in report.exercises:
        if e.ok:
            score = f"{points_text(e.solution_score or 0)}/{points_text(e.max_score)}"
            lines.append(
                f"ok    {e.exercise}: solution {score}, stub 0, {e.reruns} stable gradings ({e.duration_s:.1f} s)"
            )
            lines += [f"        {manual_line(answer)}" for answer in e.manual]
        else:
            lines.append(f"FAIL  {e.exercise}:")
            lines += [f"        {problem}" for problem in e.problems]
    return "\n".join(lines)


def exit_code(report: VerifyReport) -> int:
    """0 when every exercise verifies, else :class:`~grader.errors.VerificationFailed`'s code (8)."""
    return 0 if report.ok else VerificationFailed.exit_code
