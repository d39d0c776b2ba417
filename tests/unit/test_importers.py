"""``grader import``: nbgrader and otter-grader assignments → solution notebooks of this course.

Every source notebook is built here in code (nbformat.v4), one construct of each format at a
time, after the formats as nbgrader and otter document them (see the docstrings of
``grader/importers/nbgrader.py`` and ``otter.py``). A converted notebook must pass the authoring
lint and give a learner stub, as ``grader assign`` would make it.
"""

from __future__ import annotations

import contextlib
import io
import textwrap
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

from grader import authoring, cli, importers
from grader.errors import UsageError
from grader.format import markers
from grader.format.cells import cell_role, graded_cells
from grader.importers import nbgrader, otter
from grader.importers.builder import RAN_LINE
from grader.importers.convert import call_test_function, prints_something, report_values, shows_value, wrap_last
from grader.settings import load_settings

STUB = markers.CODE_STUB
REPO = ("https://github.com/example-org/example-course", "main")


def run(source: str, **namespace: object) -> list[str]:
    """What a cell prints (its last line is not shown: these tests print explicitly)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "<cell>", "exec"), dict(namespace))
    return out.getvalue().splitlines()


def stub_of(nb: NotebookNode, exercise_id: str) -> NotebookNode:
    return authoring.make_exercise(nb, exercise_id=exercise_id, repo_url=REPO[0], branch=REPO[1])


def roles(nb: NotebookNode) -> list[tuple[str | None, str | None]]:
    return [(cell_role(c), c.metadata.get(markers.META_GRADER, {}).get(markers.META_ID)) for c in nb.cells]


def by_role(nb: NotebookNode, role: str) -> list[NotebookNode]:
    return [c for c in nb.cells if cell_role(c) == role]


# --- asserts → printed values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        pytest.param("assert f(2) == 4", "print(f(2))", id="eq-literal"),
        pytest.param("assert 4 == f(2)", "print(f(2))", id="literal-first"),
        pytest.param('assert f(2) == 4, "f(2) should be 4"', "print(f(2))", id="message-dropped"),
        pytest.param("assert f(x) == g(x)", "print(f(x), g(x))", id="both-sides"),
        pytest.param("assert f(2) is None", "print(f(2))", id="is-none"),
        pytest.param("assert d() == {'a': 1}", "print(sorted((d()).items(), key=repr))", id="dict-order-free"),
        pytest.param("assert s() == {1, 2}", "print(sorted((s()), key=repr))", id="set-order-free"),
        pytest.param("assert (a == b).all()", "print(a, b)", id="all-method"),
        pytest.param("assert np.all(a == [1, 2])", "print(a)", id="np-all"),
        pytest.param("assert np.allclose(z, [1.0, 2.0])", "print(z)", id="allclose"),
        pytest.param("assert math.isclose(r, 0.5)", "print(r)", id="math-isclose"),
        pytest.param("assert f(2) == pytest.approx(4)", "print(f(2))", id="approx-is-expected"),
        pytest.param("assert_equal(f(1), 1)", "print(f(1))", id="nose-assert-equal"),
        pytest.param("np.testing.assert_array_equal(a, [1, 2])", "print(a)", id="numpy-testing"),
        pytest.param("assert f(\n    1,\n    2) == 3", "print(f(\n    1,\n    2))", id="multi-line"),
        pytest.param("x = 1; assert g('é') == 'é'", "x = 1; print(g('é'))", id="unicode-columns"),
        pytest.param("f(2) == 4", "print(f(2))", id="final-comparison"),
        pytest.param("f(2)", "f(2)", id="final-value-shown-as-is"),
    ],
)
def test_asserts_become_printed_values(test: str, expected: str) -> None:
    """Does each equality test print the value it checks (the solution's run records the expected one)?"""
    result = report_values(test)
    assert result.source == expected
    assert not result.booleans and not result.kept


@pytest.mark.parametrize(
    "test",
    [
        "assert 0 < x < 100",
        "assert isinstance(x, int)",
        "assert f(2) != 5",
        "assert 3 in f()",
        "assert np.isclose(y, 0.5, atol=0.01)",
        "assert abs(f(2) - 4) < 1e-3",
    ],
)
def test_other_conditions_print_a_boolean_and_are_listed(test: str) -> None:
    """Is a condition that is not an equality printed as True/False, and listed as weak for the author?"""
    result = report_values(test)
    assert result.source == f"print(bool({test.removeprefix('assert ')}))"
    assert result.booleans == [test]


def test_several_asserts_print_several_values_in_order() -> None:
    """Does a test with several asserts, one in a loop, print one line per value, in the order of the asserts?"""
    test = textwrap.dedent(
        """\
        assert squares(1) == [1]
        for n in range(2, 4):
            assert squares(n)[-1] == n ** 2, f"wrong for {n}"
        assert squares(2) == [1, 4]  # the second
        """
    )
    result = report_values(test)
    assert result.printed == 3
    assert "# the second" in result.source

    def squares(n: int) -> list[int]:
        return [i * i for i in range(1, n + 1)]

    assert run(result.source, squares=squares) == ["[1]", "4 4", "9 9", "[1, 4]"]

    def wrong(n: int) -> list[int]:
        return [i * 2 for i in range(1, n + 1)]

    assert run(result.source, squares=wrong) != run(result.source, squares=squares)


def test_asserts_the_test_catches_are_kept() -> None:
    """Is an assert inside ``try/except AssertionError`` left as it is (its failure is the test's logic)?"""
    test = "try:\n    assert f(-1) == 0\nexcept AssertionError:\n    print('raised')"
    result = report_values(test)
    assert result.source == test
    assert result.kept == ["assert f(-1) == 0"]


def test_tolerance_assert_calls_are_kept() -> None:
    """Is ``assert_allclose(..., rtol=...)`` kept (printing would compare more strictly than the test)?"""
    result = report_values("np.testing.assert_allclose(g(1), 2.0, rtol=1e-3)")
    assert result.source == "np.testing.assert_allclose(g(1), 2.0, rtol=1e-3)"
    assert result.kept == ["np.testing.assert_allclose(g(1), 2.0, rtol=1e-3)"]


def test_magics_are_left_alone() -> None:
    """Is a test with IPython magics left as it was, and flagged?"""
    result = report_values("%timeit f()\nassert f() == 1")
    assert result.unreadable and result.source == "%timeit f()\nassert f() == 1"


def test_helpers_for_shown_values() -> None:
    """Do the small helpers see printing, show a last line, and call an exception-based test?"""
    assert prints_something("x = 1\nx") and not prints_something("x = 1\nx;") and not prints_something("assert x")
    assert prints_something("for i in range(2):\n    print(i)")
    assert wrap_last("y = 1\nsquare(2)", lambda v: f"print({v})") == "y = 1\nprint(square(2))"
    assert wrap_last("print(1)", lambda v: f"print({v})") == "print(1)"
    assert wrap_last("square(2)", lambda v: f"assert {v}", booleans_only=True) == "square(2)"
    assert wrap_last("x == 2", lambda v: f"assert {v}", booleans_only=True) == "assert x == 2"
    assert shows_value("square(2)") and not shows_value("x == 2") and not shows_value("None")
    assert not shows_value("def t():\n    pass\nt()") and not shows_value("square(2);")
    assert call_test_function("def test_len(arr, env):\n    assert len(arr) == 3\n") == (
        "def test_len(arr, env):\n    assert len(arr) == 3\n\ntest_len(arr, globals())"
    )
    assert call_test_function("def t(a):\n    pass\nt(a)") == "def t(a):\n    pass\nt(a)"


# --- nbgrader ----------------------------------------------------------------------------------------


def nbg(cell: NotebookNode, grade_id: str, *, solution=False, grade=False, locked=False, points=None, task=False):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution}
    if points is not None:
        meta["points"] = points
    if task:
        meta["task"] = True
    cell.metadata["nbgrader"] = meta
    return cell


