"""B4: the grading cost of one more cell (nbval item + kernel round trip + comparison + record).

Two exercises differ only in their number of trivial check cells (each prints a number that is
compared with the reference): ``N`` and ``N + 50``. Both are graded with the full
:func:`grader.grading.engine.grade_notebook` path, interleaved, after a warm-up round that builds
both bundles; the cost per cell is the difference of the medians divided by 50.

Target (docs/BENCHMARKS.md): ≤ 10 ms per cell.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbformat import NotebookNode, v4
from rich.console import Console
from rich.table import Table

from bench.b1_grading import interleaved, machine, stats, submission_of, write_course
from grader.format import markers

RESULTS = Path(__file__).resolve().parent / "results" / "b4.json"
EXTRA = 50
TARGET_MS = 10.0


def solution_with_checks(count: int) -> NotebookNode:
    """One exercise cell and ``count`` trivial visible checks that print a number each."""
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    exercise = v4.new_code_cell("def double(x):\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION")
    exercise.metadata["tags"] = [markers.TAG_EXERCISE]
    exercise.metadata[markers.META_GRADER] = {markers.META_ID: "1.0"}
    nb.cells = [v4.new_markdown_cell("# Many checks"), exercise]
    for number in range(1, count + 1):
        check = v4.new_code_cell(f"# Check 1.{number}: double({number})\nprint(double({number}))")
        check.metadata["tags"] = [markers.TAG_CHECK]
        check.metadata[markers.META_GRADER] = {markers.META_ID: f"1.{number}", markers.META_POINTS: 1}
        nb.cells.append(check)
    return nb


def run(base: int, repeats: int, console: Console) -> dict[str, object]:
    from grader.grading.engine import grade_notebook

    with tempfile.TemporaryDirectory(prefix="b4-") as tmp:
        root = Path(tmp)
        sizes = {f"{base}-cells": base, f"{base + EXTRA}-cells": base + EXTRA}
        settings = None
        submissions = {}
        for name, count in sizes.items():
            exercise = f"04-{name}"
            solution = solution_with_checks(count)
            settings = write_course(root, exercise, solution)
            path = root / f"{name}.ipynb"
            nbformat.write(submission_of(solution, exercise), path)
            submissions[name] = path

        def grader_arm(name: str) -> Callable[[], object]:
            def arm() -> None:
                result = grade_notebook(settings, submissions[name])  # type: ignore[arg-type]
                if result.score != sizes[name]:
                    raise RuntimeError(f"{name}: expected full marks, got {result.score}: {result.message}")

            return arm

        times = interleaved({name: grader_arm(name) for name in sizes}, repeats, console)
    small, large = (times[name] for name in sizes)
    per_cell_median_ms = (statistics.median(large) - statistics.median(small)) / EXTRA * 1000
    per_cell_min_ms = (min(large) - min(small)) / EXTRA * 1000
    return {
        "benchmark": "B4",
        "what": f"grade_notebook with {base} vs {base + EXTRA} trivial check cells; cost per extra cell",
        "repeats": repeats,
        "warmup_rounds": 1,
        "interleaved": "alternating order per round",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "arms": {name: stats(values) for name, values in times.items()},
        "per_cell_ms_median": round(per_cell_median_ms, 3),
        "per_cell_ms_min": round(per_cell_min_ms, 3),
        "target_ms": TARGET_MS,
    }


def render(result: dict[str, object], console: Console) -> None:
    arms = result["arms"]
    if not isinstance(arms, dict):
        raise TypeError("arms must be a dict")
    table = Table(title=f"B4 — nbval cost per extra cell, {result['repeats']} repeats", min_width=70)
    for column in ("arm", "median s", "min s"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for arm, row in arms.items():
        table.add_row(arm, f"{row['median_s']:.3f}", f"{row['min_s']:.3f}")
    console.print(table)
    met = float(result["per_cell_ms_median"]) <= TARGET_MS  # type: ignore[arg-type]
    console.print(
        f"per extra cell: {result['per_cell_ms_median']} ms (medians), {result['per_cell_ms_min']} ms "
        f"(mins); target ≤ {TARGET_MS} ms: {'yes' if met else 'NO'}"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench b4", description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=10, help="check cells in the smaller notebook")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds after the warm-up (≥ 5)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    console = Console(width=110)
    for key in [k for k in os.environ if k.startswith(markers.ENV_PREFIX)]:
        del os.environ[key]  # the benchmark's own settings, whatever the caller's environment says
    result = run(args.base, args.repeats, console)
    render(result, console)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    console.print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
