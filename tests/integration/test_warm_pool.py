"""The warm pool (grader.grading.warm) with real sandboxed kernels: same verdicts as cold, nothing shared, nothing left.

The exercise (``97-warm``) is built in code: one exercise cell, a visible and a hidden check.
Job directories are created under a private temporary folder (``tempfile.tempdir`` is pointed
at it), so what a test finds there was left by this test, not by another grading run on the
machine. Processes are looked up by the uids of the runners this test's pools started.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode, v4

from grader.format import markers
from grader.grading import warm
from grader.grading.bundle import build_bundle
from grader.grading.engine import grade_notebook
from grader.grading.results import Result
from grader.grading.warm import WarmPool, WarmRunner
from grader.sandbox.doctor import sandbox_available
from grader.sandbox.jobs import kill_uid, processes_of
from grader.sandbox.limits import ResourceLimits
from grader.settings import Settings, load_settings

pytestmark = pytest.mark.slow

EXERCISE = "97-warm"
ANSWER = '''def answer(values):
    """The sum of the squares of ``values``."""
    # BEGIN SOLUTION
    return sum(v * v for v in values)
    # END SOLUTION'''
#: what submission A does to leave something behind for the next submission
MISCHIEF = """\
import json, os, subprocess
SURVIVOR = "left by A"
os.environ["LEFTOVER_ENV"] = "A"
open("leftover-cwd.txt", "w").write("A")
open("/tmp/leftover-tmp.txt", "w").write("A")
try:
    open("/dev/shm/leftover-shm.txt", "w").write("A")
except OSError:
    pass
sleeper = subprocess.Popen(["sleep", "86399"], start_new_session=True, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
import time
for _ in range(200):  # until the child has become `sleep` (a loaded machine can take a while)
    try:
        if b"86399" in open(f"/proc/{sleeper.pid}/cmdline", "rb").read():
            break
    except OSError:
        pass
    time.sleep(0.025)
print(json.dumps({"uid": os.getuid(), "cwd": os.getcwd()}))
"""
#: what submission B reports about the state it starts in
INSPECTION = """\
import json, os

def _sleepers():
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"86399" in open(f"/proc/{pid}/cmdline", "rb").read():
                found.append(int(pid))
        except OSError:
            pass
    return found

print(json.dumps({
    "global": "SURVIVOR" in globals(),
    "env": "LEFTOVER_ENV" in os.environ,
    "cwd_file": os.path.exists("leftover-cwd.txt"),
    "tmp_file": os.path.exists("/tmp/leftover-tmp.txt"),
    "shm_file": os.path.exists("/dev/shm/leftover-shm.txt"),
    "sleepers": _sleepers(),
    "uid": os.getuid(),
}))
"""
NOTHING = {"global": False, "env": False, "cwd_file": False, "tmp_file": False, "shm_file": False, "sleepers": []}

if not sandbox_available()[0]:  # pragma: no cover - depends on the machine
    pytest.skip(f"no grading sandbox here: {sandbox_available()[1]}", allow_module_level=True)


def code(source: str, cell_id: str, role: str | None = None, grader: dict[str, object] | None = None) -> NotebookNode:
    cell = v4.new_code_cell(source)
    cell.id = cell_id
    if role:
        cell.metadata["tags"] = [role]
    if grader:
        cell.metadata[markers.META_GRADER] = grader
    return cell


def solution() -> NotebookNode:
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        code(ANSWER, "ex-answer", markers.TAG_EXERCISE, {"id": "7.1"}),
        code(
            "# Check 7.1: squares of [1, 2] sum to 5\nassert answer([1, 2]) == 5",
            "check-1",
            markers.TAG_CHECK,
            {"id": "7.1", "points": 1},
        ),
        code(
            "# Check 7.2: a longer list\nprint(answer(range(10)))",
            "check-2",
            markers.TAG_HIDDEN_CHECK,
            {"id": "7.2", "points": 2},
        ),
    ]
    return nb


def submission(answer_source: str | None = None) -> bytes:
    """The learner's copy: hidden check gone; ``answer_source`` replaces the exercise (None: the stub)."""
    nb = solution()
    nb.cells = [c for c in nb.cells if markers.TAG_HIDDEN_CHECK not in c.metadata.get("tags", [])]
    nb.cells[0].source = (
        answer_source
        if answer_source is not None
        else ('def answer(values):\n    """The sum of the squares of ``values``."""\n    raise NotImplementedError')
    )
    nb.metadata[markers.META_GRADER] = {markers.META_EXERCISE: EXERCISE}
    return nbformat.writes(nb).encode()


def probe(source: str) -> NotebookNode:
    """A one-cell notebook whose (graded) cell's output a ``record`` run keeps."""
    nb = v4.new_notebook()
    nb.cells = [code(source, "probe", markers.TAG_CHECK, {"id": "0.1", "points": 1})]
    return nb


def printed(runner_outcome_cells: dict[int, dict[str, object]]) -> dict[str, object]:
    record = runner_outcome_cells[0]
    assert record["status"] == "passed", record
    outputs = record["outputs"]
    assert isinstance(outputs, list)
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    return json.loads(text)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def private_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Job, run and work folders of this module's runs go here (searchable by the sandbox uid)."""
    tmp_path_factory.getbasetemp()  # pytest's own temporary folders stay where they were
    folder = Path(tempfile.mkdtemp(prefix="warm-test-"))
    folder.chmod(0o711)
    saved = tempfile.tempdir
    tempfile.tempdir = str(folder)
    yield folder
    tempfile.tempdir = saved
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory, private_tmp: Path) -> Settings:
    root = tmp_path_factory.mktemp("course")
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\n", encoding="utf-8")
    (root / "_config.yml").write_text(
        "title: warm\nrepository:\n  url: https://github.com/example/warm\n  branch: main\n", encoding="utf-8"
    )
    (root / "solutions").mkdir()
    nbformat.write(solution(), root / "solutions" / f"{EXERCISE}.ipynb")
    settings = load_settings(
        root,
        build_dir=root / "_build",
        cell_timeout_s=60.0,
        grading_timeout_s=120.0,
        kernel_name="python3",
        sandbox=True,
    )
    build_bundle(settings, EXERCISE)
    return settings