SQUARES = '''def squares(n):
    """The squares of 1..n."""
    ### BEGIN SOLUTION
    if n < 1:
        raise ValueError("n must be at least 1")
    return [i ** 2 for i in range(1, n + 1)]
    ### END SOLUTION'''


def nbgrader_source() -> NotebookNode:
    """A source version of an nbgrader assignment with each construct once (no cell ids: nbformat 4.4)."""
    cells = [
        nbg(new_markdown_cell("# Squares\n\n![](diagram.png)"), "title", locked=True),
        nbg(new_code_cell(SQUARES), "squares", solution=True),
        new_code_cell("squares(10)"),
        nbg(
            new_code_cell(
                '"""Check that squares works for small n."""\nassert squares(1) == [1]\nassert squares(2) == [1, 4]'
            ),
            "correct_squares",
            grade=True,
            points=1,
        ),
        nbg(
            new_code_cell(
                '"""Check that squares is right."""\nassert squares(3) == [1, 4, 9]\n'
                "### BEGIN HIDDEN TESTS\nassert squares(10)[-1] == 100\nfor n in (4, 5):\n"
                "    assert squares(n) == [i * i for i in range(1, n + 1)]\n### END HIDDEN TESTS"
            ),
            "squares_hidden",
            grade=True,
            points=2,
        ),
        nbg(
            new_code_cell(
                "### BEGIN HIDDEN TESTS\ntry:\n    squares(0)\nexcept ValueError:\n    pass\nelse:\n"
                "    raise AssertionError('no')\n### END HIDDEN TESTS"
            ),
            "squares_invalid",
            grade=True,
            points=1,
        ),
        nbg(new_code_cell("total = sum(squares(3))"), "total", solution=True),
        nbg(
            new_code_cell("### AUTOTEST total; squares(2)\n### HASHED AUTOTEST total * 2"), "auto", grade=True, points=2
        ),
        nbg(
            new_code_cell(
                "saved = squares\n### BEGIN HIDDEN TESTS\nassert saved(2) == [1, 4]\n### END HIDDEN TESTS\ndel saved"
            ),
            "reordered",
            grade=True,
            points=1,
        ),
        nbg(new_code_cell("assert total > 1\nprint(total)\nsquares(3)[-1]"), "partial", grade=True, points=1),
        nbg(new_code_cell("assert total > 0"), "zero", grade=True, points=0),
        nbg(
            new_markdown_cell("The sum of squares is $n(n+1)(2n+1)/6$."),
            "equation",
            solution=True,
            grade=True,
            points=1,
        ),
        nbg(
            new_code_cell("def pyramid(n):\n    return sum(squares(n))"), "pyramid", solution=True, grade=True, points=2
        ),
        nbg(new_markdown_cell("## Part E\n\nExplain the formula."), "task-e", task=True, points=3),
        nbg(new_markdown_cell("Squares grow fast."), "note", solution=True),
    ]
    nb = new_notebook(cells=cells)
    nb.nbformat_minor = 4
    for cell in nb.cells:
        cell.pop("id", None)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["celltoolbar"] = "Create Assignment"
    return nb


