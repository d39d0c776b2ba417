"""Exercise authoring: solution markers, the learner stub, the lint rules and ``grader assign``.

Notebooks are built in code. The generated stub of the sample solution is also kept as a golden
file; regenerate it with ``GRADER_UPDATE_GOLDEN=1 pytest tests/unit/test_authoring.py``.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from grader import authoring, cli
from grader.errors import AuthoringError, MarkerError, StaleExercises
from grader.format import markers
from grader.format.cells import GradedCell, cell_role, exercise_cells, exercise_label, graded_cells
from grader.format.notebooks import read_notebook, write_notebook
from grader.settings import load_settings

STUB = markers.CODE_STUB
BEGIN, END, SUFFIX = markers.BEGIN_SOLUTION, markers.END_SOLUTION, markers.SOLUTION_SUFFIX
REPO_URL = "https://github.com/example-org/example-course"
COLAB = "https://colab.research.google.com/github/example-org/example-course/blob/main/exercises/07-demo.ipynb"
GOLDEN = Path(__file__).parent / "golden" / "authoring" / "07-demo.ipynb"
UPDATE_GOLDEN = markers.ENV_PREFIX + "UPDATE_GOLDEN"
PATH = "solutions/07-demo.ipynb"


# --- notebooks built in code ------------------------------------------------------------


def code(source: str, *tags: str, cell_id: str, grader: dict | None = None) -> NotebookNode:
    cell = new_code_cell(source)
    cell.id = cell_id
    if tags:
        cell.metadata["tags"] = list(tags)
    if grader is not None:
        cell.metadata[markers.META_GRADER] = grader
    return cell


def exercise(source: str, exercise_id: str = "7.1", *, cell_id: str = "ex-1") -> NotebookNode:
    return code(source, markers.TAG_EXERCISE, cell_id=cell_id, grader={markers.META_ID: exercise_id})


def check(source: str, check_id: str = "7.1", points: object = 1, *, cell_id: str = "check-1") -> NotebookNode:
    meta = {markers.META_ID: check_id, markers.META_POINTS: points}
    return code(source, markers.TAG_CHECK, cell_id=cell_id, grader=meta)


def hidden(source: str, check_id: str = "7.2", points: object = 2, *, cell_id: str = "hidden-1") -> NotebookNode:
    meta = {markers.META_ID: check_id, markers.META_POINTS: points}
    return code(source, markers.TAG_HIDDEN_CHECK, cell_id=cell_id, grader=meta)


def markdown(source: str, *, cell_id: str) -> NotebookNode:
    cell = new_markdown_cell(source)
    cell.id = cell_id
    return cell


def sample_solution() -> NotebookNode:
    """A small, valid solution notebook: prose, parameters, one exercise, a check, a hidden check."""
    cells = [
        markdown("# Demo\n\nWrite `double`.", cell_id="intro"),
        code('profile = "full"', markers.TAG_PARAMETERS, cell_id="params"),
        exercise(
            "def double(x):\n"
            '    """Twice x."""\n'
            f"    {BEGIN}\n"
            '    secret = "TOPSECRET-REGION"\n'
            "    return 2 * x\n"
            f"    {END}\n"
            "\n"
            f'factor = len("TOPSECRET-SUFFIX")  {SUFFIX}'
        ),
        check("# Check 7.1: double doubles small numbers\nassert double(2) == 4"),
        hidden('# Check 7.2: double works on large numbers\nprint(double(10**6), "HIDDENSECRET")'),
        markdown("That's it.", cell_id="outro"),
    ]
    for cell in cells:
        if cell.cell_type == "code":
            cell.execution_count = 3
            cell.outputs = [new_output("stream", name="stdout", text="OUTPUTSECRET\n")]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["papermill"] = {"duration": 1.23}
    return nb


def by_id(nb: NotebookNode, cell_id: str) -> NotebookNode:
    return next(cell for cell in nb.cells if cell.get("id") == cell_id)


def stub_of(nb: NotebookNode) -> NotebookNode:
    return authoring.make_exercise(nb, exercise_id="07-demo", repo_url=REPO_URL, branch="main")


# --- strip_solution ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(f"{BEGIN}\nx = 1\n{END}", STUB, id="region-becomes-one-stub"),
        pytest.param(
            f"a = 0\n{BEGIN}\nx = 1\ny = 2\n{END}\nprint(a)", f"a = 0\n{STUB}\nprint(a)", id="code-around-kept"
        ),
        pytest.param(
            f"def f(x):\n    {BEGIN}\n    return x\n    {END}", f"def f(x):\n    {STUB}", id="indent-of-marker-kept"
        ),
        pytest.param(f"x = 41  {SUFFIX}\nprint(x)", f"{STUB}\nprint(x)", id="suffix-line"),
        pytest.param(f"if True:\n    x = 1  {SUFFIX}", f"if True:\n    {STUB}", id="suffix-keeps-indent"),
        pytest.param(f"x = 1  {SUFFIX}\ny = 2  {SUFFIX}", STUB, id="consecutive-stubs-collapse"),
        pytest.param(
            f"for i in range(3):\n{BEGIN}\n    print(i)\n{END}",
            f"for i in range(3):\n    {STUB}",
            id="dedented-markers-take-body-indent",
        ),
        pytest.param(
            f"if True:\n    a = 1\n        {BEGIN}\n    b = 2\n        {END}",
            f"if True:\n    a = 1\n    {STUB}",
            id="over-indented-markers-take-body-indent",
        ),
        pytest.param(
            f"def f():\n    a = 1\n{BEGIN}\n    b = 2\n{END}",
            f"def f():\n    a = 1\n{STUB}",
            id="marker-indent-wins-when-both-are-valid",
        ),
        pytest.param("x = 1\nprint(x)", "x = 1\nprint(x)", id="no-markers-unchanged"),
        pytest.param(f"%%time\n{BEGIN}\nx = 1\n{END}", f"%%time\n{STUB}", id="cell-magic-kept"),
    ],
)
def test_strip_solution_replaces_solutions_with_stubs(source: str, expected: str) -> None:
    """Does every solution region or marked line become exactly one stub, indented to stay valid?"""
    assert authoring.strip_solution(source, where="cell 1") == expected


@pytest.mark.parametrize(
    ("source", "line", "says"),
    [
        pytest.param(f"{BEGIN}\nx = 1\n{BEGIN}\ny = 2\n{END}", 3, "nested", id="nested"),
        pytest.param(f"x = 0\n{BEGIN}\nx = 1", 2, "never closed", id="unclosed"),
        pytest.param(f"x = 1\n{END}", 2, "without", id="end-without-begin"),
        pytest.param(f"x = f(\n    1)  {SUFFIX}", 2, "not valid Python", id="suffix-on-half-a-statement"),
        pytest.param(f"for i in range(3):  {SUFFIX}\n    print(i)", 1, "not valid Python", id="suffix-on-block-header"),
    ],
)
def test_strip_solution_errors_name_the_line(source: str, line: int, says: str) -> None:
    """Does a marker error name the place it was given and the line to fix?"""
    with pytest.raises(MarkerError) as caught:
        authoring.strip_solution(source, where="solutions/07-demo.ipynb, cell 3")
    message = str(caught.value)
    assert message.startswith("solutions/07-demo.ipynb, cell 3, line ")
    assert f"line {line}:" in message
    assert says in message


# --- roles and graded cells -------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "role"),
    [
        ([], None),
        (["other"], None),
        ([markers.TAG_EXERCISE], markers.TAG_EXERCISE),
        ([markers.TAG_CHECK], markers.TAG_CHECK),
        ([markers.TAG_HIDDEN_CHECK], markers.TAG_HIDDEN_CHECK),
        ([markers.TAG_PARAMETERS], markers.TAG_PARAMETERS),
        ([markers.TAG_CHECK, markers.TAG_HIDDEN_CHECK], markers.TAG_HIDDEN_CHECK),
        ([markers.TAG_CHECK, markers.TAG_EXERCISE], markers.TAG_EXERCISE),
    ],
)
def test_cell_role_reads_the_tags(tags: list[str], role: str | None) -> None:
    """Is a cell's role its tag, and does a doubly tagged cell take the role that never leaks?"""
    assert cell_role(code("x = 1", *tags, cell_id="c")) == role


