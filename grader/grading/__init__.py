"""The grading engine: a submission and a bundle in, a verdict per graded cell out.

Bundle (hidden checks and reference outputs), assembly by cell id, the runner process
(pytest + nbval, cold or pre-started in the warm pool), the nbval plugin, tolerant comparison
and sanitizers, scoring, results (every word a learner reads), the learner's self-check and
``grader verify``.

Imports: :mod:`grader.format`, :mod:`grader.sandbox`, :mod:`grader.authoring`, and the
top-level :mod:`grader.settings` and :mod:`grader.errors`. Never the book or the service.
"""
