"""Misuse is refused at the call, with one clear ChronicleError, and changes nothing.

Settings (``configure``, ``set_default_timezone``), clocks that return something unusable,
attributions that are not strings or JSON, ``restore_all(where=...)`` that is not a condition,
times out of range and keys of the wrong type, on every database. Also the one rule for local
times that daylight saving time repeats or skips, the same when a clock's time is stored and when
a query reads it.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections.abc import Callable, Iterator
from typing import Any

import pendulum
import pytest
from sqlalchemy import Connection, Engine, event, func, select, text, true
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import (
    ConfigurationError,
    InvalidKeyError,
    InvalidTimeError,
    Transaction,
    as_of,
    attribute_session,
    changes_by,
    configure,
    history,
    query_as_of,
    restore,
    restore_all,
    set_default_timezone,
)
from sqlalchemy_chronicle.capture.attribution import ATTRIBUTION_KEY, Attribution
from sqlalchemy_chronicle.cli import commands
from sqlalchemy_chronicle.config import changelog_enabled, current_clock, is_strict
from sqlalchemy_chronicle.instants import to_instant, to_utc
from sqlalchemy_chronicle.viewer.core import HistoryViewer

from .models import Article, Tag
from .support import FrozenClock

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
SKIPPED = dt.datetime(2024, 3, 31, 2, 30)
"""A wall time that does not exist in Paris: the clocks went from 02:00 to 03:00."""
REPEATED = dt.datetime(2024, 10, 27, 2, 30)
"""A wall time that Paris saw twice: the clocks went from 03:00 back to 02:00."""
UTC = dt.timezone.utc


@pytest.fixture
def no_default_timezone() -> Iterator[None]:
    yield
    set_default_timezone(None)


class Statements:
    """Counts the statements an engine runs."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *args: Any) -> None:
        self.count += 1


@pytest.fixture
def statements(db: Engine) -> Iterator[Statements]:
    counter = Statements()
    event.listen(db, "before_cursor_execute", counter)
    yield counter
    event.remove(db, "before_cursor_execute", counter)


def stored(session: Session) -> tuple[int, int, int]:
    """Live articles, their versions, and transactions."""
    return (
        session.scalar(select(func.count()).select_from(Article)) or 0,
        session.scalar(select(func.count()).select_from(Article.__history__)) or 0,
        session.scalar(select(func.count()).select_from(Transaction)) or 0,
    )


# -- configure() -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"strict": "no"},
        {"strict": 1},
        {"strict": None},
        {"changelog": "false"},
        {"changelog": 0},
        {"clock": 5},
        {"clock": "utc"},
        {"clock": dt.datetime(2030, 1, 1, tzinfo=UTC)},
        {"clock": None, "strict": "yes"},
    ],
    ids=repr,
)
def test_configure_takes_real_bools_and_a_callable_clock(
    session: Session, clock: FrozenClock, settings: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError, match=list(settings)[-1]):
        configure(**settings)
    # Nothing changed: not the clock, not strict mode, not the change log.
    assert (current_clock(), is_strict(), changelog_enabled()) == (clock, False, True)
    session.add(Article(id=1, title="a"))
    session.commit()
    assert clock.readings == [clock.now]


def test_configure_still_takes_what_it_documents(session: Session, clock: FrozenClock) -> None:
    configure(strict=True, changelog=False)
    assert (is_strict(), changelog_enabled()) == (True, False)
    configure(clock=None)
    assert current_clock() is not clock
    configure(clock=clock, strict=False, changelog=True)
    assert (current_clock(), is_strict(), changelog_enabled()) == (clock, False, True)


def _raises(connection: Connection) -> dt.datetime:
    return dt.datetime(2030, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=1 / 0)


