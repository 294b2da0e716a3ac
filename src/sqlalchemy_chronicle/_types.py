"""Column types shared by the library's tables."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import pendulum
from sqlalchemy import DateTime, Dialect
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["UTCDateTime", "to_utc"]


def to_utc(value: dt.datetime) -> pendulum.DateTime:
    """Return an aware datetime as a UTC :class:`pendulum.DateTime`; naive input is refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: give a timezone-aware datetime")
    return pendulum.instance(value).in_timezone("UTC")


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
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
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
        if value is None:
            return None
        return pendulum.DateTime(*_utc_fields(value), tzinfo=pendulum.UTC)


MEMO_SIZE: Final = 4096
"""Distinct values a conversion remembers before it starts afresh."""


def _memoized(process: Any) -> Any:
    """``process`` remembering its results for up to :data:`MEMO_SIZE` distinct non-NULL values.

    The converted values are immutable and equal inputs convert equally (an aware time compares
    as the instant it is), so one result can stand for all of them; except that two local times
    of the hour repeated when daylight saving time ends compare equal and differ only in
    ``fold``: a time with ``fold`` set bypasses the memo, and equal times with ``fold`` unset are
    one instant. The memo belongs to the processor, which SQLAlchemy keeps per dialect; a naive
    time is refused every time a value is sent, as it is never remembered.
    """
    if process is None:  # pragma: no cover - UTCDateTime always converts
        return None
    memo: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if getattr(value, "fold", 0):
            return process(value)
        found = memo.get(value)
        if found is None:
            found = process(value)
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            memo[value] = found
        return found

    return convert


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
