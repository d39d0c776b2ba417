"""One typed, frozen settings object; environment overrides use the ``GRADER_`` prefix.

Nothing is read at import time: call :func:`load_settings` where settings are needed.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from grader import markers
from grader.errors import UsageError


def find_root(start: Path | None = None) -> Path:
    """The course repository root: the nearest directory holding ``_toc.yml``."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "_toc.yml").is_file() and (candidate / "_config.yml").is_file():
            return candidate
    raise UsageError(
        f"{here} is not inside the course repository (no _toc.yml/_config.yml found above it); "
        "run the command from the repository, or set GRADER_ROOT"
    )


@dataclass(frozen=True)
class Settings:
    """Where things are and how long they may take."""

    root: Path
    #: everything generated (executed lessons, site, grading bundles, cache); never committed
    build_dir: Path
    #: wall-clock limit for one lesson notebook under papermill, seconds
    lesson_timeout_s: float = 900.0
    #: wall-clock limit for one cell (lesson or grading), seconds
    cell_timeout_s: float = 300.0
    #: parallel lesson executions
    lesson_jobs: int = 1
    #: port of ``grader serve`` / ``make serve``
    port: int = 8000
    host: str = "127.0.0.1"

    # --- derived locations -----------------------------------------------------------
    @property
    def notebooks_dir(self) -> Path:
        return self.root / "notebooks"

    @property
    def solutions_dir(self) -> Path:
        return self.root / "solutions"

    @property
    def exercises_dir(self) -> Path:
        return self.root / "exercises"

    @property
    def book_dir(self) -> Path:
        return self.root / "book"

    @property
    def executed_dir(self) -> Path:
        """Executed lesson notebooks, one folder per profile."""
        return self.build_dir / "executed"

    @property
    def site_dir(self) -> Path:
        """The built static site (``index.html`` at its top)."""
        return self.build_dir / "html"

    @property
    def bundle_dir(self) -> Path:
        """Grading bundles (hidden checks, reference outputs): never shipped to learners."""
        return self.build_dir / "grading"


_ENV_FIELDS = {
    "lesson_timeout_s": float,
    "cell_timeout_s": float,
    "lesson_jobs": int,
    "port": int,
    "host": str,
}


def load_settings(root: Path | None = None, **overrides: object) -> Settings:
    """Settings from defaults, then ``GRADER_*`` environment variables, then ``overrides``."""
    env = os.environ
    base = Path(env[markers.ENV_PREFIX + "ROOT"]) if markers.ENV_PREFIX + "ROOT" in env else None
    resolved_root = find_root(root or base)
    build = env.get(markers.ENV_PREFIX + "BUILD_DIR")
    values: dict[str, object] = {
        "root": resolved_root,
        "build_dir": Path(build).resolve() if build else resolved_root / "_build",
    }
    for name, kind in _ENV_FIELDS.items():
        key = markers.ENV_PREFIX + name.upper()
        if key in env:
            try:
                values[name] = kind(env[key])
            except ValueError as exc:
                raise UsageError(f"{key}={env[key]!r} is not a valid {kind.__name__}") from exc
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = set(values) - known
    if unknown:
        raise UsageError(f"unknown settings: {', '.join(sorted(unknown))}")
    return Settings(**values)  # type: ignore[arg-type]
