"""B1: grading one submission (assemble + nbval + report) vs a bare papermill run of the same notebook.

A lesson-sized exercise (about 20 cells: NumPy and pandas work on 20,000 rows, two exercise
cells, two visible and two hidden checks) is written into a temporary course. The submission
is the solution itself, so both arms execute the same code.

Arms, interleaved (the order alternates every round), after one warm-up round that also
builds the grading bundle:

- ``papermill`` ``papermill.execute_notebook`` of the solution notebook, in process, fresh kernel;
- ``grade``     :func:`grader.grading.engine.grade_notebook` of the submission: parse, assemble, a
                pytest + nbval subprocess with a fresh kernel, compare, score.

Targets (docs/BENCHMARKS.md): grade ≤ 1.5× papermill, and ≤ +1.0 s absolute.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbformat import NotebookNode, v4
from rich.console import Console
from rich.table import Table

from bench import run_and_record
from grader.format import markers
from grader.settings import Settings, load_settings

RESULTS = Path(__file__).resolve().parent / "results" / "b1.json"
EXERCISE = "01-bench"
TARGET_RATIO = 1.5
TARGET_EXTRA_S = 1.0


def machine() -> dict[str, object]:
    """Where the numbers were measured (B1 and B4 record the same fields)."""
    versions: dict[str, str | None] = {}
    for dist in ("pytest", "nbval", "papermill", "nbclient", "jupyter-client", "ipykernel", "numpy", "pandas"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "versions": versions,
    }


def write_course(root: Path, exercise: str, solution: NotebookNode) -> Settings:
    """A minimal course root holding one solution; its settings build into ``root/_build``."""
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\n", encoding="utf-8")
    (root / "_config.yml").write_text(
        "title: bench\nrepository:\n  url: https://github.com/example/bench\n  branch: main\n", encoding="utf-8"
    )
    (root / "solutions").mkdir(parents=True, exist_ok=True)
    nbformat.write(solution, root / "solutions" / f"{exercise}.ipynb")
    return load_settings(root=root, build_dir=root / "_build")


def submission_of(solution: NotebookNode, exercise: str) -> NotebookNode:
    """The solution as a learner would submit it: hidden checks gone, the exercise id stamped."""
    nb = nbformat.reads(nbformat.writes(solution), as_version=4)
    nb.cells = [c for c in nb.cells if markers.TAG_HIDDEN_CHECK not in c.metadata.get("tags", [])]
    nb.metadata[markers.META_GRADER] = {markers.META_EXERCISE: exercise}
    return nb


def _cell(source: str, role: str | None = None, grader: dict[str, object] | None = None) -> NotebookNode:
    cell = v4.new_code_cell(source)
    if role:
        cell.metadata["tags"] = [role]
    if grader:
        cell.metadata[markers.META_GRADER] = grader
    return cell


def lesson_sized_solution() -> NotebookNode:
    """About 20 cells of typical lesson work with two exercises and four checks."""
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    md = v4.new_markdown_cell
    nb.cells = [
        md("# Standardising and ranking\n\nA lesson-sized exercise used to time grading."),
        _cell("import numpy as np\nimport pandas as pd"),
        md("We generate 20,000 rows of synthetic data with a fixed seed."),
        _cell(
            "rng = np.random.default_rng(0)\n"
            "df = pd.DataFrame({\n"
            "    'category': rng.choice(list('abcdefgh'), size=20_000),\n"
            "    'value': rng.normal(10, 3, size=20_000),\n"
            "    'weight': rng.uniform(0, 1, size=20_000),\n"
            "})\ndf.head()"
        ),
        _cell("df.describe().round(3)"),
        md("Per-category summaries."),
        _cell("summary = df.groupby('category').agg(mean=('value', 'mean'), n=('value', 'size'))\nsummary.round(3)"),
        _cell(
            'def standardize(x):\n    """(x - mean) / std, with the population std."""\n'
            "    # BEGIN SOLUTION\n    x = np.asarray(x, dtype=float)\n    return (x - x.mean()) / x.std()\n"
            "    # END SOLUTION",
            markers.TAG_EXERCISE,
            {"id": "1.1"},
        ),
        _cell(
            "# Check 1.1: standardize centres and scales\nz = standardize([1.0, 2.0, 3.0])\n"
            "assert abs(z.mean()) < 1e-12 and abs(z.std() - 1) < 1e-12",
            markers.TAG_CHECK,
            {"id": "1.1", "points": 1},
        ),
        _cell(
            "# Check 1.2: standardize on the data\nprint(np.round(standardize(df['value'].to_numpy())[:5], 6))",
            markers.TAG_HIDDEN_CHECK,
            {"id": "1.2", "points": 2},
        ),
        md("Correlations and rolling means."),
        _cell("df[['value', 'weight']].corr().round(4)"),
        _cell("rolling = df['value'].rolling(500).mean().dropna()\nprint(len(rolling), round(rolling.iloc[-1], 4))"),
        _cell(
            'def top_categories(frame, k):\n    """The k categories with the highest mean value."""\n'
            "    # BEGIN SOLUTION\n    return frame.groupby('category')['value'].mean().nlargest(k)\n"
            "    # END SOLUTION",
            markers.TAG_EXERCISE,
            {"id": "1.2"},
        ),
        _cell(
            "# Check 1.3: top_categories returns k rows\nassert len(top_categories(df, 3)) == 3",
            markers.TAG_CHECK,
            {"id": "1.3", "points": 1},
        ),
        _cell(
            "# Check 1.4: top_categories on the data\nprint(top_categories(df, 3).round(4))",
            markers.TAG_HIDDEN_CHECK,
            {"id": "1.4", "points": 2},
        ),
        md("A least-squares fit of value on weight."),
        _cell(
            "X = np.column_stack([np.ones(len(df)), df['weight']])\n"
            "coef, *_ = np.linalg.lstsq(X, df['value'].to_numpy(), rcond=None)\nprint(np.round(coef, 4))"
        ),
        _cell("pd.Series(coef, index=['intercept', 'slope']).round(4)"),
        md("That is all: the grader compares what the checks print with the reference."),
    ]
    return nb


def interleaved(arms: dict[str, Callable[[], object]], repeats: int, console: Console) -> dict[str, list[float]]:
    """Run every arm once per round (order alternating), round 0 untimed; the seconds per arm."""
    times: dict[str, list[float]] = {name: [] for name in arms}
    order = list(arms)
    for round_number in range(repeats + 1):  # round 0 is the warm-up
        for name in order if round_number % 2 == 0 else order[::-1]:
            started = time.perf_counter()
            arms[name]()
            seconds = time.perf_counter() - started
            if round_number:
                times[name].append(seconds)
            label = "warm-up" if round_number == 0 else f"round {round_number}/{repeats}"
            console.log(f"{label:>12}  {name:<10} {seconds:7.3f} s")
    return times


def stats(values: list[float]) -> dict[str, object]:
    return {
        "seconds": [round(v, 4) for v in values],
        "median_s": round(statistics.median(values), 4),
        "min_s": round(min(values), 4),
    }


def run(repeats: int, console: Console) -> dict[str, object]:
    import papermill

    from grader.grading.engine import grade_notebook

    with tempfile.TemporaryDirectory(prefix="b1-") as tmp:
        root = Path(tmp)
        solution = lesson_sized_solution()
        settings = write_course(root, EXERCISE, solution)
        submission = root / "submission.ipynb"
        nbformat.write(submission_of(solution, EXERCISE), submission)
        solution_path = root / "solutions" / f"{EXERCISE}.ipynb"
        scores: list[float] = []

        def bare() -> None:
            papermill.execute_notebook(
                str(solution_path),
                str(root / "executed.ipynb"),
                kernel_name="python3",
                progress_bar=False,
                log_output=False,
                cwd=tmp,
            )

        def grade() -> None:
            result = grade_notebook(settings, submission)
            if result.status != "graded" or result.score != result.max_score:
                raise RuntimeError(f"the benchmark submission did not score full marks: {result}")
            scores.append(result.score)

        times = interleaved({"papermill": bare, "grade": grade}, repeats, console)
    bare_s, grade_s = times["papermill"], times["grade"]
    return {
        "benchmark": "B1",
        "what": "grade_notebook of a lesson-sized submission vs papermill.execute_notebook of the same notebook",
        "cells": len(solution.cells),
        "repeats": repeats,
        "warmup_rounds": 1,
        "interleaved": "alternating order per round",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "arms": {"papermill": stats(bare_s), "grade": stats(grade_s)},
        "ratio_median": round(statistics.median(grade_s) / statistics.median(bare_s), 4),
        "ratio_min": round(min(grade_s) / min(bare_s), 4),
        "extra_median_s": round(statistics.median(grade_s) - statistics.median(bare_s), 4),
        "extra_min_s": round(min(grade_s) - min(bare_s), 4),
        "target_ratio": TARGET_RATIO,
        "target_extra_s": TARGET_EXTRA_S,
    }


def render(result: dict[str, object], console: Console) -> None:
    arms = result["arms"]
    if not isinstance(arms, dict):
        raise TypeError("arms must be a dict")
    title = f"B1 — grading vs papermill, {result['cells']} cells, {result['repeats']} repeats"
    table = Table(title=title, min_width=70)
    for column in ("arm", "median s", "min s"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for arm, row in arms.items():
        table.add_row(arm, f"{row['median_s']:.3f}", f"{row['min_s']:.3f}")
    console.print(table)
    ratio_ok = float(result["ratio_median"]) <= TARGET_RATIO  # type: ignore[arg-type]
    extra_ok = float(result["extra_median_s"]) <= TARGET_EXTRA_S  # type: ignore[arg-type]
    console.print(
        f"grade / papermill: {result['ratio_median']}× median, {result['ratio_min']}× min "
        f"(target ≤ {TARGET_RATIO}×: {'yes' if ratio_ok else 'NO'}); extra time {result['extra_median_s']} s "
        f"median, {result['extra_min_s']} s min (target ≤ {TARGET_EXTRA_S} s: {'yes' if extra_ok else 'NO'})"
    )


def main(argv: list[str]) -> int:
    return run_and_record(argv, bench_id="b1", doc=__doc__ or "", results=RESULTS, run=run, render=render)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
