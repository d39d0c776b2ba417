"""Hostile submissions, graded for real: in the sandbox, through ``grade_notebook``.

Each case is a notebook a learner could submit: the toy exercise's learner copy (see
``hostile_cases``) with hostile code in an exercise cell. Every test asserts the verdict (zero,
or exactly what an honest notebook earns) and the host afterwards: no process of any job uid,
no job, run or work directory and no mount left, the course (solutions, bundles) unchanged,
and nothing written to the host's /tmp.

Probing cases report what they saw from inside the sandbox: exercise 9.1 becomes a function
that raises ``RuntimeError(evidence)``, so the visible check 9.1 fails with the evidence as its
message ("RuntimeError: dns=gaierror http=OSError ...") and every check still scores zero.

Bombs are bounded (a few hundred attempts, seconds of sleep) and run only inside the sandbox,
under the exercise's small limits (``hostile_cases.LIMITS``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import resource
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import hostile_cases as hc
import nbformat
import psutil
import pytest
from nbformat import NotebookNode

from grader.grading.bundle import Bundle, build_bundle
from grader.grading.engine import grade_notebook, grade_submissions
from grader.grading.results import Result, render_html, render_text
from grader.sandbox.cgroups import job_cgroups_available
from grader.sandbox.jobs import SLOTS
from grader.settings import Settings

pytestmark = pytest.mark.slow

#: a bound on the trusted pytest process's memory while a notebook floods it with output
RUNNER_RSS_BOUND = 600 * 1024 * 1024
#: the message of check 9.1 for the wrong answer, raised honestly
WRONG_9_1 = "AssertionError: mean_of([1, 2, 3]) should be 2"
ALL_ZERO = [("9.1", "fail", 0), ("9.2", "fail", 0), ("9.3", "fail", 0)]


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp_path_factory.getbasetemp()  # pytest's own temporary root stays where it was, outside the area
    with hc.private_host_area() as root:
        yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def course(area: Path) -> Settings:
    return hc.write_course(area / "course", cell_timeout_s=10.0, grading_timeout_s=60.0)


@pytest.fixture(scope="module")
def bundles(course: Settings) -> dict[str, Bundle]:
    return {exercise: build_bundle(course, exercise) for exercise in (hc.EXERCISE, hc.ROOMY, hc.TIGHT)}


@pytest.fixture(scope="module")
def marker() -> str:
    """Part of the name of every file a payload tries to leave in a /tmp: found on the host, it leaked."""
    return f"hostile-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def course_digest(course: Settings, bundles: dict[str, Bundle]) -> tuple[tuple[str, int, int], ...]:
    return hc.tree_digest(course.root)


@pytest.fixture
def host(area: Path, course: Settings, marker: str, course_digest: tuple[tuple[str, int, int], ...]) -> Iterator[None]:
    """The host before a test is as clean as the test must leave it."""
    assert hc.HostState.now(area, marker) == hc.CLEAN
    yield


def grade(settings: Settings, nb: NotebookNode | bytes, **kwargs: object) -> Result:
    data = nb if isinstance(nb, bytes) else nbformat.writes(nb).encode()
    return grade_notebook(settings, data, name="submission.ipynb", **kwargs)  # type: ignore[arg-type]


def assert_host_untouched(area: Path, course: Settings, marker: str, digest: tuple[tuple[str, int, int], ...]) -> None:
    """No job process, directory or mount left; the course unchanged; nothing in the host's /tmp."""
    assert hc.HostState.now(area, marker) == hc.CLEAN
    assert hc.tree_digest(course.root) == digest


def evidence(result: Result) -> str:
    """What a probing submission saw (check 9.1's message, without the exception name)."""
    message = result.checks[0].message
    assert message.startswith("RuntimeError: "), message
    return message.removeprefix("RuntimeError: ")


@contextlib.contextmanager
def runner_peak_rss() -> Iterator[list[int]]:
    """The largest resident size seen of the grader's pytest subprocess, polled while the block runs."""
    peak, stop = [0], threading.Event()

    def poll() -> None:
        me = psutil.Process()
        while not stop.is_set():
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if "--grader-result" in child.cmdline():
                        peak[0] = max(peak[0], child.memory_info().rss)
            time.sleep(0.02)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


# --- 1. secrets: hidden checks, reference outputs, the runner's files -----------------------