@pytest.mark.parametrize(
    ("returns", "match"),
    [
        (None, "None"),
        ("2030-01-01T00:00:00Z", "str"),
        (dt.date(2030, 1, 1), "date"),
        (dt.datetime(2030, 1, 1), "naive"),
        (1893456000, "int"),
        (dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5))), "instant"),
        (ZeroDivisionError, "ZeroDivisionError"),
    ],
    ids=["None", "str", "date", "naive", "int", "overflow", "raises"],
)
def test_an_unusable_clock_is_named_at_the_flush(
    session: Session, returns: Any, match: str
) -> None:
    def unusable_clock(connection: Connection) -> Any:
        if returns is ZeroDivisionError:
            return _raises(connection)
        return returns

    configure(clock=unusable_clock)
    session.add(Article(id=1, title="a"))
    with pytest.raises(ConfigurationError, match=match) as raised:
        session.flush()
    assert "unusable_clock" in str(raised.value)
    assert "aware datetime" in str(raised.value)
    session.rollback()
    assert stored(session) == (0, 0, 0)


# -- changes_by() and attribute_session() ----------------------------------------------------


class Opaque:
    pass


BAD_ATTRIBUTIONS: list[dict[str, Any]] = [
    {"actor": 123},
    {"actor": b"alice"},
    {"reason": 5},
    {"reason": ["a"]},
    {"ticket": Opaque()},
    {"tags": {"a", "b"}},
    {"blob": b"\x00"},
    {"ratio": math.nan},
    {"ratio": math.inf},
    {"nested": {"at": dt.datetime(2030, 1, 1, tzinfo=UTC)}},
]


@pytest.mark.parametrize("values", BAD_ATTRIBUTIONS, ids=repr)
def test_changes_by_refuses_what_cannot_be_recorded(
    session: Session, values: dict[str, Any]
) -> None:
    with changes_by(actor="alice", reason="before", ticket="T-1"):
        with pytest.raises(ConfigurationError), changes_by(**values):
            pytest.fail("the block must not run")
        session.add(Article(id=1, title="a"))
        session.commit()
    (transaction,) = session.scalars(select(Transaction))
    assert (transaction.actor, transaction.reason, transaction.meta) == (
        "alice",
        "before",
        {"ticket": "T-1"},
    )


@pytest.mark.parametrize("values", BAD_ATTRIBUTIONS, ids=repr)
def test_attribute_session_refuses_what_cannot_be_recorded(
    session: Session, values: dict[str, Any]
) -> None:
    attribute_session(session, actor="bob")
    with pytest.raises(ConfigurationError):
        attribute_session(session, **values)
    assert session.info[ATTRIBUTION_KEY] == Attribution("bob")
    session.add(Article(id=1, title="a"))
    session.commit()
    assert session.scalars(select(Transaction.actor)).all() == ["bob"]


def test_attribution_takes_json_values(session: Session) -> None:
    meta = {"n": 1, "x": 1.5, "ok": True, "none": None, "list": [1, "a"], "map": {"k": [None]}}
    with changes_by(actor="alice", reason="why", **meta):
        session.add(Article(id=1, title="a"))
        session.commit()
    (transaction,) = session.scalars(select(Transaction))
    assert (transaction.actor, transaction.reason, transaction.meta) == ("alice", "why", meta)


# -- restore_all(where=...) ------------------------------------------------------------------


@pytest.fixture
def edited(session: Session, clock: FrozenClock) -> pendulum.DateTime:
    """Two articles, then both retitled; returns the time before the edit."""
    session.add_all([Article(id=1, title="one"), Article(id=2, title="two")])
    session.commit()
    before = clock.now
    clock.advance(seconds=1)
    for article in session.scalars(select(Article)):
        article.title += "!"
    session.commit()
    clock.advance(seconds=1)
    return before


