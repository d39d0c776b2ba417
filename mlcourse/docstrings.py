"""Real, human-written text on every machine: the docstrings of installed libraries.

The course's tickets are generated; this is the real text next to them. Every Python
environment that runs the course has numpy, pandas, scikit-learn, scipy, matplotlib and torch
installed, and their docstrings were written by hundreds of people, in many styles, about
overlapping subjects (arrays, frames, models, plots, tensors). :func:`load_docstrings` reads
them **from the source files with** :mod:`ast` (nothing is imported, nothing is downloaded),
labels each by the library it comes from, and samples a balanced, seeded frame:

===========  ======  ==================================================================
column       dtype   meaning
===========  ======  ==================================================================
text         str     the docstring's description: its first paragraphs, doctest and
                     section lines (``Parameters``, ``Returns``…) left out, the library's
                     own names masked (see below), at most ``max_chars`` characters
library      str     the label: one of :data:`LIBRARIES`
module       str     the dotted module the docstring is in (``numpy.linalg._linalg``)
group        str     the module's first two components (``numpy.linalg``): the unit of
                     :func:`split_by_module`, so that no subpackage is on both sides
kind         str     ``module``, ``class`` or ``function``
name         str     the qualified name inside the module (``ndarray.sum``); ``""`` for
                     a module's own docstring
===========  ======  ==================================================================

**Masking.** A docstring that says "numpy" or ``np.`` names its label. Every library's names
and import aliases (:data:`ALIASES`, all six libraries in every text, so that the mask itself
says nothing about the label) are replaced by ``<lib>``, so a model must learn from the rest of
the text. Masking is on by default; ``mask=False`` shows why it is needed.

**Caching.** Parsing a library's files takes seconds, so the frame is cached as JSON under
``$MLCOURSE_CACHE`` (default ``~/.cache/mlcourse``), keyed by every argument and every
library's version; an unwritable cache directory is skipped silently. The data depends on the
installed versions: :func:`data_card` records them, and two machines with other versions get
other (equally valid) frames.

:func:`data_card` writes the frame's data card: size, classes, versions, the licences of the
sources, and the known quirks.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "ALIASES",
    "ENV_CACHE",
    "LIBRARIES",
    "LICENCES",
    "data_card",
    "load_docstrings",
    "split_by_module",
]

#: the labels: import names of the libraries whose docstrings are read
LIBRARIES = ("numpy", "pandas", "sklearn", "scipy", "matplotlib", "torch")
#: the libraries' names and import aliases, masked as ``<lib>`` in every text (whole words, any case)
ALIASES: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy", "np"),
    "pandas": ("pandas", "pd"),
    "sklearn": ("sklearn", "scikit-learn", "scikit", "skl"),
    "scipy": ("scipy", "sp"),
    "matplotlib": ("matplotlib", "mpl", "plt", "pyplot", "pylab"),
    "torch": ("torch", "pytorch"),
}
#: the distribution each library is installed from (for versions), and its licence
_DISTRIBUTIONS = {
    "numpy": "numpy",
    "pandas": "pandas",
    "sklearn": "scikit-learn",
    "scipy": "scipy",
    "matplotlib": "matplotlib",
    "torch": "torch",
}
LICENCES = {
    "numpy": "BSD-3-Clause",
    "pandas": "BSD-3-Clause",
    "sklearn": "BSD-3-Clause",
    "scipy": "BSD-3-Clause",
    "matplotlib": "Matplotlib License (PSF-based, BSD-compatible)",
    "torch": "BSD-3-Clause (PyTorch licence)",
}
#: environment variable naming the cache directory
ENV_CACHE = "MLCOURSE_CACHE"
#: folders whose files are not the library's own prose (tests, vendored code, generated stubs)
_SKIPPED_DIRS = frozenset(
    {
        "tests",
        "test",
        "testing",
        "__pycache__",
        # other projects' code shipped inside a library: its docstrings are not the library's
        "_vendor",
        "vendor",
        "vendored_templates",
        "externals",
        "_external",
        "array_api_compat",
        "array_api_extra",
        "_uarray",
        "_pep440",
    }
)
#: numpydoc / Google section headers: the description ends where these begin
_SECTION = re.compile(
    r"^\s*(Parameters|Returns|Yields|Raises|Warns|See Also|Notes|References|Examples?|Attributes|Methods|"
    r"Args|Arguments|Keyword Args|Other Parameters|Shape|Note|Warning|Example)\s*:?\s*$"
)
_RULE = re.compile(r"^\s*[-=~^]{3,}\s*$")
#: bump when the extraction changes, so old caches are not read
_FORMAT = 2


def load_docstrings(
    libraries: Sequence[str] = LIBRARIES,
    *,
    per_library: int = 300,
    seed: int = 0,
    min_chars: int = 60,
    max_chars: int = 400,
    mask: bool = True,
    cache: bool = True,
) -> pd.DataFrame:
    """A balanced, seeded frame of docstrings labelled by library (columns in the module docstring).

    Files are visited in a seeded random order and parsed until ``per_library`` docstrings of at
    least ``min_chars`` characters are found (at most ``max(5, per_library // 25)`` from one
    file), so the cost does not grow with the library's size.
    Rows are shuffled with ``seed``.

    Raises:
        ValueError: an unknown library, or one that is not installed, or ``per_library`` < 1.
    """
    libraries = tuple(libraries)
    unknown = [name for name in libraries if name not in ALIASES]
    if unknown:
        raise ValueError(f"unknown libraries {unknown}; choose from {', '.join(LIBRARIES)}")
    if per_library < 1:
        raise ValueError(f"per_library must be at least 1, got {per_library}")
    versions = {name: _version(name) for name in libraries}
    arguments = {
        "libraries": libraries,
        "per_library": per_library,
        "seed": seed,
        "min_chars": min_chars,
        "max_chars": max_chars,
        "mask": mask,
        "versions": versions,
        "format": _FORMAT,
    }
    path = _cache_path(arguments) if cache else None
    if path is not None and path.is_file():
        try:
            return _frame(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is rebuilt
    rows: list[dict[str, str]] = []
    for index, library in enumerate(libraries):
        rng = np.random.default_rng([seed, index])
        rows.extend(_sample(library, rng, per_library=per_library, min_chars=min_chars, max_chars=max_chars, mask=mask))
    order = np.random.default_rng([seed, len(libraries)]).permutation(len(rows))
    rows = [rows[i] for i in order]
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(rows))
        except OSError:
            pass  # a read-only home (the grading sandbox): no cache, same data
    return _frame(rows)


def split_by_module(
    frame: pd.DataFrame, test_fraction: float = 0.3, *, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split so that no ``group`` (subpackage) is on both sides: ``(train, test)``.

    Groups are assigned whole, per library, in a seeded order, until each library's test side
    holds about ``test_fraction`` of its rows; every library keeps at least one group on each
    side when it has two.

    Raises:
        ValueError: ``test_fraction`` is not strictly between 0 and 1.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    test_groups: set[str] = set()
    for library in sorted(frame["library"].unique()):
        sizes = frame.loc[frame["library"] == library, "group"].value_counts().sort_index()
        groups = list(sizes.index[rng.permutation(len(sizes))])
        target, taken = test_fraction * sizes.sum(), 0
        for group in groups[:-1] if len(groups) > 1 else []:
            if taken >= target:
                break
            test_groups.add(group)
            taken += int(sizes[group])
    is_test = frame["group"].isin(test_groups)
    return frame[~is_test].reset_index(drop=True), frame[is_test].reset_index(drop=True)


def data_card(frame: pd.DataFrame) -> str:
    """The frame's data card, in Markdown: size, classes, versions, licences, known quirks."""
    counts = frame["library"].value_counts().sort_index()
    lines = [
        "**Data card: library docstrings**",
        "",
        f"- **Size:** {len(frame)} docstrings from {frame['module'].nunique()} modules in "
        f"{frame['group'].nunique()} subpackages; median length {int(frame['text'].str.len().median())} characters.",
        "- **Classes** (the library a docstring comes from): "
        + ", ".join(f"{name} {count}" for name, count in counts.items())
        + ".",
        "- **Source and versions:** the installed packages' own source files, read with `ast` (nothing imported "
        "or downloaded): " + ", ".join(f"{name} {_version(name)}" for name in counts.index) + ".",
        "- **Licences of the sources:** " + "; ".join(f"{name}: {LICENCES[name]}" for name in counts.index) + ".",
        "- **Known quirks:** every library's names and aliases are masked as `<lib>` (unmasked, they give the "
        "label away); docstrings are not independent — a class and its methods, or functions generated from one "
        "template, share sentences, so split by subpackage (`split_by_module`), never by row; some docstrings "
        "document wrappers of another library (pandas and scikit-learn wrap numpy, torch mirrors numpy's "
        "names), so a few are ambiguous even to a person; private helpers are included, vendored copies "
        "of other projects are not; other installed versions give other rows.",
    ]
    return "\n".join(lines)


def _frame(rows: list[dict[str, str]]) -> pd.DataFrame:
    columns = ["text", "library", "module", "group", "kind", "name"]
    return pd.DataFrame(rows, columns=columns).astype(dict.fromkeys(columns, str))


def _version(library: str) -> str:
    try:
        return importlib.metadata.version(_DISTRIBUTIONS[library])
    except importlib.metadata.PackageNotFoundError as exc:
        raise ValueError(f"{library} is not installed here; install it or leave it out of `libraries`") from exc


def _cache_path(arguments: dict[str, object]) -> Path | None:
    root = os.environ.get(ENV_CACHE, "").strip() or str(Path.home() / ".cache" / "mlcourse")
    digest = hashlib.sha256(json.dumps(arguments, sort_keys=True).encode()).hexdigest()[:20]
    return Path(root) / f"docstrings-{digest}.json"


def _package_dir(library: str) -> Path:
    spec = importlib.util.find_spec(library)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"{library} is not installed here; install it or leave it out of `libraries`")
    return Path(next(iter(spec.submodule_search_locations)))