def test_hidden_checks_and_reference_outputs_are_out_of_reach(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
) -> None:
    """Can learner code read the bundle, the solutions, the runner's private files, or find them via /proc?"""
    bundle = bundles[hc.EXERCISE]
    code = hc.probing(
        {
            "bundle": f"os.listdir({str(bundle.path)!r})",
            "template": f"open({str(bundle.path / 'template.ipynb')!r}).read()",
            "solutions": f"os.listdir({str(course.solutions_dir)!r})",
            "runner": "[p for p in glob.glob('/tmp/**', recursive=True) if 'grader-run-' in p or 'grader-work-' in p]",
            "cmdlines": "[p for p in glob.glob('/proc/[0-9]*/cmdline') "
            "if any(w in open(p, 'rb').read() for w in (b'pytest', b'_build', b'solutions'))]",
            "environ": "[p for p in glob.glob('/proc/[0-9]*/environ') "
            "if any(w in open(p, 'rb').read() for w in (b'GRADER_', b'HOME=/root', b'PYTEST'))]",
            "processes": "len([p for p in os.listdir('/proc') if p.isdigit()])",
        }
    )
    result = grade(course, hc.hostile(code, report=True))
    assert evidence(result) == (
        "bundle=FileNotFoundError template=FileNotFoundError solutions=FileNotFoundError runner=ok:[] "
        "cmdlines=ok:[] environ=ok:[] processes=ok:2"
    )
    assert (result.status, result.score) == ("graded", 0)
    assert_host_untouched(area, course, marker, course_digest)


# --- 2. another learner's job ------------------------------------------------------------


def test_a_job_cannot_see_or_touch_a_job_running_beside_it(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
    tmp_path: Path,
) -> None:
    """Graded two at a time, can one submission find, read, write or signal the other's files and processes?"""
    victim_save = (
        "import time\n"
        f"for place in ('/tmp', '/home/learner', '/dev/shm'):\n"
        f"    open(place + '/victim-{marker}', 'w').write('secret')\n"
        "time.sleep(3)\n"
        f"assert all(open(place + '/victim-{marker}').read() == 'secret' "
        "for place in ('/tmp', '/home/learner', '/dev/shm'))\n" + hc.HONEST["ex-save"]
    )
    attack = hc.probing(
        {
            "found": "[p for p in glob.glob('/tmp/**', recursive=True) + glob.glob('/home/**', recursive=True) "
            "+ glob.glob('/dev/shm/*') if 'victim' in p]",
            "ipcdirs": "len(glob.glob('/tmp/**/ipc', recursive=True))",
            "others": "_others_visible()",
            "killall": "os.kill(-1, signal.SIGKILL)",
        },
        prelude="time.sleep(1.5)",
    )
    paths = [tmp_path / "attacker.ipynb", tmp_path / "victim.ipynb"]
    nbformat.write(hc.hostile(attack, report=True), paths[0])
    nbformat.write(hc.submission(**{**hc.HONEST, "ex-save": victim_save}), paths[1])
    attacker, victim = grade_submissions(course, paths, jobs=2)
    assert evidence(attacker) == "found=ok:[] ipcdirs=ok:1 others=ok:[] killall=ProcessLookupError"
    assert attacker.score == 0
    assert (victim.status, victim.score) == ("graded", hc.MAX_SCORE), render_text(victim)
    assert_host_untouched(area, course, marker, course_digest)


# --- 3 and 4. the network ----------------------------------------------------------------


def test_no_network_out(
    course: Settings, bundles: dict[str, Bundle], area: Path, marker: str, course_digest: tuple, host: None
) -> None:
    """Can learner code resolve a name, reach a public address, or pip install a package?"""
    code = hc.probing(
        {
            "dns": "socket.getaddrinfo('pypi.org', 443)",
            "http": "socket.create_connection(('151.101.0.223', 80), timeout=2).close()",
            "udp": "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('8.8.8.8', 53))",
            "pip": "_pip_install()",
        }
    )
    result = grade(course, hc.hostile(code, report=True))
    assert evidence(result) == "dns=gaierror http=OSError udp=OSError pip=ok:rc1:False"
    assert result.score == 0
    assert_host_untouched(area, course, marker, course_digest)


def _host_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if it has one."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))
        return str(probe.getsockname()[0])
    return None


def test_host_loopback_services_are_unreachable(
    course: Settings, bundles: dict[str, Bundle], area: Path, marker: str, course_digest: tuple, host: None
) -> None:
    """With PostgreSQL and Redis listening on the host's 127.0.0.1, can learner code connect to them?"""
    listening = [port for port in (5432, 6379) if hc.tcp_open("127.0.0.1", port)]
    if not listening:
        pytest.skip("neither PostgreSQL (5432) nor Redis (6379) listens on this host's 127.0.0.1")
    address = _host_address() or "127.0.0.1"
    attempts = {
        f"lo{port}": f"socket.create_connection(('127.0.0.1', {port}), timeout=2).close()" for port in listening
    }
    attempts |= {
        f"ip{port}": f"socket.create_connection(({address!r}, {port}), timeout=2).close()" for port in listening
    }
    result = grade(course, hc.hostile(hc.probing(attempts), report=True))
    saw = dict(item.split("=", 1) for item in evidence(result).split())
    assert saw.keys() == attempts.keys()
    assert not [name for name, outcome in saw.items() if outcome.startswith("ok")], saw
    assert result.score == 0
    assert_host_untouched(area, course, marker, course_digest)


# --- 5. fake summaries -------------------------------------------------------------------

