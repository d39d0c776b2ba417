"""``python -m bench`` runs every registered benchmark; ``python -m bench b5`` runs one; ``--list`` lists them.

``python -m bench gpu`` runs the GPU check (lessons 07–11 and G1–G3, ``bench/gpu_check.py``); it
is run only by name, never as part of "every benchmark".
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

_MODULE = re.compile(r"^(?P<id>b\d+)_\w+$")
#: run only when named: id → module
BY_NAME = {"gpu": "bench.gpu_check"}


def registry() -> dict[str, str]:
    """Benchmark id → module name, for every ``bench/b<N>_*.py``, in numeric order."""
    found = {}
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        match = _MODULE.match(info.name)
        if match:
            found[match["id"]] = f"bench.{info.name}"
    return dict(sorted(found.items(), key=lambda item: int(item[0][1:])))


def _summary(module: ModuleType) -> str:
    return (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in BY_NAME:  # its own options, --help included
        run_named: Callable[[list[str]], int] = importlib.import_module(BY_NAME[argv[0]]).main
        return run_named(argv[1:])
    known = registry()
    named = {**known, **BY_NAME}
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "ids",
        nargs="*",
        metavar="ID",
        help=f"benchmarks to run (default: all of {', '.join(known)}; also: {', '.join(BY_NAME)})",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args, rest = parser.parse_known_args(argv)
    if args.list:
        for bench_id, name in named.items():
            note = " (run by name only)" if bench_id in BY_NAME else ""
            print(f"{bench_id:<4} {_summary(importlib.import_module(name))}{note}")
        return 0
    unknown = [i for i in args.ids if i not in named]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(named)}")
    status = 0
    for bench_id in args.ids or list(known):
        run: Callable[[list[str]], int] = importlib.import_module(named[bench_id]).main
        status = max(status, run(rest))
    return status


if __name__ == "__main__":
    sys.exit(main())
