"""B5: book rebuild after editing one lesson, and with nothing changed, vs a clean full build.

A synthetic course (``--lessons`` small notebooks, one Markdown chapter each, parts in
``_toc.yml``, the repository's real ``_config.yml``) is built in a temporary folder with
:func:`grader.book.site.build_book` — lessons executed with papermill, then the Jupyter Book site.

Arms, interleaved (the order rotates every round), after one warm-up round:

- ``clean``      a fresh build folder: every lesson executed, every page built;
- ``one-lesson`` one lesson's code cell edited (a different lesson each round), then rebuilt;
- ``no-change``  rebuilt with nothing changed.

Targets (docs/BENCHMARKS.md): one-lesson ≤ 0.25× clean, no-change ≤ 0.10× clean.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbformat import v4
from rich.console import Console
from rich.table import Table

from grader.book import lessons, site
from grader.format import markers
from grader.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "b5.json"
TARGETS = {"one-lesson": 0.25, "no-change": 0.10}
PART_SIZE = 5


def _lesson(index: int, constant: int) -> nbformat.NotebookNode:
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = v4.new_code_cell(f'{markers.PROFILE_PARAMETER} = "{markers.DEFAULT_PROFILE}"')
    params.metadata["tags"] = [markers.TAG_PARAMETERS]
    nb.cells = [
        v4.new_markdown_cell(f"# Lesson {index}\n\nA small lesson about sums, number {index}."),
        params,
        v4.new_markdown_cell("We add up a few numbers; the smoke profile uses fewer."),
        v4.new_code_cell(f"n = 1_000 if profile == 'smoke' else 10_000\ntotal = sum(range(n)) + {constant}\ntotal"),
        v4.new_markdown_cell("And show a small table of squares."),
        v4.new_code_cell("for k in range(5):\n    print(f'{k:>3} {k * k:>4}')"),
    ]
    return nb


def make_course(root: Path, count: int) -> None:
    """A course of ``count`` lessons, each with a chapter page, grouped in parts of five."""
    shutil.copy(REPO / "_config.yml", root / "_config.yml")
    shutil.copytree(REPO / "_static", root / "_static")  # the favicon and badge _config.yml names
    shutil.copy(REPO / "requirements.txt", root / "requirements.txt")
    # a frozen copy of the course package: its source is part of every lesson's cache key, and
    # the repository's copy may change while the benchmark runs
    shutil.copytree(REPO / "mlcourse", root / "mlcourse", ignore=shutil.ignore_patterns("__pycache__"))
    for folder in ("book", "notebooks"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "book" / "intro.md").write_text("# A synthetic course\n\nUsed to time rebuilds.\n", encoding="utf-8")
    toc = ["format: jb-book", "root: book/intro", "parts:"]
    for index in range(count):
        name = f"{index:02d}-lesson"
        if index % PART_SIZE == 0:
            toc += [f'  - caption: "Part {index // PART_SIZE + 1}"', "    chapters:"]
        toc += [f"      - file: book/{name}", "        sections:", f"          - file: notebooks/{name}"]
        chapter = f"({name})=\n# Chapter {index}\n\nThis chapter introduces [its lesson](../notebooks/{name}.ipynb).\n"
        if index:
            chapter += f"\nIt follows {{ref}}`{index - 1:02d}-lesson`.\n"
        (root / "book" / f"{name}.md").write_text(chapter, encoding="utf-8")
        nbformat.write(_lesson(index, 0), root / "notebooks" / f"{name}.ipynb")
    (root / "_toc.yml").write_text("\n".join(toc) + "\n", encoding="utf-8")


def _edit_one_lesson(settings: Settings, count: int, round_number: int) -> None:
    path = settings.notebooks_dir / f"{round_number % count:02d}-lesson.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[3].source = nb.cells[3].source.rsplit("+", 1)[0] + f"+ {round_number + 1}\ntotal"
    nbformat.write(nb, path)


def _manifest(settings: Settings, profile: str) -> dict[str, object]:
    path = settings.executed_dir / profile / lessons.MANIFEST_NAME
    return json.loads(path.read_text(encoding="utf-8"))["lessons"] if path.exists() else {}


def _pages_written(settings: Settings, *, since: float) -> int | None:
    """Pages Sphinx wrote in the build that started at ``since`` (None: Sphinx did not run)."""
    log = settings.build_dir / "logs" / "site.log"
    wall_start = time.time() - (time.perf_counter() - since)
    if not log.exists() or log.stat().st_mtime < wall_start:
        return None
    return sum(1 for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("writing output... ["))


def _machine() -> dict[str, object]:
    versions: dict[str, str | None] = {}
    for dist in ("jupyter-book", "sphinx", "myst-nb", "papermill", "nbclient", "ipykernel"):
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
        "versions": versions,
    }


def run(count: int, repeats: int, profile: str, console: Console) -> dict[str, object]:
    """Time the three arms; the result as a JSON-ready dict."""
    with tempfile.TemporaryDirectory(prefix="b5-") as tmp:
        root = Path(tmp)
        make_course(root, count)
        settings = load_settings(root=root, build_dir=root / "_build")
        work: dict[str, list[dict[str, int | None]]] = {"clean": [], "one-lesson": [], "no-change": []}

        def clean(_: int) -> None:
            shutil.rmtree(settings.build_dir, ignore_errors=True)

        def one_lesson(round_number: int) -> None:
            _edit_one_lesson(settings, count, round_number)

        def no_change(_: int) -> None:
            return None

        arms: dict[str, Callable[[int], None]] = {"clean": clean, "one-lesson": one_lesson, "no-change": no_change}
        times: dict[str, list[float]] = {name: [] for name in arms}
        order = list(arms)
        for round_number in range(repeats + 1):  # round 0 is the warm-up
            rotated = order[round_number % len(order) :] + order[: round_number % len(order)]
            for arm in rotated:
                arms[arm](round_number)
                before = _manifest(settings, profile)
                started = time.perf_counter()
                site.build_book(settings, profile=profile)
                seconds = time.perf_counter() - started
                after = _manifest(settings, profile)
                executed = sum(1 for name, entry in after.items() if before.get(name) != entry)
                pages = _pages_written(settings, since=started)
                if round_number:
                    times[arm].append(seconds)
                    work[arm].append({"lessons_executed": executed, "pages_written": pages})
                label = "warm-up" if round_number == 0 else f"round {round_number}/{repeats}"
                sphinx = "no Sphinx run" if pages is None else f"{pages} page(s) written"
                console.log(f"{label:>12}  {arm:<10} {seconds:7.2f} s  ({executed} lesson(s) executed, {sphinx})")
    clean_median = statistics.median(times["clean"])
    clean_min = min(times["clean"])
    arms_out = {}
    for arm, values in times.items():
        arms_out[arm] = {
            "seconds": [round(v, 3) for v in values],
            "median_s": round(statistics.median(values), 3),
            "min_s": round(min(values), 3),
            "ratio_median": round(statistics.median(values) / clean_median, 4),
            "ratio_min": round(min(values) / clean_min, 4),
            "target_ratio": TARGETS.get(arm),
            "work": work[arm],
        }
    return {
        "benchmark": "B5",
        "what": "book rebuild after editing one lesson / with no change, vs a clean full build (lessons + site)",
        "lessons": count,
        "profile": profile,
        "repeats": repeats,
        "warmup_rounds": 1,
        "interleaved": "rotating order per round",
        "date": datetime.date.today().isoformat(),
        "machine": _machine(),
        "arms": arms_out,
    }


def render(result: dict[str, object], console: Console) -> None:
    arms = result["arms"]
    assert isinstance(arms, dict)
    table = Table(title=f"B5 — {result['lessons']} lessons, profile {result['profile']}, {result['repeats']} repeats")
    for column in ("arm", "median s", "min s", "× clean (median)", "× clean (min)", "target", "met"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for arm, row in arms.items():
        target = row["target_ratio"]
        met = "" if target is None else ("yes" if row["ratio_median"] <= target else "NO")
        table.add_row(
            arm,
            f"{row['median_s']:.2f}",
            f"{row['min_s']:.2f}",
            f"{row['ratio_median']:.3f}",
            f"{row['ratio_min']:.3f}",
            "" if target is None else f"≤ {target:.2f}",
            met,
        )
    console.print(table)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench b5", description=__doc__.splitlines()[0])
    parser.add_argument("--lessons", type=int, default=20, help="lesson notebooks in the synthetic book (≥ 20)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds after the warm-up (≥ 5)")
    parser.add_argument("--profile", choices=markers.PROFILES, default="smoke")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    console = Console(width=110)
    for key in [k for k in os.environ if k.startswith(markers.ENV_PREFIX)]:
        del os.environ[key]  # the benchmark's own settings, whatever the caller's environment says
    result = run(args.lessons, args.repeats, args.profile, console)
    render(result, console)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    console.print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
