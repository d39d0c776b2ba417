"""The static site: stage the book's sources, then build them with Jupyter Book 1.

Steps, in order:

1. :func:`grader.book.lessons.run_lessons` brings the executed lesson copies up to date (cached).
2. :func:`stage` mirrors what the site is made of into ``<build>/site-src``: ``_config.yml``,
   ``_toc.yml``, ``book/``, ``exercises/``, the site's own static files (``_static/``: Jupyter
   Book publishes them at ``_static/…``) and the *executed* lessons in place of
   ``notebooks/*.ipynb`` (a recorded GPU run's outputs where one matches the lesson; every lesson
   and chapter page with a "Last verified" note, :mod:`grader.book.verified`). Only files whose
   bytes changed are rewritten, so Sphinx (which decides by modification time) re-reads only the
   pages that changed. ``solutions/`` and the grading
   bundles are never staged.
3. Jupyter Book's Sphinx build (execution off, warnings are errors, nit-picky references) runs in
   a subprocess, writing straight into ``settings.site_dir``; its log goes to
   ``<build>/logs/book.log``. When nothing staged changed since the last successful build, this
   step is skipped. MathJax is not staged: the ``sphinx-mathjax-offline`` extension (named in
   ``_config.yml``) copies the packaged MathJax into the site's ``_static/mathjax/``, so that
   maths renders with no CDN (the service's CSP allows scripts from the site only) and offline.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from grader.book import lessons, verified
from grader.errors import BookBuildFailed, UsageError
from grader.settings import Settings

__all__ = ["StageReport", "build_book", "stage", "staged_sources"]

#: bump when staging or build options change, so an old build stamp is not trusted
BOOK_PIPELINE_VERSION = 3
#: folders copied to the build source as they are (``notebooks/`` is handled apart); ``_static``
#: holds files the pages use from the site itself (the "Open in Colab" badge)
STAGED_FOLDERS = ("book", "exercises", "_static")
ROOT_FILES = ("_config.yml", "_toc.yml")
#: pages at the repository root (the front page), staged when present
ROOT_PAGES = ("index.md",)
#: page sources Sphinx turns into one HTML file each
PAGE_SUFFIXES = (".md", ".ipynb", ".rst")
_SKIPPED_PARTS = {"__pycache__", ".ipynb_checkpoints", "_build"}
#: how many warning lines a BookBuildFailed message shows at most
MAX_REPORTED_LINES = 20


def _source_dir(settings: Settings) -> Path:
    return settings.build_dir / "site-src"


def _doctree_dir(settings: Settings) -> Path:
    return settings.build_dir / "site-doctrees"


def _stamp_path(settings: Settings) -> Path:
    return settings.build_dir / "site-build.json"


def _log_path(settings: Settings) -> Path:
    return settings.build_dir / "logs" / "book.log"


# --- staging --------------------------------------------------------------------------------


def _walk(folder: Path) -> Iterable[Path]:
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).parts
        if path.is_file() and not any(p in _SKIPPED_PARTS or p.startswith(".") for p in relative):
            yield path


def _config_assets(settings: Settings) -> list[str]:
    """Files ``_config.yml`` points to at the root (logo, favicon, bibliographies)."""
    try:
        config = yaml.safe_load((settings.root / "_config.yml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BookBuildFailed(f"_config.yml cannot be read: {exc}") from None
    candidates = [config.get("logo"), (config.get("html") or {}).get("favicon"), *config.get("bibtex_bibfiles", [])]
    return [c for c in candidates if isinstance(c, str) and c and (settings.root / c).is_file()]


def staged_sources(settings: Settings, runs: Sequence[lessons.LessonRun]) -> dict[str, Path]:
    """What the site is built from: staged path (relative, POSIX) → the file to copy there.

    Lesson notebooks come from their executed copies, or from a recorded GPU run of the same
    cells (:mod:`grader.book.verified`), with a note saying where they were last verified; so
    does each lesson's chapter. Every other file comes from the repository. Nothing from
    ``solutions/`` or the grading bundles is ever included.
    """
    files: dict[str, Path] = {}
    for name in (*ROOT_FILES, *ROOT_PAGES, *_config_assets(settings)):
        if (settings.root / name).is_file():
            files[Path(name).as_posix()] = settings.root / name
    for folder in STAGED_FOLDERS:
        for path in _walk(settings.root / folder):
            files[path.relative_to(settings.root).as_posix()] = path
    for path in _walk(settings.notebooks_dir):
        if path.suffix != ".ipynb":  # images and data next to the lessons
            files[path.relative_to(settings.root).as_posix()] = path
    recorded = verified.recorded_runs(settings.root)
    for run in runs:
        # the executed copy (or a recorded GPU run's) with the "Last verified" note; the chapter too
        files.update(
            verified.decorated_sources(
                settings, run.name, source=run.source, executed=run.executed, own=run.verified, recorded=recorded
            )
        )
    forbidden = (settings.solutions_dir.resolve(), settings.bundle_dir.resolve())
    for staged, origin in files.items():
        if any(origin.resolve().is_relative_to(place) for place in forbidden):  # pragma: no cover - by construction
            raise BookBuildFailed(f"refusing to publish {staged}: it comes from {origin}")
    return files


@dataclass
class StageReport:
    """What :func:`stage` did to the build source tree."""

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    #: sha256 over every staged path and its content: equal digests mean an identical source tree
    digest: str = ""


def _same_bytes(a: Path, b: Path) -> bytes | None:
    """The bytes of ``a`` when ``b`` differs from them (or is missing); None when they are equal."""
    data = a.read_bytes()
    try:
        if b.stat().st_size == len(data) and b.read_bytes() == data:
            return None
    except OSError:
        pass
    return data


def stage(files: dict[str, Path], destination: Path) -> StageReport:
    """Make ``destination`` hold exactly ``files``, rewriting only what changed (mtimes kept)."""
    report = StageReport()
    digest = hashlib.sha256()
    destination.mkdir(parents=True, exist_ok=True)
    for relative in sorted(files):
        target = destination / relative
        changed = _same_bytes(files[relative], target)
        data = target.read_bytes() if changed is None else changed
        digest.update(relative.encode() + b"\0" + hashlib.sha256(data).digest())
        if changed is None:
            report.unchanged += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.staging")
        tmp.write_bytes(changed)
        tmp.replace(target)
        report.written.append(relative)
    for path in sorted(destination.rglob("*"), reverse=True):
        relative = path.relative_to(destination).as_posix()
        if path.is_dir():
            if not any(path.iterdir()):
                path.rmdir()
        elif relative not in files:
            path.unlink()
            report.removed.append(relative)
    report.digest = digest.hexdigest()
    return report


def _remove_stale_pages(site: Path, removed: Iterable[str]) -> None:
    """Sphinx forgets a deleted page but leaves its HTML behind: delete it."""
    for relative in removed:
        path = Path(relative)
        if path.suffix in PAGE_SUFFIXES:
            (site / path.with_suffix(".html")).unlink(missing_ok=True)
            (site / "_sources" / path).unlink(missing_ok=True)
            (site / "_sources" / (relative + ".txt")).unlink(missing_ok=True)


# --- building ----------------------------------------------------------------------------------


def _tool_versions() -> dict[str, str]:
    versions = {"pipeline": str(BOOK_PIPELINE_VERSION), "python": sys.version.split()[0]}
    for dist in ("jupyter-book", "sphinx", "myst-nb", "sphinx-book-theme", "sphinx-mathjax-offline"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "absent"
    return versions


_PROBLEM = re.compile(r"(WARNING|ERROR|CRITICAL|SEVERE):|Exception occurred|^\w*(Error|Exception)\b")


def problem_lines(log: str, *, source: Path) -> list[str]:
    """The warning and error lines of a Sphinx log, with staged paths shown as repository paths."""
    prefix = str(source) + os.sep
    found: list[str] = []
    for line in log.splitlines():
        if _PROBLEM.search(line):
            text = line.replace(prefix, "").strip()
            if text not in found:
                found.append(text)
    return found


def _run_sphinx(settings: Settings, *, pages: int) -> tuple[int, str]:
    """Run the Sphinx build in a subprocess, its output to the log file; (exit code, log text)."""
    log_path = _log_path(settings)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "grader.book.site",
        str(_source_dir(settings)),
        str(settings.site_dir),
        str(_doctree_dir(settings)),
    ]
    env = {**os.environ, "NO_COLOR": "1", "PYTHONHASHSEED": "0", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    with (
        open(log_path, "w", encoding="utf-8") as log,
        tqdm(total=None, desc="book", bar_format="{desc}: {postfix} [{elapsed}]", file=sys.stderr, disable=None) as bar,
    ):
        bar.set_postfix_str(f"{pages} staged page(s) changed")
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=env,
        )
        assert proc.stdout is not None  # for the type checker: stdout=PIPE above
        try:
            for line in proc.stdout:
                log.write(line)
                if line.strip():
                    bar.set_postfix_str(line.strip()[:70])
            proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    return proc.returncode, log_path.read_text(encoding="utf-8", errors="replace")


def build_book(settings: Settings, *, profile: str) -> Path:
    """Execute stale lessons, stage the sources and build the site; the path of its ``index.html``.

    Raises:
        LessonFailed: a lesson notebook failed (the site is not built).
        BookBuildFailed: Jupyter Book reported a warning or an error (a broken reference, a
            page missing from the toc, …); the message lists those lines.
    """
    for name in ROOT_FILES:
        if not (settings.root / name).is_file():
            raise UsageError(f"{settings.root} has no {name}; run the command from the course repository")
    runs = lessons.run_lessons(settings, None, profile=profile)
    files = staged_sources(settings, runs)
    report = stage(files, _source_dir(settings))
    stamp = {"sources": report.digest, "tools": _tool_versions(), "site": str(settings.site_dir)}
    index = settings.site_dir / "index.html"
    stamp_path = _stamp_path(settings)
    try:
        previous = json.loads(stamp_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = None
    if previous == stamp and index.is_file():
        return index

    stamp_path.unlink(missing_ok=True)
    _remove_stale_pages(settings.site_dir, report.removed)
    changed_pages = sum(Path(p).suffix in PAGE_SUFFIXES for p in report.written + report.removed)
    code, log = _run_sphinx(settings, pages=changed_pages)
    if code != 0 or not index.is_file():
        # Sphinx does not re-read a page that only warned, so a retry must start from scratch.
        shutil.rmtree(_doctree_dir(settings), ignore_errors=True)
        lines = problem_lines(log, source=_source_dir(settings))
        shown = lines[:MAX_REPORTED_LINES]
        more = f"\n  … and {len(lines) - len(shown)} more" if len(lines) > len(shown) else ""
        body = "\n  ".join(shown) if shown else "(no warning lines; see the log)"
        raise BookBuildFailed(
            f"the book did not build (exit code {code}); full log: {settings.build_dir.name}/logs/book.log\n  "
            + body
            + more
        )
    stamp_path.write_text(json.dumps(stamp, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return index


def _list_inline_scripts_once() -> None:
    """Make each inline script appear once per page.

    Sphinx 7 writes twice an inline script that an extension adds once the builder has started
    (sphinx-doc/sphinx#13402, fixed upstream for Sphinx 8; Jupyter Book 1 needs Sphinx 7): the
    second copy of sphinx-thebe's ``const THEBE_JS_URL = …`` is a SyntaxError on every page. This
    is Sphinx's fix: the builder records such a script under ``""``, never ``None``, so the copy
    it adds again before writing compares equal and is dropped.
    """
    from sphinx.builders.html import StandaloneHTMLBuilder

    add_js_file = StandaloneHTMLBuilder.add_js_file

    def add_once(self: StandaloneHTMLBuilder, filename: str | None, **kwargs: Any) -> None:
        add_js_file(self, filename or "", **kwargs)

    StandaloneHTMLBuilder.add_js_file = add_once  # type: ignore[method-assign]


def _sphinx_main(argv: Sequence[str]) -> int:
    """``python -m grader.book.site SOURCE OUTPUT DOCTREES``: one Jupyter Book build (used by build_book)."""
    from jupyter_book.sphinx import build_sphinx
    from sphinx.util.console import nocolor

    nocolor()
    _list_inline_scripts_once()
    source, output, doctrees = (Path(a) for a in argv)
    result = build_sphinx(
        source,
        output,
        doctreedir=doctrees,
        noconfig=True,
        path_config=str(source / "_config.yml"),
        confoverrides={
            "external_toc_path": (source / "_toc.yml").as_posix(),
            "nitpicky": True,
            "latex_individualpages": False,
        },
        warningiserror=True,
        keep_going=True,
    )
    if isinstance(result, BaseException):
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(_sphinx_main(sys.argv[1:]))
