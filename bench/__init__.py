"""The platform's benchmarks (see docs/BENCHMARKS.md): ``python -m bench [ID ...]``.

Each benchmark is a module ``bench/b<N>_<what>.py`` with a one-line docstring and a
``main(argv: list[str]) -> int``; dropping such a file here registers it. Every benchmark
interleaves its arms, repeats them after a warm-up, prints a table and writes
``bench/results/<id>.json``. None of them fails on a time: they measure, CI decides nothing.
"""
