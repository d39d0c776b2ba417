"""B2: submit→score latency of a light exercise with a warm pool of sandboxed kernels vs a cold kernel.

A light exercise (six code cells: two exercise cells, two visible and two hidden checks, no
heavy imports) is written into a temporary course and its bundle built. The submission is the
solution, so every run scores full marks. Both arms call :func:`grader.grading.engine.grade_notebook`
on the notebook's bytes and stop the clock when the :class:`~grader.grading.results.Result` is back:
parse, assemble, run in a sandboxed kernel, compare, score.

- ``cold``  no pool: a pytest + nbval process and a sandboxed kernel are started for the submission;
- ``warm``  ``pool=WarmPool(settings, size=1)``: the kernel was started ahead of time; its
            replacement starts in the background when it is handed out.

Before every timed call (of either arm) the pool is settled: full again, and the runner used last
stopped and cleaned up — a service with spare capacity. Rounds are interleaved (the order
alternates), after one untimed warm-up round.

The run also checks that no state survives between two submissions from the pool (submission A
sets a global and an environment variable, writes files in its work folder, /tmp and /dev/shm,
and starts a background process; submission B, the next from the pool, looks for all of them)
and writes what B found into the JSON.

Target (docs/BENCHMARKS.md): warm ≤ 0.35× cold, and no state shared between submissions.
"""

from __future__ import annotations

import datetime
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode, v4
from rich.console import Console
from rich.table import Table

from bench import run_and_record
from bench.b1_grading import machine, stats, submission_of, write_course
from grader.format import markers
from grader.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results" / "b2.json"
EXERCISE = "02-light"
TARGET_RATIO = 0.35

#: submission A: everything it can leave behind for the next submission
MISCHIEF = """\
import json, os, subprocess
SURVIVOR = "left by A"
os.environ["LEFTOVER_ENV"] = "A"
open("leftover-cwd.txt", "w").write("A")
open("/tmp/leftover-tmp.txt", "w").write("A")
try:
    open("/dev/shm/leftover-shm.txt", "w").write("A")
except OSError:
    pass
subprocess.Popen(["sleep", "86399"], start_new_session=True, stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(json.dumps({"uid": os.getuid()}))
"""
#: submission B: what it finds of A
INSPECTION = """\
import json, os
sleepers = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        if b"86399" in open(f"/proc/{pid}/cmdline", "rb").read():
            sleepers.append(int(pid))
    except OSError:
        pass
print(json.dumps({
    "global": "SURVIVOR" in globals(),
    "env": "LEFTOVER_ENV" in os.environ,
    "cwd_file": os.path.exists("leftover-cwd.txt"),
    "tmp_file": os.path.exists("/tmp/leftover-tmp.txt"),
    "shm_file": os.path.exists("/dev/shm/leftover-shm.txt"),
    "sleepers": sleepers,
    "uid": os.getuid(),
}))
"""


def _cell(source: str, role: str | None = None, grader: dict[str, object] | None = None) -> NotebookNode:
    cell = v4.new_code_cell(source)
    if role:
        cell.metadata["tags"] = [role]
    if grader:
        cell.metadata[markers.META_GRADER] = grader
    return cell


def light_solution() -> NotebookNode:
    """A light exercise: pure Python, two exercises, four checks."""
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        v4.new_markdown_cell("# Word counts\n\nA light exercise used to time the warm pool."),
        _cell("TEXT = 'the cat sat on the mat the end'"),
        _cell(
            'def count_words(text):\n    """A dict of word -> occurrences."""\n'
            "    # BEGIN SOLUTION\n    counts = {}\n    for word in text.split():\n"
            "        counts[word] = counts.get(word, 0) + 1\n    return counts\n    # END SOLUTION",
            markers.TAG_EXERCISE,
            {"id": "2.1"},
        ),
        _cell(
            "# Check 2.1: 'the' appears three times\nassert count_words(TEXT)['the'] == 3",
            markers.TAG_CHECK,
            {"id": "2.1", "points": 1},
        ),
        _cell(
            "# Check 2.2: all counts\nprint(sorted(count_words(TEXT).items()))",
            markers.TAG_HIDDEN_CHECK,
            {"id": "2.2", "points": 2},
        ),
        _cell(
            'def most_common(text, k):\n    """The k most frequent words, ties broken alphabetically."""\n'
            "    # BEGIN SOLUTION\n    counts = count_words(text)\n"
            "    return sorted(counts, key=lambda w: (-counts[w], w))[:k]\n    # END SOLUTION",
            markers.TAG_EXERCISE,
            {"id": "2.2"},
        ),
        _cell(
            "# Check 2.3: the most common word\nassert most_common(TEXT, 1) == ['the']",
            markers.TAG_CHECK,
            {"id": "2.3", "points": 1},
        ),
        _cell(
            "# Check 2.4: the top three\nprint(most_common(TEXT, 3))",
            markers.TAG_HIDDEN_CHECK,
            {"id": "2.4", "points": 2},
        ),
    ]
    return nb


def _probe(source: str) -> NotebookNode:
    nb = v4.new_notebook()
    nb.cells = [_cell(source, markers.TAG_CHECK, {"id": "0.1", "points": 1})]
    return nb


def _printed(cells: dict[int, dict[str, Any]]) -> dict[str, object]:
    """The JSON the probe cell printed."""
    record = cells.get(0, {})
    outputs: list[dict[str, Any]] = list(record.get("outputs", []))
    text = "".join(str(o.get("text", "")) for o in outputs)
    try:
        return json.loads(text)  # type: ignore[no-any-return]
    except ValueError:
        return {"error": f"no report ({record.get('status')}, {record.get('reason')})"}


