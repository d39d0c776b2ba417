"""Exercise authoring: turn ``solutions/NN-slug.ipynb`` into the learner stub ``exercises/NN-slug.ipynb``.

The pipeline for one notebook is a short list of small steps, each testable on one cell:

1. :func:`lint` — refuse a solution that breaks the authoring rules (all problems at once);
2. :func:`make_exercise` — drop hidden checks, replace solution regions with stubs
   (:func:`strip_solution`), clear outputs, keep every cell id, stamp the exercise id and
   put the generated header, "Open in Colab" badge and Colab setup cell on top;
3. :func:`assign` — do that for every solution and write ``exercises/`` (or, with
   ``check=True``, only say what is stale).

Cell roles come from tags and graded cells from ``cell.metadata["grader"]``; every tag, marker
and metadata key is spelled in :mod:`grader.format.markers`. Nothing here prints or exits.
"""

from __future__ import annotations

import ast
import copy
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from grader.errors import AuthoringError, MarkerError, StaleExercises
from grader.format import markers
from grader.format.notebooks import read_notebook, write_notebook
from grader.settings import Settings

__all__ = [
    "COLAB_SETUP_ID",
    "HEADER_ID",
    "AssignReport",
    "GradedCell",
    "assign",
    "cell_role",
    "colab_url",
    "exercise_cells",
    "exercise_label",
    "graded_cells",
    "lint",
    "make_exercise",
    "render_report",
    "strip_solution",
]

#: fixed cell ids of the two cells :func:`make_exercise` puts on top (reserved: solutions may not use them)
HEADER_ID = "generated-header"
COLAB_SETUP_ID = "colab-setup"
RESERVED_IDS = (HEADER_ID, COLAB_SETUP_ID)

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
COLAB_GITHUB = "https://colab.research.google.com/github"

#: role tags in the order a cell carrying several is classified (safest first: a hidden check
#: is never shipped, an exercise is always stripped); :func:`lint` refuses such cells anyway
_ROLE_ORDER = (markers.TAG_HIDDEN_CHECK, markers.TAG_EXERCISE, markers.TAG_CHECK, markers.TAG_PARAMETERS)
_ROLE_CODE_ONLY = (markers.TAG_HIDDEN_CHECK, markers.TAG_EXERCISE, markers.TAG_CHECK)
#: cell metadata that changes on every run and must not reach the generated file
_VOLATILE_CELL_META = ("execution", "ExecuteTime", "papermill")
_VOLATILE_NB_META = ("papermill", "widgets")

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SAFE_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_GITHUB_URL = re.compile(
    r"^(?:https?://(?:www\.)?github\.com/|git@github\.com:)(?P<owner>[^/\s]+)/(?P<repo>[^/\s]+?)(?:\.git)?/?$"
)
_GRADED_ID = re.compile(r"^\d+(?:\.\d+)*$")


def _loose(marker: str) -> re.Pattern[str]:
    """A case-insensitive pattern for near misses of ``marker`` (``#begin solution``, ``# END  SOLUTION``)."""
    words = marker.lstrip("#").split()
    return re.compile(r"#\s*" + r"\s*".join(re.escape(w) for w in words), re.IGNORECASE)


_LOOSE_REGION = tuple(_loose(m) for m in (markers.BEGIN_SOLUTION, markers.END_SOLUTION))
_LOOSE_SUFFIX = re.compile(_loose(markers.SOLUTION_SUFFIX).pattern + r"\s*$", re.IGNORECASE)


# --- cells and their roles --------------------------------------------------------------


@dataclass(frozen=True)
class GradedCell:
    """One graded cell (a visible or a hidden check) of a solution notebook."""

    #: position of the cell in the notebook (0-based)
    index: int
    #: the nbformat cell id
    cell_id: str
    #: ``cell.metadata["grader"]["id"]``, e.g. ``"0.2"``; equals the N.M of the title line
    check_id: str
    #: the behaviour text of the first line ``# Check N.M: <behaviour>``
    name: str
    points: float
    #: tagged ``hidden-check`` (grader only, never shipped to learners)
    hidden: bool


