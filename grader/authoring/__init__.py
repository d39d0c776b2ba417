"""Exercise authoring: turn ``solutions/NN-slug.ipynb`` into the learner stub ``exercises/NN-slug.ipynb``.

The pipeline for one notebook is a short list of small steps, each testable on one cell:

1. :func:`lint` — refuse a solution that breaks the authoring rules (all problems at once), and
   return warnings about what is probably a mistake;
2. :func:`make_exercise` — drop hidden checks, replace solution regions with stubs
   (:func:`strip_solution`), stub manual answers and put their rubric above them, clear
   outputs, keep every cell id, stamp the exercise id and
   put the generated header ("Open in Colab" badge, how to check and submit) and the Colab
   setup cell under the title and the submit cell at the end;
3. :func:`assign` — do that for every solution and write ``exercises/`` (with the files each
   solution ships, :func:`declared_files`), and give every lesson
   in ``notebooks/`` the same setup cell (or, with ``check=True``, only say what is stale).

Modules, one concept each:

- :mod:`~grader.authoring.stubs` — solution markers → learner stubs, near-miss markers;
- :mod:`~grader.authoring.colab` — the repository's host (GitHub, GitLab, another git URL or none), the
  Colab badge URL, the generated header, setup and submit cells;
- :mod:`~grader.authoring.files` — the data and asset files a solution declares it ships;
- :mod:`~grader.authoring.device` — the device a solution asks to be graded on (cpu or gpu);
- :mod:`~grader.authoring.manual` — manual answers as learners get them: the stubbed answer, its rubric cell;
- :mod:`~grader.authoring.lint` — the authoring rules;
- :mod:`~grader.authoring.generate` — :func:`make_exercise`, :func:`assign`, :func:`render_report`.

What a cell's role is, what a graded cell is and how messages name a cell belong to the
exercise format, :mod:`grader.format.cells`; every tag, marker and metadata key is spelled in
:mod:`grader.format.markers`. Nothing here prints or exits.

Imports: :mod:`grader.format`, :mod:`grader.errors` and :mod:`grader.settings` only (the
grading layer builds on this one, never the reverse).
"""

from grader.authoring.colab import colab_url
from grader.authoring.device import declared_device
from grader.authoring.files import declared_files
from grader.authoring.generate import AssignReport, assign, make_exercise, render_report
from grader.authoring.lint import lint
from grader.authoring.stubs import strip_solution

__all__ = [
    "AssignReport",
    "assign",
    "colab_url",
    "declared_device",
    "declared_files",
    "lint",
    "make_exercise",
    "render_report",
    "strip_solution",
]
