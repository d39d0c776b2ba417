"""The ``grader`` command: a thin layer that parses, calls one library function, prints.

Exit codes come from :mod:`grader.errors` (each error class carries its own); ``grader check``
and ``grader grade`` additionally return 1 when a notebook lost points (see the book's
"Grading" page for the full table).

The CLI is the top layer under ``__main__``: it may import every other layer of the grader (library
code is imported inside each command, so ``grader --help`` stays fast). Its modules: this one (the
parser, the course author's and learner's commands, the worker and server) and
:mod:`grader.cli.instructor` (accounts, deadlines, gradebook exports, the store's schema),
:mod:`grader.cli.manual` (manual grading with rubrics) and :mod:`grader.cli.regrade` (regrades).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from grader.cli import instructor, manual, regrade
from grader.errors import GraderError, SandboxUnavailable, UsageError
from grader.format import markers
from grader.settings import Settings, load_settings

Handler = Callable[[argparse.Namespace, Settings], int]


def _cmd_lessons(args: argparse.Namespace, settings: Settings) -> int:
    from grader.book import lessons

    runs = lessons.run_lessons(settings, args.names or None, profile=args.profile, force=args.force)
    print(lessons.render_report(runs))
    return 0


def _warn_if_placeholder(settings: Settings) -> None:
    """Say so while ``_config.yml`` still names the placeholder repository (badges would open nothing)."""
    from grader.authoring import colab

    url, _branch = colab.repository(settings)
    if colab.is_placeholder(url):
        print(
            f"warning: _config.yml's repository.url is the placeholder {url}: the Open-in-Colab badges, launch "
            "buttons and setup cells point nowhere until you set your repository and run `grader assign` "
            "(README: Your own copy)",
            file=sys.stderr,
            flush=True,
        )


def _cmd_book(args: argparse.Namespace, settings: Settings) -> int:
    from grader.book import lessons, site

    _warn_if_placeholder(settings)
    # the lessons first, so the report says what was executed and what came from the cache
    print(lessons.render_report(lessons.run_lessons(settings, None, profile=args.profile)), flush=True)
    index = site.build_book(settings, profile=args.profile)
    print(f"site built: {index}")
    return 0


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    if not args.static:
        return _cmd_service(args, settings)
    from grader.book import static

    with static.make_server(settings) as server:
        print(f"serving the course at {static.url(server)} (Ctrl-C to stop)", flush=True)
        server.serve_forever()
    return 0


def _cmd_assign(args: argparse.Namespace, settings: Settings) -> int:
    from grader import authoring

    _warn_if_placeholder(settings)
    report = authoring.assign(settings, check=args.check)
    print(authoring.render_report(report), flush=True)
    for warning in report.warnings:  # probably a mistake, never a failure
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from grader import importers

    output = Path(args.output) if args.output else None
    report = importers.import_assignment(
        settings, args.tool, Path(args.path), exercise_id=args.id, output=output, force=args.force
    )
    print(importers.render_report(report))
    return importers.exit_code(report)


def _cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from grader.grading import results, selfcheck

    result = selfcheck.check_notebook(settings, Path(args.notebook))
    print(results.render_json(result) if args.json else results.render_text(result))
    _write_feedback(args, Path(args.notebook), result)
    return results.exit_code([result])


def _write_feedback(args: argparse.Namespace, notebook: Path, result: Any) -> None:
    """--gradescope FILE, --report FILE: one notebook's Gradescope results.json and HTML feedback report."""
    from grader.grading import report

    report.write_feedback(notebook, result.to_dict(), gradescope=args.gradescope, html=args.report)


