"""Benchmarks of sqlalchemy-chronicle: the standard workload, run with ``python -m benchmarks``.

See ``benchmarks/README.md`` for the command, the options and the latest figures, and
:mod:`benchmarks.workload` for what is measured.
"""
