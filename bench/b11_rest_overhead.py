"""B11 (L4): REST overhead over a direct call of the ticket router, real HTTP over loopback to uvicorn.

Lesson 13 serves ``mlcourse.router`` behind FastAPI. What does the HTTP layer add to one
prediction? One ticket per request, as an interactive client sends them.

Arms, interleaved (the order alternates every round), after one untimed warm-up round:

- ``direct`` ``predict_rows(router, [text])`` (the predictor core, in-process);
- ``rest``   ``POST /predict`` with ``{"text": ...}`` over a keep-alive ``httpx.Client`` to a real
             uvicorn server on 127.0.0.1 (``mlcourse.serving.serve_in_thread``: a thread of this
             process), through the lesson's contract: a pydantic request model with a validator,
             a length limit, a response model;
- ``rest_async`` the same over HTTP, the handler an ``async def`` (no thread-pool hop); reported, not
             part of the target;
- ``testclient`` the same request through FastAPI's in-process ``TestClient`` (no socket): how the
             grader calls a learner's app; reported, not part of the target.

A round sends each of 100 distinct generated tickets through every arm, the arms' order
alternating from call to call (so a slow moment of a shared machine hits all arms alike); a
round's figure per arm is its median time per call. Reported: the median and minimum over rounds, the overhead
``rest - direct`` in ms, and that overhead as a fraction of the direct call. Target (L4,
docs/BENCHMARKS.md): overhead ≤ 5 ms and ≤ 25% of the model's time. The server and the client
share this process's interpreter, so the ``rest`` arm pays for both ends of the connection, as a
loopback client on the same host does.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, field_validator
from rich.console import Console
from rich.table import Table

from bench import run_and_record
from bench.b1_grading import machine
from mlcourse.serving import predict_rows

RESULTS = Path(__file__).resolve().parent / "results" / "b11.json"
TARGET_MS = 5.0
TARGET_FRACTION = 0.25
CALLS_PER_ROUND = 100
MAX_CHARS = 2000


class PredictRequest(BaseModel):
    text: str

    @field_validator("text")
    @classmethod
    def not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is empty or only whitespace")
        return text


class Prediction(BaseModel):
    team: str
    confidence: float
    model: str


def make_app(router: Any, *, run_async: bool = False) -> FastAPI:
    """The lesson's REST contract, reduced to ``/predict`` (validated request, 413, response model).

    ``run_async``: an ``async def`` handler, run on the event loop, instead of the lesson's plain
    ``def``, which FastAPI runs in its thread pool (one thread hop per request).
    """
    app = FastAPI()
    digest = router.digest()

    def answer(request: PredictRequest) -> Prediction:
        if len(request.text) > MAX_CHARS:
            raise HTTPException(413, f"at most {MAX_CHARS} characters")
        [row] = predict_rows(router, [request.text])
        return Prediction(**row, model=digest)

    if run_async:

        @app.post("/predict", response_model=Prediction)
        async def predict_async(request: PredictRequest) -> Prediction:
            return answer(request)

    else:

        @app.post("/predict", response_model=Prediction)
        def predict(request: PredictRequest) -> Prediction:
            return answer(request)

    return app


def _round(arms: dict[str, Callable[[str], object]], texts: list[str], flip: bool) -> dict[str, list[float]]:
    """One round: every text through every arm, the arms' order alternating from call to call."""
    order = list(arms)
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    for i, text in enumerate(texts):
        for name in order if (i % 2 == 0) != flip else order[::-1]:
            started = time.perf_counter()
            arms[name](text)
            seconds[name].append(time.perf_counter() - started)
    return seconds