@pytest.fixture(scope="module")
def nbgrader_converted() -> tuple[NotebookNode, importers.ImportReport]:
    nb, builder = nbgrader.convert(nbgrader_source(), exercise_id="12-squares", shipped=["diagram.png"])
    return nb, builder.report(tool="nbgrader", source="ps1/squares.ipynb", output="solutions/12-squares.ipynb")


def test_nbgrader_cells_map_to_roles(nbgrader_converted: tuple[NotebookNode, importers.ImportReport]) -> None:
    """Does each nbgrader cell become the right role, numbered N.k from the exercise id?"""
    nb, _ = nbgrader_converted
    assert roles(nb) == [
        (None, None),  # title
        ("exercise", "12.1"),  # squares
        (None, None),  # squares(10)
        ("check", "12.1"),  # correct_squares
        ("check", "12.2"),  # squares_hidden: the visible part ...
        ("hidden-check", "12.3"),  # ... and the hidden part
        ("hidden-check", "12.4"),  # squares_invalid: all hidden; raises, prints no values
        ("exercise", "12.2"),  # total
        ("hidden-check", "12.5"),  # AUTOTEST and HASHED AUTOTEST: values, so a hidden check
        ("hidden-check", "12.6"),  # visible code after hidden tests: one hidden check
        ("hidden-check", "12.7"),  # visible tests end in a value to compare: one hidden check
        ("manual", "12.8"),  # equation: a written answer graded by hand
        ("exercise", "12.3"),  # pyramid: graded by hand, kept as an exercise
        (None, None),  # the task's text
    ]
    assert "nbgrader" not in nb.metadata and "celltoolbar" not in nb.metadata
    assert all("nbgrader" not in c.metadata for c in nb.cells)