def test_graded_and_exercise_cells_are_listed_in_order() -> None:
    """Do graded_cells and exercise_cells find the right cells with their ids, names and points?"""
    nb = sample_solution()
    assert graded_cells(nb) == [
        GradedCell(3, "check-1", "7.1", "double doubles small numbers", 1.0, hidden=False),
        GradedCell(4, "hidden-1", "7.2", "double works on large numbers", 2.0, hidden=True),
    ]
    assert [(i, cell.id) for i, cell in exercise_cells(nb)] == [(2, "ex-1")]
    assert exercise_label(nb.cells[2]) == "exercise 7.1"


def test_graded_cells_refuses_a_cell_without_points() -> None:
    """Does graded_cells name the cell whose metadata is incomplete instead of guessing?"""
    nb = new_notebook(cells=[markdown("x", cell_id="a"), check("# Check 7.1: x\nx", points=None, cell_id="c9")])
    with pytest.raises(AuthoringError, match=r"cell 2 \(id 'c9'\).*points"):
        graded_cells(nb)


# --- make_exercise ----------------------------------------------------------------------


def test_stub_drops_hidden_checks_and_keeps_every_other_cell_id() -> None:
    """Are hidden checks gone, do the other cells keep their ids and order, with the title first and submit last?"""
    out = stub_of(sample_solution())
    assert [cell.id for cell in out.cells] == [
        "intro",
        markers.HEADER_ID,
        markers.COLAB_SETUP_ID,
        "params",
        "ex-1",
        "check-1",
        "outro",
        markers.SUBMIT_ID,
    ]
    assert all(cell_role(cell) != markers.TAG_HIDDEN_CHECK for cell in out.cells)


@pytest.mark.parametrize("secret", ["TOPSECRET-REGION", "TOPSECRET-SUFFIX", "HIDDENSECRET", "OUTPUTSECRET"])
def test_stub_never_contains_solution_text(secret: str) -> None:
    """Does no solution, hidden check or stored output survive anywhere in the generated file?"""
    assert secret in nbformat.writes(sample_solution())
    assert secret not in nbformat.writes(stub_of(sample_solution()))


def test_stub_has_no_outputs_and_a_stamped_exercise_id() -> None:
    """Are outputs and counts cleared, run metadata dropped, and the exercise id stamped?"""
    out = stub_of(sample_solution())
    nbformat.validate(out)
    for cell in out.cells:
        if cell.cell_type == "code":
            assert cell.outputs == []
            assert cell.execution_count is None
    assert out.metadata[markers.META_GRADER] == {markers.META_EXERCISE: "07-demo", markers.META_GENERATED: True}
    assert "papermill" not in out.metadata
    assert out.metadata["kernelspec"]["name"] == "python3"
    exercise_cell = next(cell for cell in out.cells if cell.id == "ex-1")
    assert exercise_cell.source == f'def double(x):\n    """Twice x."""\n    {STUB}\n\n{STUB}'


def test_stub_is_deterministic_and_leaves_the_solution_alone() -> None:
    """Do two runs give byte-identical files, without changing the solution passed in?"""
    solution = sample_solution()
    before = nbformat.writes(solution)
    first = nbformat.writes(stub_of(solution))
    second = nbformat.writes(stub_of(copy.deepcopy(solution)))
    assert first == second
    assert nbformat.writes(solution) == before


def test_stub_matches_the_golden_file() -> None:
    """Is the generated stub of the sample solution exactly the reviewed golden file?"""
    text = nbformat.writes(stub_of(sample_solution())) + "\n"
    if os.environ.get(UPDATE_GOLDEN):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.is_file(), f"no golden file; run with {UPDATE_GOLDEN}=1 to create {GOLDEN}"
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_header_cell_links_to_colab_and_says_the_file_is_generated() -> None:
    """Does the header carry the local Colab badge for this exercise and say where to edit instead?"""
    header = by_id(stub_of(sample_solution()), markers.HEADER_ID)
    assert header.cell_type == "markdown"
    assert f"]({COLAB})" in header.source
    assert "colab-badge.svg" in header.source and "https://colab.research.google.com/assets" not in header.source
    assert "<!-- Generated from solutions/07-demo.ipynb" in header.source  # for authors, invisible to learners
    assert "grader assign" in header.source


@pytest.mark.parametrize(
    "repo_url",
    [
        "https://github.com/example-org/example-course",
        "https://github.com/example-org/example-course.git",
        "https://github.com/example-org/example-course/",
        "git@github.com:example-org/example-course.git",
    ],
)
def test_colab_url_accepts_the_usual_spellings_of_a_github_url(repo_url: str) -> None:
    """Does every common spelling of the repository URL give the same Colab link?"""
    assert authoring.colab_url(exercise_id="07-demo", repo_url=repo_url, branch="main") == COLAB


@pytest.mark.parametrize(
    ("repo_url", "branch"),
    [
        ("https://gitlab.com/example-org/example-course", "main"),
        ("example-course", "main"),
        (REPO_URL, "main; rm -rf /"),
        (REPO_URL, "../main"),
    ],
)
def test_colab_url_refuses_what_it_cannot_link(repo_url: str, branch: str) -> None:
    """Is a non-GitHub URL or an odd branch refused with a pointer to _config.yml?"""
    with pytest.raises(AuthoringError, match=r"_config\.yml"):
        authoring.colab_url(exercise_id="07-demo", repo_url=repo_url, branch=branch)


