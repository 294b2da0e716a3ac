"""sqlalchemy-chronicle: full row history for SQLAlchemy.

Inherit :class:`Versioned` and every version of every row is kept in ``<table>_history`` with its
validity interval; :class:`Transaction` records who changed what, when.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._schema import Version
from .changelog import (
    ChangeLog,
    changelog_between,
    changelog_by,
    changelog_for,
    changelog_of_transaction,
    format_row_id,
)
from .errors import (
    ChronicleError,
    ConcurrentVersionError,
    ConfigurationError,
    InvalidKeyError,
    InvalidTimeError,
    NotVersionedError,
    NoVersionAt,
    ReadOnlyError,
    RestoreConflictError,
    RestoreError,
    UnsupportedStatementError,
)
from .migration import backfill_history
from .mixin import Versioned
from .query import (
    AsOfSession,
    Change,
    TimeLike,
    as_of,
    changes,
    history,
    next_version,
    previous_version,
    query_as_of,
    set_default_timezone,
)
from .restoration import RestoreResult, restore, restore_all
from .transaction import (
    Attribution,
    Clock,
    Transaction,
    attribute_session,
    changes_by,
    configure,
    database_clock,
    default_clock,
    python_clock,
    use_sqlite_savepoints,
)

try:
    __version__ = version("sqlalchemy-chronicle")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AsOfSession",
    "Attribution",
    "Change",
    "ChangeLog",
    "ChronicleError",
    "Clock",
    "ConcurrentVersionError",
    "ConfigurationError",
    "InvalidKeyError",
    "InvalidTimeError",
    "NoVersionAt",
    "NotVersionedError",
    "ReadOnlyError",
    "RestoreConflictError",
    "RestoreError",
    "RestoreResult",
    "TimeLike",
    "Transaction",
    "UnsupportedStatementError",
    "Version",
    "Versioned",
    "__version__",
    "as_of",
    "attribute_session",
    "backfill_history",
    "changelog_between",
    "changelog_by",
    "changelog_for",
    "changelog_of_transaction",
    "changes",
    "changes_by",
    "configure",
    "database_clock",
    "default_clock",
    "format_row_id",
    "history",
    "next_version",
    "previous_version",
    "python_clock",
    "query_as_of",
    "restore",
    "restore_all",
    "set_default_timezone",
    "use_sqlite_savepoints",
]
