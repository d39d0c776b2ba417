"""Do the course's notebooks keep the standards every lesson promises? Read, never run: seconds.

- **Title.** A lesson notebook ``notebooks/NN-slug.ipynb`` opens with a markdown cell whose first
  line is ``# Lesson NN · Title``.
- **Profile note.** Its introduction (the markdown cells before the first code cell that does
  work, that is, other than the ``parameters`` cell and the generated Colab setup cell) says what
  the ``smoke`` and ``full`` profiles do, and that first working cell prints which profile this
  run used (a ``print`` whose arguments name ``profile``).
- **No blanket warning filters.** No notebook in ``notebooks/`` or ``solutions/`` silences
  warnings wholesale. An ``"ignore"`` filter names one warning, by ``message=`` or by a category
  of its own (never a built-in one such as ``UserWarning`` or ``Warning``), and a comment on its
  line or the line above says why.
- **Exercise 00's published lessons.** Its routes cell lists the published lessons for where
  ``_toc.yml`` cannot be read (Colab, grading); that list is exactly the lessons of ``_toc.yml``.

CONTRIBUTING.md ("Adding a lesson") states the same rules for authors.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest
import yaml

from grader.format import markers
from grader.format.notebooks import read_notebook

REPO = Path(__file__).resolve().parents[2]
LESSONS = sorted((REPO / "notebooks").glob("*.ipynb"))
NOTEBOOKS = LESSONS + sorted((REPO / "solutions").glob("*.ipynb"))
TITLE = re.compile(r"# Lesson (\d\d) · \S")
#: built-in warning classes: an "ignore" filter on one of them silences a whole family of warnings
BROAD_CATEGORIES = frozenset(
    {
        "Warning",
        "UserWarning",
        "DeprecationWarning",
        "PendingDeprecationWarning",
        "FutureWarning",
        "RuntimeWarning",
        "SyntaxWarning",
        "ImportWarning",
        "UnicodeWarning",
        "BytesWarning",
        "ResourceWarning",
        "EncodingWarning",
    }
)
#: warnings functions that install a filter: the positions of (action, message, category) in their signature
FILTER_SIGNATURES = {
    "filterwarnings": (0, 1, 2),
    "simplefilter": (0, None, 1),
    "catch_warnings": (None, None, None),  # keywords only: action=, category=
}
#: exercise 00: the cell that holds the routes, its stand-in for _toc.yml and its planned routes
ROUTES_EXERCISE, ROUTES_CELL = "00-learning-ml-engineering", "routes"
PUBLISHED_NAME, PLANNED_NAME = "PUBLISHED", "PLANNED_ROUTES"


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _python(source: str) -> str:
    """A cell's source as Python: IPython's magics and shell lines become comments (line numbers kept)."""
    return "\n".join(f"# {line}" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _first_working_cell(nb) -> int | None:
    """Index of the first code cell other than the parameters cell and the generated Colab setup cell."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell.get("id") == markers.COLAB_SETUP_ID:
            continue
        if markers.TAG_PARAMETERS in cell.metadata.get("tags", []):
            continue
        return index
    return None


def _argument(call: ast.Call, position: int | None, keyword: str) -> ast.expr | None:
    for item in call.keywords:
        if item.arg == keyword:
            return item.value
    if position is not None and position < len(call.args):
        return call.args[position]
    return None