def _run_setup_cell(monkeypatch: pytest.MonkeyPatch, *, on_colab: bool) -> list[list[str]]:
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda args, **kwargs: calls.append(list(args)))
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    setup = by_id(stub_of(sample_solution()), markers.COLAB_SETUP_ID)
    exec(compile(setup.source, "colab-setup", "exec"), {})
    return calls


def test_setup_cell_installs_the_package_only_on_colab(monkeypatch: pytest.MonkeyPatch) -> None:
    """Does the setup cell pip-install this repository on Colab, quietly, and do nothing elsewhere?"""
    assert _run_setup_cell(monkeypatch, on_colab=False) == []
    expected = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "mlcourse-platform[colab] @ git+https://github.com/example-org/example-course.git@main",
    ]
    monkeypatch.delenv("MLCOURSE_SOURCE", raising=False)
    assert _run_setup_cell(monkeypatch, on_colab=True) == [expected]


def test_setup_cell_source_can_be_overridden_and_is_hidden_on_the_site(monkeypatch: pytest.MonkeyPatch) -> None:
    """Does MLCOURSE_SOURCE replace the repository (a mirror, a test clone), and is the cell off the site?"""
    monkeypatch.setenv("MLCOURSE_SOURCE", "git+file:///tmp/clone@main")
    [call] = _run_setup_cell(monkeypatch, on_colab=True)
    assert call[-1] == "mlcourse-platform[colab] @ git+file:///tmp/clone@main"
    setup = by_id(stub_of(sample_solution()), markers.COLAB_SETUP_ID)
    assert setup.metadata["tags"] == [markers.TAG_REMOVE_CELL]


def test_submit_cell_ends_the_exercise_and_keeps_the_token_out_of_the_notebook() -> None:
    """Is the last cell a submit() of this exercise whose token is asked for, never written in the notebook?"""
    last = stub_of(sample_solution()).cells[-1]
    assert last.id == markers.SUBMIT_ID and last.cell_type == "code"
    assert 'submit("07-demo", url=GRADER_URL or None, token=token)' in last.source
    assert "getpass.getpass(" in last.source and "MLCOURSE_GRADER_TOKEN" in last.source
    form_fields = [line for line in last.source.splitlines() if "# @param" in line]
    assert form_fields == ['GRADER_URL = ""  # @param {type:"string"}']  # a form field is saved in the notebook


def test_placeholder_repository_is_recognised() -> None:
    """Is the placeholder URL of _config.yml told apart from a real repository?"""
    assert authoring.colab.is_placeholder("https://github.com/YOUR-GITHUB-USER/YOUR-COURSE-REPO")
    assert not authoring.colab.is_placeholder(REPO_URL)


def test_setup_cell_does_not_touch_torch() -> None:
    """Does the setup cell leave Colab's torch alone (no torch, no upgrade, no shell escape)?"""
    source = by_id(stub_of(sample_solution()), markers.COLAB_SETUP_ID).source
    code_lines = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
    for forbidden in ("torch", "--upgrade", "-U ", "!pip", "--force-reinstall"):
        assert forbidden not in code_lines


@pytest.mark.parametrize(
    ("cell", "error"),
    [
        (code(f"x = 1  {SUFFIX}", cell_id="plain"), MarkerError),
        (code("x = 1", cell_id=markers.HEADER_ID), AuthoringError),
    ],
)
def test_make_exercise_refuses_what_would_leak_or_clash(cell: NotebookNode, error: type[Exception]) -> None:
    """Does make_exercise refuse a marker it would ship unstripped, or a cell id it needs itself?"""
    nb = sample_solution()
    nb.cells.append(cell)
    with pytest.raises(error, match="cell 7"):
        stub_of(nb)


# --- lint -------------------------------------------------------------------------------


def with_cell(cell: NotebookNode, at: int | None = None) -> NotebookNode:
    nb = sample_solution()
    nb.cells.insert(len(nb.cells) if at is None else at, cell)
    return nb


def replacing(index: int, cell: NotebookNode) -> NotebookNode:
    nb = sample_solution()
    nb.cells[index] = cell
    return nb


def without_id(index: int) -> NotebookNode:
    nb = sample_solution()
    del nb.cells[index]["id"]
    return nb


def without_graded() -> NotebookNode:
    nb = sample_solution()
    nb.cells = [cell for cell in nb.cells if cell_role(cell) not in markers.GRADED_TAGS]
    return nb


def both_roles() -> NotebookNode:
    nb = sample_solution()
    nb.cells[3].metadata["tags"].append(markers.TAG_EXERCISE)
    return nb


# (notebook, error class, fragments the message must contain); cell numbers count from 1
LINT_CASES = [
    pytest.param(replacing(2, exercise(f"x = 1\n{END}")), MarkerError, ["cell 3", "line 2", "without"], id="end-only"),
    pytest.param(
        replacing(2, exercise(f"{BEGIN}\nx = 1")), MarkerError, ["cell 3", "line 1", "never closed"], id="open"
    ),
    pytest.param(
        replacing(2, exercise(f"{BEGIN}\n{BEGIN}\nx = 1\n{END}")),
        MarkerError,
        ["cell 3", "line 2", "nested"],
        id="nested",
    ),
    pytest.param(
        with_cell(code(f"y = 2\nx = 1  {SUFFIX}", cell_id="p")),
        MarkerError,
        ["cell 7", "line 2", "outside an exercise cell"],
        id="marker-in-plain-cell",
    ),
    pytest.param(
        replacing(3, check(f"# Check 7.1: x\n{BEGIN}\nx = 1\n{END}")),
        MarkerError,
        ["cell 4", "line 2", "outside an exercise cell"],
        id="marker-in-check",
    ),
    pytest.param(
        replacing(2, exercise(f"#begin solution\nx = 1\n{END}")),
        MarkerError,
        ["cell 3", "line 1", "spell it exactly"],
        id="misspelt-marker",
    ),
    pytest.param(
        replacing(2, exercise("x = 1")), MarkerError, ["cell 3", "would receive the solution"], id="exercise-unmarked"
    ),
    pytest.param(
        replacing(3, code("# Check 7.1: x\nx", markers.TAG_CHECK, cell_id="c", grader={markers.META_POINTS: 1})),
        AuthoringError,
        ["cell 4", "grader.id"],
        id="check-without-id",
    ),
    pytest.param(
        replacing(3, code("# Check 7.1: x\nx", markers.TAG_CHECK, cell_id="c", grader={markers.META_ID: "7.1"})),
        AuthoringError,
        ["cell 4", "points"],
        id="check-without-points",
    ),
    pytest.param(replacing(4, hidden("# Check 7.2: x\nx", points=0)), AuthoringError, ["cell 5", "points"], id="zero"),
    pytest.param(replacing(4, hidden("# Check 7.2: x\nx", points=-1)), AuthoringError, ["cell 5", "points"], id="neg"),
    pytest.param(replacing(4, hidden("# Check 7.2: x\nx", points="2")), AuthoringError, ["cell 5", "points"], id="str"),
    pytest.param(
        replacing(4, hidden("# Check 7.2: x\nx", points=True)), AuthoringError, ["cell 5", "points"], id="bool"
    ),
    pytest.param(
        replacing(3, check("assert double(2) == 4")), AuthoringError, ["cell 4", "line 1", "# Check"], id="no-title"
    ),
    pytest.param(
        replacing(3, check("# Check 7.9: doubles\nx", check_id="7.1")),
        AuthoringError,
        ["cell 4", "line 1", "7.9", "'7.1'"],
        id="title-id-differs",
    ),
    pytest.param(
        replacing(4, hidden("# Check 7.1: again\nprint(1)", check_id="7.1")),
        AuthoringError,
        ["cell 4, cell 5", "check id '7.1'"],
        id="duplicate-check-id",
    ),
    pytest.param(
        with_cell(exercise(f"z = 1  {SUFFIX}", cell_id="ex-2")),
        AuthoringError,
        ["cell 3, cell 7", "exercise id '7.1'"],
        id="duplicate-exercise-id",
    ),
    pytest.param(
        with_cell(code("x = 1", cell_id="intro")),
        AuthoringError,
        ["cell 1, cell 7", "cell id 'intro'"],
        id="dup-cell-id",
    ),
    pytest.param(without_id(5), AuthoringError, ["cell 6", "no id"], id="missing-cell-id"),
    pytest.param(
        with_cell(code("x = 1", cell_id=markers.COLAB_SETUP_ID)),
        AuthoringError,
        ["cell 7", "reserved"],
        id="reserved",
    ),
    pytest.param(both_roles(), AuthoringError, ["cell 4", "one role"], id="check-and-exercise"),
    pytest.param(
        replacing(2, code(f"x = 1  {SUFFIX}", markers.TAG_EXERCISE, cell_id="ex-1")),
        AuthoringError,
        ["cell 3", "grader.id"],
        id="exercise-without-id",
    ),
    pytest.param(
        replacing(2, code(f"x = 1  {SUFFIX}", markers.TAG_EXERCISE, cell_id="e", grader={"id": "7.1", "points": 1})),
        AuthoringError,
        ["cell 3", "points belong on the check cells"],
        id="exercise-with-points",
    ),
    pytest.param(with_cell(markdown("Explain.", cell_id="m")), None, [], id="plain-markdown-is-fine"),
    pytest.param(without_graded(), AuthoringError, ["no graded cells"], id="no-graded-cells"),
]


