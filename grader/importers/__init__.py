"""Bring an assignment written for another grading tool into this course's exercise format.

``grader import nbgrader PATH`` and ``grader import otter PATH`` turn an nbgrader *source*
notebook or an otter-grader *master* notebook into ``solutions/<id>.ipynb``: answers become
``exercise`` cells with ``# BEGIN SOLUTION`` markers, tests become ``check`` and ``hidden-check``
cells with ``grader: {id, points}`` metadata, and hidden tests that assert are rewritten to print
the values they check (grading compares output with the solution's). What cannot be converted —
answers graded by hand, written answers, files the assignment ships — is reported with the
source cell named, never silently dropped.

Modules, one concept each:

- :mod:`~grader.importers.convert` — tests that assert → checks that print values; the report;
- :mod:`~grader.importers.builder` — the solution notebook in the making (ids, numbering, titles);
- :mod:`~grader.importers.nbgrader` — nbgrader's cell metadata and markers;
- :mod:`~grader.importers.otter` — otter's raw boundary cells, solution markers and test cells;
- :mod:`~grader.importers.assignment` — :func:`import_assignment`: read, convert, lint, write.

Imports: :mod:`grader.format`, :mod:`grader.authoring` (the converted notebook must pass its lint),
:mod:`grader.settings` (where ``solutions/`` is) and :mod:`grader.errors` only. Nothing here
prints or exits.
"""

from grader.importers.assignment import TOOLS, convert_notebook, default_exercise_id, exit_code, import_assignment
from grader.importers.convert import Finding, ImportReport, render_report, report_values

__all__ = [
    "TOOLS",
    "Finding",
    "ImportReport",
    "convert_notebook",
    "default_exercise_id",
    "exit_code",
    "import_assignment",
    "render_report",
    "report_values",
]
