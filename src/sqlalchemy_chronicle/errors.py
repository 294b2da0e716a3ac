"""The exceptions sqlalchemy-chronicle raises.

Every error the library raises on purpose derives from :class:`ChronicleError`, so that an
application can catch the library's complaints apart from SQLAlchemy's and the driver's.
"""

from __future__ import annotations

__all__ = [
    "ChronicleError",
    "ConcurrentVersionError",
    "ConfigurationError",
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
