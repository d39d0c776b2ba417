"""``grader regrade``: grade every learner's counted submission of an exercise again, after a check was fixed.

::

    grader regrade EXERCISE [--apply]     start, show progress until done, print the change report
    grader regrade start EXERCISE         the same, spelt out
    grader regrade list                   the latest regrades, one line each
    grader regrade show REGRADE_ID        one regrade's progress and change report
    grader regrade apply REGRADE_ID       make its new scores the learners' scores

``grader regrade EXERCISE`` grades the jobs in this process while no grading worker is live (the
``workers`` table's heartbeats), else waits for the service's workers (with Celery, it sends them one task
per job). Nothing replaces the learners' scores without ``--apply`` or
``grader regrade apply``. The library is :mod:`grader.service.regrade`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

from grader.errors import UsageError
from grader.settings import Settings

#: the words ``grader regrade`` reads as an action rather than an exercise id
ACTIONS = ("start", "list", "show", "apply")
#: how often progress is read while the service's workers grade
POLL_S = 0.5


def _requester(store: Any, name: str | None) -> int:
    """The instructor a regrade is requested by: ``--as NAME``, else the first instructor account."""
    from grader.service import accounts

    instructors = [u for u in accounts.list_users(store) if u.is_instructor]
    if name is not None:
        found = [u for u in instructors if u.name == name]
        if not found:
            raise UsageError(f"no instructor {name!r}; `grader users list` lists the accounts")
        return found[0].id
    if not instructors:
        raise UsageError("no instructor account yet: make one with `grader users add NAME --instructor`")
    return instructors[0].id


def _grade_here(settings: Settings, store: Any) -> bool:
    """Whether this process grades the jobs: no grading worker is live (embedded or Celery)."""
    from grader.service import registry

    return not registry.live_workers(store, settings.worker_ttl_s)


def _hand_out(settings: Settings, store: Any, regrade_id: str) -> None:
    """With Celery, one task per job (embedded workers poll the store): sent while a worker is live."""
    from grader.service import dispatch, regrade_jobs

    sender = dispatch.regrade_sender(settings)
    if sender is not None and not _grade_here(settings, store):
        sender(store, regrade_jobs.devices(store, regrade_id))


def _wait(settings: Settings, store: Any, found: Any) -> Any:
    """Show progress until every job is graded or failed, grading them here while no worker is live."""
    from tqdm import tqdm

    from grader.service import regrade, workers

    grade, release = None, None
    bar = tqdm(total=found.total, desc=f"regrading {found.exercise}", unit="submission", file=sys.stderr)
    try:
        while found.status == regrade.GRADING:
            if _grade_here(settings, store):
                if grade is None:
                    if settings.sandbox:
                        from grader.sandbox.doctor import require_sandbox

                        require_sandbox()
                    grade, release = workers.worker_grade_function(settings, concurrency=1)
                    # a job that fails is listed in the report with its reason: no traceback on the terminal
                    logging.getLogger(workers.__name__).setLevel(logging.CRITICAL)
                    print("no grading worker is running: grading here", file=sys.stderr, flush=True)
                owner = workers.worker_name("regrade-cli")
                if workers.run_regrade_once(settings, store, grade, owner) is None:
                    time.sleep(POLL_S)  # a job backing off, or leased by a worker that just stopped
            else:
                time.sleep(POLL_S)
            found = regrade.get(store, found.id)
            bar.update(found.done - bar.n)
    finally:
        bar.close()
        if release is not None:
            release()
    return found


def _cmd_regrade(args: argparse.Namespace, settings: Settings) -> int:
    from grader.service import regrade
    from grader.service.store import open_store

    if args.target in ACTIONS:
        action, argument = args.target, args.argument
    elif args.argument is not None:
        raise UsageError(
            f"`grader regrade {args.target} {args.argument}`: did you mean `grader regrade start EXERCISE`?"
        )
    else:
        action, argument = "start", args.target
    if action != "list" and not argument:
        what = "EXERCISE" if action == "start" else "REGRADE_ID"
        raise UsageError(f"`grader regrade {action}` needs {what}; `grader regrade list` lists the regrades")
    if action == "list" and argument:
        raise UsageError(f"`grader regrade list` takes nothing more (got {argument!r})")
    with open_store(settings) as store:
        if action == "list":
            found = regrade.listing(store)
            for r in found:
                print(f"{r.id}  {r.exercise}  {r.status}  {r.done}/{r.total}  {r.summary()}")
            if not found:
                print("no regrades yet: `grader regrade EXERCISE` starts one")
            return 0
        if action == "show":
            print(regrade.render(regrade.get(store, argument)))
            return 0
        if action == "apply":
            print(regrade.render(regrade.apply(store, argument)))
            return 0
        started = regrade.start(store, settings, argument, _requester(store, args.as_instructor))
        print(
            f"regrade {started.id} of {started.exercise}: {started.total} counted submissions queued, "
            "graded with the current checks",
            flush=True,
        )
        _hand_out(settings, store, started.id)
        finished = _wait(settings, store, started) if not args.no_wait else started
        if args.apply and finished.status == regrade.READY:
            finished = regrade.apply(store, finished.id)
        print(regrade.render(finished))
        return 0


def add_commands(sub: Any) -> None:
    """regrade."""
    p = sub.add_parser(
        "regrade",
        help="grade every learner's counted submission of an exercise again (after fixing a check); list, show, apply",
        description="grader regrade EXERCISE [--apply] | start EXERCISE | list | show REGRADE_ID | apply REGRADE_ID",
    )
    p.add_argument("target", metavar="EXERCISE|ACTION", help="an exercise id, or start, list, show, apply")
    p.add_argument("argument", nargs="?", default=None, metavar="ID", help="start: the exercise; show, apply: the id")
    p.add_argument("--apply", action="store_true", help="once graded, make the new scores the learners' scores")
    p.add_argument("--no-wait", action="store_true", help="start and return; the service's workers grade the jobs")
    p.add_argument("--as", dest="as_instructor", default=None, metavar="NAME", help="the instructor asking")
    p.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="grade here WITHOUT the sandbox (only for code you trust; every report says so)",
    )
    p.set_defaults(handler=_cmd_regrade)
