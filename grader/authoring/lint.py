"""The authoring rules a solution notebook must follow: :func:`lint` reports every problem at once.

Marker problems (unbalanced, nested, misspelt, misplaced markers) raise
:class:`~grader.errors.MarkerError`; any other problem (metadata, titles, ids, roles, silent
hidden checks) raises :class:`~grader.errors.AuthoringError`. What is allowed but probably a
mistake (an exercise no check uses, a visible check after a hidden one) comes back as warnings.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass, field

from nbformat import NotebookNode

from grader.authoring.criteria import CRITERION, criterion_problems
from grader.authoring.device import device_problem
from grader.authoring.files import declaration_problems
from grader.authoring.stubs import marker_lines, near_misses, python_code, strip_solution
from grader.errors import AuthoringError, MarkerError
from grader.format import markers
from grader.format.cells import GRADED_ID, cell_role, describe_cell, graded_problems, grader_meta, role_tags
from grader.format.rubric import manual_problems

_ROLE_CODE_ONLY = (markers.TAG_HIDDEN_CHECK, markers.TAG_EXERCISE, markers.TAG_CHECK)


def _suppressed(source: str, node: ast.stmt) -> bool:
    """Whether an expression statement ends in ``;`` (Jupyter then shows nothing)."""
    lines = source.splitlines()
    end_line = node.end_lineno or node.lineno
    end_col = node.end_col_offset or 0
    rest = lines[end_line - 1][end_col:] if end_line - 1 < len(lines) else ""
    return rest.lstrip().startswith(";")


def _shows_something(source: str) -> bool | None:
    """Whether the cell prints or displays something (``None`` when it cannot be parsed)."""
    code = python_code(source)
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
            if name in ("print", "display", "report", CRITERION):
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


def _lint_exercise(place: str, cell: NotebookNode, found: _Problems) -> None:
    """An exercise cell: its id, no points, exact markers that leave valid Python behind."""
    source = cell.get("source", "")
    meta = grader_meta(cell)
    exercise_id = meta.get(markers.META_ID)
    if not isinstance(exercise_id, str) or not GRADED_ID.match(exercise_id):
        found.add(
            f"{place}: an exercise cell needs metadata {markers.META_GRADER}.{markers.META_ID} as a string "
            f'like "1.2" (found {exercise_id!r})'
        )
    if markers.META_POINTS in meta:
        found.add(f"{place}: points belong on the check cells, not on the exercise cell; remove them")
    for message in near_misses(source, place):
        found.add(message, marker=True)
    try:
        stub = strip_solution(source, where=place)
    except MarkerError as exc:
        found.add(str(exc), marker=True)
    else:
        if stub == source:
            found.add(
                f"{place}: the exercise cell has no {markers.BEGIN_SOLUTION!r} region and no line ending in "
                f"{markers.SOLUTION_SUFFIX!r}; learners would receive the solution",
                marker=True,
            )


def _stray_markers(place: str, cell: NotebookNode) -> list[str]:
    """A problem for every line of a non-exercise cell that is, or looks like, a solution marker.

    Markers are stripped only from code cells tagged ``exercise``: anywhere else (a Markdown or
    raw cell, a check, an untagged code cell) the line and the solution it marks would reach
    learners as they are. Markdown may still mention a marker in backticks or use a heading
    ``## Solution``.
    """
    shipped = cell_role(cell) != markers.TAG_HIDDEN_CHECK
    consequence = (
        f"this {cell.cell_type} cell would reach learners with the solution in it"
        if shipped
        else "a hidden check is never shipped, so the marker does nothing there"
    )
    return [
        f"{place}, line {number}: {line.strip()!r} is a solution marker outside an exercise cell (markers are "
        f"stripped only in code cells tagged {markers.TAG_EXERCISE!r}; {consequence}); move the solution into "
        f"an exercise cell, or remove the marker"
        for number, line in marker_lines(cell.get("source", ""), markdown=cell.cell_type == "markdown")
    ]


def _lint_manual(place: str, cell: NotebookNode, found: _Problems) -> None:
    """A manual answer: its id, points and rubric (adding up); a code answer's markers, exact and balanced.

    A Markdown answer is replaced whole in the learner's copy, so markers in it ship nothing.
    """
    for message in manual_problems(cell, place):
        found.add(message)
    if cell.cell_type != "code":
        return
    source = cell.get("source", "")
    for message in near_misses(source, place):
        found.add(message, marker=True)
    try:
        strip_solution(source, where=place)
    except MarkerError as exc:
        found.add(str(exc), marker=True)


def _lint_cell(place: str, cell: NotebookNode, found: _Problems) -> None:
    roles = role_tags(cell)
    role = cell_role(cell)
    source = cell.get("source", "")
    if len(roles) > 1:
        found.add(f"{place}: tagged {' and '.join(map(repr, roles))}; a cell has one role, split it in two")
        return
    if role in _ROLE_CODE_ONLY and cell.cell_type != "code":
        found.add(f"{place}: a {cell.cell_type} cell tagged {role!r}; only code cells can have that role")
        return
    if role == markers.TAG_EXERCISE:
        _lint_exercise(place, cell, found)
        return
    if role == markers.TAG_MANUAL:
        _lint_manual(place, cell, found)
        return
    for message in _stray_markers(place, cell):
        found.add(message, marker=True)
    if role in markers.GRADED_TAGS:
        for message in graded_problems(cell, place):
            found.add(message)
    if role == markers.TAG_HIDDEN_CHECK and _shows_something(source) is False:
        found.add(
            f"{place}: a hidden check must print or display the values it checks (grading compares them "
            "with the reference output); end it with an expression or call print()"
        )


def _duplicates(path: str, key: str, ids: dict[str, list[int]], found: _Problems) -> None:
    for value, indices in ids.items():
        if len(indices) > 1:
            cells = ", ".join(f"cell {i + 1}" for i in indices)
            found.add(f"{path}, {cells}: {key} {value!r} is used {len(indices)} times; ids must be unique")


def _answers_and_checks(
    path: str, answers: dict[str, list[int]], checks: dict[str, list[int]], found: _Problems
) -> None:
    """A manual answer may not share its id with a check: feedback and the gradebook list both by id."""
    for value in sorted(answers.keys() & checks.keys()):
        found.add(
            f"{path}, cell {answers[value][0] + 1}: answer id {value!r} is also the id of the check in cell "
            f"{checks[value][0] + 1}; a manual answer and a check cannot share an id (feedback and the gradebook "
            "list them together), give the answer the next free number"
        )


# --- warnings: allowed, but probably a mistake -------------------------------------------


def _parsed(source: str) -> ast.Module | None:
    try:
        return ast.parse(python_code(source))
    except SyntaxError:
        return None


def _bound(target: ast.expr) -> set[str]:
    """The names an assignment target binds (``a``, ``a, (b, *c)``; not ``a.x`` or ``a[0]``)."""
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, ast.Starred):
        return _bound(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        return set().union(*(_bound(element) for element in target.elts))
    return set()


def _defined(statements: list[ast.stmt]) -> set[str]:
    """The global names top-level code defines: functions, classes, assignments, imports, loop targets."""
    names: set[str] = set()
    for node in statements:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, ast.Assign):
            names |= set().union(*(_bound(target) for target in node.targets))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)):
            names |= _bound(node.target)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            names |= set().union(*(_bound(item.optional_vars) for item in node.items if item.optional_vars))
        for field_name in ("body", "orelse", "finalbody"):  # if/for/while/with/try blocks run at top level
            names |= _defined(getattr(node, field_name, []))
        for handler in getattr(node, "handlers", []):
            names |= _defined(handler.body)
    return names


#: what ``_used`` says of code that hands every global to something (``collect_tests(globals())``)
_EVERY_NAME = "*"
#: calls that give code every name of the namespace at once
_NAMESPACE_CALLS = frozenset({"globals", "vars", "locals", "dir"})


def _used(tree: ast.Module) -> set[str]:
    """Names the code reads, strings that could name a global (``globals()["check_schema"]``), and
    :data:`_EVERY_NAME` when it takes the whole namespace (``globals()``, ``vars()`` with no argument)."""
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} | {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier()
    }
    if any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _NAMESPACE_CALLS
        and not node.args
        for node in ast.walk(tree)
    ):
        used.add(_EVERY_NAME)
    return used


def _unchecked_exercise(nb: NotebookNode, index: int, *, path: str) -> str | None:
    """A warning when no later check uses a name the exercise cell defines, directly or through helper cells.

    A name "reaches" a check when the check uses it, or uses a name that an ordinary code cell
    (anywhere: a helper defined earlier calls it when run) defines from it, say
    ``result = exercise_function(data)``, then ``print(result)`` in a check.
    """
    tree = _parsed(nb.cells[index].get("source", ""))
    if tree is None:
        return None
    defined = _defined(tree.body)
    helpers, checks = [], []
    for position, cell in enumerate(nb.cells):
        parsed = _parsed(cell.get("source", "")) if cell.cell_type == "code" else None
        if parsed is None:
            continue
        if cell_role(cell) in markers.GRADED_TAGS and position > index:
            checks.append(_used(parsed))
        elif cell_role(cell) is None or cell_role(cell) == markers.TAG_PARAMETERS:
            helpers.append((_used(parsed), _defined(parsed.body)))
    reaching, grown = set(defined), True

    def reaches(used: set[str]) -> bool:
        return bool(used & reaching) or (_EVERY_NAME in used and bool(reaching))

    while grown:
        before = len(reaching)
        for used, defines in helpers:
            if reaches(used):
                reaching |= defines
        grown = len(reaching) > before
    if any(reaches(used) for used in checks):
        return None
    place = describe_cell(nb, index, path=path, show="id")
    if not defined:
        return (
            f"{place}: the exercise defines no function, class or variable, so no check can test it; "
            "make the learner write something a check uses"
        )
    names = ", ".join(sorted(defined)[:5]) + (", ..." if len(defined) > 5 else "")
    return (
        f"{place}: no later check (visible or hidden) uses what this exercise defines ({names}), so it earns "
        "no points; add a check that uses it"
    )


def _visible_after_hidden(nb: NotebookNode, *, path: str) -> list[str]:
    """A warning for each visible check after a hidden one: graded feedback withholds its details."""
    first_hidden = next((i for i, cell in enumerate(nb.cells) if cell_role(cell) == markers.TAG_HIDDEN_CHECK), None)
    if first_hidden is None:
        return []
    return [
        f"{describe_cell(nb, index, path=path, show='id')}: a visible check after the hidden check in cell "
        f"{first_hidden + 1}; graded feedback shows only its verdict and exception type (learner code may have "
        "seen the hidden check by then); move it before the first hidden check if learners need its details"
        for index, cell in enumerate(nb.cells)
        if index > first_hidden and cell_role(cell) == markers.TAG_CHECK
    ]


def lint_warnings(nb: NotebookNode, *, path: str) -> list[str]:
    """What breaks no authoring rule but is probably a mistake, each naming the file and cell.

    - an exercise cell that no later check uses: no check, visible or hidden, uses a name the
      exercise defines (a heuristic: names read from the code, with ``ast``);
    - a visible check after a hidden one: graded feedback withholds its details
      (:data:`grader.grading.results.WITHHELD`);
    - a criterion whose bound the notebook's text never states (:mod:`grader.authoring.criteria`).
    """
    found = [
        warning
        for index, cell in enumerate(nb.cells)
        if cell_role(cell) == markers.TAG_EXERCISE and cell.cell_type == "code"
        if (warning := _unchecked_exercise(nb, index, path=path)) is not None
    ]
    return found + _visible_after_hidden(nb, path=path) + criterion_problems(nb, path=path)[1]


def lint(nb: NotebookNode, *, path: str) -> list[str]:
    """Check a solution notebook against the authoring rules; every problem is reported at once.

    Returns the warnings (:func:`lint_warnings`): what breaks no rule but is probably a mistake.

    Raises:
        MarkerError: only marker problems were found (unbalanced, nested, misspelt, misplaced).
        AuthoringError: any other problem (metadata, titles, ids, roles, hidden checks, a manual
            answer's rubric that is missing or does not add up to its points, a declared
            file path that is absolute or leaves ``solutions/``, a device other than cpu or gpu).
    """
    found = _Problems()
    cell_ids: dict[str, list[int]] = defaultdict(list)
    graded_ids: dict[str, list[int]] = defaultdict(list)
    exercise_ids: dict[str, list[int]] = defaultdict(list)
    answer_ids: dict[str, list[int]] = defaultdict(list)
    for index, cell in enumerate(nb.cells):
        place = describe_cell(nb, index, path=path, show="id")
        cell_id = cell.get("id")
        if not cell_id:
            found.add(f"{place}: the cell has no id; save the notebook with JupyterLab 3+")
        else:
            cell_ids[cell_id].append(index)
            if cell_id in markers.GENERATED_IDS:
                found.add(f"{place}: the id {cell_id!r} is reserved for generated cells")
            elif str(cell_id).startswith(markers.RUBRIC_ID_PREFIX):
                found.add(
                    f"{place}: ids starting with {markers.RUBRIC_ID_PREFIX!r} are reserved for the rubric cells "
                    "`grader assign` generates above manual answers; change the id"
                )
        _lint_cell(place, cell, found)
        value = grader_meta(cell).get(markers.META_ID)
        if isinstance(value, str):
            role = cell_role(cell)
            if role in markers.GRADED_TAGS:
                graded_ids[value].append(index)
            elif role == markers.TAG_EXERCISE:
                exercise_ids[value].append(index)
            elif role == markers.TAG_MANUAL:
                answer_ids[value].append(index)
    _duplicates(path, "cell id", cell_ids, found)
    _duplicates(path, "check id", graded_ids, found)
    _duplicates(path, "exercise id", exercise_ids, found)
    _duplicates(path, "answer id", answer_ids, found)
    _answers_and_checks(path, answer_ids, graded_ids, found)
    for message in declaration_problems(nb, path=path):
        found.add(message)
    for message in criterion_problems(nb, path=path)[0]:
        found.add(message)
    if (problem := device_problem(nb, path=path)) is not None:
        found.add(problem)
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
    return lint_warnings(nb, path=path)
