"""B8: what the sandbox costs: grading one submission sandboxed vs --unsafe-no-sandbox.

The lesson-sized exercise of B1 (about 20 cells of NumPy and pandas on 20,000 rows, two
exercise cells, four checks) is written into a temporary course; the submission is its
solution, so it scores full marks in both arms.

Arms, interleaved (the order alternates every round), after one warm-up round that also builds
the grading bundle of each arm (the bundle key includes the isolation):

- ``unsandboxed`` :func:`grader.grading.engine.grade_notebook` with ``sandbox=False`` (the
                  ``--unsafe-no-sandbox`` path: the kernel runs as the grader, unconfined);
- ``sandboxed``   the same call with ``sandbox=True`` (the default): a job uid, a cgroup,
                  rlimits, bubblewrap with every namespace unshared, seccomp, the ipc tmpfs.

Both arms start a fresh kernel per submission (no warm pool). Target: the sandbox adds
≤ 0.5 s per submission (median difference).
"""

from __future__ import annotations

import dataclasses
import datetime
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import nbformat
from rich.console import Console
from rich.table import Table

from bench import run_and_record
from bench.b1_grading import interleaved, lesson_sized_solution, machine, stats, submission_of, write_course

RESULTS = Path(__file__).resolve().parent / "results" / "b8.json"
EXERCISE = "08-bench"
TARGET_EXTRA_S = 0.5


def run(repeats: int, console: Console) -> dict[str, object]:
    from grader.grading.engine import grade_notebook
    from grader.sandbox.doctor import doctor

    with tempfile.TemporaryDirectory(prefix="b8-") as tmp:
        root = Path(tmp)
        solution = lesson_sized_solution()
        sandboxed = write_course(root, EXERCISE, solution)
        # a build folder each: the bundle key includes the isolation, so one shared folder would be
        # rebuilt at every switch of arm
        unsandboxed = dataclasses.replace(sandboxed, sandbox=False, build_dir=root / "_build-unsandboxed")
        submission = root / "submission.ipynb"
        nbformat.write(submission_of(solution, EXERCISE), submission)
        isolation: dict[str, str] = {}

        def arm(name: str, settings: object) -> Callable[[], object]:
            def grade() -> None:
                result = grade_notebook(settings, submission)  # type: ignore[arg-type]
                if result.status != "graded" or result.score != result.max_score:
                    raise RuntimeError(f"the benchmark submission did not score full marks ({name}): {result}")
                isolation[name] = result.isolation

            return grade

        times = interleaved(
            {"unsandboxed": arm("unsandboxed", unsandboxed), "sandboxed": arm("sandboxed", sandboxed)}, repeats, console
        )
    bare, boxed = times["unsandboxed"], times["sandboxed"]
    return {
        "benchmark": "B8",
        "what": "grade_notebook of a lesson-sized submission, sandboxed vs --unsafe-no-sandbox (fresh kernel each)",
        "cells": len(solution.cells),
        "repeats": repeats,
        "warmup_rounds": 1,
        "interleaved": "alternating order per round",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "sandbox": {f.name: {"ok": f.ok, "detail": f.detail} for f in doctor()},
        "isolation": isolation,
        "arms": {"unsandboxed": stats(bare), "sandboxed": stats(boxed)},
        "extra_median_s": round(statistics.median(boxed) - statistics.median(bare), 4),
        "extra_min_s": round(min(boxed) - min(bare), 4),
        "ratio_median": round(statistics.median(boxed) / statistics.median(bare), 4),
        "target_extra_s": TARGET_EXTRA_S,
    }


def render(result: dict[str, object], console: Console) -> None:
    arms = result["arms"]
    if not isinstance(arms, dict):
        raise TypeError("arms must be a dict")
    table = Table(title=f"B8 — sandbox overhead, {result['cells']} cells, {result['repeats']} repeats", min_width=70)
    for column in ("arm", "median s", "min s"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for name, row in arms.items():
        table.add_row(name, f"{row['median_s']:.3f}", f"{row['min_s']:.3f}")
    console.print(table)
    met = float(result["extra_median_s"]) <= TARGET_EXTRA_S  # type: ignore[arg-type]
    console.print(
        f"sandbox overhead: {result['extra_median_s']} s median, {result['extra_min_s']} s min, "
        f"{result['ratio_median']}× (target ≤ +{TARGET_EXTRA_S} s: {'yes' if met else 'NO'})"
    )


def main(argv: list[str]) -> int:
    return run_and_record(argv, bench_id="b8", doc=__doc__ or "", results=RESULTS, run=run, render=render)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
