"""B7: a burst of 200 submissions against the running service: accepted, graded, lost; status-read latency.

``grader serve`` is started as an instructor would (a subprocess on 127.0.0.1, a fresh SQLite
store, 2 grading worker processes, the real grade function). 20 learners send 10 copies of the
lesson-00 solution each, 16 at a time (the default rate limit, 10 a minute, holds). While the
queue drains, readers poll random accepted submissions' status as the learners' pages do,
recording each request's latency. At the end every accepted submission must be graded with
full marks: anything else counts as lost.

``--grade-seconds S`` swaps in a grade function that only sleeps S seconds, to measure the
service's own machinery (queue, store, API) without the cost of real grading.

Target (docs/BENCHMARKS.md): all graded, 0 lost; p99 of status reads ≤ 100 ms during the burst.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.b1_grading import machine
from bench.b3_workers import EXERCISE, variant
from grader.grading.results import Result
from grader.service import accounts
from grader.service.server import settings_env
from grader.service.store import open_store
from grader.settings import Settings, load_settings

RESULTS = Path(__file__).resolve().parent / "results" / "b7.json"
TARGET_P99_MS = 100.0
ENV_GRADE_SECONDS = "B7_GRADE_SECONDS"


def synthetic_grade(settings: Settings, source: bytes, *, exercise: str | None, name: str) -> Result:
    """A grade function that only waits (``--grade-seconds``): full marks on a 1-point exercise."""
    time.sleep(float(os.environ.get(ENV_GRADE_SECONDS, "0")))
    return Result(
        exercise=exercise, submission=name, status="graded", score=1.0, max_score=1.0, duration_s=0.0, device="none"
    )


def _multipart(exercise: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="exercise"\r\n\r\n{exercise}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="nb.ipynb"\r\n'
            "Content-Type: application/x-ipynb+json\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def _call(url: str, token: str, body: bytes | None = None, content_type: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"}
    if content_type:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run(
    submissions: int, learners: int, workers: int, grade_seconds: float | None, timeout_s: float, console: Console
) -> dict[str, object]:
    settings = load_settings()
    solution = (settings.solutions_dir / f"{EXERCISE}.ipynb").read_bytes()
    with tempfile.TemporaryDirectory(prefix="b7-") as tmp:
        overrides: dict[str, object] = {"data_dir": Path(tmp) / "serve", "port": 0, "service_workers": workers}
        if grade_seconds is not None:
            overrides["grade_function"] = "bench.b7_burst:synthetic_grade"
        settings = load_settings(None, **overrides)
        store = open_store(settings)
        tokens = [accounts.add_user(store, f"learner{i:02d}")[1] for i in range(learners)]
        store.dispose()
        env = {
            **os.environ,
            **settings_env(settings),
            ENV_GRADE_SECONDS: str(grade_seconds or 0),
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]),
        }
        log_path = Path(tmp) / "service.log"
        with log_path.open("w") as log:
            service = subprocess.Popen(
                [sys.executable, "-m", "grader", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            deadline = time.monotonic() + 60
            while "Ctrl-C" not in log_path.read_text():
                if time.monotonic() > deadline or service.poll() is not None:
                    raise RuntimeError(f"the service did not start:\n{log_path.read_text()}")
                time.sleep(0.1)
            text = log_path.read_text()
            base = re.search(r"grader service at (http://\S+?)/ ", text).group(1)  # type: ignore[union-attr]
            instructor = text.split("shown only now):")[1].split()[0]
            console.log(f"service at {base}, {workers} workers; sending {submissions} submissions")
            return _burst(base, tokens, instructor, solution, submissions, timeout_s, console)
        finally:
            service.terminate()
            service.wait(60)


def _burst(
    base: str, tokens: list[str], instructor: str, solution: bytes, submissions: int, timeout_s: float, console: Console
) -> dict[str, object]:
    owners: dict[str, str] = {}
    codes: list[int] = []
    accept_ms: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()
    reads_ms: list[float] = []
    read_errors: list[int] = []

    def send(index: int) -> None:
        token = tokens[index % len(tokens)]
        body, content_type = _multipart(EXERCISE, variant(solution))
        started = time.perf_counter()
        status, answer = _call(f"{base}/api/submissions", token, body, content_type)
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            codes.append(status)
            accept_ms.append(elapsed)
            if status == 202:
                owners[answer["id"]] = token

    def read() -> None:
        rng = random.Random()
        while not stop.is_set():
            with lock:
                known = list(owners.items())
            if known:
                sid, token = rng.choice(known)
                started = time.perf_counter()
                status, _ = _call(f"{base}/api/submissions/{sid}", token)
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if status == 200:
                        reads_ms.append(elapsed)
                    else:
                        read_errors.append(status)
            stop.wait(0.05)

    readers = [threading.Thread(target=read, daemon=True) for _ in range(2)]
    for reader in readers:
        reader.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(send, range(submissions)))
    burst_s = time.perf_counter() - started
    console.log(f"burst sent in {burst_s:.2f} s: {codes.count(202)} accepted")
    deadline = time.monotonic() + timeout_s
    while True:
        _, counts = _call(f"{base}/api/queue", instructor)
        pending = counts["counts"]["queued"] + counts["counts"]["running"]
        if pending == 0 or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    drained_s = time.perf_counter() - started
    stop.set()
    for reader in readers:
        reader.join()
    final: dict[str, int] = {}
    full_marks = 0
    for sid in owners:
        status, view = _call(f"{base}/api/submissions/{sid}", instructor)
        key = view.get("status", f"http-{status}")
        final[key] = final.get(key, 0) + 1
        full_marks += key == "graded" and view.get("score") == view.get("max_score")
    accepted = len(owners)
    return {
        "benchmark": "B7",
        "what": f"{submissions} submissions from {len(tokens)} learners, 16 concurrent senders, against "
        "`grader serve` on 127.0.0.1 (SQLite store)",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "sent": submissions,
        "accepted": accepted,
        "refused": {str(code): codes.count(code) for code in sorted(set(codes)) if code != 202},
        "final_statuses": final,
        "graded_full_marks": full_marks,
        "lost": accepted - full_marks,
        "burst_send_s": round(burst_s, 3),
        "drain_s": round(drained_s, 3),
        "graded_per_s": round(full_marks / drained_s, 3) if drained_s else None,
        "accept_ms": {"p50": round(statistics.median(accept_ms), 2), "p99": round(_percentile(accept_ms, 0.99), 2)},
        "status_reads": {
            "count": len(reads_ms),
            "errors": len(read_errors),
            "p50_ms": round(statistics.median(reads_ms), 2) if reads_ms else None,
            "p95_ms": round(_percentile(reads_ms, 0.95), 2) if reads_ms else None,
            "p99_ms": round(_percentile(reads_ms, 0.99), 2) if reads_ms else None,
            "max_ms": round(max(reads_ms), 2) if reads_ms else None,
        },
        "target_p99_ms": TARGET_P99_MS,
    }


def render(result: dict[str, object], console: Console) -> None:
    table = Table(title=f"B7 · {result['what']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    reads: dict[str, object] = result["status_reads"]  # type: ignore[assignment]
    accept: dict[str, object] = result["accept_ms"]  # type: ignore[assignment]
    rows = [
        ("sent / accepted", f"{result['sent']} / {result['accepted']}"),
        ("refused (by HTTP status)", json.dumps(result["refused"])),
        ("final statuses", json.dumps(result["final_statuses"])),
        ("graded with full marks / lost", f"{result['graded_full_marks']} / {result['lost']}"),
        ("burst sent in / queue drained in", f"{result['burst_send_s']} s / {result['drain_s']} s"),
        ("graded per second", str(result["graded_per_s"])),
        ("accept latency p50 / p99", f"{accept['p50']} ms / {accept['p99']} ms"),
        ("status reads (errors)", f"{reads['count']} ({reads['errors']})"),
        (
            "status read p50 / p95 / p99 / max",
            f"{reads['p50_ms']} / {reads['p95_ms']} / {reads['p99_ms']} / {reads['max_ms']} ms",
        ),
        ("target", f"0 lost; p99 ≤ {result['target_p99_ms']} ms"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench b7", description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--learners", type=int, default=20, help="10 submissions each stays within the rate limit")
    parser.add_argument("--workers", type=int, default=2, help="grading worker processes (default 2)")
    parser.add_argument(
        "--grade-seconds",
        type=float,
        default=None,
        help="replace real grading with a sleep of this many seconds (service machinery only)",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the queue to drain")
    args, _ = parser.parse_known_args(argv)
    console = Console(stderr=True)
    result = run(args.submissions, args.learners, args.workers, args.grade_seconds, args.timeout, console)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    name = RESULTS if args.grade_seconds is None else RESULTS.with_name("b7-synthetic.json")
    name.write_text(json.dumps(result, indent=2) + "\n")
    render(result, Console())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
