"""B9: hostile uploads within the size limit: how fast each is refused, and /api/health while ten arrive at once.

``grader serve`` is started as an instructor would (a subprocess on 127.0.0.1, a fresh SQLite store, no
grading workers: only the web side is measured). The uploads are the worst notebooks under the 5 MB
limit that the issue and its neighbours suggest:

- ``issue``: the issue's upload, as many empty cells as fit under 5 MB plus one code cell with an invalid
  output (the old path parsed and validated it whole: tens of seconds of CPU in the web process);
- ``cells-at-limit``: exactly ``upload_max_cells`` cells with ``upload_max_outputs`` outputs in all, the
  last output invalid (passes every count; the schema's bisection has the most to do);
- ``top-level``: the same within the limits, valid cells but invalid notebook metadata;
- ``containers``: 5 MB of empty JSON arrays in the metadata;
- ``deep``: JSON nested 10,000 levels;
- ``one-cell``: one cell holding 4.9 MB.

Each is sent alone ``--repeats`` times (median and max of the time to its answer). Then a separate
process polls ``/api/health`` every 20 ms through ``--rounds`` rounds of 3 s quiet, ten ``issue`` uploads at
once (ten learners), and a control: the same ten uploads naming an unknown exercise, refused before any
check (what receiving ten 5 MB bodies costs the web process by itself); the p50/p95/p99/max of the health
answers started in each arm are reported.
Last, for comparison, the old path (``grader.format.notebooks.parse_notebook``, which the service ran in
its request threads before issue 16) times the ``issue`` and ``cells-at-limit`` uploads in a subprocess.

Targets (docs/BENCHMARKS.md): every upload refused in < 1 s; health p99 < 50 ms while ten arrive.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.b1_grading import machine
from bench.b3_workers import EXERCISE
from bench.b7_burst import _multipart, _percentile
from grader.service import accounts
from grader.service.server import settings_env
from grader.service.store import open_store
from grader.settings import Settings, load_settings

RESULTS = Path(__file__).resolve().parent / "results" / "b9.json"
TARGET_REFUSAL_S = 1.0
TARGET_HEALTH_P99_MS = 50.0
LIMIT_BYTES = 5_000_000


def _document(cells: list[Any], metadata: Any = None) -> bytes:
    return json.dumps(
        {"cells": cells, "metadata": metadata or {}, "nbformat": 4, "nbformat_minor": 5}, separators=(",", ":")
    ).encode()


def _code(i: int, outputs: list[Any]) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "id": f"c{i}",
        "metadata": {},
        "source": "",
        "outputs": outputs,
        "execution_count": None,
    }


def hostile(settings: Settings) -> dict[str, bytes]:
    """The hostile uploads, each under ``LIMIT_BYTES``."""
    bad = {"output_type": "bogus"}
    raw = '{"cell_type":"raw","metadata":{},"source":""},'
    tail = _document([_code(0, [bad])])
    count = (LIMIT_BYTES - len(tail) - 100) // len(raw)
    issue = tail.replace(b'"cells":[', b'"cells":[' + (raw * count).encode(), 1)
    cells, outputs = settings.upload_max_cells, settings.upload_max_outputs
    stream = {"output_type": "stream", "name": "stdout", "text": "x\n"}
    per_cell = [outputs // cells + (1 if i < outputs % cells else 0) for i in range(cells)]
    at_limit = [_code(i, [stream] * n) for i, n in enumerate(per_cell)]
    at_limit[-1]["outputs"][-1] = bad
    valid = [_code(i, [stream] * n) for i, n in enumerate(per_cell)]
    containers = b"[]," * ((LIMIT_BYTES - 200) // 3)
    found = {
        "issue": issue,
        "cells-at-limit": _document(at_limit),
        "top-level": _document(valid, {"kernelspec": 5}),
        "containers": _document([], {"x": "@"}).replace(b'"@"', b"[" + containers[:-1] + b"]"),
        "deep": _document([], {"x": "@"}).replace(b'"@"', b"[" * 10_000 + b"]" * 10_000),
        "one-cell": _document([{**_code(0, []), "source": "#" * 4_900_000}]),
    }
    assert all(len(data) < LIMIT_BYTES for data in found.values()), {k: len(v) for k, v in found.items()}
    return found


def _post(base: str, token: str, data: bytes, exercise: str = EXERCISE) -> tuple[int, str, float]:
    body, content_type = _multipart(exercise, data)
    request = urllib.request.Request(
        f"{base}/api/submissions",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
        method="POST",
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            status, answer = response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, json.loads(exc.read() or b"{}")
    code = answer.get("error", {}).get("code", answer.get("status", ""))
    return status, code, time.perf_counter() - started


def poll(base: str, seconds: float) -> list[tuple[float, float]]:
    """``(started, latency_s)`` of /api/health every 20 ms, until standard input closes or ``seconds`` pass (run
    in its own process; it prints ``ready`` on stderr once it polls)."""
    found: list[tuple[float, float]] = []
    stop = threading.Event()

    def wait_for_stdin() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_stdin, daemon=True).start()
    end = time.time() + seconds
    while not stop.is_set() and time.time() < end:
        started = time.time()
        with urllib.request.urlopen(f"{base}/api/health", timeout=60) as response:
            response.read()
        found.append((started, time.time() - started))
        if len(found) == 1:
            print("ready", file=sys.stderr, flush=True)
        stop.wait(max(0.0, 0.02 - (time.time() - started)))
    return found


def _stats(latencies_s: list[float]) -> dict[str, float | int | None]:
    ms = [x * 1000 for x in latencies_s]
    if not ms:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "count": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(_percentile(ms, 0.95), 2),
        "p99_ms": round(_percentile(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
    }


def _old_path(name: str, data: bytes, timeout_s: float) -> dict[str, Any]:
    """The pre-issue-16 path, ``parse_notebook`` on the bytes, timed in a subprocess (its CPU seconds too)."""
    with tempfile.NamedTemporaryFile(suffix=".ipynb", delete=False) as file:
        file.write(data)
    code = (
        "import sys, time, resource, logging, warnings; warnings.simplefilter('ignore'); logging.disable(50)\n"
        "from grader.format.notebooks import parse_notebook\n"
        "data = open(sys.argv[1], 'rb').read(); t = time.perf_counter()\n"
        "try: parse_notebook(data, name='x', max_bytes=5_000_000); verdict = 'accepted'\n"
        "except Exception as e: verdict = type(e).__name__\n"
        "cpu = resource.getrusage(resource.RUSAGE_SELF); "
        "print(verdict, time.perf_counter() - t, cpu.ru_utime + cpu.ru_stime)\n"
    )
    try:
        run = subprocess.run(
            [sys.executable, "-c", code, file.name], capture_output=True, text=True, timeout=timeout_s, check=True
        )
        verdict, wall, cpu = run.stdout.split()
        return {"upload": name, "verdict": verdict, "wall_s": round(float(wall), 2), "cpu_s": round(float(cpu), 2)}
    except subprocess.TimeoutExpired:
        return {"upload": name, "verdict": f"still parsing after {timeout_s:g} s", "wall_s": None, "cpu_s": None}
    finally:
        os.unlink(file.name)


def run(repeats: int, rounds: int, old_timeout_s: float, console: Console) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="b9-") as tmp:
        settings = load_settings(data_dir=Path(tmp) / "serve", port=0, service_workers=0)
        uploads = hostile(settings)
        store = open_store(settings)
        tokens = [accounts.add_user(store, f"learner{i:02d}")[1] for i in range(20)]
        store.dispose()
        log_path = Path(tmp) / "service.log"
        with log_path.open("w") as log:
            service = subprocess.Popen(
                [sys.executable, "-m", "grader", "serve", "--workers", "0"],
                env={**os.environ, **settings_env(settings)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 60
            while "Ctrl-C" not in log_path.read_text():
                if time.monotonic() > deadline or service.poll() is not None:
                    raise RuntimeError(f"the service did not start:\n{log_path.read_text()}")
                time.sleep(0.1)
            base = re.search(r"grader service at (http://\S+?)/ ", log_path.read_text()).group(1)  # type: ignore[union-attr]
            console.log(f"service at {base}; warming up its upload checker")
            time.sleep(2.0)
            refusals = _refusals(base, tokens, uploads, repeats, console)
            health = _under_abuse(base, tokens, uploads["issue"], rounds, console)
        finally:
            service.terminate()
            service.wait(60)
    console.log("timing the old path (parse_notebook, as the request threads ran it) on two uploads")
    old = [_old_path(name, uploads[name], old_timeout_s) for name in ("cells-at-limit", "issue")]
    worst = max(r["max_s"] for r in refusals)
    return {
        "benchmark": "B9",
        "what": "hostile uploads within the 5 MB limit against `grader serve` on 127.0.0.1 (SQLite, no workers)",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "limits": {
            "max_upload_mb": settings.max_upload_mb,
            "upload_max_cells": settings.upload_max_cells,
            "upload_max_outputs": settings.upload_max_outputs,
            "upload_max_cell_mb": settings.upload_max_cell_mb,
            "upload_check_workers": settings.upload_check_workers,
        },
        "refusals": refusals,
        "worst_refusal_s": worst,
        "health": health,
        "old_path": old,
        "target_refusal_s": TARGET_REFUSAL_S,
        "target_health_p99_ms": TARGET_HEALTH_P99_MS,
        "met": worst < TARGET_REFUSAL_S and (health["abuse"]["p99_ms"] or 0) < TARGET_HEALTH_P99_MS,
    }


def _refusals(
    base: str, tokens: list[str], uploads: dict[str, bytes], repeats: int, console: Console
) -> list[dict[str, Any]]:
    _post(base, tokens[0], b"warm-up: not a notebook")
    found = []
    for index, (name, data) in enumerate(uploads.items()):
        answers = [_post(base, tokens[(index + r) % 10], data) for r in range(repeats)]
        seconds = [s for _, _, s in answers]
        found.append(
            {
                "upload": name,
                "bytes": len(data),
                "answer": f"{answers[0][0]} {answers[0][1]}",
                "median_s": round(statistics.median(seconds), 3),
                "max_s": round(max(seconds), 3),
            }
        )
        console.log(f"{name}: {found[-1]['answer']} in {found[-1]['median_s']} s (max {found[-1]['max_s']} s)")
    return found


def _under_abuse(base: str, tokens: list[str], data: bytes, rounds: int, console: Console) -> dict[str, Any]:
    """Health polled throughout; ``rounds`` times: 3 s quiet, ten ``issue`` uploads at once, then the control:
    the same ten uploads for an unknown exercise (refused with 422 before any check: what receiving ten
    5 MB bodies costs the web process by itself). The arms are interleaved."""
    poller = subprocess.Popen(
        [sys.executable, "-m", "bench.b9_hostile_uploads", "--poll", base, "--seconds", "600"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert poller.stderr is not None and poller.stderr.readline().strip() == "ready"
    windows: dict[str, list[tuple[float, float]]] = {"quiet": [], "abuse": [], "control": []}
    answers: dict[str, list[tuple[int, str, float]]] = {"abuse": [], "control": []}
    lock = threading.Lock()

    def burst(arm: str, senders: list[str], exercise: str) -> None:
        def send(token: str) -> None:
            answer = _post(base, token, data, exercise)
            with lock:
                answers[arm].append(answer)

        started = time.time()
        with ThreadPoolExecutor(max_workers=len(senders)) as pool:
            list(pool.map(send, senders))
        windows[arm].append((started, time.time()))
        time.sleep(1.0)

    for _ in range(rounds):
        windows["quiet"].append((time.time(), time.time() + 3.0))
        time.sleep(3.0)
        burst("abuse", tokens[:10], EXERCISE)
        burst("control", tokens[10:20], "no-such-exercise")
        console.log(
            f"ten uploads answered in {windows['abuse'][-1][1] - windows['abuse'][-1][0]:.2f} s "
            f"(control: {windows['control'][-1][1] - windows['control'][-1][0]:.2f} s)"
        )
    out, _ = poller.communicate(timeout=120)  # closing its stdin stops it
    samples = json.loads(out) if out.strip() else []

    def within(spans: list[tuple[float, float]]) -> list[float]:
        return [latency for begun, latency in samples if any(a <= begun <= b for a, b in spans)]

    return {
        "rounds": rounds,
        "uploads": len(answers["abuse"]),
        "answers": sorted({f"{status} {code}" for status, code, _ in answers["abuse"]}),
        "control_answers": sorted({f"{status} {code}" for status, code, _ in answers["control"]}),
        "ten_answered_s": [round(b - a, 3) for a, b in windows["abuse"]],
        "slowest_upload_s": round(max(s for _, _, s in answers["abuse"]), 3),
        **{arm: _stats(within(spans)) for arm, spans in windows.items()},
    }


def render(result: dict[str, Any], console: Console) -> None:
    table = Table(title=f"B9 · {result['what']}")
    for column in ("upload", "bytes", "answer", "median s", "max s"):
        table.add_column(column, justify="right" if column != "upload" else "left")
    for r in result["refusals"]:
        table.add_row(r["upload"], f"{r['bytes']:,}", r["answer"], str(r["median_s"]), str(r["max_s"]))
    console.print(table)
    health = result["health"]
    lines = Table(title="/api/health, polled every 20 ms from another process")
    for column in ("phase", "requests", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        lines.add_column(column, justify="right" if column != "phase" else "left")
    for phase in ("quiet", "abuse", "control"):
        s = health[phase]
        lines.add_row(phase, str(s["count"]), str(s["p50_ms"]), str(s["p95_ms"]), str(s["p99_ms"]), str(s["max_ms"]))
    console.print(lines)
    console.print(
        f"ten 'issue' uploads at once, {health['rounds']} rounds: {health['answers']}, all ten answered in "
        f"{health['ten_answered_s']} s (slowest single upload {health['slowest_upload_s']} s)"
    )
    for old in result["old_path"]:
        console.print(f"old path (parse_notebook) on '{old['upload']}': {old['verdict']}, {old['wall_s']} s wall")
    console.print(
        f"targets: refused in < {result['target_refusal_s']} s (worst {result['worst_refusal_s']} s); "
        f"health p99 < {result['target_health_p99_ms']} ms (under abuse {health['abuse']['p99_ms']} ms): "
        f"{'met' if result['met'] else 'NOT met'}"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench b9", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="times each upload is sent alone (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="quiet/abuse rounds for /api/health (default 3)")
    parser.add_argument("--old-timeout", type=float, default=300, help="seconds the old path may parse one upload")
    parser.add_argument("--poll", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=30, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.poll:  # the health poller's own process
        print(json.dumps(poll(args.poll, args.seconds)))
        return 0
    console = Console()
    result = run(args.repeats, args.rounds, args.old_timeout, console)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    render(result, console)
    console.print(f"written to {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
