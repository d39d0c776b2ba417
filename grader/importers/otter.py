"""An otter-grader assignment (its master notebook) → a solution notebook of this course.

What otter's format is, read from otter itself (github.com/ucbds-infra/otter-grader):

- raw boundary cells ``# ASSIGNMENT CONFIG``, ``# BEGIN/END QUESTION`` (YAML: ``name``,
  ``points``, ``manual``, ``all_or_nothing``), ``# BEGIN/END PROMPT``, ``# BEGIN/END SOLUTION``,
  ``# BEGIN/END TESTS``, and their Markdown stand-in (a fenced ```` ```otter ```` block):
  ``otter/assign/blocks.py``, ``otter/assign/notebook_transformer.py`` and ``question_config.py``;
- solution removal inside answer cells (``# SOLUTION`` line suffix, ``# BEGIN SOLUTION [NO PROMPT]``
  … ``# END SOLUTION``, ``# SOLUTION NO PROMPT``, ``\"\"\" # BEGIN PROMPT`` … ``\"\"\" # END PROMPT``,
  ``# SEED``, ``# IGNORE``): ``otter/assign/solutions.py``;
- test cells (``# HIDDEN`` first line, a ``\"\"\" # BEGIN TEST CONFIG`` YAML header with ``points``,
  ``hidden``, ``name``; the cell's output is the expected output) and how a question's points are
  shared among its tests: ``otter/assign/tests_manager.py``, ``otter/test_files/abstract_test.py``
  (``resolve_test_file_points``);
- the documentation ``docs/otter_assign/notebook_format.rst`` and the example master notebook
  ``test/test_assign/files/example.ipynb``.

The mapping:

======================================================  ==============================================
otter                                                   becomes
======================================================  ==============================================
code cell in a question's ``SOLUTION`` block            an ``exercise`` cell (plain code when it has no
                                                        marker: otter ships such a cell as it is)
``x = 2 # SOLUTION``, ``# SOLUTION NO PROMPT``          ``x = 2  # SOLUTION``: learners get a line that
                                                        raises ``NotImplementedError`` (not ``x = ...``)
``# BEGIN SOLUTION [NO PROMPT]`` … ``# END SOLUTION``   ``# BEGIN SOLUTION`` … ``# END SOLUTION``
``\"\"\" # BEGIN PROMPT`` … ``\"\"\" # END PROMPT``           left out (reported: learners get the stub)
``... # SEED`` line                                     a code cell before the answer (so grading seeds)
test cell (``TESTS`` block)                             a ``check`` (``# HIDDEN``/``hidden: true``: a
                                                        ``hidden-check`` printing its values), with the
                                                        points otter would give it
``all_or_nothing: true``                                one check holding every test, the question's points
``manual: true`` question, Markdown answers             a ``manual`` answer with the question's points and a
                                                        one-criterion rubric; code answers kept as exercises
``# ASSIGNMENT CONFIG`` ``files``, ``requirements``     *reported*
======================================================  ==============================================
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from nbformat import NotebookNode

from grader.errors import UsageError
from grader.format import markers
from grader.importers.builder import Builder
from grader.importers.convert import call_test_function, points_text, shows_value, wrap_last

_BOUNDARY = re.compile(r"#\s+(?P<edge>begin|end)\s+(?P<block>question|prompt|solution|tests)\b", re.IGNORECASE)
_ASSIGNMENT_CONFIG = re.compile(r"#\s+assignment\s+config\b", re.IGNORECASE)
_IGNORE_CELL = re.compile(r"(##\s*ignore\s*##\s*|#\s*ignore\s*)$", re.IGNORECASE)
_BEGIN_TEST_CONFIG = re.compile(r'(?:.\s*=\s*)?""?"?\s*#\s*BEGIN\s*TEST\s*CONFIG', re.IGNORECASE)
_END_TEST_CONFIG = re.compile(r'""?"?\s*#\s*END\s*TEST\s*CONFIG', re.IGNORECASE)
_BEGIN_SOLUTION = re.compile(r"^(\s*)# BEGIN SOLUTION( NO PROMPT)?\s*$")
_SOLUTION_SUFFIX = re.compile(r"\s*#\s?SOLUTION(?: NO PROMPT)?\s*$")
_BEGIN_PROMPT = re.compile(r"""^\s*(?:.\s*=\s*)?("{1,3}|'{1,3})\s*#\s*BEGIN\s+PROMPT""", re.IGNORECASE)
_END_PROMPT = re.compile(r"""("{1,3}|'{1,3});?\s*#\s*END\s+PROMPT""", re.IGNORECASE)
_BEGIN_IGNORE = re.compile(r"\s*#\s*BEGIN\s*IGNORE\s*", re.IGNORECASE)
#: assignment-config keys that name files or environments the assignment needs
_SHIPPED_KEYS = ("files", "student_files", "autograder_files", "requirements", "environment")