def _source_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        found.extend(
            Path(folder) / name for name in sorted(files) if name.endswith(".py") and not name.startswith("test_")
        )
    return found


def _sample(
    library: str, rng: np.random.Generator, *, per_library: int, min_chars: int, max_chars: int, mask: bool
) -> list[dict[str, str]]:
    root = _package_dir(library)
    files = _source_files(root)
    pattern = _mask_pattern() if mask else None
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    per_file = max(5, per_library // 25)  # many modules, not a few big ones
    for position in rng.permutation(len(files)):
        path = files[int(position)]
        module = ".".join((library, *path.relative_to(root).with_suffix("").parts))
        module = module.removesuffix(".__init__")
        group = ".".join(module.split(".")[:2])
        taken = 0
        for kind, name, raw in _docstrings(path):
            if taken == per_file:
                break
            text = _description(raw, max_chars)
            if pattern is not None:
                text = pattern.sub("<lib>", text)
            if len(text) < min_chars or text in seen:
                continue
            seen.add(text)
            taken += 1
            rows.append(
                {"text": text, "library": library, "module": module, "group": group, "kind": kind, "name": name}
            )
        if len(rows) >= per_library:
            break
    return rows[:per_library]


def _docstrings(path: Path) -> Iterator[tuple[str, str, str]]:
    """(kind, qualified name, docstring) for the module, its classes and functions, in file order."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return
    module_doc = ast.get_docstring(tree)
    if module_doc:
        yield "module", "", module_doc
    stack: list[tuple[ast.AST, str]] = [(tree, "")]
    while stack:
        node, prefix = stack.pop(0)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                doc = ast.get_docstring(child)
                if doc:
                    yield ("class" if isinstance(child, ast.ClassDef) else "function"), name, doc
                if isinstance(child, ast.ClassDef):
                    stack.append((child, f"{name}."))


def _description(raw: str, max_chars: int) -> str:
    """The prose before the first section header, doctest or directive, on one line, cut at a word."""
    kept: list[str] = []
    for line in raw.splitlines():
        stripped = line.strip()
        if _SECTION.match(line) or stripped.startswith((">>>", "..")) or (_RULE.match(line) and kept):
            break
        if _RULE.match(line):
            continue
        kept.append(stripped)
    text = " ".join(" ".join(kept).split())
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0]
    return text


def _mask_pattern() -> re.Pattern[str]:
    names = sorted({name for aliases in ALIASES.values() for name in aliases}, key=len, reverse=True)
    return re.compile(r"(?<![\w-])(" + "|".join(re.escape(name) for name in names) + r")(?![\w-])", re.IGNORECASE)