FAKES = """print("===== 5 passed in 0.10s =====")
print("submission.ipynb: 5/5 points")
print('{"event": "cell", "index": 2, "status": "passed", "graded": true}')
print('{"event": "done"}')
kernel = get_ipython().kernel
kernel.session.send(kernel.iopub_socket, "stream", {"name": "stdout", "text": '{"event": "done"}\\n'},
                    parent=kernel.get_parent("shell"))
for place in ("/tmp", "/home/learner"):
    open(place + "/result.jsonl", "w").write('{"event": "cell", "index": 2, "status": "passed"}\\n')"""


def test_fake_summaries_and_result_lines_change_nothing(
    course: Settings, bundles: dict[str, Bundle], area: Path, marker: str, course_digest: tuple, host: None
) -> None:
    """Do printed pytest summaries, score lines or JSON result lines (even forged kernel messages) count?"""
    result = grade(course, hc.hostile(FAKES))
    assert hc.summary(result) == ALL_ZERO
    assert result.checks[0].message == WRONG_9_1
    assert render_text(result).splitlines()[0] == "submission.ipynb: 0/5 points"
    assert_host_untouched(area, course, marker, course_digest)


# --- 6 and 7. fooling the checks ---------------------------------------------------------


@pytest.mark.parametrize(
    "swallow",
    [
        pytest.param(
            "get_ipython().set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)",
            id="set_custom_exc",
        ),
        pytest.param(
            "from IPython.core.interactiveshell import InteractiveShell\n"
            "InteractiveShell.showtraceback = lambda *args, **kwargs: None\n"
            "get_ipython().showtraceback = lambda *args, **kwargs: None",
            id="showtraceback",
        ),
        pytest.param("import sys\nsys.excepthook = lambda *args: None", id="excepthook"),
    ],
)
def test_swallowed_exceptions_still_fail_the_check(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
    swallow: str,
) -> None:
    """When learner code hides tracebacks, does a failing assert-only check still fail, with its message?"""
    result = grade(course, hc.hostile(swallow))
    assert hc.summary(result) == ALL_ZERO
    assert result.checks[0].message == WRONG_9_1
    assert_host_untouched(area, course, marker, course_digest)


PATCHED_COMPARISONS = """import builtins, math
import numpy
math.isclose = lambda *args, **kwargs: True
numpy.allclose = numpy.isclose = numpy.array_equal = lambda *args, **kwargs: True
builtins.print = lambda *args, **kwargs: None"""

ALWAYS_EQUAL = """class Anything:
    def __eq__(self, other):
        return True
    __hash__ = object.__hash__
def mean_of(values):
    return Anything()"""


def test_patched_comparisons_and_print_do_not_pass_hidden_checks(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
) -> None:
    """With math.isclose, numpy.allclose and print patched in the kernel, does anything pass? (No.)"""
    result = grade(course, hc.hostile(PATCHED_COMPARISONS))
    assert hc.summary(result) == ALL_ZERO
    assert result.checks[1].message == "output differs from the reference"
    assert_host_untouched(area, course, marker, course_digest)


def test_an_always_equal_object_fools_only_assert_only_checks(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
) -> None:
    """Does an object whose == is always true pass the hidden checks? (No: they compare printed values.)

    It does pass the visible assert-only check: learner code runs in the kernel that evaluates
    the assert (docs/ARCHITECTURE.md, "Grading"). The points that count are in hidden checks.
    """
    result = grade(course, hc.hostile(ALWAYS_EQUAL, **{"ex-mean": ALWAYS_EQUAL}))
    assert hc.summary(result) == [("9.1", "pass", 1), ("9.2", "fail", 0), ("9.3", "fail", 0)]
    assert result.checks[1].message == "output differs from the reference"
    assert_host_untouched(area, course, marker, course_digest)


# --- 8. ending early ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ending", "message"),
    [
        pytest.param("import sys\nsys.exit(0)", "not run: exercise 9.2 raised SystemExit", id="sys.exit"),
        pytest.param(
            "import os\nos._exit(0)", "not run: the kernel died in exercise 9.2 (os._exit or a crash)", id="os._exit"
        ),
        pytest.param(
            "import os\nos.kill(os.getpid(), 9)",
            "not run: the kernel died in exercise 9.2 (os._exit or a crash)",
            id="kill-own-kernel",
        ),
    ],
)
def test_ending_early_scores_what_an_unfinished_notebook_scores(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
    ending: str,
    message: str,
) -> None:
    """When exercise 9.2 ends the kernel, do the checks before it keep their verdict and the rest score zero?"""
    result = grade(course, hc.submission(**{**hc.HONEST, "ex-save": ending}))
    assert hc.summary(result) == [("9.1", "pass", 1), ("9.2", "pass", 2), ("9.3", "not-run", 0)]
    assert result.checks[2].message == message
    assert_host_untouched(area, course, marker, course_digest)


