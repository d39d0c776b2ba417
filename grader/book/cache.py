"""The lesson cache: when an executed lesson can be reused instead of run again.

A lesson is *fresh* when the manifest next to the executed copies records the same cache key
and the executed copy on disk still has the recorded hash. The key covers what can change a
lesson's outputs::

    cells (type, tags, source) + course package version + mlcourse source files
        + requirements.txt + profile + this pipeline's own format version

The manifest is updated (under a file lock, atomically) only after a lesson succeeded.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from nbformat import NotebookNode

from grader.settings import Settings

#: bump when the executed copies' format changes, so old caches are not trusted (2: manifest
#: entries record where each lesson ran)
PIPELINE_VERSION = 2
MANIFEST_NAME = "manifest.json"
#: the kernelspec lessons run under (ipykernel's, found next to the running interpreter)
KERNEL_NAME = "python3"
#: a package whose source is part of every lesson's cache key
COURSE_PACKAGE = "mlcourse"
COURSE_DISTRIBUTION = "mlcourse-platform"


def _package_dir(settings: Settings) -> Path | None:
    local = settings.root / COURSE_PACKAGE
    if (local / "__init__.py").is_file():
        return local
    spec = importlib.util.find_spec(COURSE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _tree_digest(folder: Path | None) -> str:
    digest = hashlib.sha256()
    if folder is None:
        return "absent"
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix in {".pyc", ".pyo"}:
            continue
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def environment_fingerprint(settings: Settings) -> dict[str, str]:
    """The parts of a lesson's cache key that do not depend on the notebook itself."""
    try:
        version = importlib.metadata.version(COURSE_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    requirements = settings.root / "requirements.txt"
    return {
        "pipeline": str(PIPELINE_VERSION),
        "kernel": KERNEL_NAME,
        "course_version": version,
        "mlcourse_source": _tree_digest(_package_dir(settings)),
        "requirements": hashlib.sha256(requirements.read_bytes()).hexdigest() if requirements.is_file() else "absent",
    }


def cache_key(nb: NotebookNode, *, profile: str, environment: dict[str, str]) -> str:
    """sha256 over the notebook's cells (type, tags, source), the environment and the profile."""
    cells = [[cell.cell_type, sorted(cell.get("metadata", {}).get("tags", [])), cell.source] for cell in nb.cells]
    payload = json.dumps(
        {"cells": cells, "environment": environment, "profile": profile}, sort_keys=True, ensure_ascii=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def sha256_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class Manifest:
    """``manifest.json`` beside the executed copies: name → key, executed hash, seconds.

    Updates are read-modify-write under a lock file, so two processes (say, two pytest
    workers) running lessons of the same profile do not drop each other's entries.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / MANIFEST_NAME
        self._lock_path = folder / (MANIFEST_NAME + ".lock")
        self._thread_lock = threading.Lock()

    def read(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        lessons = data.get("lessons") if isinstance(data, dict) else None
        return lessons if isinstance(lessons, dict) else {}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._thread_lock, open(self._lock_path, "a+b") as handle:
            try:
                import fcntl
            except ImportError:  # pragma: no cover - not POSIX: the thread lock is all we have
                yield
                return
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def update(self, name: str, entry: dict[str, object] | None) -> None:
        with self._locked():
            lessons = self.read()
            if entry is None:
                if name not in lessons:
                    return
                lessons.pop(name)
            else:
                lessons[name] = entry
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(
                json.dumps({"version": PIPELINE_VERSION, "lessons": dict(sorted(lessons.items()))}, indent=1) + "\n",
                encoding="utf-8",
            )
            tmp.replace(self.path)

    @staticmethod
    def is_fresh(entry: object, *, key: str, executed: Path) -> bool:
        if not isinstance(entry, dict) or entry.get("key") != key:
            return False
        return entry.get("sha256") is not None and entry.get("sha256") == sha256_file(executed)
