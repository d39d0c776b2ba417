"""The instructor's gradebook: each learner's best score per exercise, per-check pass rates, and exports.

Both views read each learner's **counted** graded submission per exercise: by the setting
``counted_submission``, the best (highest score after the late policy, :mod:`grader.service.deadlines`;
the latest among equals) or the latest received by the deadline. Invalid and errored submissions score
nothing and are not counted.
Every learner account has a row, submissions or not; instructors' own submissions are left out.

Exports (:func:`export`), all CSV: ``wide`` (learner × exercise, and a total), ``canvas`` (Canvas's
gradebook import: ``Student, ID, SIS User ID, SIS Login ID, Section``, one ``Title (id)`` column per
exercise, a ``Points Possible`` row; the learner's account name is the SIS Login ID Canvas matches),
``long`` (one row per learner and exercise: the counted submission, ``graded`` or ``late`` with its raw
score, due time, seconds late and what the late policy did, or ``missing``). Scores are counted scores.

Manual answers (:mod:`grader.service.totals`): a score is automatic + the instructor's manual points, out of the
automatic max + the manual max, late policy applied to the sum. While a counted submission has a manual answer
without a grade its score is **provisional** (the ungraded answers count 0): the page says so beside the score,
the ``long`` export has a ``provisional`` column (how many answers are left to grade; empty when none), and the
``wide`` and ``canvas`` exports carry the score as it stands (a spreadsheet cell stays a number), and every
export says how many scores are provisional beside it (:class:`Export`: `grader gradebook export` warns on
stderr, the API answers an ``X-Grader-Provisional`` header).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa

from grader.grading.results import points_text
from grader.service import deadlines, totals
from grader.service.catalog import Exercise
from grader.service.statuses import SubmissionStatus
from grader.service.store import Store, submissions, users

_s = submissions.c


#: a submission of an exercise without a deadline
ON_TIME = deadlines.Timing()


@dataclass(frozen=True)
class Best:
    learner: str
    exercise: str
    submission_id: str
    #: the counted score: the raw score after the exercise's late policy
    score: float
    max_score: float
    result: dict[str, Any]
    #: when the service received it (epoch seconds)
    submitted_at: float
    #: the score as graded, before any late penalty
    raw_score: float = 0.0
    #: how it stands against the learner's deadline (:mod:`grader.service.deadlines`)
    timing: deadlines.Timing = ON_TIME
    #: manual answers without an instructor's grade (the score is provisional while any is left)
    ungraded: int = 0
    #: the instructor's grades of its manual answers (answer id → grade)
    grades: dict[str, totals.ManualGrade] = field(default_factory=dict)

    @property
    def provisional_note(self) -> str:
        """``provisional: 1 answer to grade``, or empty."""
        return totals.Total(0, 0, 0, 0, self.ungraded).note

    @property
    def late_note(self) -> str:
        return self.timing.note(self.raw_score)


def best_submissions(store: Store, counting: str = "best") -> tuple[list[str], list[Best]]:
    """Every learner's name, and their counted graded submission per exercise.

    ``counting`` (:data:`grader.settings.COUNTED_SUBMISSIONS`, the setting ``counted_submission``): ``best``,
    the highest counted score (the latest among equals), or ``latest-on-time``, the latest received by the
    deadline (the latest of all when none was on time).
    """

    def work(conn: sa.Connection) -> tuple[list[str], list[Any], deadlines.Rules, dict[str, Any]]:
        learners = list(
            conn.execute(sa.select(users.c.name).where(users.c.role == "learner").order_by(users.c.name)).scalars()
        )
        rows = conn.execute(
            sa.select(users.c.name, _s.exercise, _s.id, _s.score, _s.max_score, _s.result, _s.created_at)
            .join(users, users.c.id == _s.user_id)
            .where(_s.status == SubmissionStatus.GRADED, users.c.role == "learner")
            .order_by(_s.created_at)
        ).all()
        return learners, list(rows), deadlines.read_rules(conn), totals.read_grades(conn)

    learners, rows, rules, grades = store.run(work, write=False)
    best: dict[tuple[str, str], Best] = {}
    for row in rows:  # oldest first: a later equal score replaces an earlier one
        key = (row.name, row.exercise)
        result = json.loads(row.result or "{}")
        given = grades.get(row.id, {})
        total = totals.total_of({**result, "score": row.score, "max_score": row.max_score}, given)
        raw = total.score
        timing = rules.timing(row.name, row.exercise, float(row.created_at))
        candidate = Best(
            learner=row.name,
            exercise=row.exercise,
            submission_id=row.id,
            score=timing.counted(raw),
            max_score=total.max_score,
            result=result,
            submitted_at=float(row.created_at),
            raw_score=raw,
            timing=timing,
            ungraded=total.ungraded,
            grades=given,
        )
        held = best.get(key)
        if counting == "latest-on-time":
            replaces = held is None or not timing.late or held.timing.late
        else:
            replaces = held is None or candidate.score >= held.score
        if replaces:
            best[key] = candidate
    return learners, sorted(best.values(), key=lambda b: (b.learner, b.exercise))


@dataclass(frozen=True)
class Gradebook:
    exercises: list[str]
    #: learner → exercise → best score (missing: no graded submission)
    scores: dict[str, dict[str, float]]
    #: exercise → its maximum score, as graded
    max_scores: dict[str, float]
    #: learner → exercise → what the late policy did (only late ones: ``late by 1 d (…): 3 → 2.4``)
    late: dict[str, dict[str, str]] = field(default_factory=dict)
    #: learner → exercise → ``provisional: 1 answer to grade`` (only scores with manual answers left to grade)
    provisional: dict[str, dict[str, str]] = field(default_factory=dict)


def gradebook(store: Store, exercises: Iterable[str], counting: str = "best") -> Gradebook:
    """Learners × exercises, the counted score each (late penalties applied)."""
    return _book(*best_submissions(store, counting), exercises)


def _book(learners: list[str], best: list[Best], exercises: Iterable[str]) -> Gradebook:
    columns = sorted(set(exercises) | {b.exercise for b in best})
    scores: dict[str, dict[str, float]] = {name: {} for name in learners}
    max_scores: dict[str, float] = {}
    late: dict[str, dict[str, str]] = {}
    provisional: dict[str, dict[str, str]] = {}
    for b in best:
        scores.setdefault(b.learner, {})[b.exercise] = b.score
        max_scores[b.exercise] = max(max_scores.get(b.exercise, 0.0), b.max_score)
        if b.timing.late:
            late.setdefault(b.learner, {})[b.exercise] = b.late_note
        if b.ungraded:
            provisional.setdefault(b.learner, {})[b.exercise] = b.provisional_note
    return Gradebook(exercises=columns, scores=scores, max_scores=max_scores, late=late, provisional=provisional)


def _cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _write(rows: Iterable[Iterable[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([[_cell(str(cell)) for cell in row] for row in rows])
    return out.getvalue()


def to_csv(book: Gradebook) -> str:
    """``learner,<exercise>...,total`` then one row per learner (empty: no graded submission)."""
    rows = [["learner", *book.exercises, "total"]]
    for learner, row in sorted(book.scores.items()):
        scores = [points_text(row[e]) if e in row else "" for e in book.exercises]
        rows.append([learner, *scores, points_text(sum(row.values()))])
    return _write(rows)


ExportFormat = Literal["wide", "canvas", "long"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("wide", "canvas", "long")
EXPORT_FILENAMES: dict[str, str] = {
    "wide": "gradebook.csv",
    "canvas": "gradebook-canvas.csv",
    "long": "gradebook-long.csv",
}
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")


def to_canvas_csv(book: Gradebook, exercises: Iterable[Exercise]) -> str:
    """Canvas's gradebook import: a header, a ``Points Possible`` row, one row per learner."""
    known = {e.id: e for e in exercises}
    titles = [f"{known[e].title if e in known else e} ({e})" for e in book.exercises]
    possible = [
        known[e].max_points if e in known and known[e].max_points is not None else book.max_scores.get(e)
        for e in book.exercises
    ]
    rows = [[*CANVAS_COLUMNS, *titles], ["Points Possible", "", "", "", "", *(_points(p) for p in possible)]]
    for learner, row in sorted(book.scores.items()):
        rows.append([learner, "", "", learner, "", *(points_text(row[e]) if e in row else "" for e in book.exercises)])
    return _write(rows)


def _points(value: float | None) -> str:
    return "" if value is None else points_text(value)


def to_long_csv(learners: Iterable[str], best: Iterable[Best], exercises: Iterable[str]) -> str:
    """One row per learner and exercise: the counted submission's score, or ``missing``."""
    counted = {(b.learner, b.exercise): b for b in best}
    columns = sorted(set(exercises) | {exercise for _, exercise in counted})
    rows = [
        [
            "learner",
            "exercise",
            "score",
            "max_score",
            "submission_id",
            "submitted_at",
            "status",
            "raw_score",
            "due",
            "late_by_s",
            "late_note",
            "provisional",
        ]
    ]
    for learner in sorted(set(learners) | {learner for learner, _ in counted}):
        for exercise in columns:
            b = counted.get((learner, exercise))
            if b is None:
                rows.append([learner, exercise, "", "", "", "", "missing", "", "", "", "", ""])
            else:
                score, top = points_text(b.score), points_text(b.max_score)
                t = b.timing
                status, due = ("late" if t.late else "graded"), deadlines.utc_text(t.due_at) if t.due_at else ""
                received = deadlines.utc_text(b.submitted_at)
                rows.append(
                    [learner, exercise, score, top, b.submission_id, received, status, points_text(b.raw_score)]
                )
                rows[-1] += [due, f"{t.late_by_s:.0f}" if t.late else "", b.late_note, str(b.ungraded or "")]
    return _write(rows)


@dataclass(frozen=True)
class Export:
    """A gradebook export and how many of its scores are provisional (read from the store once)."""

    text: str
    #: counted scores with manual answers still to grade (they count 0 for now)
    provisional: int
    #: the manual answers those scores wait for
    answers_to_grade: int

    @property
    def warning(self) -> str:
        """What the export says beside it while scores are provisional (empty when every score is final)."""
        scores, answers = self.provisional, self.answers_to_grade
        if not scores:
            return ""
        what = f"{scores} score{'' if scores == 1 else 's'} {'is' if scores == 1 else 'are'} provisional"
        return (
            f"{what}: {answers} answer{'' if answers == 1 else 's'} still to grade by hand count 0 for now "
            "(`grader manual list` lists them; the page is /marking)"
        )


def export_of(store: Store, exercises: Iterable[Exercise], format: ExportFormat, counting: str = "best") -> Export:
    """The gradebook as CSV in one of :data:`EXPORT_FORMATS` (the exercises: the catalog's), with its
    provisional scores counted."""
    exercises = list(exercises)
    learners, best = best_submissions(store, counting)
    if format == "long":
        text = to_long_csv(learners, best, [e.id for e in exercises])
    else:
        book = _book(learners, best, [e.id for e in exercises])
        text = to_canvas_csv(book, exercises) if format == "canvas" else to_csv(book)
    waiting = [b.ungraded for b in best if b.ungraded]
    return Export(text, len(waiting), sum(waiting))


def export(store: Store, exercises: Iterable[Exercise], format: ExportFormat, counting: str = "best") -> str:
    """The gradebook as CSV in one of :data:`EXPORT_FORMATS` (the exercises: the catalog's)."""
    return export_of(store, exercises, format, counting).text


def check_pass_rates(store: Store, counting: str = "best") -> list[dict[str, Any]]:
    """Per exercise, per check: how many learners' counted submissions pass it."""
    _, best = best_submissions(store, counting)
    by_exercise: dict[str, dict[str, dict[str, Any]]] = {}
    counted: dict[str, int] = {}
    for b in best:
        counted[b.exercise] = counted.get(b.exercise, 0) + 1
        checks = by_exercise.setdefault(b.exercise, {})
        for check in b.result.get("checks", []):
            entry = checks.setdefault(
                str(check.get("id")),
                {
                    "id": str(check.get("id")),
                    "name": check.get("name", ""),
                    "hidden": bool(check.get("hidden")),
                    "max_points": check.get("max_points"),
                    "passed": 0,
                    "learners": 0,
                },
            )
            entry["learners"] += 1
            entry["passed"] += check.get("status") == "pass"
    report: list[dict[str, Any]] = []
    for exercise in sorted(by_exercise):
        entries = list(by_exercise[exercise].values())
        for entry in entries:
            entry["pass_rate"] = round(entry["passed"] / entry["learners"], 4) if entry["learners"] else None
        report.append({"exercise": exercise, "learners": counted[exercise], "checks": entries})
    return report