# --- 9. the grader process ---------------------------------------------------------------


def test_the_grader_cannot_be_signalled_traced_or_inspected(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
) -> None:
    """Can learner code signal the grader (by pid, or kill -9 -1), ptrace a process, or see other pids?"""
    code = hc.probing(
        {
            "signal": f"os.kill({os.getpid()}, signal.SIGKILL)",
            "killall": "os.kill(-1, signal.SIGKILL)",
            "ptrace": "_ptrace_child()",
            "others": "_others_visible()",
        }
    )
    result = grade(course, hc.hostile(code, report=True))
    assert evidence(result) == (
        "signal=ProcessLookupError killall=ProcessLookupError ptrace=ok:Operation not permitted others=ok:[]"
    )
    assert result.score == 0
    assert_host_untouched(area, course, marker, course_digest)


# --- 10. planted configuration -----------------------------------------------------------


def test_planted_conftest_sitecustomize_pth_and_ini_files_are_inert(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
) -> None:
    """Do conftest.py, sitecustomize.py, *.pth or pytest.ini written by learner code reach the grader or a later job?"""
    payload = f"import os; open('/tmp/{marker}-planted', 'w').close()"
    plant = (
        "import glob, os\n"
        "places = [os.getcwd(), '/home/learner', '/tmp', *glob.glob('/tmp/**/ipc', recursive=True)]\n"
        f"files = {{'conftest.py': {payload!r}, 'sitecustomize.py': {payload!r}, 'usercustomize.py': {payload!r},\n"
        f"         'planted.pth': {payload!r}, 'pytest.ini': '[pytest]\\naddopts = -p no:nbval\\n',\n"
        "         'setup.cfg': '[tool:pytest]\\naddopts = -x\\n'}\n"
        "for place in places:\n"
        "    for name, text in files.items():\n"
        "        open(os.path.join(place, name), 'w').write(text)"
    )
    result = grade(course, hc.hostile(plant))
    assert hc.summary(result) == ALL_ZERO
    assert_host_untouched(area, course, marker, course_digest)
    assert not [p for p in area.rglob("*") if p.name in ("conftest.py", "sitecustomize.py", "pytest.ini")]
    assert grade(course, hc.submission(**hc.HONEST)).score == hc.MAX_SCORE
    assert_host_untouched(area, course, marker, course_digest)


# --- 11 and 12. cells that never end -----------------------------------------------------

IGNORE_INTERRUPTS = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"


@pytest.mark.parametrize(
    ("exercise", "cell_timeout_s", "code", "messages"),
    [
        pytest.param(
            hc.EXERCISE,
            3.0,
            "while True:\n    pass",
            ["not run: exercise 9.1 timed out after 3 s"] * 2,
            id="cpu-loop-interrupted",
        ),
        pytest.param(
            hc.EXERCISE,
            3.0,
            IGNORE_INTERRUPTS + "while True:\n    pass",
            ["not run: exercise 9.1 timed out after 3 s and the kernel had to be stopped"] * 3,
            id="cpu-loop-kernel-stopped",
        ),
        pytest.param(
            hc.TIGHT,
            30.0,
            IGNORE_INTERRUPTS + "while True:\n    pass",
            ["not run: CPU time limit exceeded (4 s) in exercise 9.1"] * 3,
            id="cpu-limit",
        ),
        pytest.param(
            hc.EXERCISE,
            3.0,
            "import time\ntime.sleep(10_000)",
            ["not run: exercise 9.1 timed out after 3 s"] * 2,
            id="sleep-interrupted",
        ),
        pytest.param(
            hc.EXERCISE,
            3.0,
            "answer = input('answer? ')",
            ["not run: exercise 9.1 raised StdinNotImplementedError"] * 2,
            id="input",
        ),
        pytest.param(
            hc.TIGHT,
            30.0,
            IGNORE_INTERRUPTS + "import time\nwhile True:\n    time.sleep(1)",
            ["not run: wall-clock limit exceeded (12 s) in exercise 9.1"] * 3,
            id="wall-clock-limit",
        ),
    ],
)
def test_cells_that_never_end_are_stopped(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
    exercise: str,
    cell_timeout_s: float,
    code: str,
    messages: list[str],
) -> None:
    """Does an endless loop, an endless sleep or input() end in a verdict that says why, with the kernel stopped?"""
    settings = dataclasses.replace(course, cell_timeout_s=cell_timeout_s)
    result = grade(settings, hc.hostile(code, exercise=exercise))
    assert result.score == 0
    assert [c.message for c in result.checks][: len(messages)] == messages
    assert_host_untouched(area, course, marker, course_digest)


# --- 13 and 14. bombs --------------------------------------------------------------------

