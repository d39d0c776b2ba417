"""A GPU exercise through the real grading engine and sandbox, on a CPU: graded at smoke size with torch.compile
off (the variables reach the sandboxed kernel, the reference is built the same way) and the note; on a simulated
GPU worker at full size. The device in the result is the placement's, whatever the learner's kernel printed."""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest
from toy_course import code, write_course

from grader.format import markers
from grader.grading import results
from grader.grading.bundle import build_bundle
from grader.grading.engine import grade_notebook
from grader.grading.placement import Placement, kernel_setup
from grader.grading.results import GradingDevice
from grader.sandbox.doctor import sandbox_available

pytestmark = pytest.mark.skipif(not sandbox_available()[0], reason="needs the grading sandbox (grader doctor)")

EXERCISE = "08-gpu-toy"
SOLUTION_SOURCE = "# BEGIN SOLUTION\nanswer = 42\n# END SOLUTION"
CHECK = (
    "# Check 1.1: the answer, and the size it was graded at\n"
    "import os\n"
    "print(answer, os.environ.get('MLCOURSE_PROFILE'), os.environ.get('MLCOURSE_COMPILE'))"
)


def _solution() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata[markers.META_GRADER] = {markers.META_DEVICE: markers.DEVICE_GPU}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A GPU exercise"),
        code(SOLUTION_SOURCE, "answer", "exercise", {"id": "1"}),
        code(CHECK, "check-1-1", "hidden-check", {"id": "1.1", "points": 1}),
    ]
    for cell in nb.cells[:1]:
        cell.id = "title"
    return nb


def test_a_gpu_exercise_is_graded_at_smoke_size_on_cpu_and_at_full_size_on_a_gpu_worker(tmp_path: Path) -> None:
    settings = write_course(tmp_path, EXERCISE, _solution())
    learner = copy.deepcopy(_solution())
    learner.metadata[markers.META_GRADER][markers.META_DEVICE] = "cpu"  # the submission's word counts for nothing
    learner.cells[1].source = 'answer = 42\nprint("cuda")'
    data = nbformat.writes(learner).encode()

    on_cpu = grade_notebook(settings, data, exercise=EXERCISE, name="nb.ipynb")
    assert on_cpu.status == "graded" and on_cpu.score == 1.0, results.render_text(on_cpu)
    assert on_cpu.wanted_device == "gpu" and on_cpu.device_info is not None and on_cpu.device_info.kind == "cpu"
    assert on_cpu.device_note == results.cpu_fallback_note(results.LOCAL_CPU)
    cpu_setup = kernel_setup("gpu", Placement(GradingDevice("cpu")))
    reference = str(build_bundle(settings, EXERCISE, cpu_setup).template.cells[2].outputs)
    # the variables reached the sandboxed kernel of the reference run
    assert "smoke" in reference and "'0'" in reference, reference

    simulated = Placement(GradingDevice("gpu", "Simulated GPU", "9.0", "550.54.15", "12.4"))
    on_gpu = grade_notebook(settings, data, exercise=EXERCISE, name="nb.ipynb", placement=simulated)
    assert on_gpu.status == "graded" and on_gpu.score == 1.0 and on_gpu.device_note == ""
    assert on_gpu.device == "Simulated GPU (compute 9.0, driver 550.54.15, CUDA 12.4)"
    full = str(build_bundle(settings, EXERCISE, kernel_setup("gpu", simulated)).template.cells[2].outputs)
    assert "full" in full and "smoke" not in full, full