@dataclass
class _Question:
    name: str
    place: str
    manual: bool = False
    #: its written answer became a ``manual`` answer (graded by an instructor)
    written: bool = False
    all_or_nothing: bool = False
    points: Any = None
    block: str | None = None
    exercises: list[str] = field(default_factory=list)
    #: (source cell index, test source)
    tests: list[tuple[int, str]] = field(default_factory=list)


def _boundary_text(cell: NotebookNode) -> str | None:
    """A raw cell's text, or the inside of a Markdown cell that is one fenced ```` ```otter ```` block."""
    if cell.cell_type == "raw":
        return str(cell.source)
    if cell.cell_type == "markdown":
        lines = cell.source.strip().split("\n")
        if len(lines) >= 2 and lines[0].strip() == "```otter" and lines[-1].strip() == "```":
            return "\n".join(lines[1:-1])
    return None


def _yaml(text: str, place: str) -> dict:
    try:
        config = yaml.safe_load("\n".join(text.split("\n")[1:])) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{place}: its YAML cannot be read ({exc}); fix it in the otter notebook") from None
    if not isinstance(config, dict):
        raise UsageError(f"{place}: its YAML is not a mapping of keys to values")
    return config


@dataclass
class Answer:
    """An otter answer cell in this format: its source, and what was taken out of it."""

    source: str
    marked: bool = False
    seeds: list[str] = field(default_factory=list)
    indented_seeds: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)


def answer_source(source: str) -> Answer:
    """Translate otter's solution markers (see the module docstring); ignored lines go, seed lines come out."""
    answer = Answer("")
    lines: list[str] = []
    in_ignore = in_prompt = False
    for line in source.split("\n"):
        stripped = line.rstrip()
        if stripped.endswith("# IGNORE") or (in_ignore and not stripped.endswith("# END IGNORE")):
            continue
        if stripped.endswith("# END IGNORE") or _BEGIN_IGNORE.match(line):
            in_ignore = not stripped.endswith("# END IGNORE")
            continue
        if in_prompt or _BEGIN_PROMPT.match(line):
            in_prompt = not (in_prompt and _END_PROMPT.search(line))
            answer.prompts.append(line)
            continue
        if stripped.endswith("# SEED"):
            (answer.indented_seeds if line[:1].isspace() else answer.seeds).append(line)
            if line[:1].isspace():
                lines.append(line)
            continue
        begin = _BEGIN_SOLUTION.match(line)
        suffix = _SOLUTION_SUFFIX.search(line)
        if begin:
            lines.append(begin.group(1) + markers.BEGIN_SOLUTION)
            answer.marked = True
        elif stripped.endswith("# END SOLUTION"):
            lines.append(line[: len(line) - len(line.lstrip())] + markers.END_SOLUTION)
        elif suffix:
            if line[: suffix.start()].strip():  # a bare '# SOLUTION' comment line has nothing to replace
                lines.append(f"{line[: suffix.start()].rstrip()}  {markers.SOLUTION_SUFFIX}")
                answer.marked = True
        else:
            lines.append(line)
    answer.source = "\n".join(lines)
    return answer


