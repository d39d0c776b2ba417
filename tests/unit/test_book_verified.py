"""Where each lesson was last verified: the note on its pages, and a recorded GPU run's outputs.

The recorded GPU run here is a test fixture written into ``tmp_path``: a fake device
fingerprint, never a real result (real ones are committed under ``bench/results/`` by
``python -m bench gpu``).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from grader.book import lessons, site, verified
from grader.format import markers
from grader.settings import Settings, load_settings

NAME = "07-training-loop"
DAY = datetime.date(2026, 12, 5)
CPU = {"device": "cpu", "cpu_count": 2}
#: a made-up fingerprint for the fixture run (the shape python -m bench gpu writes)
FAKE_GPU = {
    "device": "cuda:0",
    "name": "NVIDIA H100 80GB HBM3",
    "capability": "9.0",
    "driver": "550.54.15",
    "cuda": "12.4",
    "torch": "2.5.1",
    "bf16_native": True,
    "cpu_count": 16,
}


def lesson(*code: str) -> nbformat.NotebookNode:
    nb = v4.new_notebook()
    params = v4.new_code_cell(f'{markers.PROFILE_PARAMETER} = "full"')
    params.metadata["tags"] = [markers.TAG_PARAMETERS]
    nb.cells = [v4.new_markdown_cell("# 07 · The loop"), params, *(v4.new_code_cell(c) for c in code)]
    return nb


def executed_copy(nb: nbformat.NotebookNode, text: str) -> nbformat.NotebookNode:
    """``nb`` as if run: its last cell printed ``text``."""
    done = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    done.cells[-1].outputs = [v4.new_output("stream", name="stdout", text=text)]
    return done


@pytest.fixture
def course(tmp_path: Path) -> Settings:
    (tmp_path / "_config.yml").write_text("title: test\n", encoding="utf-8")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: index\n", encoding="utf-8")
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / f"{NAME}.md").write_text("(loop)=\n# The loop\n\nWords.\n", encoding="utf-8")
    (tmp_path / "notebooks").mkdir()
    nbformat.write(lesson("print('step')"), tmp_path / "notebooks" / f"{NAME}.ipynb")
    return load_settings(root=tmp_path, build_dir=tmp_path / "_build")


def cpu_run(settings: Settings) -> lessons.LessonRun:
    source = settings.notebooks_dir / f"{NAME}.ipynb"
    executed = settings.executed_dir / "smoke" / f"{NAME}.ipynb"
    executed.parent.mkdir(parents=True)
    nbformat.write(executed_copy(nbformat.read(source, as_version=4), "ran on cpu"), executed)
    record = verified.execution_record(CPU, profile="smoke", date=DAY)
    return lessons.LessonRun(NAME, source, executed, "smoke", "executed", 1.0, "key", record)


def record_gpu_run(settings: Settings, nb: nbformat.NotebookNode, *, fingerprint: dict[str, object]) -> Path:
    """A fixture recorded run, as ``python -m bench gpu`` lays it out, dated the day after DAY."""
    stem = "gpu-2026-12-06-fixture"
    folder = settings.root / verified.RECORDED_RUNS_DIR
    (folder / stem).mkdir(parents=True)
    nbformat.write(executed_copy(nb, "ran on cuda:0"), folder / stem / f"{NAME}.ipynb")
    data = {
        "kind": verified.RUN_KIND,
        "date": "2026-12-06",
        "fingerprint": fingerprint,
        "lessons": {NAME: {"status": "ok", "profile": "full", "notebook": f"{stem}/{NAME}.ipynb"}},
    }
    path = folder / f"{stem}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def staged(settings: Settings, run: lessons.LessonRun) -> tuple[str, str]:
    """The staged lesson notebook's text and the staged chapter's text."""
    files = site.staged_sources(settings, [run])
    return (
        files[f"notebooks/{NAME}.ipynb"].read_text(encoding="utf-8"),
        files[f"book/{NAME}.md"].read_text(encoding="utf-8"),
    )


def note_of(notebook_text: str) -> str:
    nb = nbformat.reads(notebook_text, as_version=4)
    (cell,) = [c for c in nb.cells if c.get("id") == markers.VERIFIED_ID]
    assert nb.cells.index(cell) == 1, "the note goes right under the title"
    return str(cell.source)


def test_without_a_gpu_run_the_pages_say_cpu_and_gpu_not_yet_verified(course: Settings) -> None:
    """No recorded run: the CPU outputs, and "Last verified on CPU … · GPU: not yet verified"."""
    page, chapter = staged(course, cpu_run(course))
    assert "ran on cpu" in page
    note = note_of(page)
    assert note.startswith("```{admonition} Last verified\n:class: note\nCPU (2 cores), profile `smoke`, 2026-12-05 · ")
    assert "**GPU:** not yet verified." in note
    assert chapter.startswith("(loop)=\n# The loop\n\n```{admonition} Last verified\n:class: note\nCPU (2 cores)")
    assert "not yet verified" in chapter


def test_a_recorded_gpu_run_replaces_the_outputs_and_names_its_device(course: Settings) -> None:
    """A recorded run of the same cells: its outputs on the page, its fingerprint in the note."""
    record_gpu_run(course, nbformat.read(course.notebooks_dir / f"{NAME}.ipynb", as_version=4), fingerprint=FAKE_GPU)
    page, chapter = staged(course, cpu_run(course))
    assert "ran on cuda:0" in page
    assert "ran on cpu" not in page
    note = note_of(page)
    assert "CPU (2 cores), profile `smoke`, 2026-12-05" in note
    device = "NVIDIA H100 80GB HBM3 (cc 9.0, driver 550.54.15, CUDA 12.4, torch 2.5.1)"
    gpu = f"**GPU:** {device}, profile `full`, 2026-12-06"
    assert gpu in note
    assert "this page shows that run's outputs" in note
    assert gpu in chapter and "the lesson notebook shows that run's outputs" in chapter


def test_a_gpu_run_of_an_earlier_version_is_named_but_not_shown(course: Settings) -> None:
    """The lesson changed since the GPU run: this build's outputs, and the note says why."""
    record_gpu_run(course, lesson("print('an older step')"), fingerprint=FAKE_GPU)
    page, _ = staged(course, cpu_run(course))
    assert "ran on cpu" in page and "ran on cuda:0" not in page
    assert "that run was of an earlier version of this lesson" in note_of(page)