@pytest.mark.parametrize(
    "where",
    [
        text("id = 1"),
        True,
        False,
        "id = 1",
        1,
        [None],
        [Article.id == 1, "id = 2"],
        (Article.id == 1, text("id = 2")),
        Article.title,
        Article.id + 1,
    ],
    ids=repr,
)
def test_restore_all_refuses_a_where_that_is_not_a_condition(
    session: Session, edited: pendulum.DateTime, statements: Statements, where: Any
) -> None:
    before = stored(session)
    statements.count = 0
    with pytest.raises(ConfigurationError, match="where") as raised:
        restore_all(session, Article, as_of=edited, where=where)
    assert "Article.id == 1" in str(raised.value)
    assert statements.count == 0
    assert stored(session) == before
    assert session.scalars(select(Article.title).order_by(Article.id)).all() == ["one!", "two!"]


@pytest.mark.parametrize(
    ("where", "titles"),
    [
        (None, ["one", "two"]),
        (Article.id == 1, ["one", "two!"]),
        ([Article.id == 1], ["one", "two!"]),
        ((Article.id >= 1, Article.title == "two!"), ["one!", "two"]),
        ([], ["one", "two"]),
        (true(), ["one", "two"]),
    ],
    ids=["None", "one", "list", "tuple", "empty", "true()"],
)
def test_restore_all_takes_the_documented_where(
    session: Session, edited: pendulum.DateTime, where: Any, titles: list[str]
) -> None:
    restore_all(session, Article, as_of=edited, where=where)
    session.commit()
    assert session.scalars(select(Article.title).order_by(Article.id)).all() == titles


# -- times out of range ----------------------------------------------------------------------

OUT_OF_RANGE = [
    dt.datetime.min.replace(tzinfo=dt.timezone(dt.timedelta(hours=5))),
    dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
]


@pytest.mark.parametrize("when", OUT_OF_RANGE, ids=repr)
def test_a_time_whose_utc_instant_is_out_of_range_is_refused(
    session: Session, edited: pendulum.DateTime, when: Any
) -> None:
    with pytest.raises(InvalidTimeError, match="years 1 to 9999"):
        query_as_of(Article, when)
    with pytest.raises(InvalidTimeError, match="years 1 to 9999"):
        as_of(session, when)
    before = stored(session)
    with pytest.raises(InvalidTimeError, match="years 1 to 9999"):
        restore_all(session, Article, as_of=when)
    with pytest.raises(InvalidTimeError, match="years 1 to 9999"):
        restore(session, Article, 1, as_of=when)
    assert stored(session) == before


def test_the_extremes_themselves_are_times(session: Session, edited: pendulum.DateTime) -> None:
    assert session.scalars(query_as_of(Article, dt.datetime.min.replace(tzinfo=UTC))).all() == []
    latest = session.scalars(query_as_of(Article, dt.datetime.max.replace(tzinfo=UTC)))
    assert sorted(a.title for a in latest) == ["one!", "two!"]


# -- keys of the wrong type ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "key"),
    [
        (Article, "abc"),
        (Article, "1"),
        (Article, 1.5),
        (Article, True),
        (Article, None),
        (Article, (1, 2)),
        (Article, {"id": "1"}),
        (Tag, ("alice", "1")),
        (Tag, (1, 1)),
        (Tag, ("alice",)),
        (Tag, {"owner": "alice", "code": None}),
    ],
    ids=repr,
)
def test_a_key_of_the_wrong_type_is_refused_before_any_sql(
    session: Session, edited: pendulum.DateTime, statements: Statements, cls: Any, key: Any
) -> None:
    before = stored(session)
    statements.count = 0
    with pytest.raises(InvalidKeyError, match=cls.__name__):
        restore(session, cls, key, as_of=edited)
    with pytest.raises(InvalidKeyError, match=cls.__name__):
        history(session, cls, key)
    assert statements.count == 0
    assert stored(session) == before