def parse_test(source: str) -> tuple[str, dict, bool]:
    """A test cell's code, its test config and whether it is hidden (as otter's ``read_test``)."""
    lines = source.split("\n")
    hidden = bool(lines and lines[0].lstrip().startswith("#") and re.search(r"\bhidden\b", lines[0], re.IGNORECASE))
    start = 1 if hidden else 0
    config: dict = {}
    if lines and _BEGIN_TEST_CONFIG.match(lines[0]):
        end = next((i for i, line in enumerate(lines) if i and _END_TEST_CONFIG.match(line)), len(lines) - 1)
        try:
            loaded = yaml.safe_load("\n".join(lines[1:end])) or {}
        except yaml.YAMLError as exc:
            raise UsageError(f"a test config cannot be read as YAML ({exc}); fix it in the otter notebook") from None
        config = loaded if isinstance(loaded, dict) else {}
        start = end + 1
    return "\n".join(lines[start:]).strip("\n"), config, bool(config.get("hidden", hidden))


def saved_literal(cell: NotebookNode) -> str | None:
    """The test's saved output when it is one Python literal without floats (``16``, ``'abc'``, ``[1, 4]``)."""
    texts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            return None
        if output.get("output_type") == "execute_result":
            value = output.get("data", {}).get("text/plain", "")
            texts.append("".join(value) if isinstance(value, list) else str(value))
    if len(texts) != 1:
        return None
    try:
        tree = ast.parse(texts[0].strip(), mode="eval")
        ast.literal_eval(tree)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if any(isinstance(n, ast.Constant) and isinstance(n.value, (float, complex)) for n in ast.walk(tree)):
        return None
    return texts[0].strip()


def resolve_points(total: Any, given: list[float | None]) -> list[float]:
    """Each test's points, as otter shares a question's ``points`` among its tests.

    ``total`` is the question's ``points``: a number (shared among the tests that name none), a
    list (one per test), ``{each: n}``, or ``None`` (1 point shared, unless some test names its own:
    then the others get 0).
    """
    if isinstance(total, dict):
        total = float(total.get("each", 1)) * len(given)
    if isinstance(total, list):
        if len(total) != len(given):
            raise UsageError(f"the question lists {len(total)} point values for {len(given)} tests")
        return [float(p or 0) for p in total]
    named = sum(p for p in given if p is not None)
    unnamed = sum(p is None for p in given)
    if total is not None:
        share = (float(total) - named) / unnamed if unnamed else 0.0
    elif all(p in (0, None) for p in given):
        share = 1 / unnamed if unnamed else 0.0
    else:
        share = 0.0
    return [float(p) if p is not None else share for p in given]


