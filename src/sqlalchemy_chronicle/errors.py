"""The exceptions sqlalchemy-chronicle raises.

Every error the library raises on purpose derives from :class:`ChronicleError`, so that an
application can catch the library's complaints apart from SQLAlchemy's and the driver's.
"""

from __future__ import annotations

__all__ = [
    "ChronicleError",
    "ConcurrentVersionError",
    "ConfigurationError",
    "InvalidKeyError",
    "InvalidTimeError",
    "NotVersionedError",
    "ReadOnlyError",
    "UnsupportedStatementError",
]


class ChronicleError(Exception):
    """Base class of every exception raised by sqlalchemy-chronicle."""


class ConfigurationError(ChronicleError):
    """A versioned class, an option or a setting is not usable as given."""


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
    """A primary key does not fit the versioned class, or two versions of different rows met."""


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
