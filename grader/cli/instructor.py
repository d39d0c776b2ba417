"""The instructor's commands: accounts, deadlines and extensions, gradebook exports, the store's schema.

Each command opens the service's store (:func:`grader.service.store.open_store`), calls one library
function and prints what it did. Later instructor workflows (manual grading, regrades) add their own
modules beside this one and register through :func:`add_commands`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from grader.settings import Settings


def _cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    from grader.service import accounts
    from grader.service.store import open_store

    with open_store(settings) as store:
        if args.users_command == "add":
            user, token = accounts.add_user(store, args.name, instructor=args.instructor)
            print(f"made {user.role} {user.name!r}; their token (shown only now, give it to them):")
            print(token)
        elif args.users_command == "reset":
            token = accounts.reset_token(store, args.name)
            print(f"new token for {args.name!r} (the old one no longer works; shown only now):")
            print(token)
        else:
            print(accounts.render_users(accounts.list_users(store)))
    return 0


def _cmd_deadlines(args: argparse.Namespace, settings: Settings) -> int:
    from grader.service import catalog, deadlines
    from grader.service.store import open_store

    with open_store(settings) as store:
        known = [e.id for e in catalog.list_exercises(settings)]
        if args.deadlines_command == "set":
            found = deadlines.set_deadline(
                store,
                known,
                args.exercise,
                due=args.due,
                policy=args.policy,
                per_day=args.per_day,
                floor=args.floor,
                allow_past=args.allow_past,
            )
            print(f"{found.exercise} is due {deadlines.utc_text(found.due_at)}; {found.policy}: {found.describe()}")
        elif args.deadlines_command == "grant":
            granted = deadlines.grant_extension(
                store, known, args.learner, args.exercise, until=args.until, allow_past=args.allow_past
            )
            who, what = granted["learner"], granted["exercise"]
            print(f"{who} may submit {what} until {granted['due']} (the others: {granted['was']})")
        else:
            print(deadlines.render(deadlines.listing(store)))
    return 0


def _add_deadline_commands(sub: Any) -> None:
    p = sub.add_parser("deadlines", help="due times and late policies of exercises (times in UTC, ISO 8601)")
    acts = p.add_subparsers(dest="deadlines_command", required=True, metavar="ACTION")
    q = acts.add_parser("set", help="set (or replace) an exercise's due time and late policy")
    q.add_argument("exercise")
    q.add_argument("--due", required=True, help="e.g. 2026-12-20T23:59Z")
    q.add_argument("--policy", default="none", help="none (flag late work), penalty, or refuse")
    q.add_argument("--per-day", type=float, default=0.0, help="penalty: percent of the score lost per started day")
    q.add_argument("--floor", type=float, default=0.0, help="penalty: percent of the score a late submission keeps")
    q.add_argument("--allow-past", action="store_true", help="accept a due time that has already passed")
    acts.add_parser("list", help="list deadlines and extensions")
    p.set_defaults(handler=_cmd_deadlines)
    p = sub.add_parser("extensions", help="one learner's later due time for one exercise")
    acts = p.add_subparsers(dest="deadlines_command", required=True, metavar="ACTION")
    q = acts.add_parser("grant", help="give LEARNER until --until for EXERCISE")
    q.add_argument("learner")
    q.add_argument("exercise")
    q.add_argument("--until", required=True, help="e.g. 2026-12-22T23:59Z")
    q.add_argument("--allow-past", action="store_true", help="accept a time that has already passed")
    acts.add_parser("list", help="list deadlines and extensions")
    p.set_defaults(handler=_cmd_deadlines)


def _cmd_gradebook(args: argparse.Namespace, settings: Settings) -> int:
    from grader.service import catalog, gradebook
    from grader.service.store import open_store

    with open_store(settings) as store:
        made = gradebook.export_of(store, catalog.list_exercises(settings), args.format, settings.counted_submission)
    text = made.text
    if made.warning:
        print(f"warning: {made.warning}", file=sys.stderr)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote the {args.format} gradebook ({text.count(chr(10)) - 1} rows under the header) to {args.output}")
    else:
        print(text, end="")
    return 0


def _cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from grader.service.store import migrate, open_store

    with open_store(settings, upgrade=False) as store:
        where = store.engine.url.render_as_string(hide_password=True)
        before = store.schema()
        if args.db_command == "upgrade":
            applied = migrate(store)
            start = before.current or (f"schema version {before.legacy_version}" if before.legacy_version else "empty")
            print(
                f"the store at {where} is at {before.head}, the latest: nothing to do"
                if not applied
                else f"upgraded the store at {where} from {start} to {before.head}:"
            )
            for revision in applied:
                print(f"  {revision}")
        else:
            at = before.current or "no revision"
            if before.legacy_version:
                at += f" (hand-written schema version {before.legacy_version}, made before Alembic)"
            print(f"the store at {where}: {at}; this grader's latest is {before.head}")
            if before.pending:
                print(f"{len(before.pending)} to apply by `grader db upgrade` (or on the service's start):")
            for revision in before.pending:
                print(f"  {revision}")
    return 0


def add_commands(sub: Any) -> None:
    """users, deadlines, extensions, gradebook, db."""
    p = sub.add_parser("users", help="accounts of the grader service (tokens are shown once)")
    users = p.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    q = users.add_parser("add", help="make an account and print its token")
    q.add_argument("name")
    q.add_argument("--instructor", action="store_true", help="may read the gradebook and every submission")
    users.add_parser("list", help="list accounts")
    q = users.add_parser("reset", help="replace an account's token and print the new one")
    q.add_argument("name")
    p.set_defaults(handler=_cmd_users)

    _add_deadline_commands(sub)

    p = sub.add_parser("gradebook", help="the service's gradebook as CSV, for a spreadsheet or an LMS")
    books = p.add_subparsers(dest="gradebook_command", required=True, metavar="ACTION")
    q = books.add_parser("export", help="print (or write) the gradebook: each learner's counted submission")
    q.add_argument(
        "--format",
        choices=("wide", "canvas", "long"),
        default="wide",
        help="wide: learner x exercise; canvas: Canvas's gradebook import; long: one row per learner and exercise",
    )
    q.add_argument("--output", default=None, metavar="FILE", help="write here instead of printing")
    p.set_defaults(handler=_cmd_gradebook)

    p = sub.add_parser("db", help="the service's store: its schema revision, and upgrading it in place")
    db = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db.add_parser("current", help="print the store's revision and what an upgrade would apply")
    db.add_parser("upgrade", help="apply the migrations the store lacks, keeping its data")
    p.set_defaults(handler=_cmd_db)