def _markdown_check() -> NotebookNode:
    cell = markdown("# Check 7.3: prose", cell_id="mdc")
    cell.metadata["tags"] = [markers.TAG_CHECK]
    cell.metadata[markers.META_GRADER] = {markers.META_ID: "7.3", markers.META_POINTS: 1}
    return cell


LINT_CASES.append(
    pytest.param(with_cell(_markdown_check()), AuthoringError, ["cell 7", "only code cells"], id="markdown-check")
)

#: a solution marker in a cell that is not an exercise cell, in the spellings authors actually use
STRAY_MARKERS = [
    pytest.param(
        markdown("Answer:\n\n```python\n### BEGIN SOLUTION\nx = 42\n### END SOLUTION\n```", cell_id="m"),
        4,
        id="md-nbgrader",
    ),
    pytest.param(markdown(f"The answer:\n{BEGIN}\n42\n{END}", cell_id="m"), 2, id="md-exact"),
    pytest.param(markdown("The answer is 42  # SOLUTION", cell_id="m"), 1, id="md-suffix"),
    pytest.param(markdown("<!-- BEGIN SOLUTION -->\n42\n<!-- END SOLUTION -->", cell_id="m"), 1, id="md-html-comment"),
    pytest.param(code("### BEGIN SOLUTION\nx = 42\n### END SOLUTION", cell_id="p"), 1, id="code-nbgrader"),
    pytest.param(code("x = 1\n#begin_solution\nx = 42\n#END-SOLUTION", cell_id="p"), 2, id="code-underscore"),
    pytest.param(code("x = 42  ## solution", cell_id="p"), 1, id="code-suffix-lowercase"),
    pytest.param(
        check("# Check 7.3: x\n### BEGIN SOLUTION\nx = 42\n### END SOLUTION", "7.3", cell_id="c3"),
        2,
        id="check-nbgrader",
    ),
]


@pytest.mark.parametrize(("cell", "line"), STRAY_MARKERS)
def test_lint_refuses_solution_markers_outside_exercise_cells(cell: NotebookNode, line: int) -> None:
    """Is a marker in any spelling refused in a cell that is shipped unstripped, naming file, cell and line?"""
    with pytest.raises(MarkerError) as caught:
        authoring.lint(with_cell(cell), path=PATH)
    message = str(caught.value)
    assert f"{PATH}, cell 7 (id '{cell.id}'), line {line}: " in message
    assert "outside an exercise cell" in message and "move the solution into an exercise cell" in message


@pytest.mark.parametrize(("cell", "line"), STRAY_MARKERS)
def test_make_exercise_refuses_markers_outside_exercise_cells(cell: NotebookNode, line: int) -> None:
    """Does make_exercise itself (without lint) refuse to ship such a cell?"""
    with pytest.raises(MarkerError, match="cell 7"):
        stub_of(with_cell(cell))


@pytest.mark.parametrize(
    "text",
    [
        "## Solution",
        "### Solution:",
        "Open the region with `# BEGIN SOLUTION` and close it with `# END SOLUTION`.",
        "`# BEGIN SOLUTION` opens a region; a line ending in `# SOLUTION` is replaced.",
        "Our solution is simple.",
    ],
)
def test_markdown_may_mention_markers(text: str) -> None:
    """May prose mention the markers in backticks, or use a heading 'Solution', without being refused?"""
    authoring.lint(with_cell(markdown(text, cell_id="m")), path=PATH)


@pytest.mark.parametrize(
    ("line", "wanted"),
    [
        ("### BEGIN SOLUTION", BEGIN),
        ("## end solution", END),
        ("#BEGIN_SOLUTION", BEGIN),
        ("x = 42  #SOLUTION.", SUFFIX),
    ],
)
def test_lint_refuses_near_miss_markers_in_an_exercise_cell(line: str, wanted: str) -> None:
    """Is an nbgrader-style or misspelt marker next to exact ones refused (the region would ship)?"""
    nb = replacing(2, exercise(f"y = 1  {SUFFIX}\n{line}\nx = 42"))
    with pytest.raises(MarkerError, match=rf"cell 3 \(id 'ex-1'\), line 2: .*spell it exactly '{wanted}'"):
        authoring.lint(nb, path=PATH)


@pytest.mark.parametrize(("nb", "error", "fragments"), LINT_CASES)
def test_lint_names_file_cell_and_line(nb: NotebookNode, error: type[Exception] | None, fragments: list[str]) -> None:
    """Does each broken rule raise an error naming the file, the cell (and line) and what is wrong?"""
    if error is None:
        authoring.lint(nb, path=PATH)
        return
    with pytest.raises(error) as caught:
        authoring.lint(nb, path=PATH)
    assert type(caught.value) is error
    message = str(caught.value)
    assert PATH in message
    for fragment in fragments:
        assert fragment in message


