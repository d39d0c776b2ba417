"""The platform's benchmarks (see docs/BENCHMARKS.md): ``python -m bench [ID ...]``.

Each benchmark is a module ``bench/b<N>_<what>.py`` with a one-line docstring and a
``main(argv: list[str]) -> int``; dropping such a file here registers it. Every benchmark
interleaves its arms, repeats them after a warm-up, prints a table and writes
``bench/results/<id>.json``. None of them fails on a time: they measure, CI decides nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def run_and_record(
    argv: list[str],
    *,
    bench_id: str,
    doc: str,
    results: Path,
    run: Callable[[int, Console], dict[str, object]],
    render: Callable[[dict[str, object], Console], None],
) -> int:
    """The shared ``main`` of a measuring benchmark: parse --repeats/--output, run, print, write JSON.

    The caller's ``GRADER_*`` environment is cleared first, so a benchmark measures its own settings.
    """
    import argparse
    import json
    import os

    from rich.console import Console

    from grader.format import markers

    parser = argparse.ArgumentParser(prog=f"python -m bench {bench_id}", description=doc.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds after the warm-up (≥ 5)")
    parser.add_argument("--output", type=Path, default=results, help="where to write the JSON")
    args = parser.parse_args(argv)
    console = Console(width=110, stderr=False)
    for key in [k for k in os.environ if k.startswith(markers.ENV_PREFIX)]:
        del os.environ[key]
    result = run(args.repeats, console)
    render(result, console)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    console.print(f"written: {args.output}")
    return 0