def test_nbgrader_answers_and_tests(nbgrader_converted: tuple[NotebookNode, importers.ImportReport]) -> None:
    """Are markers translated, tests titled, points kept or split, hidden parts made to print?"""
    nb, _ = nbgrader_converted
    exercises = by_role(nb, "exercise")
    assert "    # BEGIN SOLUTION\n" in exercises[0].source and "### " not in exercises[0].source
    assert exercises[1].source == "# BEGIN SOLUTION\ntotal = sum(squares(3))\n# END SOLUTION"
    checks = {c.metadata["grader"]["id"]: c for c in nb.cells if cell_role(c) in markers.GRADED_TAGS}
    assert checks["12.1"].source.splitlines()[0] == "# Check 12.1: squares works for small n"
    assert "assert squares(2) == [1, 4]" in checks["12.1"].source  # visible checks keep their asserts
    assert checks["12.2"].metadata["grader"]["points"] == 1 == checks["12.3"].metadata["grader"]["points"]
    assert checks["12.3"].source.splitlines()[0] == "# Check 12.3: squares is right (hidden tests)"
    assert "print(squares(10)[-1])" in checks["12.3"].source and "assert" not in checks["12.3"].source
    assert checks["12.4"].source.endswith(RAN_LINE)
    assert checks["12.5"].source.splitlines()[1:] == ["print(total)", "print(squares(2))", "print(total * 2)"]
    assert "print(saved(2))\ndel saved" in checks["12.6"].source
    assert checks["12.7"].source.endswith("print(bool(total > 1))\nprint(total)\nsquares(3)[-1]")
    assert sum(c.metadata["grader"]["points"] for c in checks.values()) == 8


def test_nbgrader_report_names_every_cell_left_out(
    nbgrader_converted: tuple[NotebookNode, importers.ImportReport],
) -> None:
    """Is every cell that could not be converted reported with its place, never silently dropped?"""
    _, report = nbgrader_converted
    left = {f.place: f.message for f in report.not_converted}
    assert "0 points" in left["cell 11 (grade_id 'zero')"]
    assert "cell 12 (grade_id 'equation')" not in left  # a written answer graded by hand: a manual answer
    assert "kept as exercise 12.3 with no check" in left["cell 13 (grade_id 'pyramid')"]
    assert "task graded by hand (3 points)" in left["cell 14 (grade_id 'task-e')"]
    assert "a written answer: left out" in left["cell 15 (grade_id 'note')"]
    assert "diagram.png" in left
    review = [f"{f.place}: {f.message}" for f in report.review]
    assert any("split between the visible and the hidden check" in r for r in review)
    assert any("squares_invalid" in r and "prints only that it ran" in r for r in review)
    assert any("reordered" in r and "one hidden check" in r for r in review)
    assert any("AUTOTEST lines print their values in a hidden check" in r for r in review)
    assert any("partial" in r and "end in a value to compare" in r for r in review)
    assert any(r.startswith("cell 12 (grade_id 'equation') → Answer 12.8: graded by an instructor") for r in review)
    assert (report.exercises, report.checks, report.hidden_checks, report.points) == (3, 7, 5, 9)  # 8 + the answer's 1
    assert report.manual_answers == 1
    text = importers.render_report(report)
    assert text.startswith(
        "imported nbgrader assignment ps1/squares.ipynb as solutions/12-squares.ipynb: 3 exercises, 7 checks "
        "(5 hidden), 1 answer graded by an instructor, 9 points"
    )
    assert "NOT converted: grade or rewrite these yourself (5):" in text
    assert text.endswith("next: `grader assign`, then `grader verify 12-squares`")


def test_nbgrader_result_lints_and_gives_a_stub(
    nbgrader_converted: tuple[NotebookNode, importers.ImportReport],
) -> None:
    """Does the converted notebook pass the authoring lint and give a learner stub without answers or hidden checks?"""
    nb, _ = nbgrader_converted
    authoring.lint(nb, path="solutions/12-squares.ipynb")
    nbformat.validate(nb)
    stub = stub_of(nb, "12-squares")
    text = nbformat.writes(stub)
    assert "i ** 2" not in text and "sum(squares(3))" not in text and "print(squares(10)" not in text
    assert [c.source.splitlines()[-1].strip() for c in by_role(stub, "exercise")] == [STUB] * 3
    assert [g.check_id for g in graded_cells(stub)] == ["12.1", "12.2"]


