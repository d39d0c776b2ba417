"""The exercise-notebook format: what every other layer agrees a notebook is.

- :mod:`~grader.format.markers` — the vocabulary: markers, tags, metadata keys, the check title;
- :mod:`~grader.format.notebooks` — reading, validating and writing notebook files;
- :mod:`~grader.format.cells` — cell roles, graded cells (one parser), how messages name a cell;
- :mod:`~grader.format.cellids` — cell ids given back to a notebook saved without them (nbformat 4.4).

Imports: nothing of ``grader`` but :mod:`grader.errors`. Every other layer builds on this one.
"""
