"""The exceptions sqlalchemy-chronicle raises.

Every error the library raises on purpose derives from :class:`ChronicleError`, so that an
application can catch the library's complaints apart from SQLAlchemy's and the driver's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = [
    "ChronicleError",
    "ConcurrentVersionError",
    "ConfigurationError",
    "HistoryPrunedError",
    "InvalidKeyError",
    "InvalidTimeError",
    "NoVersionAt",
    "NotVersionedError",
    "ReadOnlyError",
    "RedactionError",
    "RestoreConflictError",
    "RestoreError",
    "UnsupportedStatementError",
]


class ChronicleError(Exception):
    """Base class of every exception raised by sqlalchemy-chronicle."""


class ConfigurationError(ChronicleError):
    """A versioned class, an option, a setting or an attribution is not usable as given."""


class ConcurrentVersionError(ChronicleError):
    """A concurrent transaction already gave a row a version newer than this transaction's time.

    Raised only in strict mode (``configure(strict=True)``); by default the new version starts one
    microsecond after the newer one instead, see :doc:`/concepts`.
    """


class InvalidTimeError(ChronicleError, ValueError):
    """A point in time given to a query is not usable: naive, malformed, or not a time at all.

    A time must be an aware :class:`~datetime.datetime` (a :class:`pendulum.DateTime` included) or
    an ISO-8601 string with a UTC offset; a naive one is accepted only once a default timezone is
    set with :func:`~sqlalchemy_chronicle.set_default_timezone`.
    """


class InvalidKeyError(ChronicleError, ValueError):
    """A primary key does not fit: the versioned class, or the change log's ``row_id``.

    Also raised when two versions of different rows are compared.
    """


class NotVersionedError(ChronicleError, TypeError):
    """A history query was given a class that does not inherit :class:`Versioned`."""


class ReadOnlyError(ChronicleError):
    """A write was attempted through a read-only view of the past.

    Raised when a time-travel session (:func:`~sqlalchemy_chronicle.as_of`) is asked to flush or to
    run a DML statement, and when a flush would change or delete a stored version.
    """


class UnsupportedStatementError(ChronicleError):
    """A bulk statement on a versioned class that the library cannot version.

    Raised before the statement runs, so nothing is written; the message says what to do instead.
    Such a statement is never executed unversioned.
    """


class RestoreError(ChronicleError):
    """A restore cannot be carried out as asked; nothing was changed.

    Raised by :func:`~sqlalchemy_chronicle.restore` and :func:`~sqlalchemy_chronicle.restore_all`
    before they write, or after rolling back their savepoint, so that the session's transaction
    is still usable.
    """


class NoVersionAt(RestoreError, LookupError):
    """There is no state to restore: the row did not exist at the time asked for, or never.

    Also raised when the history cannot tell what the row was then (its history begins after that
    time with an update, so the row existed before its history did), and when a table is restored
    to a time before its history begins. Restoring a row to "not existing", which deletes it, is
    done only when asked for with ``allow_delete=True``.
    """


class RestoreConflictError(RestoreError):
    """Restoring would violate a unique constraint or a foreign key of the live schema.

    :attr:`model` and :attr:`key` name the row that cannot be restored and :attr:`constraint` the
    constraint, as far as they are known (when the database itself refused a statement, only its
    message may be).
    """

    def __init__(
        self,
        message: str,
        *,
        model: type[Any] | None = None,
        key: tuple[Any, ...] | None = None,
        constraint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.key = key
        self.constraint = constraint


class HistoryPrunedError(ChronicleError, LookupError):
    """The history asked for reaches before a table's pruning horizon, so it is incomplete.

    Raised by as-of reads (:func:`~sqlalchemy_chronicle.query_as_of`, the time-travel session),
    :func:`~sqlalchemy_chronicle.history` and the restore functions instead of answering from
    what pruning left (see :func:`~sqlalchemy_chronicle.prune_history`). :attr:`table` names the
    live table and :attr:`horizon` the time before which its history is gone.
    """

    def __init__(self, message: str, *, table: str, horizon: dt.datetime) -> None:
        super().__init__(message)
        self.table = table
        self.horizon = horizon


class RedactionError(ChronicleError, ValueError):
    """A redaction cannot be made as asked; nothing was changed.

    Raised by :func:`~sqlalchemy_chronicle.redact` for a column the history does not hold, a
    primary-key column, a row without history, or a missing reason.
    """
