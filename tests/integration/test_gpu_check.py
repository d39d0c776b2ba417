"""``python -m bench gpu`` on this CPU: tiny sizes, lesson 07 only, and the JSON contract it writes."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.book import verified
from grader.format import markers

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LESSON = "07-pytorch-training-loop"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], str, Path]:
    root = tmp_path_factory.mktemp("gpu-check")
    output = root / verified.RECORDED_RUNS_DIR
    env = {k: v for k, v in os.environ.items() if not k.startswith((markers.ENV_PREFIX, "MLCOURSE_"))}
    command = [sys.executable, "-m", "bench", "gpu", "--tiny", "--lessons", "07", "--device", "cpu"]
    command += ["--output-dir", str(output), "--build-dir", str(root / "_build")]
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (path,) = output.glob("gpu-*.json")
    return json.loads(path.read_text(encoding="utf-8")), proc.stdout, path


def test_a_cpu_run_is_named_and_labelled_cpu(run: tuple[dict[str, object], str, Path]) -> None:
    """File name and JSON say cpu; no target is compared."""
    record, _, path = run
    assert path.name == f"gpu-{datetime.date.today().isoformat()}-cpu.json"
    assert record["kind"] == verified.RUN_KIND and record["schema"] == 1
    assert (record["device_type"], record["size"], record["lesson_profile"]) == ("cpu", "tiny", "smoke")
    assert record["targets_apply"] is False and "CPU" in str(record["label"])
    fingerprint = record["fingerprint"]
    assert isinstance(fingerprint, dict)
    assert {"device", "name", "torch", "cuda", "capability", "cpu_count", "python"} <= set(fingerprint)
    assert (fingerprint["device"], fingerprint["cuda"], fingerprint["capability"]) == ("cpu", None, None)


def test_the_lesson_ran_and_its_executed_notebook_was_kept(run: tuple[dict[str, object], str, Path]) -> None:
    record, _, path = run
    lessons = record["lessons"]
    assert isinstance(lessons, dict) and list(lessons) == [LESSON]
    entry = lessons[LESSON]
    assert (entry["status"], entry["profile"], entry["ran_on"]["device"]) == ("ok", "smoke", "cpu")
    nb = nbformat.read(path.parent / entry["notebook"], as_version=4)
    assert any(cell.get("outputs") for cell in nb.cells)


def test_every_benchmark_was_measured_with_repeats_and_a_ci(run: tuple[dict[str, object], str, Path]) -> None:
    """G1–G3 each hold their timed calls, a median inside its CI, and no verdict against a GPU target."""
    record, _, _ = run
    benchmarks = record["benchmarks"]
    assert isinstance(benchmarks, dict) and set(benchmarks) == {"G1", "G2", "G3"}
    timings = [*benchmarks["G1"]["arms"].values(), *benchmarks["G3"]["arms"].values()]
    timings += [model["step"] for model in benchmarks["G2"]["models"].values()]
    for timing in timings:
        assert timing["n"] == len(timing["times_s"]) >= 6
        assert timing["ci95_s"][0] <= timing["median_s"] <= timing["ci95_s"][1]
    for name in ("G1", "G3"):
        assert (benchmarks[name]["met"], benchmarks[name]["target"]) == (None, None)
        assert benchmarks[name]["ratio_median"] > 0
    assert benchmarks["G1"]["compiled"] is False and "compile_skipped" in benchmarks["G1"]
    g2 = benchmarks["G2"]
    assert set(g2["models"]) == {"bert-tiny", "minilm"} and g2["peak_tflops"] is None
    assert g2["peak_source"].startswith("unknown peak")
    for model in g2["models"].values():
        assert model["mfu"] is None and model["met"] is None and model["achieved_tflops"] > 0


def test_one_summary_line_and_the_site_never_takes_it_for_a_gpu_run(
    run: tuple[dict[str, object], str, Path],
) -> None:
    record, stdout, path = run
    assert stdout.strip().splitlines() == [record["summary"]]
    assert "CPU" in stdout and "not comparable with the GPU targets" in stdout
    assert verified.recorded_runs(path.parents[2]) == {}
