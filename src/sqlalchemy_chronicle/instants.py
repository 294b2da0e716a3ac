"""Points in time: what a time given to the library means, and its UTC instant.

A time is an aware :class:`~datetime.datetime` (a :class:`pendulum.DateTime` is one) or an
ISO-8601 string with an offset. A naive time could mean any instant and is refused with
:class:`~sqlalchemy_chronicle.InvalidTimeError`, unless :func:`set_default_timezone` says where
naive times are. Everything the library stores and compares is the UTC instant
(:func:`to_utc`, :func:`to_instant`).

This module is one of the foundations: it imports nothing else of the package but the errors.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import pendulum

from .errors import ConfigurationError, InvalidTimeError

__all__ = ["TimeLike", "set_default_timezone", "to_instant", "to_utc"]

TimeLike = dt.datetime | str
"""A point in time: an aware datetime or an ISO-8601 string with an offset."""

_EXAMPLE: Final = "'2024-03-05T14:30:00+01:00'"

_default_timezone: dt.tzinfo | None = None


def set_default_timezone(timezone: str | dt.tzinfo | None) -> None:
    """Let naive times (datetimes or strings without an offset) be read in ``timezone``.

    :param timezone: an IANA name such as ``"Europe/Paris"`` or a :class:`~datetime.tzinfo`;
        ``None`` (the default) makes naive times an error again.
    """
    global _default_timezone
    if isinstance(timezone, str):
        try:
            timezone = pendulum.timezone(timezone)
        except Exception as exc:
            raise ConfigurationError(f"unknown timezone {timezone!r}") from exc
    _default_timezone = timezone


def to_instant(when: TimeLike) -> pendulum.DateTime:
    """``when`` as a UTC :class:`pendulum.DateTime`; see the module documentation for the rules."""
    if type(when) is dt.datetime or type(when) is pendulum.DateTime:
        offset = when.utcoffset()
        if offset is not None:
            # The common case, in a tenth of the time pendulum.instance() takes. The arithmetic
            # is on the naive wall time: pendulum's own would step over a DST change.
            fields = when.timetuple()[:6]
            utc = dt.datetime(*fields, when.microsecond) - offset
            return pendulum.DateTime(*utc.timetuple()[:6], utc.microsecond, tzinfo=pendulum.UTC)
    value: object = when
    if isinstance(when, str):
        try:
            value = pendulum.parse(when, tz=None, exact=True)
        except (ValueError, TypeError) as exc:
            raise InvalidTimeError(
                f"{when!r} is not an ISO-8601 date and time; write it like {_EXAMPLE}"
            ) from exc
        if not isinstance(value, dt.datetime):
            raise InvalidTimeError(
                f"{when!r} reads as a {type(value).__name__.lower()}, not a point in time; "
                f"give a date and a time, like {_EXAMPLE}"
            )
    elif isinstance(when, dt.date) and not isinstance(when, dt.datetime):
        raise InvalidTimeError(
            f"{when!r} is a date, not a point in time; give an aware datetime, such as "
            "datetime(2024, 3, 5, tzinfo=timezone.utc)"
        )
    if not isinstance(value, dt.datetime):
        raise InvalidTimeError(
            f"expected an aware datetime or an ISO-8601 string, got {type(when).__name__}"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        if _default_timezone is None:
            raise InvalidTimeError(
                f"the time {when!r} is naive: without a timezone it could be any of 24 hours. "
                "Give an aware time, such as datetime(2024, 3, 5, 14, 30, tzinfo=timezone.utc), "
                f"pendulum.datetime(2024, 3, 5, 14, 30, tz='Europe/Paris') or {_EXAMPLE}; "
                "or call sqlalchemy_chronicle.set_default_timezone('Europe/Paris') once so that "
                "naive times are read in that zone"
            )
        value = pendulum.datetime(*value.timetuple()[:6], value.microsecond, tz=_default_timezone)
    return to_utc(value)


def to_utc(value: dt.datetime) -> pendulum.DateTime:
    """Return an aware datetime as a UTC :class:`pendulum.DateTime`; naive input is refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: give a timezone-aware datetime")
    return pendulum.instance(value).in_timezone("UTC")