def _name(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def blanket_filters(source: str) -> list[tuple[int, str]]:
    """(line, why) for each "ignore" warnings filter in ``source`` that names no one warning or says not why."""
    code = _python(source)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []  # not Python: nothing to check here (the lesson run reports it)
    comments = {
        token.start[0]
        for token in tokenize.generate_tokens(io.StringIO(code).readline)
        if token.type == tokenize.COMMENT
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or _name(node.func) not in FILTER_SIGNATURES:
            continue
        action_at, message_at, category_at = FILTER_SIGNATURES[_name(node.func)]  # type: ignore[index]
        action = _argument(node, action_at, "action")
        if not (isinstance(action, ast.Constant) and action.value == "ignore"):
            continue
        message = _argument(node, message_at, "message")
        category = _argument(node, category_at, "category")
        names_message = message is not None and not (isinstance(message, ast.Constant) and not message.value)
        names_category = category is not None and _name(category) not in BROAD_CATEGORIES
        if not (names_message or names_category):
            what = f"every {_name(category)}" if category is not None else "every warning"
            found.append((node.lineno, f"silences {what}: filter the one warning you mean (message=...)"))
        elif not comments & set(range(node.lineno - 1, (node.end_lineno or node.lineno) + 1)):
            found.append((node.lineno, "has no comment saying why (on its line or the line above)"))
    return found


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_lesson_opens_with_its_numbered_title(path: Path) -> None:
    """Does the notebook's first cell say `# Lesson NN · Title`, with NN its own number?"""
    nb = read_notebook(path)
    first = nb.cells[0] if nb.cells else None
    assert first is not None and first.cell_type == "markdown", f"{_rel(path)}: the first cell must be the title"
    line = first.source.splitlines()[0] if first.source else ""
    match = TITLE.match(line)
    assert match, f"{_rel(path)}: the title must read '# Lesson {path.name[:2]} · <title>', found {line!r}"
    assert match.group(1) == path.name[:2], f"{_rel(path)}: the title says lesson {match.group(1)}: {line!r}"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_lesson_has_a_profile_note(path: Path) -> None:
    """Does the introduction say what `smoke` and `full` do, and does the first working cell print which ran?"""
    nb = read_notebook(path)
    first = _first_working_cell(nb)
    assert first is not None, f"{_rel(path)}: no code cell besides the parameters and setup cells"
    introduction = " ".join(cell.source for cell in nb.cells[:first] if cell.cell_type == "markdown")
    missing = [word for word in ("smoke", "full") if not re.search(rf"\b{word}\b", introduction)]
    assert not missing, (
        f"{_rel(path)}: the markdown before the first code cell (id {nb.cells[first].get('id')!r}) never says "
        f"what the {' and '.join(repr(w) for w in missing)} profile does"
    )
    tree = ast.parse(_python(nb.cells[first].source))
    printed = any(
        isinstance(node, ast.Call)
        and _name(node.func) == "print"
        and any(isinstance(n, ast.Name) and n.id == "profile" for arg in node.args for n in ast.walk(arg))
        for node in ast.walk(tree)
    )
    assert printed, (
        f"{_rel(path)}: cell {first + 1} (id {nb.cells[first].get('id')!r}) should print which profile this run "
        'used, e.g. print(f"profile={profile}: ...")'
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_rel)
def test_no_blanket_warning_filters(path: Path) -> None:
    """Does every "ignore" filter name one warning and say why, so that no warning is hidden unseen?"""
    nb = read_notebook(path)
    problems = [
        f"{_rel(path)}, cell {index} (id {cell.get('id')!r}), line {line}: {cell.source.splitlines()[line - 1].strip()}"
        f" {why}"
        for index, cell in enumerate(nb.cells, start=1)
        if cell.cell_type == "code"
        for line, why in blanket_filters(cell.source)
    ]
    assert not problems, "fix the warning's cause, or filter that one warning with a comment saying why:\n" + "\n".join(
        problems
    )


@pytest.mark.parametrize(
    ("source", "blanket"),
    [
        ('warnings.filterwarnings("ignore")', True),
        ('warnings.simplefilter("ignore")  # too noisy', True),
        ('warnings.filterwarnings("ignore", category=UserWarning)  # sklearn', True),
        ('filterwarnings(action="ignore", category=Warning, module="tqdm")  # tqdm', True),
        ('with warnings.catch_warnings(action="ignore"):  # quiet\n    pass', True),
        ('warnings.filterwarnings("ignore", message="IProgress not found")', True),  # no comment
        ('warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm, imported by transformers', False),
        (
            '# the solver stops at max_iter on purpose\nwarnings.filterwarnings("ignore", category=ConvergenceWarning)',
            False,
        ),
        ('warnings.filterwarnings("ignore", "Converting a tensor")  # torch, on purpose', False),
        ('warnings.simplefilter("error")', False),
        ('warnings.simplefilter("ignore", ConvergenceWarning)  # see above', False),
        ("%matplotlib inline\nwarnings.filterwarnings('ignore')", True),
    ],
)
def test_what_counts_as_a_blanket_filter(source: str, blanket: bool) -> None:
    """Is a filter that silences a whole family of warnings, or says not why, told apart from a targeted one?"""
    assert bool(blanket_filters(source)) is blanket, blanket_filters(source)


def _toc_lessons() -> tuple[str, ...]:
    """The lesson ids (``NN-slug``) of _toc.yml's chapters, in its order."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
    chapters = [chapter["file"] for part in toc["parts"] for chapter in part.get("chapters", [])]
    return tuple(Path(f).name for f in chapters if f.startswith("book/") and re.match(r"\d\d-", Path(f).name))


def _literal(source: str, name: str) -> object:
    """The literal value the top level of ``source`` assigns to ``name``."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(_name(target) == name for target in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"no top-level literal assignment to {name}")


def test_exercise_00_lists_the_published_lessons() -> None:
    """Does exercise 00's stand-in for _toc.yml (on Colab, in grading) list exactly its lessons, each on both routes?"""
    path = REPO / "solutions" / f"{ROUTES_EXERCISE}.ipynb"
    cell = next((c for c in read_notebook(path).cells if c.get("id") == ROUTES_CELL), None)
    assert cell is not None, f"{_rel(path)}: no cell with id {ROUTES_CELL!r}"
    where = f"{_rel(path)}, cell {ROUTES_CELL!r}"
    listed = tuple(_literal(cell.source, PUBLISHED_NAME))  # type: ignore[call-overload]
    assert listed == _toc_lessons(), (
        f"{where}: {PUBLISHED_NAME} = {listed!r}, but _toc.yml has the lessons {_toc_lessons()!r}; copy them"
    )
    planned = _literal(cell.source, PLANNED_NAME)
    assert isinstance(planned, dict), f"{where}: {PLANNED_NAME} should be a dict of routes"
    for route, lessons in planned.items():
        left_out = [lesson for lesson in listed if lesson not in lessons]
        assert not left_out, f"{where}: route {route!r} leaves out the published lesson(s) {left_out}"