BOMBS = '''import os, threading, time
children, fork_error = [], "none"
for _ in range(300):
    try:
        pid = os.fork()
    except OSError as exc:
        fork_error = type(exc).__name__
        break
    if pid == 0:
        time.sleep(2)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
threads, thread_error, stop = [], "none", threading.Event()
for _ in range(300):
    try:
        thread = threading.Thread(target=stop.wait, daemon=True)
        thread.start()
    except RuntimeError as exc:
        thread_error = type(exc).__name__
        break
    threads.append(thread)
stop.set()
def capped(count):
    return "capped" if count < LIMIT else str(count)
evidence = f"forks={capped(len(children))}:{fork_error} threads={capped(len(threads))}:{thread_error}"'''


def test_fork_and_thread_bombs_hit_the_process_limit_and_spare_other_jobs(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
    tmp_path: Path,
) -> None:
    """Do a fork bomb and a thread bomb stop at the process limit, while an honest job beside them gets full marks?"""
    bombs = BOMBS.replace("LIMIT", str(hc.LIMITS["processes"]))
    paths = [tmp_path / "bombs.ipynb", tmp_path / "honest.ipynb"]
    nbformat.write(hc.hostile(bombs, report=True), paths[0])
    nbformat.write(hc.submission(**hc.HONEST), paths[1])
    bomber, honest = grade_submissions(course, paths, jobs=2)
    assert evidence(bomber) == "forks=capped:BlockingIOError threads=capped:RuntimeError"
    assert bomber.score == 0
    assert (honest.status, honest.score) == ("graded", hc.MAX_SCORE), render_text(honest)
    assert_host_untouched(area, course, marker, course_digest)


def test_a_memory_bomb_is_stopped_with_a_memory_verdict(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
) -> None:
    """Does a kernel that allocates without end get "memory limit exceeded", and the host stay fine?"""
    bomb = "hog = []\nwhile True:\n    hog.append(bytearray(50 * 1024 * 1024))"
    result = grade(course, hc.hostile(bomb))
    assert result.score == 0
    assert [c.message for c in result.checks[:2]] == ["not run: memory limit exceeded in exercise 9.1"] * 2
    assert_host_untouched(area, course, marker, course_digest)


SPREAD_MEMORY = '''import os, time
children = []
for _ in range(5):
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            block = bytearray(300 * 1024 * 1024)
            block[::4096] = b"x" * len(block[::4096])
            time.sleep(3)
        except MemoryError:
            code = 3
        os._exit(code)
    children.append(pid)
statuses = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
evidence = "killed" if -9 in statuses else f"held:{statuses}"'''


def test_memory_spread_over_processes_is_capped_for_the_whole_job(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
) -> None:
    """Can five processes of 300 MB each (each under the 1 GB per-process limit) hold 1.5 GB together? (No.)"""
    if not job_cgroups_available():
        pytest.skip("no cgroups here (not root, or no writable cgroup fs): per-process limits only")
    result = grade(course, hc.hostile(SPREAD_MEMORY, report=True))
    assert evidence(result) == "killed"
    assert result.score == 0
    assert_host_untouched(area, course, marker, course_digest)


# --- 15. the disk ------------------------------------------------------------------------

FILL_DISK = '''import errno
def fill(paths, size_mb, cap_mb):
    """Write size_mb into each path in turn until a write fails: the error, or how much got through."""
    written = 0
    for path in paths:
        try:
            with open(path, "wb") as stream:
                for _ in range(size_mb):
                    stream.write(b"x" * (1 << 20))
                    stream.flush()
                    written += 1
        except OSError as exc:
            name = errno.errorcode[exc.errno]
            return name if written <= cap_mb else f"{written}MB:{name}"
    return f"{written}MB"
def small_files(folder, count):
    for i in range(count):
        try:
            with open(f"{folder}/small-{i}", "w") as stream:
                stream.write("x")
        except OSError as exc:
            return errno.errorcode[exc.errno]
    return f"{count} files"
_evidence = [
    "big=" + fill(["/home/learner/big"], 1024, FILE_MB),
    "tmp=" + fill([f"/tmp/part-{i}" for i in range(6)], 8, DISK_MB),
    "shm=" + fill([f"/dev/shm/part-{i}" for i in range(6)], 8, DISK_MB),
    "small=" + small_files("/home/learner", 20_000),
    "root=" + fill(["/big"], 8, 0),
    "etc=" + fill(["/etc/big"], 8, 0),
]
evidence = " ".join(_evidence)'''


def test_filling_the_disk_hits_the_file_and_tmpfs_caps(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
) -> None:
    """Do a huge file, many files, /tmp and /dev/shm stop at their caps, / and /etc refuse writes, the host disk too?"""
    code = FILL_DISK.replace("FILE_MB", str(hc.LIMITS["file_mb"])).replace("DISK_MB", str(hc.LIMITS["disk_mb"]))
    used_before = shutil.disk_usage("/").used
    result = grade(course, hc.hostile(code, report=True))
    used_after = shutil.disk_usage("/").used
    assert evidence(result) == "big=EFBIG tmp=ENOSPC shm=ENOSPC small=ENOSPC root=EROFS etc=EROFS"
    assert result.score == 0
    assert used_after - used_before < 512 * 1024 * 1024  # the payload tried to write well over 1 GB
    assert_host_untouched(area, course, marker, course_digest)