@pytest.fixture
def created(monkeypatch: pytest.MonkeyPatch) -> list[WarmRunner]:
    """Every runner started while the test runs, so that its uid and job folder can be checked."""
    runners: list[WarmRunner] = []
    original = warm.WarmRunner.__init__

    def spy(self: WarmRunner, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        runners.append(self)

    monkeypatch.setattr(warm.WarmRunner, "__init__", spy)
    return runners


def acquisitions(pool: WarmPool, monkeypatch: pytest.MonkeyPatch) -> list[WarmRunner | None]:
    """Record what each ``pool.acquire()`` hands out."""
    handed: list[WarmRunner | None] = []
    original = pool.acquire

    def spy(timeout_s: float = warm.ACQUIRE_TIMEOUT_S) -> WarmRunner | None:
        runner = original(timeout_s)
        handed.append(runner)
        return runner

    monkeypatch.setattr(pool, "acquire", spy)
    return handed


def summary(result: Result) -> list[tuple[str, str, float]]:
    return [(c.id, c.status, c.points) for c in result.checks]


def leftover_processes(uid: int | None, before: float) -> list[int]:
    """Processes of ``uid`` that started before ``before`` (seconds since boot): what a job left behind.

    A process started later belongs to a later job that took the same uid slot.
    """
    if uid is None:
        return []
    ticks = os.sysconf("SC_CLK_TCK")
    left = []
    for pid in processes_of(uid):
        try:
            started = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]) / ticks
        except (OSError, IndexError, ValueError):
            continue
        if started <= before:
            left.append(pid)
    return left


def uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