def cell_role(cell: NotebookNode) -> str | None:
    """The cell's role tag (``exercise``, ``check``, ``hidden-check``, ``parameters``) or ``None``."""
    tags = cell.get("metadata", {}).get("tags", [])
    for role in _ROLE_ORDER:
        if role in tags:
            return role
    return None


def _role_tags(cell: NotebookNode) -> list[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    return [role for role in _ROLE_ORDER if role in tags]


def _grader_meta(cell: NotebookNode) -> dict[str, Any]:
    meta = cell.get("metadata", {}).get(markers.META_GRADER)
    return dict(meta) if isinstance(meta, dict) else {}


def _where(index: int, cell: NotebookNode, path: str | None = None) -> str:
    """``solutions/x.ipynb, cell 4 (id 'abc')`` — cells counted from 1, as Jupyter shows them."""
    cell_id = cell.get("id")
    place = f"cell {index + 1} (id {cell_id!r})" if cell_id else f"cell {index + 1} (no id)"
    return f"{path}, {place}" if path else place


def exercise_cells(nb: NotebookNode) -> list[tuple[int, NotebookNode]]:
    """``(index, cell)`` of every cell whose role is ``exercise``, in notebook order."""
    return [(i, cell) for i, cell in enumerate(nb.cells) if cell_role(cell) == markers.TAG_EXERCISE]


def exercise_label(cell: NotebookNode) -> str:
    """How messages name an exercise cell: ``"exercise 0.1"`` (from ``metadata.grader.id``)."""
    exercise_id = _grader_meta(cell).get(markers.META_ID)
    if isinstance(exercise_id, str) and exercise_id:
        return f"exercise {exercise_id}"
    return f"exercise cell {cell.get('id', '?')!r}"


def _first_line(source: str) -> str:
    return source.splitlines()[0] if source else ""


def _points_ok(points: object) -> bool:
    return isinstance(points, (int, float)) and not isinstance(points, bool) and math.isfinite(points) and points > 0


def _graded_problems(index: int, cell: NotebookNode, path: str | None) -> list[str]:
    """What is wrong with one graded cell's metadata and title line (empty when nothing)."""
    where = _where(index, cell, path)
    role = cell_role(cell)
    meta = _grader_meta(cell)
    problems = []
    check_id = meta.get(markers.META_ID)
    example = f'"{markers.META_GRADER}": {{"{markers.META_ID}": "1.2", "{markers.META_POINTS}": 1}}'
    if not isinstance(check_id, str) or not _GRADED_ID.match(check_id):
        problems.append(
            f"{where}: a {role!r} cell needs metadata {markers.META_GRADER}.{markers.META_ID} as a string like "
            f'"1.2" (found {check_id!r}); add {example} to the cell metadata'
        )
    points = meta.get(markers.META_POINTS)
    if not _points_ok(points):
        problems.append(
            f"{where}: a {role!r} cell needs metadata {markers.META_GRADER}.{markers.META_POINTS} as a positive "
            f"number (found {points!r}); add {example} to the cell metadata"
        )
    first = _first_line(cell.get("source", ""))
    title = markers.CHECK_TITLE.match(first)
    if title is None:
        problems.append(
            f"{where}, line 1: the first line must name the check, like '# Check 1.2: <what it verifies>' "
            f"(found {first!r})"
        )
    elif isinstance(check_id, str) and title.group("id") != check_id:
        problems.append(
            f"{where}, line 1: the title says check {title.group('id')} but metadata "
            f"{markers.META_GRADER}.{markers.META_ID} is {check_id!r}; make them equal"
        )
    return problems


def graded_cells(nb: NotebookNode) -> list[GradedCell]:
    """Every check and hidden-check cell, in notebook order.

    Raises:
        AuthoringError: a graded cell lacks its id or points, or its title line is malformed.
    """
    graded = []
    for index, cell in enumerate(nb.cells):
        role = cell_role(cell)
        if role not in markers.GRADED_TAGS:
            continue
        problems = _graded_problems(index, cell, None)
        title = markers.CHECK_TITLE.match(_first_line(cell.source))
        if problems or title is None:
            raise AuthoringError("; ".join(problems))
        meta = _grader_meta(cell)
        graded.append(
            GradedCell(
                index=index,
                cell_id=str(cell.get("id", "")),
                check_id=meta[markers.META_ID],
                name=title.group("name"),
                points=float(meta[markers.META_POINTS]),
                hidden=role == markers.TAG_HIDDEN_CHECK,
            )
        )
    return graded


# --- solution markers -------------------------------------------------------------------


@dataclass
class _Stub:
    """Where a stub goes: the marker's indentation and, as a fallback, that of the code it replaces."""

    number: int
    marker_indent: str
    content_indent: str | None = None


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _render(plan: list[str | _Stub], *, use_content_indent: bool) -> str:
    lines: list[str] = []
    for step in plan:
        if isinstance(step, _Stub):
            indent = step.marker_indent
            if use_content_indent and step.content_indent is not None:
                indent = step.content_indent
            line = indent + markers.CODE_STUB
            if lines and lines[-1] == line:  # consecutive stubs at one indent say the same thing once
                continue
            lines.append(line)
        else:
            lines.append(step)
    return "\n".join(lines)


def _syntax_error(source: str) -> SyntaxError | None:
    """The error Python reports for ``source`` (IPython magics translated first), or ``None``."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython ships with the grader's environment
        code = source
    else:
        code = TransformerManager().transform_cell(source)
    try:
        ast.parse(code)
    except SyntaxError as exc:
        return exc
    return None


def strip_solution(source: str, *, where: str) -> str:
    """Replace each solution region, and each line ending in ``# SOLUTION``, with the learner stub.

    A region ``# BEGIN SOLUTION`` … ``# END SOLUTION`` becomes one line raising
    ``NotImplementedError``, indented like the marker; a line ending in ``# SOLUTION`` becomes the
    same stub, indented like that line. If a valid cell would become invalid Python that way (the
    markers indented differently from the code they enclose), the stubs take the indentation of
    the enclosed code instead.

    Raises:
        MarkerError: a region is nested, unclosed, or closed without being opened; or the cell
            is no longer valid Python once the solution is removed.
    """
    plan: list[str | _Stub] = []
    current: _Stub | None = None
    for number, line in enumerate(source.splitlines(), start=1):
        marker = line.strip()
        if marker == markers.BEGIN_SOLUTION:
            if current is not None:
                raise MarkerError(
                    f"{where}, line {number}: nested {marker!r}; close the region opened on line "
                    f"{current.number} with {markers.END_SOLUTION!r} first"
                )
            current = _Stub(number, _indent(line))
            plan.append(current)
        elif marker == markers.END_SOLUTION:
            if current is None:
                raise MarkerError(f"{where}, line {number}: {marker!r} without {markers.BEGIN_SOLUTION!r}")
            current = None
        elif current is not None:
            if marker and current.content_indent is None:
                current.content_indent = _indent(line)
        elif line.rstrip().endswith(markers.SOLUTION_SUFFIX):
            plan.append(_Stub(number, _indent(line), _indent(line)))
        else:
            plan.append(line)
    if current is not None:
        raise MarkerError(
            f"{where}, line {current.number}: {markers.BEGIN_SOLUTION!r} is never closed; "
            f"add {markers.END_SOLUTION!r} after the solution"
        )
    result = _render(plan, use_content_indent=False)
    stubs = [step for step in plan if isinstance(step, _Stub)]
    if not stubs or _syntax_error(source) is not None or _syntax_error(result) is None:
        return result
    fallback = _render(plan, use_content_indent=True)
    error = _syntax_error(fallback)
    if error is None:
        return fallback
    raise MarkerError(
        f"{where}, line {stubs[0].number}: without the solution the cell is not valid Python "
        f"({error.msg}); indent the markers like the code they enclose and mark whole statements"
    )


def _marker_lines(source: str) -> Iterable[tuple[int, str]]:
    """``(line number, line)`` of every line that is, or looks like, a solution marker."""
    for number, line in enumerate(source.splitlines(), start=1):
        if any(p.match(line.strip()) for p in _LOOSE_REGION) or _LOOSE_SUFFIX.search(line):
            yield number, line


def _near_misses(source: str, where: str) -> list[str]:
    """Lines that look like markers but are not spelled exactly (they would ship the solution)."""
    exact = (markers.BEGIN_SOLUTION, markers.END_SOLUTION)
    problems = []
    for number, line in _marker_lines(source):
        stripped = line.strip()
        if stripped in exact or line.rstrip().endswith(markers.SOLUTION_SUFFIX):
            continue
        wanted = next(
            (m for m, p in zip(exact, _LOOSE_REGION, strict=True) if p.match(stripped)),
            markers.SOLUTION_SUFFIX,
        )
        problems.append(f"{where}, line {number}: {stripped!r} looks like a marker; spell it exactly {wanted!r}")
    return problems


# --- the learner's notebook -------------------------------------------------------------


def _github(repo_url: str) -> tuple[str, str]:
    match = _GITHUB_URL.match(repo_url.strip())
    if match is None or not all(_SAFE_NAME.match(part) for part in match.group("owner", "repo")):
        raise AuthoringError(
            f"repository url {repo_url!r} is not a GitHub repository URL; set repository.url in _config.yml "
            "to https://github.com/<owner>/<repo> (Colab opens notebooks from GitHub)"
        )
    return match.group("owner"), match.group("repo")


def _check_branch(branch: str) -> None:
    if not _SAFE_BRANCH.match(branch) or ".." in branch:
        raise AuthoringError(
            f"repository branch {branch!r} is not a plain branch name; set repository.branch in _config.yml"
        )


def colab_url(*, exercise_id: str, repo_url: str, branch: str) -> str:
    """The "Open in Colab" address of ``exercises/<exercise_id>.ipynb`` on ``branch``."""
    owner, repo = _github(repo_url)
    _check_branch(branch)
    return f"{COLAB_GITHUB}/{owner}/{repo}/blob/{branch}/exercises/{exercise_id}.ipynb"


def _header_cell(exercise_id: str, url: str) -> NotebookNode:
    source = "\n".join(
        [
            f"[![Open In Colab]({COLAB_BADGE})]({url})",
            "",
            f"*This notebook is generated from `solutions/{exercise_id}.ipynb` by `grader assign`.*"
            " Course authors: do not edit it here; edit the solution and run `grader assign` again."
            " Learners: replace each `raise NotImplementedError(...)` line with your code and run the"
            " `# Check` cells below it.",
        ]
    )
    cell = nbformat.v4.new_markdown_cell(source)
    cell.id = HEADER_ID
    return cell


def _setup_cell(repo_url: str, branch: str) -> NotebookNode:
    owner, repo = _github(repo_url)
    _check_branch(branch)
    requirement = f"git+https://github.com/{owner}/{repo}.git@{branch}"
    source = "\n".join(
        [
            "# Setup: on Colab, install this course's package (it does not replace Colab's torch).",
            "# Anywhere else this cell does nothing: install the course environment as the README says.",
            "import sys",
            "",
            'if "google.colab" in sys.modules:',
            "    import subprocess",
            "",
            f"    package = {json.dumps(requirement)}",
            '    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", package], check=True)',
        ]
    )
    cell = nbformat.v4.new_code_cell(source)
    cell.id = COLAB_SETUP_ID
    return cell


def _has_marker(source: str) -> bool:
    return any(True for _ in _marker_lines(source))


def make_exercise(solution: NotebookNode, *, exercise_id: str, repo_url: str, branch: str) -> NotebookNode:
    """The learner's stub notebook for one solution notebook (pure: the input is not changed).

    Hidden checks are dropped, solution regions become stubs, outputs and execution counts are
    cleared, every remaining cell keeps its nbformat id (grading matches learner cells to the
    reference by id), ``nb.metadata["grader"]`` records the exercise id, and a header cell (badge,
    "generated" note) and a Colab-only setup cell are put on top. Equal inputs give equal outputs.

    Raises:
        AuthoringError: a cell has no id, uses a reserved id, or a non-exercise cell holds a
            solution marker (it would be shipped as it is); the repository URL is not GitHub's.
        MarkerError: an exercise cell's markers are unbalanced.
    """
    if not _SAFE_NAME.match(exercise_id):
        raise AuthoringError(f"exercise id {exercise_id!r} must be a plain file stem like '03-data-assumptions'")
    url = colab_url(exercise_id=exercise_id, repo_url=repo_url, branch=branch)
    nb = copy.deepcopy(solution)
    cells = []
    for index, cell in enumerate(nb.cells):
        where = _where(index, cell, f"solutions/{exercise_id}.ipynb")
        cell_id = cell.get("id")
        if not cell_id:
            raise AuthoringError(f"{where}: the cell has no id; save the notebook with Jupyter 4.5+ (JupyterLab 3+)")
        if cell_id in RESERVED_IDS:
            raise AuthoringError(f"{where}: the cell id {cell_id!r} is reserved for the generated header; change it")
        role = cell_role(cell)
        if role == markers.TAG_HIDDEN_CHECK:
            continue
        if role == markers.TAG_EXERCISE:
            cell.source = strip_solution(cell.source, where=where)
        elif cell.cell_type != "markdown" and _has_marker(cell.source):
            raise MarkerError(f"{where}: solution markers outside an exercise cell would be shipped to learners")
        for key in _VOLATILE_CELL_META:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cells.append(cell)
    nb.cells = [_header_cell(exercise_id, url), _setup_cell(repo_url, branch), *cells]
    for key in _VOLATILE_NB_META:
        nb.metadata.pop(key, None)
    nb.metadata[markers.META_GRADER] = {markers.META_EXERCISE: exercise_id, markers.META_GENERATED: True}
    nb.nbformat_minor = max(int(nb.get("nbformat_minor", 5)), 5)
    return nb


# --- lint ------------------------------------------------------------------------------


def _suppressed(source: str, node: ast.stmt) -> bool:
    """Whether an expression statement ends in ``;`` (Jupyter then shows nothing)."""
    lines = source.splitlines()
    end_line = node.end_lineno or node.lineno
    end_col = node.end_col_offset or 0
    rest = lines[end_line - 1][end_col:] if end_line - 1 < len(lines) else ""
    return rest.lstrip().startswith(";")


def _shows_something(source: str) -> bool | None:
    """Whether the cell prints or displays something (``None`` when it cannot be parsed)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        code = TransformerManager().transform_cell(source)
    except ImportError:  # pragma: no cover - IPython ships with the grader's environment
        code = source
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not _suppressed(code, tree.body[-1]):
        return True
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in ("print", "display"):
                return True
    return False


@dataclass
class _Problems:
    """Problems found by :func:`lint`, each already naming its place."""

    messages: list[str] = field(default_factory=list)
    only_markers: bool = True

    def add(self, message: str, *, marker: bool = False) -> None:
        self.messages.append(message)
        self.only_markers = self.only_markers and marker


def _lint_cell(index: int, cell: NotebookNode, path: str, found: _Problems) -> None:
    where = _where(index, cell, path)
    roles = _role_tags(cell)
    role = cell_role(cell)
    source = cell.get("source", "")
    if len(roles) > 1:
        found.add(f"{where}: tagged {' and '.join(map(repr, roles))}; a cell has one role, split it in two")
        return
    if role in _ROLE_CODE_ONLY and cell.cell_type != "code":
        found.add(f"{where}: a {cell.cell_type} cell tagged {role!r}; only code cells can have that role")
        return
    if role == markers.TAG_EXERCISE:
        meta = _grader_meta(cell)
        exercise_id = meta.get(markers.META_ID)
        if not isinstance(exercise_id, str) or not _GRADED_ID.match(exercise_id):
            found.add(
                f"{where}: an exercise cell needs metadata {markers.META_GRADER}.{markers.META_ID} as a string "
                f'like "1.2" (found {exercise_id!r})'
            )
        if markers.META_POINTS in meta:
            found.add(f"{where}: points belong on the check cells, not on the exercise cell; remove them")
        for message in _near_misses(source, where):
            found.add(message, marker=True)
        try:
            stub = strip_solution(source, where=where)
        except MarkerError as exc:
            found.add(str(exc), marker=True)
        else:
            if stub == source:
                found.add(
                    f"{where}: the exercise cell has no {markers.BEGIN_SOLUTION!r} region and no line ending in "
                    f"{markers.SOLUTION_SUFFIX!r}; learners would receive the solution",
                    marker=True,
                )
        return
    if cell.cell_type != "markdown":
        for number, line in _marker_lines(source):
            found.add(
                f"{where}, line {number}: {line.strip()!r} outside an exercise cell; tag the cell "
                f"{markers.TAG_EXERCISE!r} or remove the marker",
                marker=True,
            )
    if role in markers.GRADED_TAGS:
        for message in _graded_problems(index, cell, path):
            found.add(message)
    if role == markers.TAG_HIDDEN_CHECK and _shows_something(source) is False:
        found.add(
            f"{where}: a hidden check must print or display the values it checks (grading compares them "
            "with the reference output); end it with an expression or call print()"
        )


def _duplicates(path: str, key: str, ids: dict[str, list[int]], found: _Problems) -> None:
    for value, indices in ids.items():
        if len(indices) > 1:
            cells = ", ".join(f"cell {i + 1}" for i in indices)
            found.add(f"{path}, {cells}: {key} {value!r} is used {len(indices)} times; ids must be unique")


def lint(nb: NotebookNode, *, path: str) -> None:
    """Check a solution notebook against the authoring rules; every problem is reported at once.

    Raises:
        MarkerError: only marker problems were found (unbalanced, nested, misspelt, misplaced).
        AuthoringError: any other problem (metadata, titles, ids, roles, hidden checks).
    """
    found = _Problems()
    cell_ids: dict[str, list[int]] = defaultdict(list)
    graded_ids: dict[str, list[int]] = defaultdict(list)
    exercise_ids: dict[str, list[int]] = defaultdict(list)
    for index, cell in enumerate(nb.cells):
        cell_id = cell.get("id")
        if not cell_id:
            found.add(f"{_where(index, cell, path)}: the cell has no id; save the notebook with JupyterLab 3+")
        else:
            cell_ids[cell_id].append(index)
            if cell_id in RESERVED_IDS:
                found.add(f"{_where(index, cell, path)}: the id {cell_id!r} is reserved for generated cells")
        _lint_cell(index, cell, path, found)
        value = _grader_meta(cell).get(markers.META_ID)
        if isinstance(value, str):
            role = cell_role(cell)
            if role in markers.GRADED_TAGS:
                graded_ids[value].append(index)
            elif role == markers.TAG_EXERCISE:
                exercise_ids[value].append(index)
    _duplicates(path, "cell id", cell_ids, found)
    _duplicates(path, "check id", graded_ids, found)
    _duplicates(path, "exercise id", exercise_ids, found)
    if not any(cell_role(cell) in markers.GRADED_TAGS for cell in nb.cells):
        found.add(
            f"{path}: no graded cells; tag at least one check cell {markers.TAG_CHECK!r} or "
            f"{markers.TAG_HIDDEN_CHECK!r} and give it {markers.META_GRADER} id and points"
        )
    if found.messages:
        error = MarkerError if found.only_markers else AuthoringError
        count = len(found.messages)
        lines = "\n".join(f"  {message}" for message in found.messages)
        raise error(f"{path}: {count} authoring problem{'s' if count > 1 else ''}:\n{lines}")


# --- assign: solutions/ -> exercises/ ---------------------------------------------------


@dataclass(frozen=True)
class AssignReport:
    """What :func:`assign` did (or, with ``check=True``, found up to date), paths relative to the root."""

    written: tuple[Path, ...] = ()
    unchanged: tuple[Path, ...] = ()
    removed: tuple[Path, ...] = ()
    checked: bool = False


def _repository(settings: Settings) -> tuple[str, str]:
    """``repository.url`` and ``repository.branch`` from ``_config.yml``."""
    import yaml

    config_path = settings.root / "_config.yml"
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise AuthoringError(f"{config_path}: cannot be read as YAML ({exc})") from None
    repository = config.get("repository") if isinstance(config, dict) else None
    repository = repository if isinstance(repository, dict) else {}
    url, branch = repository.get("url"), repository.get("branch", "main")
    if not isinstance(url, str) or not url:
        raise AuthoringError(f"{config_path}: set repository.url (the GitHub URL the Colab badges point to)")
    if not isinstance(branch, str) or not branch:
        raise AuthoringError(f"{config_path}: repository.branch must be a branch name like 'main'")
    return url, branch


def _exercise_text(nb: NotebookNode) -> str:
    """The exact text :func:`grader.format.notebooks.write_notebook` writes for ``nb``."""
    return nbformat.writes(nb) + "\n"


def _generate(settings: Settings) -> dict[Path, NotebookNode]:
    """The learner stub for every solution, keyed by its ``exercises/`` path; lints all files first."""
    repo_url, branch = _repository(settings)
    stubs: dict[Path, NotebookNode] = {}
    errors: list[AuthoringError] = []
    for solution_path in sorted(settings.solutions_dir.glob("*.ipynb")):
        nb = read_notebook(solution_path)
        try:
            lint(nb, path=solution_path.relative_to(settings.root).as_posix())
            stub = make_exercise(nb, exercise_id=solution_path.stem, repo_url=repo_url, branch=branch)
        except AuthoringError as exc:
            errors.append(exc)
            continue
        stubs[settings.exercises_dir / solution_path.name] = stub
    if errors:
        error = MarkerError if all(isinstance(e, MarkerError) for e in errors) else AuthoringError
        raise error("\n".join(str(e) for e in errors))
    return stubs


def _stale(root: Path, changed: list[Path], orphans: list[Path]) -> StaleExercises:
    lines = [
        f"  {t.relative_to(root).as_posix()}: "
        f"{'out of date with' if t.is_file() else 'missing; generate it from'} solutions/{t.name}"
        for t in changed
    ]
    lines += [f"  {p.relative_to(root).as_posix()}: has no solutions/{p.name}; remove it" for p in orphans]
    return StaleExercises(
        "exercises/ is not what solutions/ generates:\n"
        + "\n".join(lines)
        + "\nrun `grader assign` and commit exercises/"
    )


def assign(settings: Settings, *, check: bool = False) -> AssignReport:
    """Generate ``exercises/<name>.ipynb`` from every ``solutions/<name>.ipynb``.

    Files whose content would not change are left alone; exercises without a solution are
    removed. Nothing is written unless every solution passes :func:`lint`.

    Raises:
        AuthoringError / MarkerError: a solution breaks the authoring rules (all files reported).
        StaleExercises: with ``check=True``, when ``exercises/`` differs from what would be generated.
    """
    stubs = _generate(settings)
    changed: list[Path] = []
    unchanged: list[Path] = []
    for target, stub in stubs.items():
        current = target.read_text(encoding="utf-8") if target.is_file() else None
        (unchanged if current == _exercise_text(stub) else changed).append(target)
    names = {target.name for target in stubs}
    orphans = sorted(p for p in settings.exercises_dir.glob("*.ipynb") if p.name not in names)

    def relative(paths: list[Path]) -> tuple[Path, ...]:
        return tuple(path.relative_to(settings.root) for path in paths)

    if check:
        if changed or orphans:
            raise _stale(settings.root, changed, orphans)
        return AssignReport(unchanged=relative(unchanged), checked=True)
    for target in changed:
        write_notebook(stubs[target], target)
    for orphan in orphans:
        orphan.unlink()
    return AssignReport(written=relative(changed), unchanged=relative(unchanged), removed=relative(orphans))


def render_report(report: AssignReport) -> str:
    """One line per exercise file: ``written``, ``unchanged`` / ``up to date``, or ``removed``."""
    same = "up to date" if report.checked else "unchanged"
    rows = [("written", p) for p in report.written]
    rows += [(same, p) for p in report.unchanged]
    rows += [("removed", p) for p in report.removed]
    if not rows:
        return "no solutions/*.ipynb found; nothing to generate"
    width = max(len(verb) for verb, _ in rows)
    return "\n".join(f"{verb:<{width}}  {path.as_posix()}" for verb, path in sorted(rows, key=lambda r: str(r[1])))
