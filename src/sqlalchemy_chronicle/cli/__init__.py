"""The ``chronicle`` command line: read, restore, backfill, prune, redact and verify history.

``chronicle`` is installed with the ``cli`` extra (``pip install 'sqlalchemy-chronicle[cli]'``,
which brings Click and Rich) and is also ``python -m sqlalchemy_chronicle``. It is the top layer
of the package: every command is a thin wrapper (:mod:`.main`) over a plain function
(:mod:`.commands`) that calls the library's public API, or reads the history tables by
reflection (:mod:`._reflect`) so that the reading commands need nothing but a database URL.
See ``docs/cli.md``.
"""

from __future__ import annotations

from ._reflect import CommandError
from .main import app, main

__all__ = ["CommandError", "app", "main"]
