"""The artefacts of a training run as reproducible bytes: what lesson 12 hashes, versions and verifies.

A digest names bytes, so a digest can name a model only if the same model always gives the same
bytes. Each function here writes one artefact in a stable byte form:

- :func:`router_bytes`: the router's weights (``TicketRouter.to_bytes``) without the state that
  changes from one process to the next (below);
- :func:`frame_bytes`: a data snapshot, a frame as CSV with fixed line endings, date format and
  full float precision;
- :func:`canonical_json`: a config (or any JSON value) with sorted keys, fixed separators and
  no NaN;
- :func:`code_revision`: the code that trained it, one sha256 per source file, plus the git
  commit when the caller passes one;
- :func:`dependency_lock`: the pinned versions of the packages in use (``name==version``, sorted).

:func:`router_artefacts` gathers the five for a router and its training frame, keyed by the file
name each is stored under (:data:`ARTEFACT_FILES`). What to do with them (hash them, write a
manifest, verify on load) is the lesson's exercise, not this module's.

Why :func:`router_bytes` and not ``router.to_bytes()``: scikit-learn's text vectorizers remember
``id(self.stop_words)`` (a memory address, ``_stop_words_id``) to avoid repeating a warning, and
pickle writes it. Two processes that train the same router from the same data therefore write
different bytes. The attribute is a cache that scikit-learn rebuilds when it is missing, so
leaving it out changes nothing the router does. The router leaves it out itself in
:meth:`~mlcourse.router.TicketRouter.stable_bytes` (which ``digest()`` hashes); :func:`router_bytes`
is that, named for the artefact it writes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from mlcourse.router import TicketRouter

__all__ = [
    "ARTEFACT_FILES",
    "LOCKED_PACKAGES",
    "canonical_json",
    "code_revision",
    "dependency_lock",
    "frame_bytes",
    "router_artefacts",
    "router_bytes",
]

#: the file name each artefact of a router is stored under
ARTEFACT_FILES = ("weights.bin", "data.csv", "config.json", "code.txt", "lock.txt")
#: the packages whose versions decide what a router's bytes mean
LOCKED_PACKAGES = ("numpy", "pandas", "scikit-learn", "scipy")


def canonical_json(value: Any) -> bytes:
    """``value`` as UTF-8 JSON that is the same bytes for the same value: sorted keys, no spaces, one newline.

    Raises:
        ValueError: ``value`` holds NaN or infinity (JSON has no spelling for them).
        TypeError: ``value`` holds something JSON cannot write (a set, a date, an object).
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def frame_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as CSV bytes that depend only on its values: no index, ``\\n`` line ends,
    ISO date-times, floats written with all 17 significant digits (so they read back exactly)."""
    text = frame.to_csv(index=False, lineterminator="\n", date_format="%Y-%m-%dT%H:%M:%S", float_format="%.17g")
    return text.encode("utf-8")


def router_bytes(router: TicketRouter) -> bytes:
    """``router.to_bytes()`` without per-process state: the same router gives the same bytes in any process.

    ``TicketRouter.from_bytes`` reads them like any other router bytes (``router.stable_bytes()``).
    """
    return router.stable_bytes()


def code_revision(modules: Sequence[ModuleType], *, commit: str | None = None) -> bytes:
    """One line per module, ``<module> sha256:<digest of its source file>``, sorted; and ``git <commit>`` first
    when ``commit`` is given (``git rev-parse HEAD``, where the code lives in a repository).

    Raises:
        ValueError: a module has no source file (a built-in module).
    """
    lines = []
    for module in modules:
        source = getattr(module, "__file__", None)
        if not source:
            raise ValueError(f"module {module.__name__} has no source file to hash; pass modules written in Python")
        digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()
        lines.append(f"{module.__name__} sha256:{digest}")
    head = [f"git {commit}"] if commit else []
    return "".join(f"{line}\n" for line in head + sorted(lines)).encode("utf-8")


def dependency_lock(packages: Iterable[str] = LOCKED_PACKAGES) -> bytes:
    """``name==version`` for each installed package, one a line, sorted by name (a pip requirements file).

    Raises:
        ValueError: a package is not installed.
    """
    lines = []
    for name in sorted(set(packages), key=str.lower):
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise ValueError(f"package {name!r} is not installed, so its version cannot be locked") from exc
        lines.append(f"{name}=={version}\n")
    return "".join(lines).encode("utf-8")


def router_artefacts(
    router: TicketRouter, frame: pd.DataFrame, *, modules: Sequence[ModuleType] = (), commit: str | None = None
) -> dict[str, bytes]:
    """The five artefacts of a router trained on ``frame``, keyed by file name (:data:`ARTEFACT_FILES`).

    ``modules`` is the code that trained it (by default :mod:`mlcourse.router` and
    :mod:`mlcourse.tickets`); ``commit`` an optional git revision for ``code.txt``.
    """
    if not modules:
        import mlcourse.router
        import mlcourse.tickets

        modules = (mlcourse.router, mlcourse.tickets)
    contents = (
        router_bytes(router),
        frame_bytes(frame),
        canonical_json(router.config.as_dict()),
        code_revision(modules, commit=commit),
        dependency_lock(),
    )
    return dict(zip(ARTEFACT_FILES, contents, strict=True))
