"""sqlalchemy-chronicle: full row history for SQLAlchemy.

Inherit :class:`Versioned` and every version of every row is kept in ``<table>_history`` with its
validity interval; :class:`Transaction` records who changed what, when.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._schema import Version
from .errors import ChronicleError, ConcurrentVersionError, ConfigurationError
from .mixin import Versioned
from .transaction import Clock, Transaction, configure, database_clock, default_clock, python_clock

try:
    __version__ = version("sqlalchemy-chronicle")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "ChronicleError",
    "Clock",
    "ConcurrentVersionError",
    "ConfigurationError",
    "Transaction",
    "Version",
    "Versioned",
    "__version__",
    "configure",
    "database_clock",
    "default_clock",
    "python_clock",
]