def test_nbgrader_conversion_is_deterministic() -> None:
    """Does the same source give the same bytes (cell ids included)?"""
    first, _ = nbgrader.convert(nbgrader_source(), exercise_id="12-squares")
    second, _ = nbgrader.convert(nbgrader_source(), exercise_id="12-squares")
    assert nbformat.writes(first) == nbformat.writes(second)
    assert by_role(first, "exercise")[0].id == "squares"


def test_nbgrader_release_version_is_refused() -> None:
    """Is a release version (stubs, no answers) refused with the way to the source version?"""
    nb = new_notebook(
        cells=[
            nbg(new_code_cell("def f():\n    # YOUR CODE HERE\n    raise NotImplementedError()"), "f", solution=True)
        ]
    )
    with pytest.raises(UsageError, match="release version; import the source version"):
        nbgrader.convert(nb, exercise_id="1-f")
    with pytest.raises(UsageError, match="no cell has nbgrader metadata"):
        nbgrader.convert(new_notebook(cells=[new_code_cell("x = 1")]), exercise_id="1-f")


def test_nbgrader_split_tests() -> None:
    """Are the visible and hidden parts split, AUTOTEST lines expanded, and a reordering cell kept whole?"""
    split = nbgrader.split_tests
    assert split("assert a\n### BEGIN HIDDEN TESTS\nb\n### END HIDDEN TESTS") == nbgrader.TestParts("assert a", "b")
    assert split("    ### AUTOTEST f(1); f(2);").hidden == "    print(f(1))\n    print(f(2))"
    assert split("### HASHED AUTOTEST f(1)") == nbgrader.TestParts("", "print(f(1))", "", autotest=False)
    reordered = split("### BEGIN HIDDEN TESTS\nb\n### END HIDDEN TESTS\nc")
    assert (reordered.visible, reordered.hidden) == ("", "b\nc") and "follows its hidden tests" in reordered.whole
    assert split("x = 1\nx").whole.startswith("its visible tests end in a value")
    assert nbgrader.answer_source("x = 1") == "# BEGIN SOLUTION\nx = 1\n# END SOLUTION"


# --- otter -------------------------------------------------------------------------------------------


def raw(text: str) -> NotebookNode:
    return new_raw_cell(textwrap.dedent(text).strip())


def otter_source() -> NotebookNode:
    """An otter master notebook with each construct once."""
    cells = [
        raw(
            """
            # ASSIGNMENT CONFIG
            name: hw01
            files:
                - data.csv
            requirements: requirements.txt
            """
        ),
        new_markdown_cell("# Homework 1"),
        new_code_cell("import numpy as np"),
        raw("# BEGIN QUESTION\nname: q1\npoints: 2"),
        new_markdown_cell("**Question 1.** Define `square` and set `nine`."),
        raw("# BEGIN SOLUTION"),
        new_code_cell(
            "def square(x):\n    y = x * x # SOLUTION NO PROMPT\n    return y # SOLUTION\n\n"
            "nine = square(3) # SOLUTION\nhelper = 1 # IGNORE"
        ),
        raw("# END SOLUTION"),
        raw("# BEGIN TESTS"),
        new_code_cell("square(4)", outputs=[new_output("execute_result", {"text/plain": "16"}, execution_count=9)]),
        new_code_cell("# HIDDEN\nsquare(5) == 25"),
        raw("# END TESTS"),
        raw("# END QUESTION"),
        new_markdown_cell("```otter\n# BEGIN QUESTION\nname: q2\npoints: [1, 2, 0]\n```"),
        new_markdown_cell("```otter\n# BEGIN SOLUTION\n```"),
        new_code_cell(
            "np.random.seed(42) # SEED\ndef circumference(r):\n    # BEGIN SOLUTION NO PROMPT\n"
            '    return 2 * 3.14 * r\n    # END SOLUTION\n    """ # BEGIN PROMPT\n    pass\n    """; # END PROMPT\n'
            "draws = np.random.random(3) # SOLUTION"
        ),
        new_markdown_cell("```otter\n# END SOLUTION\n```"),
        raw("# BEGIN TESTS"),
        new_code_cell('""" # BEGIN TEST CONFIG\nname: circle-public\n""" # END TEST CONFIG\ncircumference(1)'),
        new_code_cell(
            '""" # BEGIN TEST CONFIG\nhidden: true\n""" # END TEST CONFIG\n'
            "assert circumference(2) == 2 * circumference(1)\nassert 0 < circumference(3) < 100"
        ),
        new_code_cell("len(draws) == 3"),
        raw("# END TESTS"),
        raw("# END QUESTION"),
        raw("# BEGIN QUESTION\nname: q3\nall_or_nothing: true\npoints: 3"),
        raw("# BEGIN SOLUTION"),
        new_code_cell("values = [1, 2, 3] # SOLUTION"),
        raw("# END SOLUTION"),
        raw("# BEGIN TESTS"),
        new_code_cell("len(values)"),
        new_code_cell("# HIDDEN\ndef test_sum(values):\n    assert sum(values) == 6"),
        raw("# END TESTS"),
        raw("# END QUESTION"),
        raw("# BEGIN QUESTION\nname: q4\nmanual: true\npoints: 2"),
        new_markdown_cell("**Question 4.** What does `square` compute?"),
        raw("# BEGIN PROMPT"),
        new_markdown_cell("_Type your answer here._"),
        raw("# END PROMPT"),
        raw("# BEGIN SOLUTION"),
        new_markdown_cell("**SOLUTION**: the square of its argument."),
        raw("# END SOLUTION"),
        raw("# END QUESTION"),
        new_code_cell("# IGNORE\nprint('only for the instructor')"),
    ]
    nb = new_notebook(cells=cells)
    for number, cell in enumerate(nb.cells, start=1):
        cell.id = f"c{number:02d}"
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture(scope="module")
def otter_converted() -> tuple[NotebookNode, importers.ImportReport]:
    nb, builder = otter.convert(otter_source(), exercise_id="13-otter")
    return nb, builder.report(tool="otter", source="hw01.ipynb", output="solutions/13-otter.ipynb")


