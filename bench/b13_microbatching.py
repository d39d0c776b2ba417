"""B13 (L2): a micro-batched endpoint vs batch size 1, 16 concurrent clients over loopback TCP, short tickets.

Lesson 14 serves the int8 MiniLM teacher (mean-pooled embeddings, a logistic-regression head)
behind a line-per-request TCP server on 127.0.0.1 (``mlcourse.inference.load_test``): 16 clients,
each sending its next request only after its previous answer (closed loop, a fixed number of
requests, so the test is bounded). The server has one model worker thread (one torch thread).

Arms, interleaved (the order alternates every round), after one untimed warm-up round:

- ``batch-1``: every request is one model call (``max_batch=1``);
- ``micro-batched``: requests wait at most ``MAX_WAIT_MS`` to be grouped, ``MAX_BATCH`` at most.

A round is one load test of ``--requests`` short tickets (under 120 characters) per arm; its
figure is the wall time of the test. Reported: throughput (requests/s) per arm with p50 and p95
latency (medians over rounds), and the throughput ratio of medians. Every answer is compared with
a call of the model on that ticket alone: int8 dynamic quantisation scales activations per batch,
so a few answers may change with the batch-mates (the share that agrees is recorded), but a
batcher that mixes answers up (about 1 in 5 agreeing) fails instead of looking fast.
Target (L2, docs/BENCHMARKS.md): ≥ 1.7× throughput.
"""

from __future__ import annotations

import asyncio
import datetime
import statistics
import sys
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import run_and_record
from bench.b1_grading import interleaved, machine, stats
from bench.b12_quantisation import fp32_and_int8

RESULTS = Path(__file__).resolve().parent / "results" / "b13.json"
CONCURRENCY = 16
MAX_BATCH = 16
MAX_WAIT_MS = 5.0
N_REQUESTS = 256
TARGET = 1.7


class MicroBatcher:
    """``await infer(text)``: requests grouped (≤ max_batch, waiting ≤ max_wait_ms) into one model call."""

    def __init__(
        self, predict: Callable[[list[str]], list[str]], max_batch: int, max_wait_ms: float, worker: Executor
    ) -> None:
        self.predict, self.max_batch, self.max_wait_s, self.worker = predict, max_batch, max_wait_ms / 1e3, worker
        self.requests: asyncio.Queue[tuple[str, asyncio.Future[str]]] = asyncio.Queue()
        self.sizes: list[int] = []
        self.task: asyncio.Task[None] | None = None

    async def infer(self, text: str) -> str:
        if self.task is None:
            self.task = asyncio.create_task(self._serve())
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.requests.put_nowait((text, answer))
        return await answer

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.requests.get()]
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch:
                if not self.requests.empty():
                    batch.append(self.requests.get_nowait())
                elif loop.time() < deadline:
                    await asyncio.sleep(min(5e-4, deadline - loop.time()))
                else:
                    break
            self.sizes.append(len(batch))
            try:
                answers = await loop.run_in_executor(self.worker, self.predict, [text for text, _ in batch])
            except Exception as error:  # the batch's callers get the model's error; the server goes on
                for _, future in batch:
                    future.set_exception(error)
                continue
            for (_, future), team in zip(batch, answers, strict=True):
                future.set_result(team)

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()