def test_lint_accepts_the_sample_solution() -> None:
    """Is a solution that follows every rule accepted as it is?"""
    authoring.lint(sample_solution(), path=PATH)


def test_lint_reports_every_problem_at_once() -> None:
    """Does one lint run list problems from several cells, so the author fixes them in one go?"""
    nb = sample_solution()
    nb.cells[2] = exercise(f"{BEGIN}\nx = 1")
    nb.cells[3] = check("no title here")
    with pytest.raises(AuthoringError) as caught:
        authoring.lint(nb, path=PATH)
    message = str(caught.value)
    assert "2 authoring problems" in message
    assert "cell 3 (id 'ex-1'), line 1" in message
    assert "cell 4 (id 'check-1'), line 1" in message


@pytest.mark.parametrize(
    ("body", "shows"),
    [
        ("print(double(3))", True),
        ("double(3)", True),
        ("value = double(3)\nvalue", True),
        ("display(double(3))", True),
        ("for n in (1, 2):\n    print(double(n))", True),
        ("IPython.display.display(double(3))", True),
        ("double(3);", False),
        ("assert double(3) == 6", False),
        ("value = double(3)", False),
    ],
)
def test_lint_requires_hidden_checks_to_show_values(body: str, shows: bool) -> None:
    """Is a hidden check refused unless it prints or displays what the grader compares?"""
    nb = replacing(4, hidden(f"# Check 7.2: large numbers\n{body}"))
    if shows:
        authoring.lint(nb, path=PATH)
        return
    with pytest.raises(AuthoringError, match=r"cell 5 \(id 'hidden-1'\): a hidden check must print"):
        authoring.lint(nb, path=PATH)


# --- lint warnings: allowed, but probably a mistake -----------------------------------------

TRIPLE = f"def triple(x):\n    return 3 * x  {SUFFIX}"


def test_lint_warns_about_nothing_in_the_sample_solution() -> None:
    """Does a solution whose checks use every exercise, visible checks first, get no warning?"""
    assert authoring.lint(sample_solution(), path=PATH) == []


@pytest.mark.parametrize(
    ("cells", "warned"),
    [
        pytest.param([exercise(TRIPLE, "7.2", cell_id="ex-2")], True, id="no-check-uses-it"),
        pytest.param(
            [
                exercise(TRIPLE, "7.2", cell_id="ex-2"),
                hidden("# Check 7.3: triples\nprint(triple(2))", "7.3", cell_id="hidden-3"),
            ],
            False,
            id="a-hidden-check-uses-it",
        ),
        pytest.param(
            [
                exercise(TRIPLE, "7.2", cell_id="ex-2"),
                code("tripled = [triple(n) for n in range(3)]", cell_id="helper"),
                hidden("# Check 7.3: triples\nprint(tripled)", "7.3", cell_id="hidden-3"),
            ],
            False,
            id="through-a-helper-cell",
        ),
        pytest.param(
            [
                code('NAMES = ("triple",)\ndef run():\n    return [globals()[n](1) for n in NAMES]', cell_id="h"),
                exercise(TRIPLE, "7.2", cell_id="ex-2"),
                hidden("# Check 7.3: triples\nprint(run())", "7.3", cell_id="hidden-3"),
            ],
            False,
            id="by-name-through-an-earlier-helper",
        ),
        pytest.param(
            [
                exercise(f"def test_triples():\n    assert triple(1) == 3  {SUFFIX}", "7.2", cell_id="ex-2"),
                hidden(
                    "# Check 7.3: the tests run\nprint([n for n in globals() if n.startswith('test_')])",
                    "7.3",
                    cell_id="hidden-3",
                ),
            ],
            False,
            id="a-check-that-takes-every-global",
        ),
        pytest.param(
            [
                exercise(f"def test_triples():\n    assert triple(1) == 3  {SUFFIX}", "7.2", cell_id="ex-2"),
                hidden("# Check 7.3: a namespace of its own\nprint(sorted(vars(object)))", "7.3", cell_id="hidden-3"),
            ],
            True,
            id="vars-of-something-else-reads-no-global",
        ),
        pytest.param(
            [
                hidden("# Check 7.3: triples\nprint(triple(2))", "7.3", cell_id="hidden-3"),
                exercise(TRIPLE, "7.2", cell_id="ex-2"),
            ],
            True,
            id="only-an-earlier-check-uses-it",
        ),
        pytest.param([exercise(f"print(3)  {SUFFIX}", "7.2", cell_id="ex-2")], True, id="defines-nothing"),
    ],
)
def test_lint_warns_about_an_exercise_no_check_uses(cells: list[NotebookNode], warned: bool) -> None:
    """Is an exercise whose definitions no later check uses (directly or through helpers) named in a warning?"""
    nb = sample_solution()
    nb.cells[5:5] = cells
    warnings = authoring.lint(nb, path=PATH)
    unchecked = [w for w in warnings if "(id 'ex-2')" in w]
    if not warned:
        assert unchecked == []
        return
    [warning] = unchecked
    number = 6 + next(i for i, cell in enumerate(cells) if cell.get("id") == "ex-2")
    assert warning.startswith(f"{PATH}, cell {number} (id 'ex-2'): ")
    assert "no check can test it" in warning or "no later check (visible or hidden) uses" in warning


def test_lint_warning_names_what_the_exercise_defines() -> None:
    """Does the warning name the file, the cell and the definitions no check uses?"""
    nb = with_cell(exercise(TRIPLE, "7.2", cell_id="ex-2"))
    assert authoring.lint(nb, path=PATH) == [
        f"{PATH}, cell 7 (id 'ex-2'): no later check (visible or hidden) uses what this exercise defines "
        "(triple), so it earns no points; add a check that uses it"
    ]


def test_lint_warns_about_a_visible_check_after_a_hidden_one() -> None:
    """Is a visible check placed after a hidden one (its graded feedback is withheld) named in a warning?"""
    nb = with_cell(check("# Check 7.3: double doubles zero\nassert double(0) == 0", "7.3", cell_id="check-late"))
    [warning] = authoring.lint(nb, path=PATH)
    assert warning.startswith(f"{PATH}, cell 7 (id 'check-late'): a visible check after the hidden check in cell 5;")
    assert "move it before the first hidden check" in warning