def test_otter_cells_map_to_roles(otter_converted: tuple[NotebookNode, importers.ImportReport]) -> None:
    """Do boundary cells go, answers become exercises, tests checks (hidden ones hidden-checks)?"""
    nb, _ = otter_converted
    assert [(role, n, c.id) for (role, n), c in zip(roles(nb), nb.cells, strict=True)] == [
        (None, None, "c02"),  # title
        (None, None, "c03"),  # import
        (None, None, "c05"),  # question text
        ("exercise", "13.1", "c07"),
        ("check", "13.1", "c10"),
        ("hidden-check", "13.2", "c11"),
        (None, None, "c16-seed"),  # the seed, moved out of the answer
        ("exercise", "13.2", "c16"),
        ("hidden-check", "13.3", "c19"),  # shows a value with no saved output
        ("hidden-check", "13.4", "c20"),
        ("exercise", "13.3", "c26"),
        ("hidden-check", "13.5", "q3-tests"),  # all or nothing: one check
        (None, None, "c34"),  # q4's question text
        (None, None, "c36"),  # q4's prompt
        ("manual", "13.6", "c39"),  # q4's written answer, graded by hand
    ]
    assert not any(c.cell_type == "raw" for c in nb.cells)


def test_otter_markers_and_tests(otter_converted: tuple[NotebookNode, importers.ImportReport]) -> None:
    """Are otter's markers translated and its tests given otter's points, hidden ones printing values?"""
    nb, _ = otter_converted
    first, second, third = by_role(nb, "exercise")
    assert (
        first.source
        == "def square(x):\n    y = x * x  # SOLUTION\n    return y  # SOLUTION\n\nnine = square(3)  # SOLUTION"
    )
    assert "# BEGIN PROMPT" not in second.source and "np.random.seed" not in second.source
    assert "    # BEGIN SOLUTION\n    return 2 * 3.14 * r\n    # END SOLUTION" in second.source
    assert third.source == "values = [1, 2, 3]  # SOLUTION"
    graded = {c.metadata["grader"]["id"]: c for c in nb.cells if cell_role(c) in markers.GRADED_TAGS}
    assert {k: c.metadata["grader"]["points"] for k, c in graded.items()} == {
        "13.1": 1,
        "13.2": 1,
        "13.3": 1,
        "13.4": 2,
        "13.5": 3,
    }
    assert graded["13.1"].source == "# Check 13.1: q1, test 1\nsquare(4) == 16"  # its saved output
    assert graded["13.2"].source == "# Check 13.2: q1, test 2\nprint(square(5))"
    assert graded["13.3"].source == "# Check 13.3: circle-public\ncircumference(1)"
    assert graded["13.4"].source.splitlines()[1:] == [
        "print(circumference(2), 2 * circumference(1))",
        "print(bool(0 < circumference(3) < 100))",
    ]
    assert graded["13.5"].source.splitlines()[1:] == [
        "print(len(values))",
        "",
        "def test_sum(values):",
        "    print(sum(values))",
        "",
        "test_sum(values)",
    ]