# --- verdicts ------------------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "score"), [(ANSWER, 3.0), (None, 0.0)], ids=["solution", "stub"])
def test_pool_gives_the_cold_verdicts(
    course: Settings, monkeypatch: pytest.MonkeyPatch, answer: str | None, score: float
) -> None:
    """Does a submission graded on a warm kernel get the cold kernel's verdicts (solution full marks, stub 0)?"""
    data = submission(answer)
    cold = grade_notebook(course, data, name="submission.ipynb")
    with WarmPool(course, size=1) as pool:
        handed = acquisitions(pool, monkeypatch)
        hot = grade_notebook(course, data, name="submission.ipynb", pool=pool)
    assert len(handed) == 1 and handed[0] is not None, f"the pool was not used ({pool.last_error})"
    assert hot.status == cold.status == "graded"
    assert hot.score == cold.score == score
    assert summary(hot) == summary(cold)
    assert [c.message for c in hot.checks] == [c.message for c in cold.checks]
    assert hot.isolation == cold.isolation == "bubblewrap sandbox"


def test_other_limits_are_graded_cold(course: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Does a pool for other sandbox limits leave the submission to a cold kernel (and still grade it)?"""
    with WarmPool(course, size=1, limits=ResourceLimits(memory_mb=2048)) as pool:
        handed = acquisitions(pool, monkeypatch)
        result = grade_notebook(course, submission(ANSWER), name="other.ipynb", pool=pool)
        assert not pool.serves(course, ResourceLimits())
        assert pool.serves(course, ResourceLimits(memory_mb=2048))
    assert handed == []
    assert result.score == result.max_score == 3.0


# --- isolation between submissions ----------------------------------------------------------


def test_nothing_survives_between_submissions(course: Settings, private_tmp: Path, created: list[WarmRunner]) -> None:
    """Does submission B, next from the pool, find nothing of A: globals, env, files, processes?"""
    with WarmPool(course, size=1) as pool:
        first = pool.acquire()
        assert first is not None, pool.last_error
        a = printed(first.run(probe(MISCHIEF), wall_timeout_s=60, mode="record").cells)
        with pytest.raises(RuntimeError, match="each runs one"):
            first.run(probe("print(1)"), wall_timeout_s=60, mode="record")
        first.close()  # wait for A's cleanup
        after_a = uptime()
        second = pool.acquire()
        assert second is not None, pool.last_error
        b = printed(second.run(probe(INSPECTION), wall_timeout_s=60, mode="record").cells)
        second.close()
    assert {key: b[key] for key in NOTHING} == NOTHING, f"submission B found what A left: {b}"
    assert second is not first
    assert second.directory != first.directory, "B reused A's job folder"
    assert first.directory is not None and not first.directory.exists(), "A's job folder outlived A"
    assert (second.uid, b["uid"]) != (first.uid, a["uid"]) or second.directory != first.directory
    assert leftover_processes(first.uid, after_a) == [], "A's processes outlived A"
    sleepers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p) == b"sleep\x0086399\x00"]
    assert sleepers == [], "A's background process escaped the sandbox"


def test_inspection_sees_leftovers_in_one_kernel(course: Settings) -> None:
    """Would submission B's inspection notice A's leftovers if both ran in the same kernel?"""
    nb = probe(MISCHIEF)
    nb.cells.append(code(INSPECTION, "inspect", markers.TAG_CHECK, {"id": "0.2", "points": 1}))
    with WarmPool(course, size=1) as pool:
        runner = pool.acquire()
        assert runner is not None, pool.last_error
        outcome = runner.run(nb, wall_timeout_s=60, mode="record")
    found = printed({0: outcome.cells[1]})
    assert found["global"] and found["env"] and found["cwd_file"] and found["tmp_file"]
    assert found["sleepers"], "the inspection does not see a background process"


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


# --- replacement ----------------------------------------------------------------------------


def test_runner_whose_kernel_died_is_not_handed_out(course: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Is a ready runner whose kernel was killed while waiting replaced, and the submission graded on the new one?"""
    with WarmPool(course, size=1) as pool:
        assert pool.wait_ready(60), pool.last_error
        (victim,) = pool.ready()
        kill_uid(victim.uid)  # type: ignore[arg-type]  # the kernel and its sandbox, from outside
        handed = acquisitions(pool, monkeypatch)
        result = grade_notebook(course, submission(ANSWER), name="after-kill.ipynb", pool=pool)
    assert handed and handed[0] is not None, f"no runner was handed out ({pool.last_error})"
    assert handed[0] is not victim
    assert victim.closed
    assert result.status == "graded" and result.score == result.max_score


def test_submission_whose_runner_died_is_graded_cold(course: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the warm runner itself dies after it was handed out, is the submission graded cold instead of lost?"""
    with WarmPool(course, size=1) as pool:
        original = pool.acquire
        handed: list[WarmRunner] = []

        def acquire_and_kill(timeout_s: float = warm.ACQUIRE_TIMEOUT_S) -> WarmRunner | None:
            runner = original(timeout_s)
            assert runner is not None, pool.last_error
            os.killpg(runner.process.pid, 9)  # the runner's pytest process, not its kernel
            runner.process.wait()
            handed.append(runner)
            return runner

        monkeypatch.setattr(pool, "acquire", acquire_and_kill)
        result = grade_notebook(course, submission(ANSWER), name="runner-died.ipynb", pool=pool)
    assert len(handed) == 1
    assert result.status == "graded" and result.score == result.max_score


def test_runner_that_waited_too_long_is_replaced(course: Settings) -> None:
    """Is a runner idle for longer than max_idle_s discarded and replaced by a fresh one?"""
    with WarmPool(course, size=1, max_idle_s=1.0) as pool:
        assert pool.wait_ready(60), pool.last_error
        (old,) = pool.ready()
        deadline = time.monotonic() + 60
        while not old.closed and time.monotonic() < deadline:
            time.sleep(0.2)
        assert old.closed, "the idle runner was never discarded"
        assert pool.wait_ready(60), pool.last_error
        (new,) = pool.ready()
    assert new is not old


def test_notebook_without_code_still_ends_cleanly(
    course: Settings, private_tmp: Path, created: list[WarmRunner]
) -> None:
    """Does a warm runner given nothing to run report a finished run and stop its kernel?"""
    with WarmPool(course, size=1) as pool:
        runner = pool.acquire()
        assert runner is not None, pool.last_error
        outcome = runner.run(v4.new_notebook(), wall_timeout_s=60)
        runner.close()
        closed_at = uptime()
    assert outcome.finished and outcome.cells == {} and not outcome.killed
    assert leftover_processes(runner.uid, closed_at) == []
    assert runner.directory is not None and not runner.directory.exists()


def test_run_past_the_wall_clock_limit_is_killed(course: Settings, created: list[WarmRunner]) -> None:
    """Is a warm run that outlives its wall-clock limit killed, with its verdicts so far kept and nothing left?"""
    nb = probe("print('started')")
    nb.cells.append(code("import time\ntime.sleep(600)", "stuck", markers.TAG_CHECK, {"id": "0.2", "points": 1}))
    with WarmPool(course, size=1) as pool:
        runner = pool.acquire()
        assert runner is not None, pool.last_error
        outcome = runner.run(nb, wall_timeout_s=5, mode="record")
        runner.close()
        closed_at = uptime()
    assert outcome.killed and not outcome.finished
    assert outcome.cells[0]["status"] == "passed" and 1 not in outcome.cells
    assert leftover_processes(runner.uid, closed_at) == []


# --- closing --------------------------------------------------------------------------------


def test_close_leaves_no_process_and_no_job_folder(
    course: Settings, private_tmp: Path, created: list[WarmRunner]
) -> None:
    """After close, is there no process of any runner's uid and no grader-job-* folder, used or idle?"""
    pool = WarmPool(course, size=2)
    assert pool.wait_ready(120), pool.last_error
    result = grade_notebook(course, submission(ANSWER), name="one.ipynb", pool=pool)
    assert result.score == result.max_score
    pool.close()
    closed_at = uptime()
    assert len(created) >= 3  # two ready, and the replacement of the one used
    assert all(runner.closed for runner in created)
    for runner in created:
        assert leftover_processes(runner.uid, closed_at) == [], f"uid {runner.uid} still runs processes"
    assert sorted(p.name for p in private_tmp.glob("grader-job-*")) == []
    assert sorted(p.name for p in private_tmp.glob("grader-run-*")) == []
    assert pool.acquire(timeout_s=1) is None
