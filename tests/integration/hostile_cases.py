"""A toy course for the hostile suite, and the host state a hostile submission must not change.

The exercise (``99-hostile``) has the shape of every course exercise: two exercise cells, one
visible assert-only check and two hidden checks that print the values they compare. Its
solution carries small sandbox limits in ``metadata.grader.limits`` so that bombs hit a limit
quickly. ``98-roomy`` is the same exercise with room for a 400 MB string (output floods), and
``97-tight`` one whose CPU and wall-clock limits come before a generous cell timeout.

Everything the grader creates on the host (job, run and work directories) goes under one
private temporary root, and the jobs use a private block of uids, so that what other graders on
the same machine do at the same time cannot be mistaken for a leak.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode, v4

from grader.format import markers
from grader.grading.results import Result
from grader.sandbox import jobs
from grader.settings import Settings, load_settings

EXERCISE = "99-hostile"
ROOMY = "98-roomy"
TIGHT = "97-tight"
#: the limits of the hostile exercise: small, so that every bomb hits one within seconds
LIMITS = {"memory_mb": 1024, "cpu_s": 20, "processes": 64, "disk_mb": 32, "file_mb": 8, "wall_s": 60}
ROOMY_LIMITS = {**LIMITS, "memory_mb": 2560}
#: limits that a stuck cell reaches before its cell timeout: CPU seconds, and the kernel's wall clock
TIGHT_LIMITS = {**LIMITS, "cpu_s": 4, "wall_s": 12}
#: the uids of the suite's jobs: a block of its own, away from other graders' 61000–61063
UID_BASE = 61400

MEAN = '''def mean_of(values):
    """The arithmetic mean of a list of numbers."""
    # BEGIN SOLUTION
    return sum(values) / len(values)
    # END SOLUTION'''
SAVE = '''def save_values(values, folder):
    """Write one value per line to folder/values.txt and return that path."""
    # BEGIN SOLUTION
    path = Path(folder) / "values.txt"
    path.write_text("".join(f"{v}\\n" for v in values))
    return path
    # END SOLUTION'''
CHECK_1 = '# Check 9.1: the mean of [1, 2, 3] is 2\nassert mean_of([1, 2, 3]) == 2, "mean_of([1, 2, 3]) should be 2"'
CHECK_2 = "# Check 9.2: the mean of a longer list\nprint(mean_of([0.1, 0.2, 0.4]))"
CHECK_3 = (
    "# Check 9.3: the file holds one value per line\n"
    "saved = save_values([1, 2.5], tempfile.mkdtemp())\nprint(saved.name)\nprint(saved.read_text())"
)
#: a learner's correct answers (what an honest notebook submits)
HONEST = {
    "ex-mean": "def mean_of(values):\n    return sum(values) / len(values)",
    "ex-save": (
        "def save_values(values, folder):\n"
        '    path = Path(folder) / "values.txt"\n'
        '    path.write_text("".join(f"{v}\\n" for v in values))\n'
        "    return path"
    ),
}
#: a learner's wrong answers: an honest notebook with these scores 0 on every check
WRONG = {
    "ex-mean": "def mean_of(values):\n    return 0",
    "ex-save": "def save_values(values, folder):\n    return Path(folder)",
}
MAX_SCORE = 5


def _code(source: str, cell_id: str, role: str | None = None, grader: dict[str, object] | None = None) -> NotebookNode:
    cell = v4.new_code_cell(source)
    cell.id = cell_id
    if role:
        cell.metadata["tags"] = [role]
    if grader:
        cell.metadata[markers.META_GRADER] = grader
    return cell


def solution(limits: dict[str, float]) -> NotebookNode:
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata[markers.META_GRADER] = {markers.META_LIMITS: limits}
    nb.cells = [
        _code("import tempfile\nfrom pathlib import Path", "setup"),
        _code(MEAN, "ex-mean", markers.TAG_EXERCISE, {"id": "9.1"}),
        _code(CHECK_1, "check-1", markers.TAG_CHECK, {"id": "9.1", "points": 1}),
        _code(CHECK_2, "check-2", markers.TAG_HIDDEN_CHECK, {"id": "9.2", "points": 2}),
        _code(SAVE, "ex-save", markers.TAG_EXERCISE, {"id": "9.2"}),
        _code(CHECK_3, "check-3", markers.TAG_HIDDEN_CHECK, {"id": "9.3", "points": 2}),
    ]
    return nb


def submission(exercise: str = EXERCISE, **sources: str) -> NotebookNode:
    """The learner's copy (hidden checks gone), exercise cells replaced by id (default: the wrong answers)."""
    nb = solution(LIMITS)
    nb.metadata = {"kernelspec": nb.metadata["kernelspec"], markers.META_GRADER: {markers.META_EXERCISE: exercise}}
    nb.cells = [c for c in nb.cells if markers.TAG_HIDDEN_CHECK not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        if cell.id in sources:
            cell.source = sources[cell.id]
        elif cell.id in WRONG:
            cell.source = WRONG[cell.id]
    return nb


#: exercise 9.1's answer in a probing submission: the visible check 9.1 then shows ``evidence``
#: ("RuntimeError: <what the probe saw>"), and every check still fails
REPORT = "def mean_of(values):\n    raise RuntimeError(evidence)"


def hostile(code: str, *, exercise: str = EXERCISE, report: bool = False, **sources: str) -> NotebookNode:
    """The wrong-answer submission with ``code`` run first in exercise 9.1's cell.

    ``report``: ``code`` sets ``evidence`` (a short string) and check 9.1's message shows it.
    """
    mean = sources.pop("ex-mean", REPORT if report else WRONG["ex-mean"])
    return submission(exercise, **{"ex-mean": code + "\n\n" + mean, **sources})


#: defined before a probe's attempts: each attempt's outcome as a short word
PROBE_PRELUDE = '''import ctypes, glob, os, signal, socket, subprocess, sys, time
def _try(action):
    try:
        value = action()
    except BaseException as exc:
        return type(exc).__name__
    return "ok" if value is None else f"ok:{value}"
def _ptrace_child():
    """PTRACE_ATTACH to a child of our own (same uid: allowed unless seccomp says no); the errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    child = os.fork()
    if child == 0:
        time.sleep(5)
        os._exit(0)
    try:
        return "attached" if libc.ptrace(16, child, 0, 0) == 0 else os.strerror(ctypes.get_errno())
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
def _pip_install():
    site_dir = next(p for p in sys.path if p.endswith("site-packages"))
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--retries", "0", "--timeout", "2",
                          "--target", "/tmp/pkgs", "six"], capture_output=True, timeout=60,
                         env={"PYTHONPATH": site_dir, "HOME": "/tmp", "PIP_NO_CACHE_DIR": "1"})
    return f"rc{run.returncode}:{os.path.exists('/tmp/pkgs/six.py')}"
def _others_visible():
    own = {int(t) for t in os.listdir("/proc/self/task")} | {1}
    return [pid for pid in range(1, 400) if pid not in own and _try(lambda: os.kill(pid, 0)) == "ok"]
_evidence = []
'''


def probing(attempts: dict[str, str], prelude: str = "") -> str:
    """Exercise-cell code that makes each attempt (a Python expression) and sets ``evidence``.

    ``evidence`` reads ``name=outcome ...``: ``ok``/``ok:<value>`` or the exception's class name.
    """
    lines = [PROBE_PRELUDE, prelude]
    lines += [f"_evidence.append({name!r} + '=' + _try(lambda: {expression}))" for name, expression in attempts.items()]
    lines.append('evidence = " ".join(_evidence)')
    return "\n".join(lines)


def write_course(root: Path, *, cell_timeout_s: float, grading_timeout_s: float) -> Settings:
    """A course root holding the two exercises' solutions (private: 0700, like a real course checkout)."""
    root.mkdir(mode=0o700)
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\n", encoding="utf-8")
    (root / "_config.yml").write_text(
        "title: hostile\nrepository:\n  url: https://github.com/example/hostile\n  branch: main\n", encoding="utf-8"
    )
    (root / "solutions").mkdir()
    nbformat.write(solution(LIMITS), root / "solutions" / f"{EXERCISE}.ipynb")
    nbformat.write(solution(ROOMY_LIMITS), root / "solutions" / f"{ROOMY}.ipynb")
    nbformat.write(solution(TIGHT_LIMITS), root / "solutions" / f"{TIGHT}.ipynb")
    return load_settings(
        root,
        build_dir=root / "_build",
        cell_timeout_s=cell_timeout_s,
        grading_timeout_s=grading_timeout_s,
        kernel_name="python3",
    )


@contextlib.contextmanager
def private_host_area() -> Iterator[Path]:
    """A temporary root for every directory the grader makes, and a private block of job uids.

    The root is searchable by other uids (0711) because bubblewrap, running as the job's uid,
    binds the job's ipc directory from under it.
    """
    root = Path(tempfile.mkdtemp(prefix="grader-hostile-"))
    root.chmod(0o711)
    state = root / "slots"
    saved = (tempfile.tempdir, jobs.UID_BASE, os.environ.get("GRADER_SANDBOX_STATE"))
    tmp = root / "tmp"
    tmp.mkdir()
    tmp.chmod(0o711)
    tempfile.tempdir, jobs.UID_BASE = str(tmp), UID_BASE
    os.environ["GRADER_SANDBOX_STATE"] = str(state)
    try:
        yield root
    finally:
        tempfile.tempdir, jobs.UID_BASE = saved[0], saved[1]
        if saved[2] is None:
            os.environ.pop("GRADER_SANDBOX_STATE", None)
        else:
            os.environ["GRADER_SANDBOX_STATE"] = saved[2]


# --- the host's state ---------------------------------------------------------------------


def slot_uids() -> list[int]:
    return [UID_BASE + n for n in range(jobs.SLOTS)]


def job_processes() -> dict[int, list[int]]:
    """Live processes of any of the suite's job uids (uid → pids); empty when nothing was left behind."""
    return {uid: pids for uid in slot_uids() if (pids := jobs.processes_of(uid))}


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root`` (a job's ipc tmpfs that was not unmounted shows here)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(root) or point.startswith(f"{root}/"):
            found.append(point)
    return found


def leftovers(tmp: Path) -> list[str]:
    """Job, run and work directories still in the grader's temporary root."""
    return sorted(p.name for p in tmp.iterdir() if re.match(r"grader-(job|run|work)-", p.name))


def tree_digest(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Every file under ``root`` with its size and modification time (a changed bundle shows here)."""
    return tuple(
        sorted(
            (str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()
        )
    )


@dataclass(frozen=True)
class HostState:
    """What a hostile job must leave as it found it."""

    job_processes: dict[int, list[int]]
    mounts: tuple[str, ...]
    leftovers: tuple[str, ...]
    #: files in the host's /tmp whose name holds the suite's marker (the payloads' would-be writes)
    marked: tuple[str, ...]

    @classmethod
    def now(cls, area: Path, marker: str) -> HostState:
        return cls(
            job_processes(),
            tuple(mounts_under(area)),
            tuple(leftovers(area / "tmp")),
            tuple(sorted(str(p) for p in Path("/tmp").glob(f"*{marker}*"))),
        )


CLEAN = HostState({}, (), (), ())


def tcp_open(host: str, port: int) -> bool:
    """Does something listen on host:port (seen from the grader, outside the sandbox)?"""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def summary(result: Result) -> list[tuple[str, str, float]]:
    return [(c.id, c.status, c.points) for c in result.checks]