def test_keys_of_the_right_type_are_taken(session: Session, clock: FrozenClock) -> None:
    session.add_all([Article(id=1, title="a"), Tag(owner="alice", code=1, label="x")])
    session.commit()
    when = clock.now
    clock.advance(seconds=1)
    assert [v.version for v in history(session, Article, 1)] == [1]
    assert [v.version for v in history(session, Article, {"id": 1})] == [1]
    assert [v.version for v in history(session, Tag, ("alice", 1))] == [1]
    assert restore(session, Tag, {"owner": "alice", "code": 1}, as_of=when) is not None
    assert restore(session, Article, (1,), as_of=when) is not None


# -- set_default_timezone() ------------------------------------------------------------------


@pytest.mark.parametrize("timezone", [5, 5.5, dt.timedelta(hours=5), b"UTC", "Mars/Olympus"])
def test_set_default_timezone_refuses_what_is_not_a_timezone(
    session: Session, edited: pendulum.DateTime, no_default_timezone: None, timezone: Any
) -> None:
    set_default_timezone("UTC")
    with pytest.raises(ConfigurationError, match="timezone"):
        set_default_timezone(timezone)
    # Still UTC: a naive time reads as UTC, not +05:00.
    naive = edited.naive()
    assert to_instant(naive) == edited
    assert sorted(a.title for a in session.scalars(query_as_of(Article, naive))) == ["one", "two"]


def test_set_default_timezone_takes_names_tzinfos_and_none(no_default_timezone: None) -> None:
    set_default_timezone(dt.timezone(dt.timedelta(hours=5)))
    assert to_instant(dt.datetime(2030, 1, 1, 5)) == pendulum.datetime(2030, 1, 1, tz="UTC")
    set_default_timezone(PARIS)
    assert to_instant(dt.datetime(2030, 1, 1, 1)) == pendulum.datetime(2030, 1, 1, tz="UTC")
    set_default_timezone(None)
    with pytest.raises(InvalidTimeError):
        to_instant(dt.datetime(2030, 1, 1))


# -- local times that daylight saving time skips or repeats ----------------------------------


def utc(*fields: int) -> pendulum.DateTime:
    return pendulum.datetime(*fields, tz="UTC")


@pytest.mark.parametrize(
    ("wall", "fold", "instant"),
    [
        (SKIPPED, 0, utc(2024, 3, 31, 1, 30)),  # the offset before the change, +01:00
        (SKIPPED, 1, utc(2024, 3, 31, 0, 30)),  # the offset after it, +02:00
        (REPEATED, 0, utc(2024, 10, 27, 0, 30)),  # the earlier of the two, +02:00
        (REPEATED, 1, utc(2024, 10, 27, 1, 30)),  # the later, +01:00
    ],
    ids=["skipped-fold0", "skipped-fold1", "repeated-fold0", "repeated-fold1"],
)
def test_one_rule_for_skipped_and_repeated_times_on_both_sides(
    no_default_timezone: None, wall: dt.datetime, fold: int, instant: pendulum.DateTime
) -> None:
    local = wall.replace(fold=fold)
    zones: list[dt.tzinfo] = [PARIS, pendulum.timezone("Europe/Paris")]
    for zone in zones:
        aware = local.replace(tzinfo=zone)
        assert to_utc(aware) == instant, zone  # the write side
        assert to_instant(aware) == instant, zone  # the query side
        set_default_timezone(zone)
        assert to_instant(local) == instant, zone  # a naive time, by its fold
        set_default_timezone(None)
    set_default_timezone("Europe/Paris")
    if fold == 0:  # a string has no fold: 0
        assert to_instant(wall.isoformat()) == instant


