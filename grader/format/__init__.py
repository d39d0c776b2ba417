"""The exercise-notebook format: the vocabulary (markers, tags, metadata keys), reading and
writing notebooks, and what a graded cell is.

Imports: nothing of ``grader`` but :mod:`grader.errors`. Every other layer builds on this one.
"""