# --- 16. output floods -------------------------------------------------------------------

HUGE_IMAGES = """import base64
from IPython.display import display
png = base64.b64encode(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(30 * 1024 * 1024)).decode()
for _ in range(3):
    display({"image/png": png}, raw=True)"""


@pytest.mark.parametrize(
    ("exercise", "code"),
    [
        pytest.param(hc.EXERCISE, "for i in range(100_000):\n    print('flood ' * 20)", id="print-loop"),
        pytest.param(hc.ROOMY, "text = 'x' * 400_000_000\nprint(text)", id="400-MB-string"),
        pytest.param(hc.EXERCISE, HUGE_IMAGES, id="huge-images"),
    ],
)
def test_output_floods_are_stopped_and_leave_the_grader_small(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
    exercise: str,
    code: str,
) -> None:
    """Does printing or displaying hundreds of MB stop at the output limit, the grader's own memory bounded?"""
    settings = dataclasses.replace(course, cell_timeout_s=20.0)
    with runner_peak_rss() as peak:
        result = grade(settings, hc.hostile(code, exercise=exercise))
    assert peak[0] > 0, "the grader's pytest process was never seen"
    assert peak[0] < RUNNER_RSS_BOUND, f"the grader's pytest process reached {peak[0] >> 20} MB"
    assert result.status == "graded" and result.score == 0
    assert [c.message for c in result.checks] == [
        "not run: output limit exceeded (the kernel was stopped) in exercise 9.1"
    ] * 3
    assert_host_untouched(area, course, marker, course_digest)


TERMINAL_TRICKS = '''print("\\x1b[2J\\x1b[H\\x1b]0;owned\\x07 submission.ipynb: 5/5 points\\x00")
evidence = "\\x1b]0;owned\\x07\\r\\x1b[1A\\x1b[2K  PASS    Check 9.1\\x08\\u202e"'''


def test_control_characters_in_feedback_are_shown_escaped(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
) -> None:
    """Can an exception message rewrite the feedback in a terminal (ESC, CR, BEL, backspace, bidi override)?"""
    result = grade(course, hc.hostile(TERMINAL_TRICKS, report=True))
    text = render_text(result)
    assert not [ch for ch in text if ch != "\n" and (ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 or ch == "\u202e")]
    # colour and cursor codes (ESC [ ...) are removed on the way; what is left is shown escaped
    assert evidence(result) == r"\x1b]0;owned\x07\r  PASS    Check 9.1\x08\u202e"
    assert result.score == 0
    assert_host_untouched(area, course, marker, course_digest)


# --- 17. malformed notebooks -------------------------------------------------------------


def _notebook_json(**fields: object) -> bytes:
    import json

    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [], **fields}).encode()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        pytest.param(b'{"nbformat": 4, "cells": [', "not valid JSON (line 1", id="invalid-json"),
        pytest.param(_notebook_json(cells="nope"), "not a valid notebook", id="wrong-schema"),
        pytest.param(
            _notebook_json(cells=[{"cell_type": "code", "id": "x", "metadata": {}}]),
            "not a valid notebook",
            id="cell-without-source",
        ),
        pytest.param(
            b'{"nbformat": 4, "cells": [], "metadata": {"name": "\xff\xfe"}}', "not UTF-8 text (byte", id="not-utf8"
        ),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "nested more than 64 levels", id="deeply-nested"),
        pytest.param(b"[1, 2, 3]", "not a Jupyter notebook", id="json-not-a-notebook"),
    ],
)
def test_malformed_notebooks_are_invalid_with_a_message(course: Settings, data: bytes, says: str) -> None:
    """Does a broken notebook become status invalid with a message saying what is wrong, never a crash?"""
    result = grade(course, data, exercise=hc.EXERCISE)
    assert result.status == "invalid" and result.score == 0
    assert result.message.startswith("submission.ipynb: ") and says in result.message


def test_a_500_mb_notebook_is_refused_before_it_is_read(course: Settings, tmp_path: Path) -> None:
    """Is a 500 MB upload refused by its size, without the grader reading it into memory?"""
    huge = tmp_path / "huge.ipynb"
    with open(huge, "wb") as stream:
        stream.truncate(500 * 1024 * 1024)  # sparse: no disk used
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = grade_notebook(course, huge, exercise=hc.EXERCISE)
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert result.status == "invalid"
    assert "the file is 524.3 MB, over the" in result.message and "clear the outputs" in result.message
    assert peak_after - peak_before < 100 * 1024  # KiB: the file was never read


