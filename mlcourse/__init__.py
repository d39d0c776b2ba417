"""Helpers that the course's lesson and exercise notebooks import."""

__version__ = "0.1.0"