def _cmd_grade(args: argparse.Namespace, settings: Settings) -> int:
    from grader.grading import engine, results

    if (args.gradescope or args.report) and len(args.submissions) != 1:
        raise UsageError("--gradescope and --report describe one notebook: grade one submission at a time")
    outcome = engine.grade_submissions(
        settings, [Path(p) for p in args.submissions], exercise=args.exercise, jobs=args.jobs
    )
    for result in outcome:
        print(results.render_json(result) if args.json else results.render_text(result))
    if args.html:
        Path(args.html).write_text(results.render_html(outcome), encoding="utf-8")
    if outcome:
        _write_feedback(args, Path(args.submissions[0]), outcome[0])
    return results.exit_code(outcome)


def _cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from grader.grading import verify

    report = verify.verify(settings, args.ids or None)
    print(json.dumps(verify.to_json(report), indent=2) if args.json else verify.render_text(report))
    return verify.exit_code(report)


def _cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from grader.sandbox.doctor import doctor, gpu_findings, sandbox_available

    findings = doctor()
    for finding in findings:
        print(f"  {'ok ' if finding.ok else 'NO '} {finding.name}: {finding.detail}")
    print("what a GPU worker (grader worker --gpu) would see:")
    for finding in gpu_findings():
        print(f"  {'ok ' if finding.ok else 'NO '} {finding.name}: {finding.detail}")
    available, reason = sandbox_available()
    print("sandboxed grading: available" if available else f"sandboxed grading: NOT available ({reason})")
    return 0 if available else SandboxUnavailable.exit_code


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import logging

    from grader.service import dispatch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    dispatch.run_worker(settings, celery=args.celery, concurrency=args.concurrency, gpu=args.gpu)
    return 0


def _cmd_service(args: argparse.Namespace, settings: Settings) -> int:
    import logging

    from grader.service import server

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    def announce(started: server.ServiceStarted) -> None:
        print(f"grader service at {started.url} (submit: {started.url}submit, API: {started.url}api/docs)")
        print(f"store: {started.store}; grading workers: {started.workers}")
        if not started.sandboxed:
            print("WARNING: grading WITHOUT the sandbox (--unsafe-no-sandbox): only for notebooks you trust")
        if started.instructor_token:
            print(f"first start: made instructor {started.instructor_name!r}; their token (shown only now):")
            print(started.instructor_token)
        print("Ctrl-C to stop", flush=True)

    server.run_service(settings, workers=args.workers, announce=announce)
    return 0


def _cmd_service_alias(args: argparse.Namespace, settings: Settings) -> int:
    print("note: `grader service` is an old name of `grader serve`; use `grader serve`", file=sys.stderr, flush=True)
    return _cmd_service(args, settings)


UNSAFE_HELP = "run learner code WITHOUT the sandbox (only for code you trust; every report says so)"


def _unsafe_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--unsafe-no-sandbox", action="store_true", help=UNSAFE_HELP)


def _feedback_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gradescope", default=None, metavar="FILE", help="also write Gradescope's results.json")
    p.add_argument("--report", default=None, metavar="FILE", help="also write the notebook with verdicts as HTML")


def _service_options(p: argparse.ArgumentParser) -> None:
    """Where the service listens and how many grading workers it starts."""
    p.add_argument("--port", type=int, default=None, help="port (default 8000, or GRADER_PORT; 0: any free one)")
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="grading worker processes (default GRADER_SERVICE_WORKERS, 2; 0 with a Celery broker)",
    )
    _unsafe_flag(p)


def _add_book_commands(sub: Any) -> None:
    """lessons, book: the lesson pipeline and the site."""
    p = sub.add_parser("lessons", help="execute lesson notebooks with papermill (cached)")
    p.add_argument(
        "names", nargs="*", metavar="NAME", help="lesson ids, e.g. 00-learning-ml-engineering (default: all)"
    )
    p.add_argument("--profile", choices=markers.PROFILES, default=markers.DEFAULT_PROFILE)
    p.add_argument("--force", action="store_true", help="re-execute even when the cache is fresh")
    p.set_defaults(handler=_cmd_lessons)

    p = sub.add_parser("book", help="build the static site with Jupyter Book 1 (executes stale lessons first)")
    p.add_argument("--profile", choices=markers.PROFILES, default=markers.DEFAULT_PROFILE)
    p.set_defaults(handler=_cmd_book)


