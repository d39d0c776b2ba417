"""The ``grader`` command: a thin layer that parses, calls one library function, prints.

Exit codes come from :mod:`grader.errors` (each error class carries its own); ``grader check``
and ``grader grade`` additionally return 1 when a notebook lost points (see the book's
"Grading" page for the full table).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from grader import markers
from grader.errors import GraderError
from grader.settings import Settings, load_settings

Handler = Callable[[argparse.Namespace, Settings], int]


def _cmd_lessons(args: argparse.Namespace, settings: Settings) -> int:
    from grader import lessons

    runs = lessons.run_lessons(settings, args.names or None, profile=args.profile, force=args.force)
    print(lessons.render_report(runs))
    return 0


def _cmd_book(args: argparse.Namespace, settings: Settings) -> int:
    from grader import book

    index = book.build_book(settings, profile=args.profile)
    print(f"site built: {index}")
    return 0


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from grader import serve

    with serve.make_server(settings) as server:
        print(f"serving the course at {serve.url(server)} (Ctrl-C to stop)", flush=True)
        server.serve_forever()
    return 0


def _cmd_assign(args: argparse.Namespace, settings: Settings) -> int:
    from grader import authoring

    report = authoring.assign(settings, check=args.check)
    print(authoring.render_report(report))
    return 0


def _cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from grader import checking, results

    result = checking.check_notebook(settings, Path(args.notebook))
    print(results.render_json(result) if args.json else results.render_text(result))
    return results.exit_code([result])


def _cmd_grade(args: argparse.Namespace, settings: Settings) -> int:
    from grader import grading, results

    outcome = grading.grade_submissions(
        settings, [Path(p) for p in args.submissions], exercise=args.exercise, jobs=args.jobs
    )
    for result in outcome:
        print(results.render_json(result) if args.json else results.render_text(result))
    if args.html:
        Path(args.html).write_text(results.render_html(outcome), encoding="utf-8")
    return results.exit_code(outcome)


def _cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from grader import verify

    report = verify.verify(settings, args.ids or None)
    print(json.dumps(verify.to_json(report), indent=2) if args.json else verify.render_text(report))
    return verify.exit_code(report)


def _cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from grader import sandbox

    findings = sandbox.doctor()
    for finding in findings:
        print(f"  {'ok ' if finding.ok else 'NO '} {finding.name}: {finding.detail}")
    available, reason = sandbox.sandbox_available()
    print("sandboxed grading: available" if available else f"sandboxed grading: NOT available ({reason})")
    return 0 if available else sandbox.SandboxUnavailable.exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="Course platform: lessons, site and autograder.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    p = sub.add_parser("serve", help="serve the built site")
    p.add_argument("--port", type=int, default=None, help="port (default 8000, or GRADER_PORT)")
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    p.set_defaults(handler=_cmd_serve)

    p = sub.add_parser("assign", help="generate exercises/ from solutions/")
    p.add_argument("--check", action="store_true", help="only check that exercises/ is up to date")
    p.set_defaults(handler=_cmd_assign)

    p = sub.add_parser("check", help="self-check a notebook with its visible checks (runs locally, unsandboxed)")
    p.add_argument("notebook")
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.set_defaults(handler=_cmd_check)

    p = sub.add_parser("grade", help="grade submissions against visible and hidden checks")
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION")
    p.add_argument("--exercise", default=None, help="exercise id (default: read from each notebook)")
    p.add_argument("--json", action="store_true", help="print one JSON object per submission")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel")
    p.add_argument("--html", default=None, metavar="FILE", help="also write an HTML feedback page")
    p.set_defaults(handler=_cmd_grade)

    p = sub.add_parser("verify", help="prove every exercise: solution full marks, stub zero, stable re-runs")
    p.add_argument("ids", nargs="*", metavar="ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_verify)

    p = sub.add_parser("doctor", help="report what isolation the grading sandbox has on this machine")
    p.set_defaults(handler=_cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        overrides = {k: getattr(args, k, None) for k in ("port", "host")}
        settings = load_settings(**overrides)
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
