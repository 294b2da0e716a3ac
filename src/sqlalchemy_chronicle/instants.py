"""Points in time: what a time given to the library means, and its UTC instant.

A time is an aware :class:`~datetime.datetime` (a :class:`pendulum.DateTime` is one) or an
ISO-8601 string with an offset. A naive time could mean any instant and is refused with
:class:`~sqlalchemy_chronicle.InvalidTimeError`, unless :func:`set_default_timezone` says where
naive times are. Everything the library stores and compares is the UTC instant
(:func:`to_utc`, :func:`to_instant`).

**Times written as text** are read by :func:`parse_time`, the one reader of the library, the
command line and the history viewer: ISO 8601 as pendulum reads it exactly
(``2024-03-05T14:30:00+01:00``, ``2024-03-05 13:30Z``, ``2024-03-05T14:30:00.250``), or a date
alone, which stands for its midnight. A time without an offset (a date alone among them) is
read in the timezone its caller gives (the command line's ``--timezone``, UTC for the viewer's
date-time picker, the default timezone for the Python API) and refused where there is none;
anything else is refused with :class:`~sqlalchemy_chronicle.InvalidTimeError`.

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

__all__ = ["TimeLike", "parse_time", "set_default_timezone", "to_instant", "to_utc"]

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
    _default_timezone = None if timezone is None else _zone(timezone)


def _zone(timezone: str | dt.tzinfo) -> dt.tzinfo:
    """``timezone`` as a tzinfo: an IANA name is looked up.

    :raises ConfigurationError: an unknown name, or neither a name nor a tzinfo.
    """
    if isinstance(timezone, str):
        try:
            return pendulum.timezone(timezone)
        except Exception as exc:
            raise ConfigurationError(f"unknown timezone {timezone!r}") from exc
    if not isinstance(timezone, dt.tzinfo):
        raise ConfigurationError(
            f"a timezone is an IANA name such as 'Europe/Paris' or a tzinfo; got {timezone!r} "
            "(for a fixed offset, pass datetime.timezone(datetime.timedelta(hours=5)))"
        )
    return timezone


_ZONE_FIX: Final = (
    "call sqlalchemy_chronicle.set_default_timezone('Europe/Paris') once so that naive times "
    "are read in that zone"
)


def parse_time(
    text: str,
    timezone: str | dt.tzinfo | None = None,
    *,
    what: str | None = None,
    zone_fix: str = _ZONE_FIX,
) -> pendulum.DateTime:
    """A time written as text, as a UTC instant; see the module documentation for the formats.

    :param timezone: where a time without an offset is (an IANA name or a tzinfo); ``None``
        reads it in the default timezone (:func:`set_default_timezone`), and refuses it when
        there is none. Such a time in an hour that daylight saving time repeats or skips takes
        the offset before the change (``fold=0``).
    :param what: what the time is, for messages (``"the start of the range"``).
    :param zone_fix: how to say where a time without an offset is, for the message that
        refuses one (a caller with its own way, such as an option, says it).
    :raises InvalidTimeError: the text is not a date and time, or has no offset and no timezone
        says where it is.
    :raises ConfigurationError: ``timezone`` is not a timezone.
    """
    named = f"{what} {text!r}" if what else repr(text)
    try:
        value: object = pendulum.parse(text.strip(), tz=None, exact=True)
    except (ValueError, TypeError) as exc:
        raise InvalidTimeError(
            f"{named} is not an ISO-8601 date and time; write it like {_EXAMPLE}"
        ) from exc
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if not isinstance(value, dt.datetime):
        raise InvalidTimeError(
            f"{named} reads as a {type(value).__name__.lower()}, not a point in time; "
            f"give a date and a time, like {_EXAMPLE}"
        )
    if value.utcoffset() is not None:
        return to_utc(value)
    zone = _default_timezone if timezone is None else _zone(timezone)
    if zone is None:
        raise InvalidTimeError(
            f"{named} has no UTC offset, so it could be any of 24 hours: write one (like "
            f"{_EXAMPLE} or '2024-03-05T13:30Z'), or {zone_fix}"
        )
    return _in_zone(value, zone, fold=0)


def _in_zone(wall: dt.datetime, zone: dt.tzinfo, fold: int) -> pendulum.DateTime:
    """The instant of the naive time ``wall`` in ``zone``, by Python's rule (see above).

    (pendulum.datetime() would take the later offset of a repeated hour whatever the fold.)
    """
    return to_utc(dt.datetime(*wall.timetuple()[:6], wall.microsecond, tzinfo=zone, fold=fold))


def to_instant(when: TimeLike) -> pendulum.DateTime:
    """``when`` as a UTC :class:`pendulum.DateTime`; see the module documentation for the rules."""
    if isinstance(when, dt.datetime) and when.utcoffset() is not None:
        return to_utc(when)  # the common case, quickly
    if isinstance(when, str):
        return parse_time(when)
    if isinstance(when, dt.date) and not isinstance(when, dt.datetime):
        raise InvalidTimeError(
            f"{when!r} is a date, not a point in time; give an aware datetime, such as "
            "datetime(2024, 3, 5, tzinfo=timezone.utc)"
        )
    if not isinstance(when, dt.datetime):
        raise InvalidTimeError(
            f"expected an aware datetime or an ISO-8601 string, got {type(when).__name__}"
        )
    if _default_timezone is None:
        raise InvalidTimeError(
            f"the time {when!r} is naive: without a timezone it could be any of 24 hours. "
            "Give an aware time, such as datetime(2024, 3, 5, 14, 30, tzinfo=timezone.utc), "
            f"pendulum.datetime(2024, 3, 5, 14, 30, tz='Europe/Paris') or {_EXAMPLE}; "
            f"or {_ZONE_FIX}"
        )
    return _in_zone(when, _default_timezone, when.fold)


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