def run(repeats: int, console: Console) -> dict[str, object]:
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    from mlcourse.inference import LoadResult, embed, load_test, torch_forward
    from mlcourse.tickets import make_tickets

    tokenizer, _, int8_model = fp32_and_int8()
    int8 = torch_forward(int8_model)
    train = make_tickets(400, seed=0)
    head = LogisticRegression(C=4.0, max_iter=2000).fit(embed(tokenizer, int8, train["text"]), train["team"])

    def predict(texts: list[str]) -> list[str]:
        return [str(team) for team in head.predict(embed(tokenizer, int8, texts, batch_size=len(texts)))]

    short = [t for t in make_tickets(2 * N_REQUESTS, seed=1)["text"] if len(t) < 120][:N_REQUESTS]
    truth = [predict([text])[0] for text in short]
    worker = ThreadPoolExecutor(max_workers=1)
    settings = {"batch-1": (1, 0.0), "micro-batched": (MAX_BATCH, MAX_WAIT_MS)}
    loads: dict[str, list[LoadResult]] = {name: [] for name in settings}
    batch_means: dict[str, list[float]] = {name: [] for name in settings}
    agreements: dict[str, list[float]] = {name: [] for name in settings}

    def arm(name: str) -> Callable[[], object]:
        def one_test() -> None:
            batcher = MicroBatcher(predict, *settings[name], worker)
            result = asyncio.run(load_test(batcher.infer, short, n_requests=len(short), concurrency=CONCURRENCY))
            batcher.close()
            # int8 dynamic quantisation scales activations per batch, so a few answers may depend on the
            # batch-mates; a batcher that mixed answers up would agree on about 1 in 5 (five teams)
            agree = sum(a == b for a, b in zip(result.answers, truth, strict=True)) / len(truth)
            if agree < 0.6:
                raise RuntimeError(f"{name}: only {agree:.0%} of the answers match a direct call of the model")
            agreements[name].append(agree)
            loads[name].append(result)
            batch_means[name].append(float(np.mean(batcher.sizes)))

        return one_test

    times = interleaved({name: arm(name) for name in settings}, repeats, console)
    worker.shutdown()
    timed = {name: results[1:] for name, results in loads.items()}  # the first test of each arm is the warm-up
    throughput = {name: [r.throughput for r in results] for name, results in timed.items()}
    ratio_median = statistics.median(throughput["micro-batched"]) / statistics.median(throughput["batch-1"])
    ratio_best = max(throughput["micro-batched"]) / max(throughput["batch-1"])
    summary: dict[str, Any] = {
        name: {
            **stats(times[name]),
            "throughput_rps_median": round(statistics.median(throughput[name]), 2),
            "p50_ms_median": round(1e3 * statistics.median(r.p50_s for r in timed[name]), 2),
            "p95_ms_median": round(1e3 * statistics.median(r.p95_s for r in timed[name]), 2),
            "mean_batch": round(statistics.mean(batch_means[name][1:]), 2),
            "answers_as_one_by_one_min": round(min(agreements[name]), 4),
        }
        for name in settings
    }
    return {
        "benchmark": "B13 (L2)",
        "what": f"{len(short)} short tickets per load test, {CONCURRENCY} closed-loop clients over 127.0.0.1, "
        f"int8 MiniLM + head, one model worker; micro-batched: max_batch={MAX_BATCH}, max_wait_ms={MAX_WAIT_MS}",
        "repeats": repeats,
        "warmup_rounds": 1,
        "interleaved": "alternating order per round",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "torch": torch.__version__,
        "arms": summary,
        "throughput_ratio_median": round(ratio_median, 3),
        "throughput_ratio_best": round(ratio_best, 3),
        "target": TARGET,
        "met": ratio_median >= TARGET,
    }


def render(result: dict[str, object], console: Console) -> None:
    arms = result["arms"]
    if not isinstance(arms, dict):
        raise TypeError("arms must be a dict")
    table = Table(title=f"B13 — micro-batching vs batch 1, {CONCURRENCY} clients, {result['repeats']} rounds")
    for column in ("arm", "median s", "requests/s", "p50 ms", "p95 ms", "mean batch"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for arm, row in arms.items():
        table.add_row(
            arm,
            f"{row['median_s']:.3f}",
            f"{row['throughput_rps_median']:.1f}",
            f"{row['p50_ms_median']:.1f}",
            f"{row['p95_ms_median']:.1f}",
            f"{row['mean_batch']:.1f}",
        )
    console.print(table)
    console.print(
        f"throughput {result['throughput_ratio_median']}x (medians), {result['throughput_ratio_best']}x (best); "
        f"target ≥ {TARGET}x: {'yes' if result['met'] else 'NO'}"
    )


def main(argv: list[str]) -> int:
    return run_and_record(argv, bench_id="b13", doc=__doc__ or "", results=RESULTS, run=run, render=render)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
