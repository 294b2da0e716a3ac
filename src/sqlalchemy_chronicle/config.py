"""Library-wide settings: the clock, strict mode, the change-log switch, SQLite's savepoints.

Each database transaction that changes versioned data gets one time, the ``valid_from`` of every
version it writes. The time comes from a *clock*: a callable that receives the connection and
returns an aware datetime. By default PostgreSQL and MariaDB/MySQL are asked for their own clock,
so that several application processes agree on one time line; SQLite has no shared server, so the
default there is pendulum's clock (which ``pendulum.travel_to`` moves). :func:`configure` installs
another clock, for example a frozen one in tests, and switches strict mode and the change log.

This module is one of the foundations: it imports nothing else of the package but the errors.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import pendulum
from sqlalchemy import Connection, Engine, event, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import functions

from .errors import ConfigurationError

__all__ = [
    "Clock",
    "changelog_enabled",
    "clock_time",
    "configure",
    "current_clock",
    "database_clock",
    "default_clock",
    "is_strict",
    "ledger_enabled",
    "python_clock",
    "reading_engine",
    "use_sqlite_savepoints",
]

Clock = Callable[[Connection], dt.datetime]
"""A source of time: called with the transaction's connection, returns an aware datetime."""


def python_clock(connection: Connection) -> dt.datetime:
    """Pendulum's current UTC time; moved by ``pendulum.travel_to``."""
    return pendulum.now("UTC")


def database_clock(connection: Connection) -> dt.datetime:
    """The database server's current UTC time, read with one ``SELECT``.

    PostgreSQL's ``clock_timestamp()`` and MariaDB/MySQL's ``UTC_TIMESTAMP(6)`` are used (not the
    transaction-start time), so that a long transaction does not stamp its versions with a time
    that concurrent transactions have already passed. SQLite has no server; pendulum is asked.
    """
    name = connection.dialect.name
    if name == "postgresql":
        now = connection.scalar(select(functions.func.clock_timestamp()))
    elif name in ("mysql", "mariadb"):
        now = connection.scalar(select(functions.func.utc_timestamp(6)))
        if now is not None:
            now = now.replace(tzinfo=dt.timezone.utc)
    else:
        return python_clock(connection)
    if not isinstance(now, dt.datetime):
        raise TypeError(f"the database clock returned {now!r}")
    return now


def default_clock(connection: Connection) -> dt.datetime:
    """The database's clock where there is a server, pendulum's on SQLite."""
    return database_clock(connection)


@dataclass
class _Settings:
    clock: Clock
    strict: bool
    changelog: bool
    ledger: bool


_settings = _Settings(clock=default_clock, strict=False, changelog=True, ledger=False)
_UNSET: Final[Any] = object()


def configure(
    *,
    clock: Clock | None = _UNSET,
    strict: bool = _UNSET,
    changelog: bool = _UNSET,
    ledger: bool = _UNSET,
) -> None:
    """Change the library-wide settings; arguments not given keep their value.

    :param clock: the source of transaction times; ``None`` restores :func:`default_clock`.
    :param strict: when true, a write that finds a concurrent transaction's newer version of a
        row raises :class:`~sqlalchemy_chronicle.ConcurrentVersionError` instead of starting the
        new version one microsecond after the newer one.
    :param changelog: when false, no :class:`~sqlalchemy_chronicle.ChangeLog` rows are written
        for any class (a class can also opt out with ``__versioned__ = {"changelog": False}``).
    :param ledger: when true, every commit seals the versions it wrote into the tamper-evident
        ledger, for every class (a class can opt in alone with ``__versioned__ = {"ledger":
        True}``); see :func:`~sqlalchemy_chronicle.seal_history`.
    :raises ConfigurationError: ``clock`` is not callable, or ``strict``, ``changelog`` or
        ``ledger`` is not a :class:`bool` (``strict="no"`` would otherwise read as true); no
        setting is changed.

    The clock is called at each transaction's first write of history; what it returns is
    checked then (see :func:`clock_time`).
    """
    if clock is not _UNSET and clock is not None and not callable(clock):
        raise ConfigurationError(
            f"configure(clock={clock!r}): a clock is a callable that takes the connection and "
            "returns an aware datetime, such as lambda connection: "
            "datetime.datetime.now(datetime.timezone.utc); None restores the default clock"
        )
    for name, value in (("strict", strict), ("changelog", changelog), ("ledger", ledger)):
        if value is not _UNSET and not isinstance(value, bool):
            raise ConfigurationError(
                f"configure({name}={value!r}): {name} takes True or False, not "
                f"{type(value).__name__}"
            )
    if clock is not _UNSET:
        _settings.clock = default_clock if clock is None else clock
    if strict is not _UNSET:
        _settings.strict = strict
    if changelog is not _UNSET:
        _settings.changelog = changelog
    if ledger is not _UNSET:
        _settings.ledger = ledger


