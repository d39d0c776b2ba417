"""The Python that runs inside the sandbox, and the host directories it must see."""

from __future__ import annotations

import stat
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from grader.errors import SandboxUnavailable


def _readable_by_others(path: Path) -> bool:
    """Can a stranger uid reach and read ``path`` (every parent searchable)?"""
    try:
        path = path.resolve()
        if not path.stat().st_mode & stat.S_IROTH:
            return False
        return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.parents)
    except OSError:
        return False


@dataclass(frozen=True)
class Interpreter:
    """The Python that runs inside the sandbox, and the site directories it must see."""

    executable: Path
    site_dirs: tuple[Path, ...]

    @property
    def mounts(self) -> tuple[Path, ...]:
        """Host directories to bind read-only so the interpreter works inside."""
        dirs = {Path(sysconfig.get_paths()["purelib"]), Path(sys.prefix)}
        if not str(self.executable).startswith("/usr/"):
            dirs.add(Path(self.executable).resolve().parents[1])
        return tuple(sorted(d for d in dirs if not str(d).startswith("/usr/")))


def find_interpreter() -> Interpreter:
    """This environment's Python if a sandbox uid can read it, else a system Python of the same X.Y.

    A Python under a 0700 home directory (pyenv under /root, say) cannot be read by the sandbox
    uid; Debian's ``/usr/bin/python3.X`` runs the same environment's packages (same ABI).
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    site_dirs = tuple(
        Path(p) for p in dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    )
    own = Path(sys.executable)
    if _readable_by_others(own):
        return Interpreter(own.resolve(), site_dirs)
    for candidate in (Path(f"/usr/bin/python{version}"), Path(f"/usr/local/bin/python{version}")):
        if candidate.exists() and _readable_by_others(candidate):
            return Interpreter(candidate.resolve(), site_dirs)
    raise SandboxUnavailable(
        f"the course's Python ({own.resolve()}) is not readable by the sandbox uid (a parent directory is "
        f"private) and no system python{version} was found; install Debian's python{version} "
        "(`apt-get install python3`) or create .venv from a Python outside a private home directory"
    )


def editable_package_dirs() -> list[Path]:
    """The course's own packages (installed editable): only ``mlcourse`` is visible inside."""
    import mlcourse

    return [Path(mlcourse.__file__).resolve().parent]
