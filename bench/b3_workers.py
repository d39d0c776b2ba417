"""B3: graded submissions per second with 2 grading workers vs 1 (embedded queue, real grading).

Each round and arm: a fresh SQLite store, ``N`` ``grader worker`` processes started and warmed
up (each grades one submission first: imports, grading bundle), then ``--jobs`` copies of the
lesson-00 solution, each from another learner, are queued at once and the clock runs until the
last is graded. Arms are interleaved (1, 2, 2, 1, …) with a warm-up round; every result must be
full marks.

Target (docs/BENCHMARKS.md): ≥ 1.7× the throughput of one worker. On a 2-core machine one
grading already keeps more than one core partly busy (pytest + the kernel), which bounds this.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.b1_grading import interleaved, machine, stats
from grader.service import accounts, queue
from grader.service.server import settings_env
from grader.service.store import Store, open_store
from grader.settings import Settings, load_settings

RESULTS = Path(__file__).resolve().parent / "results" / "b3.json"
EXERCISE = "00-learning-ml-engineering"
TARGET_RATIO = 1.7


def variant(solution: bytes) -> bytes:
    """The solution with a unique metadata field, so every copy is a distinct submission."""
    nb = json.loads(solution)
    nb.setdefault("metadata", {})["bench_nonce"] = uuid.uuid4().hex
    return json.dumps(nb).encode("utf-8")


def wait_graded(store: Store, ids: list[str], timeout_s: float) -> None:
    """Until every id is final; raise if one is not graded with full marks."""
    import sqlalchemy as sa

    from grader.service.store import submissions

    deadline = time.monotonic() + timeout_s
    while True:
        with store.read() as conn:
            rows = conn.execute(
                sa.select(
                    submissions.c.id,
                    submissions.c.status,
                    submissions.c.score,
                    submissions.c.max_score,
                    submissions.c.message,
                ).where(submissions.c.id.in_(ids))
            ).all()
        if all(row.status in ("graded", "invalid", "error") for row in rows) and len(rows) == len(ids):
            bad = [row for row in rows if row.status != "graded" or row.score != row.max_score]
            if bad:
                raise RuntimeError(
                    f"{len(bad)} submissions not graded with full marks, e.g. {bad[0].status}: {bad[0].message}"
                )
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"submissions not graded within {timeout_s} s")
        time.sleep(0.05)


class Pool:
    """``count`` real ``grader worker`` processes on a fresh store, warmed up."""

    def __init__(self, root: Path, count: int, solution: bytes) -> None:
        self.settings: Settings = load_settings(data_dir=root / uuid.uuid4().hex, worker_poll_s=0.05)
        self.store = open_store(self.settings)
        self.learners: list[accounts.User] = []
        env = {**os.environ, **settings_env(self.settings)}
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "grader", "worker"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(count)
        ]
        self.solution = solution
        self.run(count, timeout_s=600)  # warm-up: one grading per worker

    def learner(self, index: int) -> accounts.User:
        """The ``index``-th learner: every copy comes from another learner, as in a class (one learner's
        jobs are graded one at a time, ``max_running_per_learner``)."""
        while len(self.learners) <= index:
            self.learners.append(accounts.add_user(self.store, f"bench{len(self.learners)}")[0])
        return self.learners[index]

    def run(self, jobs: int, timeout_s: float = 1200) -> None:
        ids = [
            queue.enqueue(
                self.store,
                user_id=self.learner(i).id,
                exercise=EXERCISE,
                filename=f"{i}.ipynb",
                notebook=variant(self.solution),
            ).id
            for i in range(jobs)
        ]
        wait_graded(self.store, ids, timeout_s)

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(30)
        self.store.dispose()


def run(jobs: int, repeats: int, console: Console) -> dict[str, object]:
    settings = load_settings()
    solution = (settings.solutions_dir / f"{EXERCISE}.ipynb").read_bytes()
    with tempfile.TemporaryDirectory(prefix="b3-") as tmp:
        root = Path(tmp)

        def arm(count: int) -> Callable[[], object]:
            def timed() -> None:
                pool = Pool(root, count, solution)  # started and warmed up outside the timing below
                try:
                    started = time.perf_counter()
                    pool.run(jobs)
                    timings.setdefault(count, []).append(time.perf_counter() - started)
                finally:
                    pool.close()

            return timed

        timings: dict[int, list[float]] = {}
        interleaved({"1-worker": arm(1), "2-workers": arm(2)}, repeats, console)
    one, two = (timings[1][1:], timings[2][1:])  # drop the warm-up round
    rate_one = [jobs / s for s in one]
    rate_two = [jobs / s for s in two]
    return {
        "benchmark": "B3",
        "what": f"{jobs} lesson-00 solutions queued at once, time until all graded; 1 vs 2 grader worker processes",
        "repeats": repeats,
        "warmup_rounds": 1,
        "interleaved": "alternating order per round; pool start and warm-up untimed",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "arms": {
            "1-worker": {**stats(one), "graded_per_s": [round(r, 4) for r in rate_one]},
            "2-workers": {**stats(two), "graded_per_s": [round(r, 4) for r in rate_two]},
        },
        "throughput_ratio_median": round(statistics.median(rate_two) / statistics.median(rate_one), 3),
        "throughput_ratio_best": round(max(rate_two) / max(rate_one), 3),
        "target_ratio": TARGET_RATIO,
    }


def render(result: dict[str, object], console: Console) -> None:
    table = Table(title=f"B3 · {result['what']}")
    for column in ("arm", "median s", "min s", "graded/s (median)"):
        table.add_column(column, justify="right" if column != "arm" else "left")
    arms: dict[str, dict[str, object]] = result["arms"]  # type: ignore[assignment]
    for name, data in arms.items():
        rates: list[float] = data["graded_per_s"]  # type: ignore[assignment]
        table.add_row(name, f"{data['median_s']:.2f}", f"{data['min_s']:.2f}", f"{statistics.median(rates):.3f}")
    console.print(table)
    console.print(
        f"throughput 2 workers / 1 worker: median {result['throughput_ratio_median']}×, "
        f"best {result['throughput_ratio_best']}× (target ≥ {TARGET_RATIO}×)"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench b3", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4, help="submissions queued per round and arm (default 4)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per arm (default 5)")
    args, _ = parser.parse_known_args(argv)
    console = Console(stderr=True)
    result = run(args.jobs, args.repeats, console)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    render(result, Console())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
