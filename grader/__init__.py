"""Turns notebooks into verdicts and sites: authoring, grading, the lesson pipeline, the book."""

__version__ = "0.1.0"