@pytest.mark.parametrize(
    ("wall", "instant"),
    [(SKIPPED, utc(2024, 3, 31, 1, 30)), (REPEATED, utc(2024, 10, 27, 0, 30))],
    ids=["skipped", "repeated"],
)
def test_a_local_clock_time_is_stored_as_the_query_reads_it(
    session: Session, no_default_timezone: None, wall: dt.datetime, instant: pendulum.DateTime
) -> None:
    local = wall.replace(tzinfo=PARIS)
    configure(clock=lambda connection: local)
    session.add(Article(id=1, title="a"))
    session.commit()
    (version,) = history(session, Article, 1)
    assert version.valid_from == instant
    tick = dt.timedelta(microseconds=1)
    assert [a.title for a in session.scalars(query_as_of(Article, local))] == ["a"]
    assert session.scalars(query_as_of(Article, instant - tick)).all() == []
    set_default_timezone("Europe/Paris")
    assert [a.title for a in session.scalars(query_as_of(Article, wall))] == ["a"]
    assert [a.title for a in session.scalars(query_as_of(Article, wall.isoformat()))] == ["a"]
    assert session.scalars(query_as_of(Article, wall - tick)).all() == []


# -- times written as text: one reader for the Python API, the command line and the viewer ----

UTC = pendulum.UTC
TEXT_TIMES = [  # the text, its instant where naive times are UTC, and where they are in Paris
    ("2024-03-05T14:30:00+01:00", *[pendulum.datetime(2024, 3, 5, 13, 30, tz=UTC)] * 2),
    ("2024-03-05 13:30Z", *[pendulum.datetime(2024, 3, 5, 13, 30, tz=UTC)] * 2),
    (" 2024-03-05T13:30:00.25+00:00 ", *[pendulum.datetime(2024, 3, 5, 13, 30, 0, 250000)] * 2),
    (
        "2024-03-05T14:30",
        pendulum.datetime(2024, 3, 5, 14, 30, tz=UTC),
        pendulum.datetime(2024, 3, 5, 13, 30, tz=UTC),
    ),
    (
        "2024-03-05",  # its midnight
        pendulum.datetime(2024, 3, 5, tz=UTC),
        pendulum.datetime(2024, 3, 4, 23, tz=UTC),
    ),
    (
        "2024-10-27T02:30",  # repeated in Paris: the earlier offset
        pendulum.datetime(2024, 10, 27, 2, 30, tz=UTC),
        pendulum.datetime(2024, 10, 27, 0, 30, tz=UTC),
    ),
]
NOT_TIMES = ["yesterday", "2024-02-30T10:00Z", "2024-13-01", "10:00", "P1D", "now!"]


def _readers(zone: str) -> list[Callable[[str], Any]]:
    """Each front end's reader of a time given as text, where naive times are in ``zone``.

    The viewer's are UTC (its date-time picker's), so it is among them for UTC only.
    """
    set_default_timezone(zone)
    readers: list[Callable[[str], Any]] = [
        to_instant,
        lambda text: commands.parse_time(text, zone),
    ]
    if zone == "UTC":
        readers.append(lambda text: HistoryViewer([]).parse_filters({"since": text}).since)
    return readers


@pytest.mark.parametrize(("text", "in_utc", "in_paris"), TEXT_TIMES)
def test_every_front_end_reads_a_time_alike(
    no_default_timezone: None, text: str, in_utc: pendulum.DateTime, in_paris: pendulum.DateTime
) -> None:
    for zone, instant in (("UTC", in_utc), ("Europe/Paris", in_paris)):
        for read in _readers(zone):
            assert read(text) == instant, (zone, read)


@pytest.mark.parametrize("text", NOT_TIMES)
def test_every_front_end_refuses_what_is_not_a_time_alike(
    no_default_timezone: None, text: str
) -> None:
    reasons = set()
    for read in _readers("UTC"):
        with pytest.raises(InvalidTimeError) as caught:
            read(text)
        reasons.add(str(caught.value).split(repr(text))[-1])
    assert len(reasons) == 1, reasons


def test_a_time_without_an_offset_needs_a_zone_everywhere(no_default_timezone: None) -> None:
    for read in (to_instant, commands.parse_time):
        for naive in ("2024-03-05T14:30", "2024-03-05"):
            with pytest.raises(InvalidTimeError, match="no UTC offset"):
                read(naive)
