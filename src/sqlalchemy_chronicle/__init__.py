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
    HistoryPrunedError,
    InvalidKeyError,
    InvalidTimeError,
    NotVersionedError,
    NoVersionAt,
    ReadOnlyError,
    RedactionError,
    RestoreConflictError,
    RestoreError,
    UnsupportedStatementError,
    UnversionedTableWarning,
)
from .instants import TimeLike, set_default_timezone
from .mixin import Versioned, create_triggers, drop_triggers, versioned_table
from .operate.backfill import backfill_history
from .operate.ledger import Finding, VerificationReport, anchor_digest, seal_history, verify_history
from .operate.redaction import RedactionResult, redact
from .operate.retention import PruneResult, apply_retention, prune_history
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
from .schema.tables import (
    ChangeLog,
    Horizon,
    LedgerEntry,
    Redaction,
    Transaction,
    format_row_id,
    parse_row_id,
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
    "Finding",
    "HistoryPrunedError",
    "Horizon",
    "InvalidKeyError",
    "InvalidTimeError",
    "LedgerEntry",
    "NoVersionAt",
    "NotVersionedError",
    "PruneResult",
    "ReadOnlyError",
    "Redaction",
    "RedactionError",
    "RedactionResult",
    "RestoreConflictError",
    "RestoreError",
    "RestoreResult",
    "TimeLike",
    "Transaction",
    "UnsupportedStatementError",
    "UnversionedTableWarning",
    "VerificationReport",
    "Version",
    "Versioned",
    "__version__",
    "anchor_digest",
    "apply_retention",
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
    "create_triggers",
    "database_clock",
    "default_clock",
    "drop_triggers",
    "format_row_id",
    "history",
    "next_version",
    "parse_row_id",
    "previous_version",
    "prune_history",
    "python_clock",
    "query_as_of",
    "redact",
    "restore",
    "restore_all",
    "seal_history",
    "set_default_timezone",
    "use_sqlite_savepoints",
    "verify_history",
    "versioned_table",
]