def test_otter_report(otter_converted: tuple[NotebookNode, importers.ImportReport]) -> None:
    """Are config files, a 0-point test, a manual question and its written answer all reported?"""
    _, report = otter_converted
    left = [f"{f.place}: {f.message}" for f in report.not_converted]
    assert any(line.startswith("cell 1 (assignment config): files: data.csv") for line in left)
    assert any("requirements: requirements.txt" in line for line in left)
    assert any(line.startswith("cell 21 (question q2, test 3)") and "0 points" in line for line in left)
    assert not any(line.startswith(("cell 33 (question q4)", "cell 39 (question q4)")) for line in left)
    review = [f"{f.place}: {f.message}" for f in report.review]
    assert any(line.startswith("cell 39 (question q4) → Answer 13.6: graded by an instructor") for line in review)
    assert any("SEED" in line for line in review) and any("BEGIN PROMPT" in line for line in review)
    assert any("0 < circumference(3) < 100" in line and "True/False" in line for line in review)
    assert any("public tests are inside the hidden" in line for line in review)
    assert any(
        line.startswith("cell 19 (question q2, test 1)") and "without a saved literal" in line for line in review
    )
    assert any("IGNORE" in f.message for f in report.converted)


def test_otter_result_lints_and_gives_a_stub(otter_converted: tuple[NotebookNode, importers.ImportReport]) -> None:
    """Does the converted notebook pass the lint and give a stub without answers or hidden checks?"""
    nb, _ = otter_converted
    authoring.lint(nb, path="solutions/13-otter.ipynb")
    stub = stub_of(nb, "13-otter")
    text = nbformat.writes(stub)
    assert "x * x" not in text and "SOLUTION" not in text.replace("# SOLUTION", "") and "sum(values)" not in text
    assert [c.source for c in by_role(stub, "exercise")][2] == STUB
    assert [g.check_id for g in graded_cells(stub)] == ["13.1"]


def test_otter_points_as_otter_shares_them() -> None:
    """Are a question's points shared among its tests as otter's resolve_test_file_points does?"""
    assert otter.resolve_points(None, [None, None]) == [0.5, 0.5]
    assert otter.resolve_points(None, [2, None]) == [2, 0]
    assert otter.resolve_points(3, [1, None, None]) == [1, 1, 1]
    assert otter.resolve_points([1, 2], [None, None]) == [1, 2]
    assert otter.resolve_points({"each": 2}, [None, None]) == [2, 2]
    with pytest.raises(UsageError, match="2 point values for 3 tests"):
        otter.resolve_points([1, 2], [None, None, None])


def test_otter_parse_test_and_answer() -> None:
    """Are the test config, the ``# HIDDEN`` line and otter's answer markers read as otter reads them?"""
    assert otter.parse_test("# HIDDEN\nf(1)") == ("f(1)", {}, True)
    assert otter.parse_test('""" # BEGIN TEST CONFIG\npoints: 2\n""" # END TEST CONFIG\nf(1)') == (
        "f(1)",
        {"points": 2},
        False,
    )
    answer = otter.answer_source("x = 2 #SOLUTION\n# SOLUTION\n# BEGIN SOLUTION NO PROMPT\ny = 1\n# END SOLUTION")
    assert answer.source == "x = 2  # SOLUTION\n# BEGIN SOLUTION\ny = 1\n# END SOLUTION" and answer.marked
    assert not otter.answer_source("nine = square(3)").marked


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        pytest.param([new_output("execute_result", {"text/plain": "16"})], "16", id="int"),
        pytest.param([new_output("execute_result", {"text/plain": "'ab c'"})], "'ab c'", id="str"),
        pytest.param([new_output("execute_result", {"text/plain": "[1, 4]"})], "[1, 4]", id="list"),
        pytest.param([new_output("execute_result", {"text/plain": "0.1"})], None, id="float-needs-tolerance"),
        pytest.param([new_output("execute_result", {"text/plain": "array([1, 2])"})], None, id="not-a-literal"),
        pytest.param([new_output("stream", name="stdout", text="x\n")], None, id="printed"),
        pytest.param([], None, id="no-output-saved"),
    ],
)
def test_otter_saved_output_as_expected_value(outputs: list, expected: str | None) -> None:
    """Is a public test's saved output used as its expected value only when it is an exact literal?"""
    assert otter.saved_literal(new_code_cell("f()", outputs=outputs)) == expected


