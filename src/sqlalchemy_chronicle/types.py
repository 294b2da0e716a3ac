"""Column types of the library's tables, with a public path that migrations import."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import pendulum
from sqlalchemy import JSON, DateTime, Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["JSONDocument", "UTCDateTime"]


class UTCDateTime(TypeDecorator[pendulum.DateTime]):
    """A microsecond-precision UTC instant, returned as an aware :class:`pendulum.DateTime`.

    PostgreSQL stores ``timestamp with time zone``; MySQL and MariaDB store ``DATETIME(6)`` (a plain
    ``DATETIME`` would round to whole seconds); SQLite stores ISO text. Values go in as UTC on
    every backend, so that the text comparison SQLite makes orders them correctly.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        """The conversion of values sent, done once per distinct value (see :func:`_memoized`).

        The rows a flush writes share their transaction's time, and a series of as-of queries
        often repeats one.
        """
        return _memoized(super().bind_processor(dialect))

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """The conversion of values read, done once per distinct value.

        The versions one transaction wrote share their interval times, so a table holds few
        distinct values among many rows.
        """
        return _memoized(super().result_processor(dialect, coltype))

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """``DATETIME(6)`` on MySQL and MariaDB, ``DateTime(timezone=True)`` elsewhere."""
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql

            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """The UTC wall time (aware on PostgreSQL); a naive value is refused."""
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: give a timezone-aware datetime")
        tz = dt.timezone.utc if dialect.name == "postgresql" else None
        # A plain datetime: drivers handle pendulum's subclass slowly.
        return dt.datetime(*_utc_fields(value), tzinfo=tz)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> pendulum.DateTime | None:
        """The stored instant as an aware UTC :class:`pendulum.DateTime`."""
        if value is None:
            return None
        return pendulum.DateTime(*_utc_fields(value), tzinfo=pendulum.UTC)


class JSONDocument(TypeDecorator[Any]):
    """JSON, stored as ``JSONB`` on PostgreSQL and as ``JSON`` elsewhere.

    One type rather than a variant, so that a migration renders it the same for every database.
    """

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """``JSONB`` on PostgreSQL, the dialect's ``JSON`` elsewhere."""
        if dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql

            return dialect.type_descriptor(postgresql.JSONB())
        return dialect.type_descriptor(JSON())


MEMO_SIZE: Final = 4096
"""Distinct values a conversion remembers before it starts afresh."""


def _memoized(process: Any) -> Any:
    """``process`` remembering its results for up to :data:`MEMO_SIZE` distinct values.

    The processor returned is a dictionary's own ``__getitem__``, so that a value seen before
    costs a look-up in C and no Python call: a snapshot converts two times per row. The converted
    values are immutable and equal inputs convert equally (an aware time compares as the instant
    it is), so one result can stand for all of them. The memo belongs to the processor, which
    SQLAlchemy keeps per dialect.
    """
    if process is None:  # pragma: no cover - UTCDateTime always converts
        return None
    return _Memo(process).__getitem__


class _Memo(dict[Any, Any]):
    """The converted values by raw value, NULL included; a miss converts and remembers.

    Only times that are one instant whatever their ``fold`` are remembered: two local times of
    the hour repeated when daylight saving time ends compare equal (they differ only in
    ``fold``), while such a time never equals a time of another zone. A value the conversion
    refuses (a naive time sent) raises before it is remembered, so it is refused every time.
    """

    def __init__(self, process: Any) -> None:
        super().__init__({None: None})
        self.process = process

    def __missing__(self, value: Any) -> Any:
        found = self.process(value)
        if _is_one_instant(value):
            if len(self) >= MEMO_SIZE:
                self.clear()
                self[None] = None
            self[value] = found
        return found


def _is_one_instant(value: Any) -> bool:
    """Whether ``value`` stands for one instant whatever its ``fold``.

    True of naive times, of every time in UTC or at a fixed offset, and of local times outside
    the hours that daylight saving time repeats or skips.
    """
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        return True
    if isinstance(value.tzinfo, dt.timezone):
        return True
    return value.utcoffset() == value.replace(fold=1 - value.fold).utcoffset()


def _utc_fields(value: dt.datetime) -> tuple[int, int, int, int, int, int, int]:
    """Year to microsecond of ``value`` in UTC; a naive value is taken as UTC already."""
    offset = value.utcoffset()
    if offset:
        value = value - offset
    return (
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )
