"""A submission's total: its automatic score plus the points of its manually graded answers.

A Result's JSON (``submissions.result``) lists the exercise's manual answers (``result["manual"]``, not in its
``score``); an instructor's grades are rows of ``manual_grades`` (:mod:`grader.service.manual` writes them).
The **total** is automatic + manual out of automatic max + manual max; it is **provisional** while any manual
answer has no grade (its points then count 0). The gradebook (:mod:`grader.service.gradebook`), the
submission's JSON and page (:mod:`grader.service.web`) and the manual-grading pages all read totals here; the
late policy (:mod:`grader.service.deadlines`) applies to the total.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from grader.format.rubric import ManualAnswer
from grader.grading.results import points_text
from grader.service.store import manual_grades, users


@dataclass(frozen=True)
class ManualGrade:
    """An instructor's grade of one manual answer of one submission."""

    submission_id: str
    #: the answer's id (``ManualAnswer.id``)
    item: str
    #: the ticked criteria, 0-based positions in the rubric
    criteria: tuple[int, ...]
    points: float
    max_points: float
    comment: str
    #: the instructor's account name
    grader: str
    graded_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.item,
            "criteria": list(self.criteria),
            "points": self.points,
            "max_points": self.max_points,
            "comment": self.comment,
            "grader": self.grader,
            "graded_at": self.graded_at,
        }


@dataclass(frozen=True)
class Total:
    automatic: float
    automatic_max: float
    manual: float
    manual_max: float
    #: manual answers without a grade yet
    ungraded: int = 0

    @property
    def score(self) -> float:
        return round(self.automatic + self.manual, 6)

    @property
    def max_score(self) -> float:
        return round(self.automatic_max + self.manual_max, 6)

    @property
    def provisional(self) -> bool:
        return self.ungraded > 0

    @property
    def note(self) -> str:
        """``provisional: 1 answer to grade`` (empty once every manual answer is graded)."""
        if not self.provisional:
            return ""
        return f"provisional: {self.ungraded} answer{'' if self.ungraded == 1 else 's'} to grade"

    def text(self) -> str:
        """``7/10`` or ``7/10 (provisional: 1 answer to grade)``."""
        shown = f"{points_text(self.score)}/{points_text(self.max_score)}"
        return f"{shown} ({self.note})" if self.provisional else shown

    def to_dict(self) -> dict[str, Any]:
        return {
            "automatic": self.automatic,
            "automatic_max": self.automatic_max,
            "manual": self.manual,
            "manual_max": self.manual_max,
            "score": self.score,
            "max_score": self.max_score,
            "ungraded": self.ungraded,
            "provisional": self.provisional,
        }


def answers_of(result: Mapping[str, Any]) -> tuple[ManualAnswer, ...]:
    """The manual answers a Result's JSON lists (none for an invalid or errored submission)."""
    if result.get("status") not in (None, "graded"):
        return ()
    return tuple(ManualAnswer.from_dict(entry) for entry in result.get("manual") or ())


def total_of(result: Mapping[str, Any], grades: Mapping[str, ManualGrade]) -> Total:
    """The total of one Result's JSON with its submission's grades (answer id → grade)."""
    answers = answers_of(result)
    graded = [grades[a.id] for a in answers if a.id in grades]
    return Total(
        automatic=float(result.get("score") or 0.0),
        automatic_max=float(result.get("max_score") or 0.0),
        manual=round(sum(g.points for g in graded), 6),
        manual_max=round(sum(a.points for a in answers), 6),
        ungraded=len(answers) - len(graded),
    )


def read_grades(conn: sa.Connection, submission_ids: Iterable[str] | None = None) -> dict[str, dict[str, ManualGrade]]:
    """submission id → answer id → grade, for these submissions (None: every grade in the store)."""
    g = manual_grades.c
    query = sa.select(manual_grades, users.c.name.label("grader")).join(users, users.c.id == g.grader_id)
    if submission_ids is not None:
        wanted = list(submission_ids)
        if not wanted:
            return {}
        query = query.where(g.submission_id.in_(wanted))
    found: dict[str, dict[str, ManualGrade]] = {}
    for row in conn.execute(query):
        found.setdefault(row.submission_id, {})[row.item] = ManualGrade(
            submission_id=row.submission_id,
            item=row.item,
            criteria=tuple(int(i) for i in json.loads(row.criteria or "[]")),
            points=float(row.points),
            max_points=float(row.max_points),
            comment=row.comment or "",
            grader=row.grader,
            graded_at=float(row.graded_at),
        )
    return found


def manual_lines(result: Mapping[str, Any], grades: Mapping[str, ManualGrade]) -> list[dict[str, Any]]:
    """What a learner reads of each manual answer: its rubric lines (awarded or not), points, the comment;
    ``graded`` False while it waits for an instructor."""
    lines = []
    for answer in answers_of(result):
        grade = grades.get(answer.id)
        ticked = set(grade.criteria) if grade else set()
        lines.append(
            {
                "id": answer.id,
                "title": answer.title,
                "label": answer.label,
                "graded": grade is not None,
                "points": grade.points if grade else None,
                "max_points": answer.points,
                "comment": grade.comment if grade else "",
                "rubric": [
                    {
                        "description": c.description,
                        "points": c.points,
                        "awarded": i in ticked if grade else None,
                    }
                    for i, c in enumerate(answer.rubric)
                ],
            }
        )
    return lines
