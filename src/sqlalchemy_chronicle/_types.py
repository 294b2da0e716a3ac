"""Column types shared by the library's tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

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