def test_assign_prints_warnings_and_still_succeeds(
    course: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Do lint warnings reach the author as `warning:` lines on stderr, without failing assign or --check?"""
    nb = with_cell(exercise(TRIPLE, "7.2", cell_id="ex-2"))
    write_notebook(nb, course / "solutions" / "07-demo.ipynb")
    monkeypatch.chdir(course)
    assert cli.main(["assign"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "written  exercises/07-demo.ipynb"
    assert f"warning: {PATH}, cell 7 (id 'ex-2'): no later check" in err
    assert cli.main(["assign", "--check"]) == 0
    assert f"warning: {PATH}, cell 7 (id 'ex-2')" in capsys.readouterr().err
    assert authoring.assign(load_settings(course)).warnings == tuple(authoring.lint(nb, path=PATH))


# --- assign -----------------------------------------------------------------------------

CONFIG = f"""\
title: Demo course
repository:
  url: {REPO_URL}
  branch: main
"""


@pytest.fixture
def course(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A course root with one valid solution and no exercises yet."""
    for name in ("ROOT", "BUILD_DIR"):
        monkeypatch.delenv(markers.ENV_PREFIX + name, raising=False)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n", encoding="utf-8")
    (tmp_path / "_config.yml").write_text(CONFIG, encoding="utf-8")
    write_notebook(sample_solution(), tmp_path / "solutions" / "07-demo.ipynb")
    return tmp_path


def _tree(root: Path) -> dict[str, bytes]:
    folder = root / "exercises"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*"))} if folder.is_dir() else {}


def test_assign_writes_the_stub_then_nothing(course: Path) -> None:
    """Does assign write each exercise once and leave it untouched on the next run?"""
    settings = load_settings(course)
    first = authoring.assign(settings)
    target = course / "exercises" / "07-demo.ipynb"
    assert first.written == (Path("exercises/07-demo.ipynb"),)
    assert nbformat.writes(read_notebook(target)) == nbformat.writes(stub_of(sample_solution()))
    inode = target.stat().st_ino

    second = authoring.assign(settings)
    assert second.written == ()
    assert second.unchanged == (Path("exercises/07-demo.ipynb"),)
    assert target.stat().st_ino == inode  # write_notebook replaces the file, so the same inode means no write


def test_assign_removes_exercises_without_a_solution(course: Path) -> None:
    """Is an exercise whose solution was deleted removed, and reported?"""
    orphan = course / "exercises" / "99-gone.ipynb"
    write_notebook(new_notebook(), orphan)
    report = authoring.assign(load_settings(course))
    assert report.removed == (Path("exercises/99-gone.ipynb"),)
    assert not orphan.exists()
    assert authoring.render_report(report).splitlines() == [
        "written  exercises/07-demo.ipynb",
        "removed  exercises/99-gone.ipynb",
    ]


def _stale_message(course: Path) -> str:
    before = _tree(course)
    with pytest.raises(StaleExercises) as caught:
        authoring.assign(load_settings(course), check=True)
    assert _tree(course) == before, "assign --check must not write"
    message = str(caught.value)
    assert "run `grader assign`" in message
    return message


def test_check_names_missing_stale_and_orphan_exercises(course: Path) -> None:
    """Does --check name each file that is missing, out of date or without a solution, and write nothing?"""
    assert "exercises/07-demo.ipynb: missing" in _stale_message(course)

    authoring.assign(load_settings(course))
    report = authoring.assign(load_settings(course), check=True)
    assert report.checked and report.unchanged == (Path("exercises/07-demo.ipynb"),)
    assert authoring.render_report(report) == "up to date  exercises/07-demo.ipynb"

    solution = read_notebook(course / "solutions" / "07-demo.ipynb")
    solution.cells[0].source = "# Demo, revised"
    write_notebook(solution, course / "solutions" / "07-demo.ipynb")
    write_notebook(new_notebook(), course / "exercises" / "08-orphan.ipynb")
    message = _stale_message(course)
    assert "exercises/07-demo.ipynb: out of date with solutions/07-demo.ipynb" in message
    assert "exercises/08-orphan.ipynb: has no solutions/08-orphan.ipynb" in message


def test_check_names_an_orphan_even_when_the_rest_is_fresh(course: Path) -> None:
    """Does --check fail on an exercise whose solution is gone, even if every other file is current?"""
    authoring.assign(load_settings(course))
    write_notebook(new_notebook(), course / "exercises" / "08-orphan.ipynb")
    message = _stale_message(course)
    assert "exercises/08-orphan.ipynb: has no solutions/08-orphan.ipynb" in message
    assert "07-demo" not in message


def test_check_notices_a_hand_edited_exercise(course: Path) -> None:
    """Is an exercise edited by hand (instead of its solution) reported as stale?"""
    authoring.assign(load_settings(course))
    target = course / "exercises" / "07-demo.ipynb"
    edited = read_notebook(target)
    edited.cells[2].source += "\nMore."
    write_notebook(edited, target)
    assert "exercises/07-demo.ipynb: out of date" in _stale_message(course)


def test_assign_writes_nothing_when_a_solution_breaks_lint(course: Path) -> None:
    """Is nothing generated when any solution is broken, and does the error name that file?"""
    broken = sample_solution()
    broken.cells[2] = exercise(f"{BEGIN}\nx = 1")
    write_notebook(broken, course / "solutions" / "08-broken.ipynb")
    with pytest.raises(MarkerError, match=r"solutions/08-broken.ipynb, cell 3 \(id 'ex-1'\), line 1"):
        authoring.assign(load_settings(course))
    assert _tree(course) == {}


@pytest.mark.parametrize(
    "config",
    ["repository: [\n", "repository:\n  url: example-course\n", "repository:\n  url: [1]\n"],
)
def test_assign_needs_a_readable_repository_url(course: Path, config: str) -> None:
    """Does assign say which _config.yml key to fix when the repository URL is unreadable or not a git URL?"""
    (course / "_config.yml").write_text(config, encoding="utf-8")
    with pytest.raises(AuthoringError, match=r"_config\.yml"):
        authoring.assign(load_settings(course))


def test_render_report_when_there_is_nothing() -> None:
    """Does an empty report still say something useful?"""
    assert "no solutions" in authoring.render_report(authoring.AssignReport())


# --- the command line -------------------------------------------------------------------


def test_cli_assign_then_check(course: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """Does `grader assign --check` exit 7 naming the stale file, and 0 once `grader assign` ran?"""
    monkeypatch.chdir(course)
    assert cli.main(["assign", "--check"]) == StaleExercises.exit_code == 7
    assert "exercises/07-demo.ipynb" in capsys.readouterr().err

    assert cli.main(["assign"]) == 0
    assert capsys.readouterr().out.strip() == "written  exercises/07-demo.ipynb"
    assert cli.main(["assign", "--check"]) == 0


def test_cli_assign_exits_3_on_a_broken_solution(
    course: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Does a lint failure reach the author as exit code 3 with the file and cell named?"""
    nb = sample_solution()
    nb.cells[3] = check("assert True")
    write_notebook(nb, course / "solutions" / "07-demo.ipynb")
    monkeypatch.chdir(course)
    assert cli.main(["assign"]) == 3
    assert "solutions/07-demo.ipynb, cell 4 (id 'check-1'), line 1" in capsys.readouterr().err


def test_generated_json_is_plain_nbformat(course: Path) -> None:
    """Is the written exercise a valid notebook that stock nbformat reads with ids intact?"""
    authoring.assign(load_settings(course))
    raw = json.loads((course / "exercises" / "07-demo.ipynb").read_text(encoding="utf-8"))
    assert raw["nbformat"] == 4 and raw["nbformat_minor"] >= 5
    assert [c["id"] for c in raw["cells"]][:3] == ["intro", markers.HEADER_ID, markers.COLAB_SETUP_ID]


# --- where the course is hosted: GitHub, GitLab, another git URL, none ------------------------

GITLAB_URL = "https://gitlab.com/example-org/courses/example-course.git"
# (repository.url, kind, what the setup cell pip-installs on Colab, where it downloads files from)
HOSTS = [
    pytest.param(
        REPO_URL,
        "github",
        "git+https://github.com/example-org/example-course.git@main",
        "https://raw.githubusercontent.com/example-org/example-course/main/exercises",
        id="github",
    ),
    pytest.param(
        GITLAB_URL,
        "gitlab",
        "git+https://gitlab.com/example-org/courses/example-course.git@main",
        "https://gitlab.com/example-org/courses/example-course/-/raw/main/exercises",
        id="gitlab",
    ),
    pytest.param(
        "git@gitlab.example.edu:ml/example-course.git",
        "gitlab",
        "git+https://gitlab.example.edu/ml/example-course.git@main",
        "https://gitlab.example.edu/ml/example-course/-/raw/main/exercises",
        id="gitlab-ssh",
    ),
    pytest.param(
        "https://git.example.org/example-course.git",
        "git",
        "git+https://git.example.org/example-course.git@main",
        None,
        id="git-https",
    ),
    pytest.param(
        "git@git.example.org:ml/example-course.git",
        "git",
        "git+ssh://git@git.example.org/ml/example-course.git@main",
        None,
        id="git-ssh",
    ),
    pytest.param("", "none", None, None, id="none"),
]


@pytest.mark.parametrize(("repo_url", "kind", "source", "files_url"), HOSTS)
def test_each_host_gets_the_badge_and_install_source_it_supports(
    repo_url: str, kind: str, source: str | None, files_url: str | None
) -> None:
    """Is the Colab badge there only for GitHub (Colab opens no other host), with the instructions kept?"""
    where = authoring.colab.host(repo_url, "main")
    assert (where.kind, where.pip_source, where.files_url) == (kind, source, files_url)
    stub = authoring.make_exercise(sample_solution(), exercise_id="07-demo", repo_url=repo_url, branch="main")
    header = by_id(stub, markers.HEADER_ID)
    assert ("colab-badge.svg" in header.source) == (kind == "github")
    assert ("colab.research.google.com" in header.source) == (kind == "github")
    assert "`grader check exercises/07-demo.ipynb`" in header.source
    assert [cell.id for cell in stub.cells][:3] == ["intro", markers.HEADER_ID, markers.COLAB_SETUP_ID]
    assert stub.cells[-1].id == markers.SUBMIT_ID


def test_github_output_is_what_it_was() -> None:
    """Does the host model leave GitHub's header and setup cell exactly as before (the golden file agrees)?"""
    stub = stub_of(sample_solution())
    assert by_id(stub, markers.HEADER_ID).source.startswith(
        f"[![Open In Colab](../_static/colab-badge.svg)]({COLAB})\n\n"
    )
    assert by_id(stub, markers.COLAB_SETUP_ID).source == "\n".join(
        [
            "# Setup: on Colab, install this course's package and what Colab lacks (Colab's own torch stays).",
            "# Anywhere else this cell does nothing: install the course environment as the README says.",
            "import os",
            "import sys",
            "",
            'if "google.colab" in sys.modules:',
            "    import subprocess",
            "",
            '    source = os.environ.get("MLCOURSE_SOURCE", "git+https://github.com/example-org/example-course.git@main")',
            '    requirement = f"mlcourse-platform[colab] @ {source}"',
            '    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", requirement], check=True)',
        ]
    )


def _colab(
    source: str, monkeypatch: pytest.MonkeyPatch, folder: Path, *, on_colab: bool = True
) -> tuple[list[list[str]], list[tuple[str, str]]]:
    """Run a setup cell in ``folder``; returns the commands it ran and the downloads it made (url, file)."""
    import urllib.request

    runs: list[list[str]] = []
    downloads: list[tuple[str, str]] = []

    def run(args: list[str], **kwargs: object) -> None:
        runs.append(list(args))
        if args[:2] == ["git", "clone"]:  # a clone with the course's exercises/ files in it
            for name in ("data/tickets.csv", "figure.png"):
                (Path(args[-1]) / "exercises" / name).parent.mkdir(parents=True, exist_ok=True)
                (Path(args[-1]) / "exercises" / name).write_text(f"cloned {name}")

    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(urllib.request, "urlretrieve", lambda url, name: downloads.append((url, name)))
    monkeypatch.chdir(folder)
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(source, "colab-setup", "exec"), {})
    return runs, downloads


@pytest.mark.parametrize(("repo_url", "kind", "source", "files_url"), HOSTS)
def test_setup_cell_installs_from_each_host_on_colab_only(
    repo_url: str,
    kind: str,
    source: str | None,
    files_url: str | None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Does the setup cell install from the host on Colab (nothing without one, and says so), and nothing elsewhere?"""
    for name in (authoring.colab.ENV_SOURCE, authoring.colab.ENV_FILES_URL):
        monkeypatch.delenv(name, raising=False)
    cell = authoring.colab.setup_cell(repo_url, "main")
    assert cell.metadata["tags"] == [markers.TAG_REMOVE_CELL]
    assert _colab(cell.source, monkeypatch, tmp_path, on_colab=False) == ([], [])
    runs, downloads = _colab(cell.source, monkeypatch, tmp_path)
    assert downloads == []
    if source is None:
        assert runs == []
        assert "install its package as the README says" in capsys.readouterr().out
        monkeypatch.setenv(authoring.colab.ENV_SOURCE, "git+file:///tmp/clone@main")  # still a way to install
        source = "git+file:///tmp/clone@main"
        runs, _ = _colab(cell.source, monkeypatch, tmp_path)
    assert runs == [[sys.executable, "-m", "pip", "install", "--quiet", f"mlcourse-platform[colab] @ {source}"]]


@pytest.mark.parametrize(("repo_url", "kind", "source", "files_url"), HOSTS)
def test_setup_cell_fetches_an_exercises_files_next_to_it_on_colab(
    repo_url: str,
    kind: str,
    source: str | None,
    files_url: str | None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Are the declared files fetched where the notebook's relative paths find them: from the host's raw
    files, from a shallow clone where it serves none, or named for upload without a repository?"""
    for name in (authoring.colab.ENV_SOURCE, authoring.colab.ENV_FILES_URL):
        monkeypatch.delenv(name, raising=False)
    cell = authoring.colab.setup_cell(repo_url, "main", ["data/tickets.csv", "figure.png"])
    (tmp_path / "figure.png").write_text("already here")  # never fetched again
    assert _colab(cell.source, monkeypatch, tmp_path, on_colab=False) == ([], [])
    runs, downloads = _colab(cell.source, monkeypatch, tmp_path)
    installs = [run for run in runs if run[:3] == [sys.executable, "-m", "pip"]]
    assert len(installs) == (0 if source is None else 1)
    if files_url is not None:
        assert downloads == [(f"{files_url}/data/tickets.csv", "data/tickets.csv")]
        assert (tmp_path / "data").is_dir()
    elif kind == "git":
        assert downloads == []
        clone = [run for run in runs if run[:2] == ["git", "clone"]]
        assert [run[:-1] for run in clone] == [
            ["git", "clone", "--quiet", "--depth", "1", "--branch", "main", repo_url]
        ]
        assert (tmp_path / "data" / "tickets.csv").read_text() == "cloned data/tickets.csv"
    else:
        assert downloads == [] and not (tmp_path / "data").exists()
        assert "Upload these files next to this notebook" in capsys.readouterr().out
    assert (tmp_path / "figure.png").read_text() == "already here"

    monkeypatch.setenv(authoring.colab.ENV_FILES_URL, "https://mirror.example.org/exercises")
    (tmp_path / "data" / "tickets.csv").unlink(missing_ok=True)
    runs, downloads = _colab(cell.source, monkeypatch, tmp_path)
    assert downloads == [("https://mirror.example.org/exercises/data/tickets.csv", "data/tickets.csv")]
    assert not [run for run in runs if run[:2] == ["git", "clone"]]


def test_setup_cell_downloads_real_files_from_the_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With MLCOURSE_FILES_URL at a copy of exercises/ (a mirror, a test), does the cell really write the files?"""
    mirror = tmp_path / "mirror"
    (mirror / "data").mkdir(parents=True)
    (mirror / "data" / "tickets.csv").write_text("id,priority\n1,high\n")
    colab_dir = tmp_path / "content"
    colab_dir.mkdir()
    monkeypatch.setenv(authoring.colab.ENV_FILES_URL, mirror.as_uri())
    monkeypatch.setattr(subprocess, "run", lambda args, **kwargs: None)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.chdir(colab_dir)
    cell = authoring.colab.setup_cell(REPO_URL, "main", ["data/tickets.csv"])
    exec(compile(cell.source, "colab-setup", "exec"), {})
    assert (colab_dir / "data" / "tickets.csv").read_text() == "id,priority\n1,high\n"


@pytest.mark.parametrize("repo_url", [GITLAB_URL, "https://git.example.org/example-course.git", ""])
def test_assign_and_check_work_for_every_host(course: Path, repo_url: str) -> None:
    """Can a course on GitLab, on another git host or with no repository at all assign, and then --check?"""
    (course / "_config.yml").write_text(
        f"title: Demo course\nrepository:\n  url: {json.dumps(repo_url)}\n  branch: main\n", encoding="utf-8"
    )
    lesson = new_notebook(cells=[markdown("# A lesson", cell_id="lesson-title")])
    write_notebook(lesson, course / "notebooks" / "07-lesson.ipynb")
    report = authoring.assign(load_settings(course))
    assert report.written == (Path("exercises/07-demo.ipynb"), Path("notebooks/07-lesson.ipynb"))
    exercise_nb = read_notebook(course / "exercises" / "07-demo.ipynb")
    assert "colab-badge.svg" not in by_id(exercise_nb, markers.HEADER_ID).source
    setup = by_id(read_notebook(course / "notebooks" / "07-lesson.ipynb"), markers.COLAB_SETUP_ID)
    assert setup.source == authoring.colab.setup_cell(repo_url, "main").source
    assert authoring.assign(load_settings(course), check=True).checked


def test_no_url_is_the_same_as_an_absent_repository(course: Path) -> None:
    """Do `repository.url:` left empty and no `repository` at all give the same exercise?"""
    (course / "_config.yml").write_text("title: x\n", encoding="utf-8")
    authoring.assign(load_settings(course))
    absent = (course / "exercises" / "07-demo.ipynb").read_bytes()
    (course / "_config.yml").write_text("repository:\n  url:\n  branch: main\n", encoding="utf-8")
    authoring.assign(load_settings(course), check=True)
    assert (course / "exercises" / "07-demo.ipynb").read_bytes() == absent


# --- criteria: literal words, public bounds --------------------------------------------------

CRITERION_CHECK = (
    "# Check 7.2: large numbers, judged against the stated bound\n"
    "from mlcourse.checks import criterion\n"
    "for n in (10, 20):\n"
    "    criterion({name}, double(n) / n, {bound}, cases={cases})"
)


def criterion_solution(
    *, name: str = '"ratio"', bound: str = "at_least=1.9", cases: str = '"sizes"', text: str = ""
) -> NotebookNode:
    nb = replacing(4, hidden(CRITERION_CHECK.format(name=name, bound=bound, cases=cases)))
    nb.cells[0].source += text
    return nb


def test_lint_accepts_a_criterion_whose_bound_the_text_states() -> None:
    """Is a criterion with literal words and a bound the task states (as 1.9, or as 190%) clean?"""
    assert authoring.lint(criterion_solution(text="\n\nThe ratio must be at least 1.9."), path=PATH) == []
    assert authoring.lint(criterion_solution(bound="at_least=0.8", text=" At least 80% of it."), path=PATH) == []


def test_lint_warns_about_a_bound_the_text_never_states() -> None:
    """Is a bound that learners never read (a secret criterion) a warning that names it?"""
    (warning,) = authoring.lint(criterion_solution(text="\n\nThe ratio must be high."), path=PATH)
    assert "the bound 1.9 of criterion 'ratio' is not stated" in warning
    assert "cell 5 (id 'hidden-1'), line 4" in warning


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"name": 'f"ratio at {n}"'}, "name and cases must be string literals"),
        ({"cases": "label"}, "name and cases must be string literals"),
        ({"bound": "at_least=LIMIT"}, "bound must be a number literal"),
    ],
)
def test_lint_refuses_criteria_that_could_quote_a_value(change: dict[str, str], words: str) -> None:
    """Is a criterion whose words or bound are computed at run time refused (feedback quotes them)?"""
    with pytest.raises(AuthoringError, match=words):
        authoring.lint(criterion_solution(text=" At least 1.9.", **change), path=PATH)


def test_a_hidden_check_of_criteria_alone_shows_its_values() -> None:
    """Does a hidden check that only calls criterion() count as reporting what it checks?"""
    source = "# Check 7.2: judged\nfrom mlcourse.checks import criterion\ncriterion('doubles', double(2) == 4)"
    authoring.lint(replacing(4, hidden(source)), path=PATH)