def test_a_recorded_run_on_a_cpu_does_not_count_as_gpu(course: Settings) -> None:
    """`python -m bench gpu` on a CPU writes a run too; the site never shows it as a GPU run."""
    cpu_check = {**FAKE_GPU, "device": "cpu", "name": "Some CPU", "capability": None, "cuda": None}
    record_gpu_run(course, nbformat.read(course.notebooks_dir / f"{NAME}.ipynb", as_version=4), fingerprint=cpu_check)
    page, _ = staged(course, cpu_run(course))
    assert "ran on cpu" in page and "**GPU:** not yet verified." in note_of(page)


def test_staging_twice_writes_the_same_bytes_once(course: Settings) -> None:
    """Decorated copies are deterministic and rewritten only when they change (Sphinx reads mtimes)."""
    run = cpu_run(course)
    first = site.staged_sources(course, [run])
    stamps = {key: path.stat().st_mtime_ns for key, path in first.items()}
    second = site.staged_sources(course, [run])
    assert {key: path.stat().st_mtime_ns for key, path in second.items()} == stamps


def test_the_probe_cell_is_added_then_taken_out_with_its_record(course: Settings) -> None:
    """with_probe appends the device probe; take_probe removes it and returns what it printed."""
    nb = nbformat.read(course.notebooks_dir / f"{NAME}.ipynb", as_version=4)
    probed = verified.with_probe(nb)
    assert len(probed.cells) == len(nb.cells) + 1 and len(nb.cells) == 3
    assert markers.TAG_DEVICE_PROBE in probed.cells[-1].metadata["tags"]
    probed.cells[-1].outputs = [
        v4.new_output("stream", name="stdout", text=verified.PROBE_PREFIX + json.dumps(FAKE_GPU) + "\n")
    ]
    assert verified.take_probe(probed) == FAKE_GPU
    assert [c.source for c in probed.cells] == [c.source for c in nb.cells]


@pytest.mark.parametrize(
    ("device", "words"),
    [
        (CPU, "CPU (2 cores)"),
        (FAKE_GPU, "NVIDIA H100 80GB HBM3 (cc 9.0, driver 550.54.15, CUDA 12.4, torch 2.5.1)"),
        ({**FAKE_GPU, "driver": None}, "NVIDIA H100 80GB HBM3 (cc 9.0, CUDA 12.4, torch 2.5.1)"),
        ({"device": "unknown"}, "a device that was not recorded"),
        (None, "a device that was not recorded"),
    ],
)
def test_devices_are_described_with_what_was_recorded_only(device: dict[str, object] | None, words: str) -> None:
    """A missing driver is left out, never guessed."""
    assert verified.describe_device(device) == words