def _add_grading_commands(sub: Any) -> None:
    """assign, import, check, grade, verify, doctor: authoring and the grading engine."""
    p = sub.add_parser("assign", help="generate exercises/ from solutions/, and every lesson's Colab setup cell")
    p.add_argument("--check", action="store_true", help="only check that exercises/ and the setup cells are up to date")
    p.set_defaults(handler=_cmd_assign)

    p = sub.add_parser("import", help="convert an nbgrader or otter-grader assignment into solutions/<id>.ipynb")
    p.add_argument("tool", choices=("nbgrader", "otter"), help="the tool the assignment was written for")
    p.add_argument("path", metavar="PATH", help="nbgrader's source notebook, or otter's master notebook")
    p.add_argument("--id", default=None, metavar="EXERCISE_ID", help="exercise id (default: the file name)")
    p.add_argument("--output", default=None, metavar="FILE", help="write here instead of solutions/<id>.ipynb")
    p.add_argument("--force", action="store_true", help="replace the output file if it exists")
    p.set_defaults(handler=_cmd_import)

    p = sub.add_parser("check", help="self-check a notebook with its visible checks (runs locally, unsandboxed)")
    p.add_argument("notebook")
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    _feedback_options(p)
    p.set_defaults(handler=_cmd_check)

    p = sub.add_parser("grade", help="grade submissions against visible and hidden checks")
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION")
    p.add_argument("--exercise", default=None, help="exercise id (default: read from each notebook)")
    p.add_argument("--json", action="store_true", help="print one JSON object per submission")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel")
    p.add_argument("--html", default=None, metavar="FILE", help="also write an HTML feedback page")
    _feedback_options(p)
    _unsafe_flag(p)
    p.set_defaults(handler=_cmd_grade)

    p = sub.add_parser("verify", help="prove every exercise: solution full marks, stub zero, stable re-runs")
    p.add_argument("ids", nargs="*", metavar="ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_verify)

    p = sub.add_parser("doctor", help="report what isolation the grading sandbox has on this machine")
    p.set_defaults(handler=_cmd_doctor)


def _add_service_commands(sub: Any) -> None:
    """serve, users, db, worker: the grader service (and `service`, the old name of `serve`)."""
    p = sub.add_parser("serve", help="serve the course: the built site at /, submissions and grading (make serve)")
    _service_options(p)
    p.add_argument("--static", action="store_true", help="serve only the static site (no grading service)")
    p.set_defaults(handler=_cmd_serve)

    instructor.add_commands(sub)
    regrade.add_commands(sub)
    manual.add_commands(sub)

    p = sub.add_parser("worker", help="grade queued submissions (embedded queue, or Celery with --celery)")
    p.add_argument("--celery", action="store_true", help="take jobs from GRADER_BROKER_URL (PostgreSQL store)")
    p.add_argument("--concurrency", type=int, default=1, help="submissions graded at once (default 1)")
    p.add_argument(
        "--gpu",
        action="store_true",
        help="a GPU worker: grades GPU exercises on this machine's NVIDIA GPUs, one per job (refused without one)",
    )
    _unsafe_flag(p)
    p.set_defaults(handler=_cmd_worker)

    # deprecated: kept working (scripts, bench/b7_burst.py use it) but not listed (no help=)
    p = sub.add_parser("service", description="An old name of `grader serve`: use that.")
    _service_options(p)
    p.set_defaults(handler=_cmd_service_alias)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="Course platform: lessons, site and autograder.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_book_commands(sub)
    _add_grading_commands(sub)
    _add_service_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        overrides: dict[str, object] = {k: getattr(args, k, None) for k in ("port", "host")}
        if getattr(args, "unsafe_no_sandbox", False):
            overrides["sandbox"] = False
        settings = load_settings(None, **overrides)
        handler: Handler = args.handler
        return handler(args, settings)
    except GraderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