def run(repeats: int, console: Console) -> dict[str, object]:
    import httpx
    from fastapi.testclient import TestClient

    from mlcourse.measure import median_ci
    from mlcourse.router import train_router
    from mlcourse.serving import serve_in_thread
    from mlcourse.tickets import make_tickets

    if repeats < 5:
        raise SystemExit("use --repeats 5 or more")
    router = train_router(n_tickets=2000, seed=0)
    texts = make_tickets(CALLS_PER_ROUND, seed=11)["text"].tolist()
    app = make_app(router)
    in_process = TestClient(app)
    times: dict[str, list[float]] = {"direct": [], "rest": [], "rest_async": [], "testclient": []}
    with (
        serve_in_thread(app) as base,
        serve_in_thread(make_app(router, run_async=True)) as async_base,
        httpx.Client(base_url=base) as http,
        httpx.Client(base_url=async_base) as http_async,
    ):
        expected = predict_rows(router, texts)
        answers = [http.post("/predict", json={"text": t}).json() for t in texts]
        if [{"team": a["team"], "confidence": a["confidence"]} for a in answers] != expected:
            raise RuntimeError("the REST arm does not answer what the core answers: the benchmark compares nothing")

        def post(client: Any) -> Callable[[str], object]:
            def call(text: str) -> object:
                answer = client.post("/predict", json={"text": text})
                answer.raise_for_status()
                return answer

            return call

        arms: dict[str, Callable[[str], object]] = {
            "direct": lambda text: predict_rows(router, [text]),
            "rest": post(http),
            "rest_async": post(http_async),
            "testclient": post(in_process),
        }
        every_call: dict[str, list[float]] = {name: [] for name in arms}
        for round_number in range(repeats + 1):  # round 0 is the warm-up
            seconds = _round(arms, texts, flip=round_number % 2 == 1)
            label = "warm-up" if round_number == 0 else f"round {round_number}/{repeats}"
            medians = {name: statistics.median(values) for name, values in seconds.items()}
            console.log(f"{label:>12}  " + "  ".join(f"{n} {v * 1000:.3f} ms" for n, v in medians.items()))
            if round_number:
                for name, value in medians.items():
                    times[name].append(value)
                    every_call[name] += seconds[name]
    direct, rest = statistics.median(times["direct"]), statistics.median(times["rest"])
    overhead_ms = (rest - direct) * 1000
    versions: dict[str, str | None] = {}
    for dist in ("fastapi", "starlette", "pydantic", "uvicorn", "httpx", "scikit-learn"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "benchmark": "L4",
        "id": "b11",
        "what": "POST /predict over loopback HTTP to uvicorn (keep-alive httpx client) vs predict_rows(router, [text])",
        "server": "uvicorn in a thread of the benchmark process, 127.0.0.1, one worker",
        "calls_per_round": CALLS_PER_ROUND,
        "repeats": repeats,
        "warmup_rounds": 1,
        "interleaved": "every ticket through every arm, the order alternating per call",
        "date": datetime.date.today().isoformat(),
        "machine": {**machine(), "serving_versions": versions},
        "arms_ms_per_call": {
            name: {
                "rounds": [round(v * 1000, 4) for v in values],
                "median": round(statistics.median(values) * 1000, 4),
                "min": round(min(values) * 1000, 4),
            }
            for name, values in times.items()
        },
        "pooled_calls_ms": {
            name: {
                "n": len(values),
                "median": round(statistics.median(values) * 1000, 4),
                "ci95": [round(v * 1000, 4) for v in median_ci(values)],
            }
            for name, values in every_call.items()
        },
        "overhead_ms_median": round(overhead_ms, 4),
        "overhead_async_ms_median": round((statistics.median(times["rest_async"]) - direct) * 1000, 4),
        "overhead_ms_min": round((min(times["rest"]) - min(times["direct"])) * 1000, 4),
        "overhead_fraction_of_model": round(overhead_ms / (direct * 1000), 4),
        "ratio_median": round(rest / direct, 4),
        "target": {"overhead_ms": TARGET_MS, "fraction_of_model": TARGET_FRACTION},
        "met": {
            "overhead_ms": overhead_ms <= TARGET_MS,
            "fraction_of_model": overhead_ms / (direct * 1000) <= TARGET_FRACTION,
        },
    }


def render(result: dict[str, object], console: Console) -> None:
    arms = result["arms_ms_per_call"]
    if not isinstance(arms, dict):
        raise TypeError("arms_ms_per_call must be a dict")
    title = f"B11 (L4) — REST overhead, {result['calls_per_round']} calls × {result['repeats']} rounds"
    table = Table(title=title, min_width=70)
    for column in ("arm", "median ms/call", "min ms/call"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for name, row in arms.items():
        table.add_row(name, f"{row['median']:.3f}", f"{row['min']:.3f}")
    console.print(table)
    met = result["met"]
    if not isinstance(met, dict):
        raise TypeError("met must be a dict")
    console.print(
        f"REST overhead: {result['overhead_ms_median']} ms median ({result['overhead_ms_min']} ms min), "
        f"{float(result['overhead_fraction_of_model']):.0%} of the model's time "  # type: ignore[arg-type]
        f"(targets ≤ {TARGET_MS} ms: {'yes' if met['overhead_ms'] else 'NO'}; "
        f"≤ {TARGET_FRACTION:.0%}: {'yes' if met['fraction_of_model'] else 'NO'})"
    )


def main(argv: list[str]) -> int:
    return run_and_record(argv, bench_id="b11", doc=__doc__ or "", results=RESULTS, run=run, render=render)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
