"""sqlalchemy-chronicle: full row history for SQLAlchemy.

Inherit :class:`Versioned` and every version of every row is kept in ``<table>_history`` with its
validity interval; :class:`Transaction` records who changed what, when.

The package is laid out along the data path, each layer importing only from those before it:
the foundations (``errors``, ``config``, ``instants``, ``types``), ``schema`` (declare),
``capture``, ``write``, ``read``, ``recovery`` (restore) and ``operate``; :mod:`.mixin` connects
capture to the writer. The public names are all here.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .capture.attribution import Attribution, attribute_session, changes_by
from .config import (
    Clock,
    configure,
    database_clock,
    default_clock,
    python_clock,
    use_sqlite_savepoints,
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
    UnversionedTableWarning,
)
from .instants import TimeLike, set_default_timezone
from .mixin import Versioned, versioned_table
from .operate.backfill import backfill_history
from .read.changelog import (
    changelog_between,
    changelog_by,
    changelog_for,
    changelog_of_transaction,
)
from .read.query import (
    AsOfSession,
    Change,
    as_of,
    changes,
    history,
    next_version,
    previous_version,
    query_as_of,
)
from .recovery.api import RestoreResult, restore, restore_all
from .schema.history import Version
from .schema.tables import ChangeLog, Transaction, format_row_id

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
    "UnversionedTableWarning",
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
    "versioned_table",
]