@pytest.mark.filterwarnings("ignore::nbformat.warnings.DuplicateCellId")
def test_a_duplicated_exercise_cell_id_grades_the_first_copy(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
) -> None:
    """With two cells claiming exercise 9.1's id, is the first graded and the second ignored?"""
    nb = hc.submission(**hc.HONEST)
    second = nbformat.from_dict(dict(next(c for c in nb.cells if c.id == "ex-mean")))
    second.source = "import os\nos._exit(1)"
    nb.cells.append(second)
    assert grade(course, nb).score == hc.MAX_SCORE
    assert_host_untouched(area, course, marker, course_digest)


# --- 18. kernelspec, magics, HTML for the feedback page ----------------------------------


def test_kernelspec_magics_and_html_stay_inside(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
) -> None:
    """Are a foreign kernelspec ignored, shell escapes run inside the sandbox, and script HTML escaped in feedback?"""
    low, high = hc.UID_BASE, hc.UID_BASE + SLOTS
    code = (
        "import os\n"
        "from IPython.display import HTML, Javascript, display\n"
        "display(HTML('<script>alert(1)</script><img src=x onerror=alert(2)>'))\n"
        "display(Javascript('alert(3)'))\n"
        f"uid = !id -u && touch /tmp/{marker}-bang\n"
        f"evidence = (f'<script>alert(4)</script> uid={{{low} <= int(uid[0]) < {high}}} '\n"
        f"            f'bang={{os.path.exists(\"/tmp/{marker}-bang\")}}')"
    )
    bash = f"%%bash\ntouch /tmp/{marker}-bash /home/learner/{marker}-bash\n"
    nb = hc.hostile(code, report=True, **{"ex-save": bash})
    nb.metadata["kernelspec"] = {"name": "bash", "display_name": "the host's shell", "language": "bash"}
    nb.metadata["language_info"] = {"name": "bash"}
    result = grade(course, nb)
    assert evidence(result) == "<script>alert(4)</script> uid=True bang=True"
    assert result.score == 0
    page = render_html([result])
    assert "<script" not in page.lower() and "&lt;script&gt;alert(4)" in page
    assert_host_untouched(area, course, marker, course_digest)  # /tmp/<marker>-bang and -bash are not on the host


# --- 19. links, FIFOs, device nodes ------------------------------------------------------


def test_symlinks_fifos_and_device_nodes_leak_nothing_and_hang_nothing(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
) -> None:
    """Do symlinks (to /etc/shadow, the bundle), FIFOs and device nodes in the work and ipc dirs leak or hang things?"""
    passwd = os.stat("/etc/passwd")
    bundle = bundles[hc.EXERCISE].path
    code = hc.probing(
        {
            "shadow": "os.symlink('/etc/shadow', 'shadow')",
            "readshadow": "open('shadow').read()",
            "bundle": f"os.symlink({str(bundle)!r}, 'bundle')",
            "readbundle": "os.listdir('bundle')",
            "fifo": "os.mkfifo('values.txt')",
            "ipcfifo": "os.mkfifo(glob.glob('/tmp/**/ipc', recursive=True)[0] + '/kernel.fifo')",
            "ipclink": "os.symlink('/etc/passwd', glob.glob('/tmp/**/ipc', recursive=True)[0] + '/link')",
            "mknod": "os.mknod('null', 0o666 | 0o020000, os.makedev(1, 3))",
        }
    )
    result = grade(course, hc.hostile(code, report=True))
    assert evidence(result) == (
        "shadow=ok readshadow=FileNotFoundError bundle=ok readbundle=FileNotFoundError fifo=ok ipcfifo=ok "
        "ipclink=ok mknod=PermissionError"
    )
    assert result.score == 0
    after = os.stat("/etc/passwd")
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (passwd.st_ino, passwd.st_size, passwd.st_mtime_ns)
    assert_host_untouched(area, course, marker, course_digest)


# --- 20. a daemon that outlives its job --------------------------------------------------

DAEMON = '''import os, signal, time
kernel = os.getpid()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(number, signal.SIG_IGN)
        deadline = time.time() + 90
        while time.time() < deadline:
            alive = os.path.exists(f"/proc/{kernel}")
            try:
                open("/tmp/MARKER-daemon", "w").write(str(alive))
                if not alive:
                    os.kill(-1, signal.SIGKILL)  # the next job's processes, were they visible
            except OSError:
                pass
            time.sleep(0.1)
        os._exit(0)
    os._exit(0)
os.wait()
time.sleep(0.3)
evidence = f"daemon={os.path.exists('/tmp/MARKER-daemon')} uid={os.getuid()}"'''


