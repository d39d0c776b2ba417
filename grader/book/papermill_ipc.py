"""``python -m grader.book.papermill_ipc``: papermill on one lesson, its kernel on the ipc transport.

:mod:`grader.book.lessons` runs each lesson in a subprocess of this module rather than papermill's
own command line. Over TCP, jupyter_client picks a kernel's five ports by binding and releasing
them in the calling process, and the kernel binds them a moment later: another program on the
machine (a second lesson run in parallel, a server starting) may take one in between, and the
kernel dies before its first cell ("Address already in use", then "Kernel died before replying to
kernel_info"). Over ipc a kernel's sockets are files in a private temporary folder: there is
nothing to race for, and nothing but this user can connect to them.

Command line (what :func:`grader.book.lessons` passes)::

    python -m grader.book.papermill_ipc INPUT OUTPUT --parameter NAME VALUE --kernel NAME
        --language python --execution-timeout SECONDS --cwd FOLDER

A failing lesson raises as papermill's command line does: the traceback goes to stderr (the
lesson's log), the exit status is 1, and the partial output is written to OUTPUT.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.book.papermill_ipc", description=__doc__)
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--kernel", required=True)
    parser.add_argument("--language", default="python")
    parser.add_argument("--execution-timeout", type=int, default=None)
    parser.add_argument("--cwd", default=None)
    args = parser.parse_args(argv)

    import papermill
    from traitlets.config import Config

    logging.basicConfig(level=logging.WARNING)
    sockets = Path(tempfile.mkdtemp(prefix="lesson-kernel-"))
    try:
        papermill.execute_notebook(
            args.input,
            args.output,
            parameters=dict(args.parameter),
            kernel_name=args.kernel,
            language=args.language,
            cwd=args.cwd,
            progress_bar=False,
            execution_timeout=args.execution_timeout,
            config=Config({"KernelManager": {"transport": "ipc", "ip": str(sockets / "kernel")}}),
        )
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
