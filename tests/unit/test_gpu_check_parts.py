"""The GPU check's pure parts: lesson selection, file names, the peak table (no device needed)."""

from __future__ import annotations

import pytest

from bench import gpu_check, gpu_workloads


@pytest.mark.parametrize(
    ("spec", "chosen"),
    [
        ("07-11", ["07-loop", "08-gpu", "11-explain"]),
        ("07", ["07-loop"]),
        ("07,11", ["07-loop", "11-explain"]),
        ("none", []),
        ("all", ["06-stats", "07-loop", "08-gpu", "11-explain", "12-serve"]),
    ],
)
def test_lessons_are_chosen_by_number_among_those_that_exist(spec: str, chosen: list[str]) -> None:
    """Lessons that do not exist yet are simply not run."""
    names = ["06-stats", "07-loop", "08-gpu", "11-explain", "12-serve"]
    assert gpu_check.select_lessons(names, spec) == chosen


def test_file_names_come_from_the_device_name() -> None:
    assert gpu_check.slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"


@pytest.mark.parametrize(
    ("name", "dtype", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", "bf16", 989.0),
        ("NVIDIA H100 PCIe", "bf16", 756.0),
        ("NVIDIA H100 NVL", "bf16", 835.0),
        ("NVIDIA H200", "bf16", 989.0),
        ("NVIDIA A100-SXM4-80GB", "bf16", 312.0),
        ("NVIDIA L4", "bf16", 121.0),
        ("NVIDIA L40S", "bf16", 362.0),
        ("Tesla T4", "fp16", 65.0),
        ("Tesla T4", "bf16", None),
        ("NVIDIA GeForce RTX 4090", "bf16", None),
    ],
)
def test_the_peak_is_known_only_for_gpus_in_the_table(name: str, dtype: str, peak: float | None) -> None:
    """An unknown GPU (or dtype) gets "unknown peak", never a guess."""
    found, source = gpu_workloads.peak_tflops(name, dtype)
    assert found == peak
    assert (source == "unknown peak") == (peak is None)


def test_the_summary_of_timings_has_a_ci_around_the_median() -> None:
    summary = gpu_workloads.summarise([0.3, 0.1, 0.2, 0.4, 0.25, 0.15])
    assert summary["n"] == 6 and summary["min_s"] == 0.1
    low, high = summary["ci95_s"]
    assert low <= summary["median_s"] == 0.225 <= high
