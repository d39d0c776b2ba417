"""The lesson pipeline and the site: lessons executed by papermill (cached by content hash),
the Jupyter Book 1 build, and the static server for the built site.

Imports: :mod:`grader.format`, :mod:`grader.settings`, :mod:`grader.errors`.
"""