def test_a_daemon_dies_with_its_job_and_the_next_job_on_its_uid_is_clean(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
) -> None:
    """Does a double-forked, setsid daemon outlive its job or reach the next job that gets the same uid?"""
    result = grade(course, hc.hostile(DAEMON.replace("MARKER", marker), report=True))
    started, uid = evidence(result).split()
    assert started == "daemon=True"
    assert result.score == 0
    assert_host_untouched(area, course, marker, course_digest)  # no process of any job uid
    probe = (
        "import glob, os\n"
        f"assert os.getuid() == {uid.removeprefix('uid=')}, 'another uid: not the same slot'\n"
        f"assert not glob.glob('/tmp/*{marker}*'), 'the daemon left something here'\n" + hc.HONEST["ex-save"]
    )
    after = grade(course, hc.submission(**{**hc.HONEST, "ex-save": probe}))
    assert (after.status, after.score) == ("graded", hc.MAX_SCORE), render_text(after)
    assert_host_untouched(area, course, marker, course_digest)


def test_through_a_warm_pool_the_next_submission_still_starts_clean(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
) -> None:
    """Graded by pre-started warm kernels, does a daemon or a planted file of one submission reach the next?"""
    from grader.grading.warm import ACQUIRE_TIMEOUT_S, WarmPool

    handed_out: list[object] = []
    with WarmPool(course, size=1, limits=bundles[hc.EXERCISE].limits) as pool:
        acquire = pool.acquire

        def acquire_and_count(timeout_s: float = ACQUIRE_TIMEOUT_S) -> object:
            handed_out.append(acquire(timeout_s))
            return handed_out[-1]

        pool.acquire = acquire_and_count  # type: ignore[method-assign]
        assert pool.wait_ready()
        daemon = grade(course, hc.hostile(DAEMON.replace("MARKER", marker), report=True), pool=pool)
        assert pool.wait_settled()
        probe = (
            "import glob\n"
            f"assert not glob.glob('/tmp/*{marker}*'), 'the daemon left something here'\n" + hc.HONEST["ex-save"]
        )
        after = grade(course, hc.submission(**{**hc.HONEST, "ex-save": probe}), pool=pool)
    assert len(handed_out) == 2 and all(runner is not None for runner in handed_out), "not graded by warm runners"
    assert evidence(daemon).startswith("daemon=True") and daemon.score == 0
    assert (after.status, after.score) == ("graded", hc.MAX_SCORE), render_text(after)
    assert_host_untouched(area, course, marker, course_digest)


LEAK_BY_EXCEPTION_NAME = """_cells = []
get_ipython().events.register("pre_run_cell", lambda info: _cells.append(info.raw_cell))
def mean_of(values):
    name = "".join(ch if ch.isalnum() else "_" for ch in _cells[-1])
    raise type(name, (Exception,), {})("x")"""


def test_a_hidden_checks_source_never_reaches_the_feedback(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
) -> None:
    """Can learner code smuggle a hidden check's source into the feedback (here: as an exception's class name)?"""
    result = grade(course, hc.submission(**{"ex-mean": LEAK_BY_EXCEPTION_NAME}))
    assert result.score == 0
    assert_host_untouched(area, course, marker, course_digest)
    feedback = render_text(result) + render_html([result])
    assert "0_1__0_2__0_4" not in feedback, "hidden check 9.2's inputs appear in the feedback"


# --- the check-values channel (grading.checkvalues) -----------------------------------------

FORGE_WITH_THE_RUNS_NONCE = """import mlcourse.checks as _checks
class _Forger(_checks.Reporter):
    def print(self, *values, **kwargs):
        super().print(0.25)  # a guess at the hidden value, under the run's own nonce
    def value(self, value):
        super().value(0.25)
_checks.Reporter = _Forger"""
FORGE_WITH_THE_MIME_TYPE = """from IPython.display import display
import builtins, inspect
_real_print = builtins.print
def _forging_print(*values, **kwargs):
    for frame in inspect.stack():  # look for the reporter's nonce in the caller's frames
        reporter = frame.frame.f_globals.get("__grader_report__")
        if reporter is not None:
            display({"application/vnd.mlcourse.check-values+json":
                     {"nonce": reporter._nonce, "kind": "print", "values": [{"t": "str", "v": "forged"}]}}, raw=True)
    _real_print(*values, **kwargs)
builtins.print = _forging_print"""
SUPPRESS_THE_CHANNEL = """import IPython.display
IPython.display.display = lambda *args, **kwargs: None
import mlcourse.checks as _checks
_checks.encode = lambda value, depth=0: {"t": "none"}"""


@pytest.mark.parametrize(
    "attack",
    [FORGE_WITH_THE_RUNS_NONCE, FORGE_WITH_THE_MIME_TYPE, SUPPRESS_THE_CHANNEL],
    ids=["reporter-subclassed", "payloads-with-the-nonce", "display-and-encode-patched"],
)
def test_forged_reordered_or_suppressed_check_values_do_not_pass(
    course: Settings,
    bundles: dict[str, Bundle],
    area: Path,
    marker: str,
    course_digest: tuple,
    host: None,
    attack: str,
) -> None:
    """Can learner code forge, pad or silence the values a hidden check reports, and pass it? (No.)"""
    result = grade(course, hc.hostile(attack))
    assert hc.summary(result) == ALL_ZERO
    assert_host_untouched(area, course, marker, course_digest)