class _Converter:
    def __init__(self, nb: NotebookNode, exercise_id: str) -> None:
        self.nb = nb
        self.builder = Builder(exercise_id)
        self.question: _Question | None = None

    def place(self, index: int) -> str:
        return f"cell {index + 1} (question {self.question.name})" if self.question else f"cell {index + 1}"

    def config(self, text: str, index: int) -> None:
        config = _yaml(text, f"cell {index + 1} (# ASSIGNMENT CONFIG)")
        place = f"cell {index + 1} (assignment config)"
        for key in _SHIPPED_KEYS:
            value = config.get(key)
            for item in value if isinstance(value, list) else [value] if value else []:
                self.builder.left(place, f"{key}: {item}: the assignment needs it; add it to the course yourself")
        if config.get("config_file"):
            self.builder.left(
                place, f"config_file: {config['config_file']}: not read; add the files it names to the course yourself"
            )
        seed = config.get("seed")
        if isinstance(seed, dict) and seed.get("variable"):
            self.builder.left(
                place,
                f"seed variable {seed['variable']!r}: otter set it before each cell; seed the notebook yourself",
            )

    def begin_question(self, text: str, index: int) -> None:
        if self.question is not None:
            self.end_question()
        config = _yaml(text, f"cell {index + 1} (# BEGIN QUESTION)")
        name = str(config.get("name") or f"question at cell {index + 1}")
        self.question = _Question(
            name=name,
            place=f"cell {index + 1} (question {name})",
            manual=bool(config.get("manual")),
            all_or_nothing=bool(config.get("all_or_nothing")),
            points=config.get("points"),
        )

    def answer(self, cell: NotebookNode, index: int) -> None:
        question = self.question
        assert question is not None
        place = self.place(index)
        answer = answer_source(cell.source)
        if answer.seeds:
            self.builder.code(
                "\n".join(answer.seeds), preferred=f"{cell.get('id') or 'answer'}-seed", fallback="seed", place=place
            )
            self.builder.changed(place, "its '# SEED' lines moved to a cell of their own before it, so grading seeds")
        if answer.indented_seeds:
            self.builder.changed(place, "its indented '# SEED' lines stay in the answer: learners see them")
        if answer.prompts:
            self.builder.changed(
                place, "its '# BEGIN PROMPT' text is left out: learners get a line raising NotImplementedError"
            )
        if not answer.marked:
            copy = cell.copy()
            copy.source = answer.source
            self.builder.plain(copy, preferred=cell.get("id"), fallback=f"cell-{index + 1}", place=self.place(index))
            return
        label = self.builder.exercise(
            answer.source, preferred=cell.get("id"), fallback=f"answer-{index + 1}", place=place
        )
        question.exercises.append(label)
        self.builder.done(place, f"solution → {label}")

    def solution_cell(self, cell: NotebookNode, index: int) -> None:
        question = self.question
        assert question is not None
        place = self.place(index)
        if cell.cell_type == "code":
            self.answer(cell, index)
        elif cell.cell_type == "markdown" and "otter_include" in cell.metadata.get("tags", []):
            self.builder.plain(cell, preferred=cell.get("id"), fallback=f"cell-{index + 1}", place=self.place(index))
        elif (
            cell.cell_type == "markdown"
            and question.manual
            and not question.written
            and isinstance(question.points, (int, float))
            and question.points > 0
        ):
            self.builder.manual(
                cell,
                points=float(question.points),
                preferred=cell.get("id"),
                fallback=f"answer-{index + 1}",
                place=place,
            )
            question.written = True
        elif cell.cell_type == "markdown":
            what = "not graded" if not question.manual else "its question's points went to the first answer"
            if question.manual and not question.written:
                what = "graded by hand, with no points"
            self.builder.left(place, f"a written answer ({what}): left out (it holds the answer)")

    def prompt_cell(self, cell: NotebookNode, index: int) -> None:
        if cell.cell_type == "code":
            self.builder.changed(self.place(index), "a code prompt: left out (learners get the answer cell's stub)")
        else:
            self.builder.plain(cell, preferred=cell.get("id"), fallback=f"cell-{index + 1}", place=self.place(index))

    def end_question(self) -> None:
        question = self.question
        self.question = None
        if question is None:
            return
        if question.manual and question.written and question.exercises:
            self.builder.left(
                question.place,
                f"a question graded by hand: its written answer is graded by an instructor, its code is kept as "
                f"{', '.join(question.exercises)} with no check",
            )
        elif question.manual and not question.written:
            worth = f" ({points_text(question.points)})" if isinstance(question.points, (int, float)) else ""
            kept = f"; its code is kept as {', '.join(question.exercises)} with no check" if question.exercises else ""
            self.builder.left(question.place, f"a question graded by hand{worth}: not graded{kept}")
        if not question.tests:
            if not question.manual:
                self.builder.left(question.place, "a question without tests: its answer is not graded")
            return
        parsed = [(index, *parse_test(source)) for index, source in question.tests]
        given = [c.get("points") if isinstance(c.get("points"), (int, float)) else None for _, _, c, _ in parsed]
        points = resolve_points(question.points, given)
        tests = [
            self._prepared(index, body, hidden, f"cell {index + 1} (question {question.name}, test {number})")
            for number, (index, body, _, hidden) in enumerate(parsed, start=1)
        ]
        if question.all_or_nothing:
            self._all_or_nothing(question, tests, [not h for _, _, _, h in parsed], sum(points))
            return
        for number, ((index, _, config, _), (body, hidden), share) in enumerate(
            zip(parsed, tests, points, strict=True), start=1
        ):
            place = f"cell {index + 1} (question {question.name}, test {number})"
            if share <= 0:
                self.builder.left(place, "a test worth 0 points: a check needs points; not converted")
                continue
            label = self.builder.check(
                [body],
                name=str(config.get("name") or f"{question.name}, test {number}"),
                points=share,
                hidden=hidden,
                preferred=self.nb.cells[index].get("id"),
                fallback=f"test-{index + 1}",
                place=place,
            )
            self.builder.done(place, f"{'hidden ' if hidden else ''}test → {label} ({points_text(share)})")

    def _prepared(self, index: int, body: str, hidden: bool, place: str) -> tuple[str, bool]:
        """A test ready to be a check: a public test that shows a value is compared with its saved output.

        Otter compares a test's output with the one saved in the master notebook. A visible check
        here fails only by raising or by ending in False, so ``square(4)`` whose saved output is
        ``16`` becomes ``square(4) == 16``; without a saved literal output, the test becomes a hidden
        check (hidden checks compare values with the solution's).
        """
        body = call_test_function(body)
        if hidden or not shows_value(body):
            return body, hidden
        expected = saved_literal(self.nb.cells[index])
        if expected is not None:
            return wrap_last(body, lambda value: f"{value} == {expected}"), False
        self.builder.changed(
            place,
            "a public test showing a value without a saved literal output to check it against: it is a "
            "hidden check, which compares the value with the solution's (learners no longer see it)",
        )
        return body, True

    def _all_or_nothing(
        self, question: _Question, tests: list[tuple[str, bool]], public: list[bool], total: float
    ) -> None:
        hidden = any(h for _, h in tests)
        if total <= 0:
            self.builder.left(question.place, "all-or-nothing tests worth 0 points: not converted")
            return
        label = self.builder.check(
            [body for body, _ in tests],
            name=f"{question.name} (all tests)",
            points=total,
            hidden=hidden,
            preferred=f"{question.name}-tests",
            fallback="tests",
            place=question.place,
        )
        self.builder.done(question.place, f"{len(tests)} tests (all or nothing) → {label} ({points_text(total)})")
        if hidden and any(public):
            self.builder.changed(
                question.place, f"its public tests are inside the hidden {label}: learners no longer see them"
            )

    def run(self) -> Builder:
        for index, cell in enumerate(self.nb.cells):
            self.cell(cell, index)
        if self.question is not None:
            self.builder.changed(
                self.question.place, "the question has no '# END QUESTION' cell; it ends with the notebook"
            )
            self.end_question()
        return self.builder

    def cell(self, cell: NotebookNode, index: int) -> None:
        first = cell.source.split("\n", 1)[0] if cell.source else ""
        if cell.cell_type != "raw" and _IGNORE_CELL.match(first.strip()):
            self.builder.done(self.place(index), "'# IGNORE' cell: left out, as otter leaves it out of both versions")
            return
        text = _boundary_text(cell)
        if text is not None and _ASSIGNMENT_CONFIG.match(text):
            self.config(text, index)
            return
        boundary = _BOUNDARY.match(text) if text is not None else None
        if boundary:
            edge, block = boundary.group("edge").lower(), boundary.group("block").lower()
            if block == "question":
                self.begin_question(text or "", index) if edge == "begin" else self.end_question()
            elif self.question is not None:
                self.question.block = block if edge == "begin" else None
            return
        block = self.question.block if self.question else None
        if block == "tests" and self.question is not None and cell.cell_type == "code":
            self.question.tests.append((index, cell.source))
        elif block == "tests":
            self.builder.left(
                self.place(index), f"a {cell.cell_type} cell among the tests (otter refuses it): left out"
            )
        elif block == "solution":
            self.solution_cell(cell, index)
        elif block == "prompt":
            self.prompt_cell(cell, index)
        else:
            self.builder.plain(cell, preferred=cell.get("id"), fallback=f"cell-{index + 1}", place=self.place(index))


def convert(nb: NotebookNode, *, exercise_id: str) -> tuple[NotebookNode, Builder]:
    """The solution notebook for an otter master notebook, and the builder holding the findings.

    Raises:
        UsageError: no ``# BEGIN QUESTION`` cell (a student or autograder version, or not otter's
            format), or a config cell whose YAML cannot be read.
    """
    if not any(
        (text := _boundary_text(c)) is not None
        and (m := _BOUNDARY.match(text))
        and m.group("block").lower() == "question"
        for c in nb.cells
    ):
        raise UsageError(
            "no otter question (a raw cell starting '# BEGIN QUESTION'): import otter's master notebook, "
            "not the student or autograder version it generates"
        )
    builder = _Converter(nb, exercise_id).run()
    return builder.notebook(nb), builder