def changelog_enabled() -> bool:
    """Whether change-log rows are written at all (each class may still opt out)."""
    return _settings.changelog


def ledger_enabled() -> bool:
    """Whether every commit seals the versions it wrote, for every class."""
    return _settings.ledger


def is_strict() -> bool:
    """Whether concurrent newer versions raise instead of being stepped over."""
    return _settings.strict


def current_clock() -> Clock:
    """The clock :func:`configure` installed."""
    return _settings.clock


def clock_time(connection: Connection) -> dt.datetime:
    """Read the installed clock for a transaction on ``connection``, and check what it says.

    :raises ConfigurationError: naming the clock, when it raises, or returns anything but an
        aware :class:`~datetime.datetime` (None, a string, a date, a naive datetime), or a time
        whose UTC instant is outside the years 1 to 9999. The caller's flush fails, and nothing
        is written.
    """
    clock = _settings.clock
    name = getattr(clock, "__qualname__", None) or repr(clock)
    fix = "a clock must return an aware datetime, e.g. datetime.datetime.now(datetime.timezone.utc)"
    try:
        now = clock(connection)
    except SQLAlchemyError:
        raise  # the database's failure, not the clock's
    except Exception as exc:
        raise ConfigurationError(f"the clock {name} raised {exc!r}; {fix}") from exc
    if not isinstance(now, dt.datetime):
        raise ConfigurationError(
            f"the clock {name} returned {now!r}, a {type(now).__name__}, not a datetime; {fix}"
        )
    try:
        offset = now.utcoffset()
        if offset is not None:
            _ = now.replace(tzinfo=None) - offset  # the instant must exist
    except Exception as exc:
        raise ConfigurationError(
            f"the clock {name} returned {now!r}, which is no usable instant ({exc}); {fix}"
        ) from exc
    if offset is None:
        raise ConfigurationError(
            f"the clock {name} returned the naive datetime {now!r}, which could be any of 24 "
            f"hours; {fix}"
        )
    return now


def use_sqlite_savepoints(engine: Engine) -> None:
    """Let SQLAlchemy, not SQLite's driver, begin the transactions of ``engine``.

    :func:`~sqlalchemy_chronicle.restore` and :func:`~sqlalchemy_chronicle.restore_all` work in
    a savepoint. Python's ``sqlite3`` begins a transaction by itself, only before a write, so a
    savepoint taken first becomes the outermost transaction and releasing it commits. This
    installs the recipe of SQLAlchemy's SQLite documentation ("Serializable isolation /
    Savepoints"): the driver begins nothing, SQLAlchemy emits ``BEGIN``. Other databases need
    nothing, and for them this does nothing. For an ``AsyncEngine``, pass its ``sync_engine``.
    """
    if engine.dialect.name != "sqlite":
        return
    if not event.contains(engine, "connect", _no_driver_transactions):
        event.listen(engine, "connect", _no_driver_transactions)
        event.listen(engine, "begin", _begin_explicitly)


def _no_driver_transactions(dbapi_connection: Any, connection_record: Any) -> None:
    dbapi_connection.isolation_level = None


def _begin_explicitly(connection: Connection) -> None:
    if not connection.get_execution_options().get(_READS_ONLY):
        connection.exec_driver_sql("BEGIN")


_READS_ONLY: Final = "chronicle_reads_only"
"""The execution option of :func:`reading_engine`'s connections: no ``BEGIN`` on SQLite."""


def reading_engine(engine: Engine) -> Engine:
    """``engine``, for a session that only reads and may be left open (a time-travel session).

    On SQLite with :func:`use_sqlite_savepoints`, a transaction begins with ``BEGIN`` and its
    first read takes a lock that SQLite keeps to the transaction's end, so another session's
    commit would wait for it, then fail with "database is locked". Connections of the engine
    returned here begin nothing: each statement reads in a transaction of its own, which ends
    with it. Every other engine is returned as it is.
    """
    if engine.dialect.name != "sqlite" or not event.contains(engine, "begin", _begin_explicitly):
        return engine
    return engine.execution_options(**{_READS_ONLY: True})