def test_otter_needs_a_master_notebook() -> None:
    """Is a notebook without '# BEGIN QUESTION' (a generated student version) refused?"""
    nb = new_notebook(
        cells=[new_code_cell("import otter\ngrader = otter.Notebook()"), new_code_cell('grader.check("q1")')]
    )
    with pytest.raises(UsageError, match="master notebook"):
        otter.convert(nb, exercise_id="13-x")


# --- the command -------------------------------------------------------------------------------------


@pytest.fixture
def course(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("ROOT", "BUILD_DIR"):
        monkeypatch.delenv(markers.ENV_PREFIX + name, raising=False)
    root = tmp_path / "course"
    (root / "solutions").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: index\n", encoding="utf-8")
    (root / "_config.yml").write_text(
        "title: t\nrepository:\n  url: https://github.com/example-org/example-course\n  branch: main\n",
        encoding="utf-8",
    )
    source = tmp_path / "ps1"
    source.mkdir()
    nbformat.write(nbgrader_source(), source / "squares.ipynb")
    (source / "diagram.png").write_bytes(b"\x89PNG")
    nbformat.write(otter_source(), tmp_path / "hw01.ipynb")
    monkeypatch.chdir(root)
    return root


def test_import_writes_a_solution_that_assign_accepts(course: Path) -> None:
    """Does the import write solutions/<id>.ipynb, which `grader assign` then turns into an exercise?"""
    settings = load_settings(course)
    report = importers.import_assignment(
        settings, "nbgrader", course.parent / "ps1" / "squares.ipynb", exercise_id="12-squares"
    )
    assert report.ok and report.output == "solutions/12-squares.ipynb"
    assert any(f.place == "diagram.png" for f in report.not_converted)
    assert importers.exit_code(report) == 0
    assert authoring.assign(settings).written == (Path("exercises/12-squares.ipynb"),)
    with pytest.raises(UsageError, match="exists; pass --force"):
        importers.import_assignment(
            settings, "nbgrader", course.parent / "ps1" / "squares.ipynb", exercise_id="12-squares"
        )
    again = importers.import_assignment(
        settings, "nbgrader", course.parent / "ps1" / "squares.ipynb", exercise_id="12-squares", force=True
    )
    assert again.ok


def test_import_nothing_convertible_writes_nothing(course: Path, tmp_path: Path) -> None:
    """With only a written answer worth no points, is nothing written, everything reported, and the exit code 1?"""
    nb = new_notebook(cells=[nbg(new_markdown_cell("An answer."), "a", solution=True, grade=False, points=0)])
    nbformat.write(nb, tmp_path / "written.ipynb")
    report = importers.import_assignment(load_settings(course), "nbgrader", tmp_path / "written.ipynb")
    assert not report.ok and report.output is None
    assert importers.exit_code(report) == 1
    assert not (course / "solutions" / "written.ipynb").exists()
    assert importers.render_report(report).startswith("nothing in ")
    assert "cell 1 (grade_id 'a'): a written answer: left out" in importers.render_report(report)


def test_cli_import(course: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Does `grader import otter PATH --output FILE` write there (id from the file name) and print the report?"""
    target = course / "solutions" / "13-homework.ipynb"
    assert cli.main(["import", "otter", str(tmp_path / "hw01.ipynb"), "--output", str(target)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"imported otter assignment {tmp_path / 'hw01.ipynb'} as solutions/13-homework.ipynb")
    assert "NOT converted" in out and "review:" in out
    assert by_role(nbformat.read(target, as_version=4), "exercise")[0].metadata["grader"]["id"] == "13.1"
    assert cli.main(["import", "otter", str(tmp_path / "hw01.ipynb"), "--id", "bad id"]) == UsageError.exit_code
    assert "must be a plain file stem" in capsys.readouterr().err
    assert cli.main(["import", "nbgrader", str(tmp_path / "hw01.ipynb"), "--id", "14-x"]) == UsageError.exit_code
