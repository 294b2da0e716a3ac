"""Points in time: what a time given to the library means, and its UTC instant.

A time is an aware :class:`~datetime.datetime` (a :class:`pendulum.DateTime` is one) or an
ISO-8601 string with an offset. A naive time could mean any instant and is refused with
:class:`~sqlalchemy_chronicle.InvalidTimeError`, unless :func:`set_default_timezone` says where
naive times are. Everything the library stores and compares is the UTC instant
(:func:`to_utc`, :func:`to_instant`).

**Local times that daylight saving time repeats or skips.** One rule, Python's own (PEP 495,
as :class:`zoneinfo.ZoneInfo` applies it), on the write side (a clock's times) and on the query
side alike: the instant is the wall time minus the offset that the time's ``tzinfo`` gives for
its ``fold``. With ``fold=0`` (the default of a :class:`~datetime.datetime`, and of every naive
string) a repeated time takes the earlier offset, the one before the clocks went back
(``2024-10-27 02:30`` in Europe/Paris is 00:30 UTC), and a skipped time the offset before the
clocks went forward (``2024-03-31 02:30`` is 01:30 UTC, the instant the wall clock would have
shown as 03:30); ``fold=1`` takes the later offset in both cases. A naive time read in the
default timezone keeps its ``fold``. (A :class:`pendulum.DateTime` is already one instant:
pendulum resolves such times when it makes one.) A time whose UTC instant falls outside the
years 1 to 9999 is refused with :class:`~sqlalchemy_chronicle.InvalidTimeError`.

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
        ``None`` (the default) makes naive times an error again. Anything else (a number of
        hours, for example) raises :class:`~sqlalchemy_chronicle.ConfigurationError`.

    A naive time in the hour that daylight saving time repeats or skips is read by its
    ``fold``, as Python reads it: see the module documentation.
    """
    global _default_timezone
    if isinstance(timezone, str):
        try:
            timezone = pendulum.timezone(timezone)
        except Exception as exc:
            raise ConfigurationError(f"unknown timezone {timezone!r}") from exc
    elif timezone is not None and not isinstance(timezone, dt.tzinfo):
        raise ConfigurationError(
            f"set_default_timezone() takes an IANA name such as 'Europe/Paris', a tzinfo or "
            f"None; got {timezone!r} (for a fixed offset, pass "
            "datetime.timezone(datetime.timedelta(hours=5)))"
        )
    _default_timezone = timezone


def to_instant(when: TimeLike) -> pendulum.DateTime:
    """``when`` as a UTC :class:`pendulum.DateTime`; see the module documentation for the rules."""
    if isinstance(when, dt.datetime) and when.utcoffset() is not None:
        return to_utc(when)  # the common case, quickly
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
        # Python's rule for repeated and skipped hours, by the time's fold (pendulum.datetime()
        # would take the later offset of a repeated hour whatever the fold).
        # A string has no fold: 0, as for a datetime made without one (pendulum's parser says 1).
        fold = 0 if isinstance(when, str) else value.fold
        value = dt.datetime(
            *value.timetuple()[:6], value.microsecond, tzinfo=_default_timezone, fold=fold
        )
    return to_utc(value)


def to_utc(value: dt.datetime) -> pendulum.DateTime:
    """Return an aware datetime as a UTC :class:`pendulum.DateTime`; naive input is refused.

    The instant is the wall time minus ``value.utcoffset()``, which honours ``fold`` (see the
    module documentation). An instant outside the years 1 to 9999 raises
    :class:`~sqlalchemy_chronicle.InvalidTimeError`.
    """
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(f"naive datetime {value!r}: give a timezone-aware datetime")
    # Fast, and the arithmetic is on the naive wall time: pendulum's own (pendulum.instance())
    # would step over a DST change and move a skipped time.
    try:
        utc = dt.datetime(*value.timetuple()[:6], value.microsecond) - offset
    except OverflowError:
        sign, size = ("-", -offset) if offset < dt.timedelta(0) else ("+", offset)
        hours, rest = divmod(int(size.total_seconds()), 3600)
        raise InvalidTimeError(
            f"{value.isoformat()} is at UTC{sign}{hours:02d}:{rest // 60:02d}, which puts its UTC "
            "instant outside the years 1 to 9999 that a datetime can hold; give a time within them"
        ) from None
    return pendulum.DateTime(*utc.timetuple()[:6], utc.microsecond, tzinfo=pendulum.UTC)