def isolation_check(settings: Settings) -> dict[str, object]:
    """Submission A leaves everything it can; B, the next runner from the pool, reports what it finds."""
    from grader.grading.warm import WarmPool

    with WarmPool(settings, size=1) as pool:
        first = pool.acquire()
        if first is None:
            return {"passed": False, "error": f"no warm runner: {pool.last_error}"}
        a = _printed(first.run(_probe(MISCHIEF), wall_timeout_s=60, mode="record").cells)
        first.close()
        second = pool.acquire()
        if second is None:
            return {"passed": False, "error": f"no warm runner: {pool.last_error}"}
        b = _printed(second.run(_probe(INSPECTION), wall_timeout_s=60, mode="record").cells)
        second.close()
    survived = sorted(k for k in ("global", "env", "cwd_file", "tmp_file", "shm_file", "sleepers") if b.get(k))
    host_sleepers = [
        p.name for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p) == b"sleep\x0086399\x00"
    ]
    fresh = first.directory != second.directory and not (first.directory and first.directory.exists())
    return {
        "passed": "error" not in b and not survived and not host_sleepers and fresh,
        "what_a_left": [
            "global SURVIVOR",
            "env LEFTOVER_ENV",
            "file in work dir",
            "file in /tmp",
            "file in /dev/shm",
            "background process (setsid sleep)",
        ],
        "what_b_found": b,
        "survived": survived,
        "a_process_on_host_after_a": host_sleepers,
        "uid": {"a": a.get("uid"), "b": b.get("uid"), "a_slot": first.uid, "b_slot": second.uid},
        "fresh_job_dir": fresh,
    }


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def interleaved(
    arms: dict[str, Callable[[], object]], before: Callable[[], object], repeats: int, console: Console
) -> dict[str, list[float]]:
    """Each arm once per round (order alternating), round 0 untimed; ``before`` runs untimed before each call."""
    times: dict[str, list[float]] = {name: [] for name in arms}
    order = list(arms)
    for round_number in range(repeats + 1):
        for name in order if round_number % 2 == 0 else order[::-1]:
            before()
            started = time.perf_counter()
            arms[name]()
            seconds = time.perf_counter() - started
            if round_number:
                times[name].append(seconds)
            label = "warm-up" if round_number == 0 else f"round {round_number}/{repeats}"
            console.log(f"{label:>12}  {name:<6} {seconds:7.3f} s")
    return times


def run(repeats: int, console: Console) -> dict[str, object]:
    from grader.grading.bundle import build_bundle
    from grader.grading.engine import grade_notebook
    from grader.grading.warm import WarmPool

    with tempfile.TemporaryDirectory(prefix="b2-") as tmp:
        root = Path(tmp)
        solution = light_solution()
        settings = write_course(root, EXERCISE, solution)
        build_bundle(settings, EXERCISE)
        data = nbformat.writes(submission_of(solution, EXERCISE)).encode()
        isolation = isolation_check(settings)
        console.log(f"no state survives between submissions: {'yes' if isolation['passed'] else 'NO'}")
        with WarmPool(settings, size=1) as pool:

            def settle() -> None:
                if not pool.wait_settled(120):
                    raise RuntimeError(f"the warm pool did not fill: {pool.last_error}")

            def grade(use_pool: bool) -> None:
                result = grade_notebook(settings, data, name="submission.ipynb", pool=pool if use_pool else None)
                if result.status != "graded" or result.score != result.max_score:
                    raise RuntimeError(f"the benchmark submission did not score full marks: {result}")

            started_before = pool.started
            times = interleaved({"cold": lambda: grade(False), "warm": lambda: grade(True)}, settle, repeats, console)
            warm_runs = pool.started - started_before
    cold, hot = times["cold"], times["warm"]
    return {
        "benchmark": "B2",
        "what": "grade_notebook of a light exercise (bytes → Result), warm pool of sandboxed kernels vs cold kernel",
        "cells": len(solution.cells),
        "repeats": repeats,
        "warmup_rounds": 1,
        "interleaved": "alternating order per round; pool settled (full, last runner cleaned up) before every call",
        "pool_size": 1,
        "warm_runners_started": warm_runs,
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "arms": {"cold": stats(cold), "warm": stats(hot)},
        "ratio_median": round(statistics.median(hot) / statistics.median(cold), 4),
        "ratio_min": round(min(hot) / min(cold), 4),
        "saved_median_s": round(statistics.median(cold) - statistics.median(hot), 4),
        "target_ratio": TARGET_RATIO,
        "no_state_survives": isolation,
    }


def render(result: dict[str, object], console: Console) -> None:
    arms = result["arms"]
    if not isinstance(arms, dict):
        raise TypeError("arms must be a dict")
    table = Table(title=f"B2 — warm pool vs cold kernel, light exercise, {result['repeats']} repeats", min_width=70)
    for column in ("arm", "median s", "min s"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for arm, row in arms.items():
        table.add_row(arm, f"{row['median_s']:.3f}", f"{row['min_s']:.3f}")
    console.print(table)
    ok = float(result["ratio_median"]) <= TARGET_RATIO  # type: ignore[arg-type]
    isolation = result["no_state_survives"]
    passed = isinstance(isolation, dict) and isolation.get("passed")
    console.print(
        f"warm / cold: {result['ratio_median']}× median, {result['ratio_min']}× min "
        f"(target ≤ {TARGET_RATIO}×: {'yes' if ok else 'NO'}); {result['saved_median_s']} s saved per submission; "
        f"no state survives between submissions: {'yes' if passed else 'NO'}"
    )


def main(argv: list[str]) -> int:
    return run_and_record(argv, bench_id="b2", doc=__doc__ or "", results=RESULTS, run=run, render=render)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
