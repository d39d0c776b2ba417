"""``grader manual``: manual grading from the command line (the library is :mod:`grader.service.manual`).

::

    grader manual list                                      the answers waiting for a grade, with their ids
    grader manual show SUBMISSION                           its rubrics (criteria numbered from 1), grades, answers
    grader manual grade SUBMISSION ANSWER --criteria 1,3 --comment "..." [--as NAME]

``grade`` prints the answer's points and the submission's new total (provisional while another answer waits).
Criteria are numbered from 1, as the page and ``show`` number them; ``--criteria ""`` awards none.
"""

from __future__ import annotations

import argparse
from typing import Any

from grader.errors import UsageError
from grader.settings import Settings


def parse_criteria(text: str) -> list[int]:
    """``"1,3"`` → ``[0, 2]`` (0-based positions); raises UsageError for anything but numbers from 1."""
    positions = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if not part.isdigit() or int(part) < 1:
            raise UsageError(
                f"--criteria {text[:60]!r}: {part[:20]!r} is not a criterion number; give the numbers "
                "`grader manual show` prints, from 1, separated by commas (e.g. --criteria 1,3)"
            )
        positions.append(int(part) - 1)
    return positions


def _grader(store: Any, name: str | None) -> Any:
    """The instructor the grade is given by: ``--as NAME``, else the only instructor account."""
    from grader.service import accounts

    instructors = [u for u in accounts.list_users(store) if u.is_instructor]
    if name is not None:
        for user in accounts.list_users(store):
            if user.name == name:
                if not user.is_instructor:
                    raise UsageError(f"--as {name!r} is a learner; give an instructor's account name")
                return user
        raise UsageError(f"--as {name[:64]!r}: no such account; `grader users list` shows them")
    if len(instructors) != 1:
        names = ", ".join(u.name for u in instructors) or "none (make one: grader users add NAME --instructor)"
        raise UsageError(f"say which instructor grades with --as NAME; the instructors: {names}")
    return instructors[0]


def _cmd_manual(args: argparse.Namespace, settings: Settings) -> int:
    from grader.service import manual
    from grader.service.store import open_store

    with open_store(settings) as store:
        if args.manual_command == "list":
            print(manual.render_queue(manual.awaiting(store, settings)))
        elif args.manual_command == "show":
            print(manual.render_marking(manual.require(store, args.submission)))
        else:
            criteria = parse_criteria(args.criteria)
            graded = manual.grade(store, args.submission, args.answer, criteria, args.comment, _grader(store, args.as_))
            print(f"graded {graded.text(manual.require(store, args.submission))}")
    return 0


def add_commands(sub: Any) -> None:
    """manual list / show / grade."""
    p = sub.add_parser("manual", help="grade manually graded answers with their rubrics (list, show, grade)")
    acts = p.add_subparsers(dest="manual_command", required=True, metavar="ACTION")
    acts.add_parser("list", help="the answers waiting for a grade (oldest first), with submission and answer ids")
    q = acts.add_parser("show", help="a submission's rubrics (criteria numbered from 1), grades and answers")
    q.add_argument("submission")
    q = acts.add_parser("grade", help="grade one answer: the criteria met, a comment; prints the new total")
    q.add_argument("submission")
    q.add_argument("answer", help="the answer's id, e.g. 20.7")
    q.add_argument("--criteria", required=True, help="the criteria met, numbered from 1: e.g. 1,3 ('' for none)")
    q.add_argument("--comment", default="", help="a comment for the learner (Markdown)")
    q.add_argument(
        "--as", dest="as_", default=None, metavar="NAME", help="the instructor grading (default: the only one)"
    )
    p.set_defaults(handler=_cmd_manual)
