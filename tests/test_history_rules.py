"""The time rules of the versioned core, one by one, on every database."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from typing import Any

import pendulum
import pytest
from sqlalchemy import (
    CHAR,
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    Enum,
    Integer,
    LargeBinary,
    Numeric,
    Table,
    Text,
    Uuid,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sqlalchemy_chronicle import Transaction, Versioned

from .models import Article, Car, Employee, Manager, Note, Tag, Vehicle
from .support import FrozenClock, attach_schema, versions

ArticleHistory = Article.__history__


def article_versions(session: Session, id: int = 1) -> list:
    return versions(session, ArticleHistory, id=id)


def summary(session: Session, id: int = 1) -> list[tuple]:
    return [
        (v.version, v.operation, v.title, v.valid_from, v.valid_to)
        for v in article_versions(session, id)
    ]


def test_insert_writes_an_open_version(session: Session, clock: FrozenClock) -> None:
    session.add(Article(id=1, title="a"))
    session.commit()
    (version,) = article_versions(session)
    assert (version.version, version.operation, version.title) == (1, "insert", "a")
    assert version.valid_from == clock.now
    assert version.valid_to is None
    assert isinstance(version.valid_from, pendulum.DateTime)
    assert version.valid_from.tzinfo is not None
    assert version.transaction.timestamp == clock.now


def test_update_closes_the_previous_version_where_the_next_begins(
    session: Session, clock: FrozenClock
) -> None:
    t0 = clock.now
    session.add(Article(id=1, title="a"))
    session.commit()
    t1 = clock.advance(seconds=1)
    article = session.get(Article, 1)
    assert article is not None
    article.title = "b"
    session.commit()
    assert summary(session) == [(1, "insert", "a", t0, t1), (2, "update", "b", t1, None)]


def test_microseconds_survive_on_every_backend(session: Session, clock: FrozenClock) -> None:
    clock.now = pendulum.datetime(2031, 5, 6, 7, 8, 9, 123456, tz="UTC")
    session.add(Article(id=1, title="a"))
    session.commit()
    session.expire_all()
    assert article_versions(session)[0].valid_from.microsecond == 123456


def test_delete_closes_the_row_and_writes_an_empty_marker(
    session: Session, clock: FrozenClock
) -> None:
    t0 = clock.now
    session.add(Article(id=1, title="a", body="text"))
    session.commit()
    t1 = clock.advance(seconds=1)
    session.delete(session.get(Article, 1))
    session.commit()
    first, marker = article_versions(session)
    assert (first.valid_from, first.valid_to) == (t0, t1)
    assert (marker.version, marker.operation) == (2, "delete")
    assert marker.valid_from == marker.valid_to == t1
    assert (marker.title, marker.body) == ("a", "text")
    assert marker.transaction.timestamp == t1


def test_reinserting_a_deleted_key_continues_its_versions(
    session: Session, clock: FrozenClock
) -> None:
    session.add(Article(id=1, title="a"))
    session.commit()
    clock.advance(seconds=1)
    session.delete(session.get(Article, 1))
    session.commit()
    t2 = clock.advance(seconds=1)
    session.add(Article(id=1, title="again"))
    session.commit()
    assert [(v, op) for v, op, *_ in summary(session)] == [
        (1, "insert"),
        (2, "delete"),
        (3, "insert"),
    ]
    assert summary(session)[-1][3:] == (t2, None)


def test_one_timestamp_per_transaction(session: Session, clock: FrozenClock) -> None:
    session.add_all([Article(id=1, title="a"), Tag(owner="o", code=1, label="x")])
    session.flush()
    clock.advance(seconds=5)
    session.add(Article(id=2, title="b"))
    session.commit()
    froms = set(session.scalars(select(ArticleHistory.valid_from)))
    froms |= set(session.scalars(select(Tag.__history__.valid_from)))
    assert froms == {clock.now - pendulum.duration(seconds=5)}
    assert session.scalar(select(func.count()).select_from(Transaction)) == 1


def test_insert_then_update_in_one_transaction_is_one_insert(session: Session) -> None:
    article = Article(id=1, title="a")
    session.add(article)
    session.flush()
    article.title = "b"
    session.flush()
    article.title = "c"
    session.commit()
    assert [(v, op, title) for v, op, title, *_ in summary(session)] == [(1, "insert", "c")]


def test_updates_in_one_transaction_leave_one_version(session: Session, clock: FrozenClock) -> None:
    session.add(Article(id=1, title="a"))
    session.commit()
    t1 = clock.advance(seconds=1)
    article = session.get(Article, 1)
    assert article is not None
    for title in ("b", "c", "d"):
        article.title = title
        session.flush()
    session.commit()
    assert [(v, op, title, vf) for v, op, title, vf, _ in summary(session)] == [
        (1, "insert", "a", t1 - pendulum.duration(seconds=1)),
        (2, "update", "d", t1),
    ]


def test_insert_then_delete_in_one_transaction_leaves_nothing(session: Session) -> None:
    article = Article(id=1, title="a")
    session.add(article)
    session.flush()
    session.delete(article)
    session.commit()
    assert article_versions(session) == []
    assert session.scalar(select(func.count()).select_from(Transaction)) == 0


def test_update_then_delete_in_one_transaction(session: Session, clock: FrozenClock) -> None:
    session.add(Article(id=1, title="a"))
    session.commit()
    t1 = clock.advance(seconds=1)
    article = session.get(Article, 1)
    assert article is not None
    article.title = "b"
    session.flush()
    session.delete(article)
    session.commit()
    assert [(v, op, title, vf, vt) for v, op, title, vf, vt in summary(session)][1:] == [
        (2, "delete", "b", t1, t1)
    ]
    assert summary(session)[0][4] == t1


def test_delete_then_insert_in_one_transaction_is_an_update(
    session: Session, clock: FrozenClock
) -> None:
    session.add(Article(id=1, title="a"))
    session.commit()
    t1 = clock.advance(seconds=1)
    session.delete(session.get(Article, 1))
    session.flush()
    session.add(Article(id=1, title="b"))
    session.commit()
    assert [(v, op, title, vf, vt) for v, op, title, vf, vt in summary(session)][1:] == [
        (2, "update", "b", t1, None)
    ]


def test_update_that_changes_nothing_writes_nothing(session: Session, clock: FrozenClock) -> None:
    session.add(Article(id=1, title="a", body="x"))
    session.commit()
    clock.advance(seconds=1)
    article = session.get(Article, 1)
    assert article is not None
    article.title = "a"
    session.commit()
    article.title = "a"  # expired by the commit: the old value is not loaded
    article.body = "x"
    session.commit()
    assert len(article_versions(session)) == 1
    assert session.scalar(select(func.count()).select_from(Transaction)) == 1


def test_change_to_excluded_column_only_writes_nothing(
    session: Session, clock: FrozenClock
) -> None:
    session.add(Article(id=1, title="a"))
    session.commit()
    clock.advance(seconds=1)
    article = session.get(Article, 1)
    assert article is not None
    article.cached_html = "<p>a</p>"
    session.commit()
    assert len(article_versions(session)) == 1


def test_rollback_leaves_no_history(session: Session, clock: FrozenClock) -> None:
    session.add(Article(id=1, title="a"))
    session.flush()
    session.rollback()
    assert article_versions(session) == []
    assert session.scalar(select(func.count()).select_from(Transaction)) == 0
    clock.advance(seconds=1)
    session.add(Article(id=1, title="b"))
    session.commit()
    assert [(v, op, title) for v, op, title, *_ in summary(session)] == [(1, "insert", "b")]


def test_rolled_back_savepoint_leaves_none_of_its_part(
    session: Session, clock: FrozenClock
) -> None:
    session.add(Article(id=1, title="a"))
    session.commit()
    clock.advance(seconds=1)
    article = session.get(Article, 1)
    assert article is not None
    article.title = "b"
    session.flush()
    with session.begin_nested() as savepoint:
        article.title = "c"
        session.add(Article(id=2, title="z"))
        session.flush()
        savepoint.rollback()
    session.commit()
    assert [(v, title) for v, _, title, *_ in summary(session)] == [(1, "a"), (2, "b")]
    assert article_versions(session, 2) == []


def test_savepoint_that_opens_the_transaction_row_then_rolls_back(
    session: Session, clock: FrozenClock
) -> None:
    with session.begin_nested() as savepoint:
        session.add(Article(id=1, title="a"))
        session.flush()
        savepoint.rollback()
    session.add(Article(id=2, title="b"))
    session.commit()
    (version,) = article_versions(session, 2)
    assert version.transaction is not None
    assert session.scalar(select(func.count()).select_from(Transaction)) == 1


def test_released_savepoint_keeps_its_part(session: Session) -> None:
    with session.begin_nested():
        session.add(Article(id=1, title="a"))
    session.add(Article(id=2, title="b"))
    session.commit()
    assert {v.transaction_id for v in session.scalars(select(ArticleHistory))} == {
        session.scalar(select(Transaction.id))
    }


def test_server_defaults_are_in_the_version(session: Session) -> None:
    session.add(Article(id=1, title="a"))
    session.commit()
    assert article_versions(session)[0].views == 0


def test_values_changed_on_the_server_are_read_back(session: Session, clock: FrozenClock) -> None:
    session.add(Article(id=1, title="a"))
    session.commit()
    clock.advance(seconds=1)
    session.execute(text("UPDATE article SET views = 41"))
    article = session.get(Article, 1)
    assert article is not None
    article.title = "b"
    session.expire(article, ["views"])
    session.commit()
    assert [v.views for v in article_versions(session)] == [0, 41]


def test_primary_key_change_moves_the_row(session: Session, clock: FrozenClock) -> None:
    session.add(Article(id=1, title="a"))
    session.commit()
    t1 = clock.advance(seconds=1)
    article = session.get(Article, 1)
    assert article is not None
    article.id = 2
    session.commit()
    assert [(op, vf, vt) for _, op, _, vf, vt in summary(session, 1)][1:] == [("delete", t1, t1)]
    assert [(op, title) for _, op, title, *_ in summary(session, 2)] == [("insert", "a")]


def test_composite_keys(session: Session, clock: FrozenClock) -> None:
    session.add_all([Tag(owner="a", code=1, label="x"), Tag(owner="a", code=2, label="y")])
    session.commit()
    clock.advance(seconds=1)
    tag = session.get(Tag, ("a", 2))
    assert tag is not None
    tag.label = "z"
    session.delete(session.get(Tag, ("a", 1)))
    session.commit()
    assert [v.operation for v in versions(session, Tag.__history__, owner="a", code=1)] == [
        "insert",
        "delete",
    ]
    assert [v.label for v in versions(session, Tag.__history__, owner="a", code=2)] == ["y", "z"]


def test_single_table_inheritance(session: Session, clock: FrozenClock) -> None:
    session.add_all([Employee(id=1, name="e"), Manager(id=2, name="m", budget=10)])
    session.commit()
    clock.advance(seconds=1)
    manager = session.get(Manager, 2)
    assert manager is not None
    manager.budget = 20
    session.commit()
    history = list(session.scalars(select(Employee.__history__).order_by("id", "version")))
    assert [(type(v).__name__, v.id, v.version) for v in history] == [
        ("EmployeeHistory", 1, 1),
        ("ManagerHistory", 2, 1),
        ("ManagerHistory", 2, 2),
    ]
    assert [v.budget for v in history[1:]] == [10, 20]


def test_joined_inheritance(session: Session, clock: FrozenClock) -> None:
    session.add_all([Vehicle(id=1, name="v"), Car(id=2, name="c", doors=3)])
    session.commit()
    t1 = clock.advance(seconds=1)
    car = session.get(Car, 2)
    assert car is not None
    car.doors = 5
    session.commit()
    clock.advance(seconds=1)
    session.delete(car)
    session.commit()
    cars = versions(session, Car.__history__, id=2)
    assert [(v.version, v.operation, v.doors, v.name) for v in cars] == [
        (1, "insert", 3, "c"),
        (2, "update", 5, "c"),
        (3, "delete", 5, "c"),
    ]
    assert cars[1].valid_from == t1
    assert [
        type(v).__name__
        for v in session.scalars(select(Vehicle.__history__).order_by("id", "version"))
    ] == ["VehicleHistory", "CarHistory", "CarHistory", "CarHistory"]


def test_unversioned_models_are_left_alone(session: Session) -> None:
    session.add(Note(id=1, text="n"))
    session.commit()
    assert session.scalar(select(func.count()).select_from(Transaction)) == 0


def test_pendulum_travel_moves_the_default_clock_on_sqlite(clock: FrozenClock) -> None:
    from sqlalchemy import create_engine

    from sqlalchemy_chronicle import configure

    from .models import Base

    configure(clock=None)
    engine = create_engine("sqlite://")
    attach_schema(engine)
    Base.metadata.create_all(engine)
    moment = pendulum.datetime(2001, 2, 3, 4, 5, 6, 7, tz="UTC")
    with pendulum.travel_to(moment, freeze=True), Session(engine) as session:
        session.add(Article(id=1, title="a"))
        session.commit()
        assert article_versions(session)[0].valid_from == moment


def test_database_clock_is_the_default_on_servers(db: Engine) -> None:
    from sqlalchemy_chronicle import configure

    configure(clock=None)
    before = pendulum.now("UTC")
    with Session(db) as session:
        session.add(Article(id=1, title="a"))
        session.commit()
        stamp = article_versions(session)[0].valid_from
    assert abs((stamp - before).total_seconds()) < 60


def test_rows_removed_by_a_delete_orphan_cascade_are_versioned(
    session: Session, clock: FrozenClock
) -> None:
    from .models_travel import Order, OrderLine, Product

    product = Product(id=1, name="p", price=1)
    order = Order(id=1, status="new", lines=[OrderLine(id=1, product=product, quantity=1)])
    session.add(order)
    session.commit()
    t1 = clock.advance(seconds=1)
    order.lines.clear()
    session.commit()
    first, marker = versions(session, OrderLine.__history__, id=1)
    assert (first.valid_to, marker.operation, marker.valid_from) == (t1, "delete", t1)


def test_a_change_undone_in_the_same_transaction_leaves_nothing(
    session: Session, clock: FrozenClock
) -> None:
    from sqlalchemy_chronicle import ChangeLog

    t0 = clock.now
    session.add_all([Article(id=1, title="a"), Article(id=2, title="b", body="x")])
    session.commit()
    clock.advance(seconds=1)
    article = session.get(Article, 1)
    other = session.get(Article, 2)
    assert article is not None and other is not None
    article.title = "changed"
    session.delete(other)
    session.flush()
    article.title = "a"
    session.add(Article(id=2, title="b", body="x"))
    session.commit()
    assert summary(session, 1) == [(1, "insert", "a", t0, None)]
    assert summary(session, 2) == [(1, "insert", "b", t0, None)]
    assert session.scalar(select(func.count()).select_from(Transaction)) == 1
    assert session.scalar(select(func.count()).select_from(ChangeLog)) == 2


@pytest.mark.parametrize("with_array", [False, True], ids=["scalars", "with-array"])
def test_versions_keep_values_of_many_column_types(db: Engine, with_array: bool) -> None:
    """The writer sends values in several ways (PostgreSQL: arrays per column, one parameter
    for a value every row shares, an executemany when a column is an array; elsewhere an
    executemany): each type must arrive intact."""
    if with_array and db.dialect.name != "postgresql":
        pytest.skip("array columns are PostgreSQL's")

    class Other(DeclarativeBase):
        pass

    class Kinds(Versioned, Other):
        __tablename__ = "kinds"
        id: Mapped[int] = mapped_column(primary_key=True)
        amount: Mapped[decimal.Decimal] = mapped_column(Numeric(12, 2))
        flag: Mapped[bool] = mapped_column(Boolean)
        day: Mapped[dt.date] = mapped_column(Date)
        moment: Mapped[dt.datetime] = mapped_column(DateTime)
        token: Mapped[uuid.UUID] = mapped_column(Uuid)
        blob: Mapped[bytes] = mapped_column(LargeBinary(100))
        doc: Mapped[dict[str, Any]] = mapped_column(JSON)
        color: Mapped[str] = mapped_column(Enum("red", "blue", name="kinds_color"))
        text_: Mapped[str | None] = mapped_column("text", Text)
        if with_array:
            numbers: Mapped[list[int]] = mapped_column(postgresql.ARRAY(Integer))

    def values(n: int) -> dict[str, Any]:
        extra = {"numbers": [n, n + 1]} if with_array else {}
        return {
            "id": n,
            "amount": decimal.Decimal(f"{n}.25"),
            "flag": n % 2 == 0,
            "day": dt.date(2024, 1, n),
            "moment": dt.datetime(2024, 1, 1, 12, 0, n),
            "token": uuid.UUID(int=n),
            "blob": bytes([n, 0, 255]),
            "doc": [n, "two"] if n == 1 else {"n": n, "list": [1, "two"]},
            "color": "red" if n % 2 else "blue",
            "text_": None if n == 2 else f'it\'s "{n}"',
            **extra,
        }

    Other.metadata.create_all(db)
    try:
        with Session(db) as session:
            session.add_all([Kinds(**values(n)) for n in (1, 2, 3)])
            session.commit()
            for kinds in session.scalars(select(Kinds)):
                kinds.flag = not kinds.flag
            session.commit()
            history = Kinds.__history__
            stored = session.scalars(select(history).order_by(history.id, history.version))
            found = [(v.version, {key: getattr(v, key) for key in values(1)}) for v in stored.all()]
        expected = []
        for n in (1, 2, 3):
            expected.append((1, values(n)))
            expected.append((2, {**values(n), "flag": not values(n)["flag"]}))
        assert found == expected
    finally:
        Other.metadata.drop_all(db, tables=[Kinds.__table__, Kinds.__history__.__table__])


class Color(enum.Enum):
    RED = "r"
    BLUE = "b"


def test_enum_primary_key(db: Engine) -> None:
    """Key lists of a key whose type converts its values (an enum is stored by name)."""

    class Other(DeclarativeBase):
        pass

    class Paint(Versioned, Other):
        __tablename__ = "paint"
        color: Mapped[Color] = mapped_column(Enum(Color, name="paint_color"), primary_key=True)
        name: Mapped[str] = mapped_column(Text)

    Other.metadata.create_all(db)
    try:
        with Session(db) as session:
            session.add_all([Paint(color=Color.RED, name="a"), Paint(color=Color.BLUE, name="b")])
            session.commit()
            for paint in session.scalars(select(Paint)):
                paint.name += "!"
            session.commit()
            session.delete(session.get_one(Paint, Color.RED))
            session.commit()
            history = Paint.__history__
            stored = session.execute(
                select(history.color, history.version, history.name, history.operation).order_by(
                    history.name, history.version
                )
            ).all()
        assert [tuple(row) for row in stored] == [
            (Color.RED, 1, "a", "insert"),
            (Color.RED, 2, "a!", "update"),
            (Color.RED, 3, "a!", "delete"),
            (Color.BLUE, 1, "b", "insert"),
            (Color.BLUE, 2, "b!", "update"),
        ]
    finally:
        Other.metadata.drop_all(db, tables=[Paint.__table__, Paint.__history__.__table__])


def test_columns_whose_key_is_not_their_name(db: Engine, clock: FrozenClock) -> None:
    """A table declared with ``Column("doc_id", key="id")``: statements name columns by key."""

    class Other(DeclarativeBase):
        pass

    class Sheet(Versioned, Other):
        __table__ = Table(
            "sheet",
            Other.metadata,
            Column("sheet_id", Integer, key="id", primary_key=True, autoincrement=False),
            Column("title_text", Text, key="title"),
        )

    Other.metadata.create_all(db)
    try:
        with Session(db) as session:
            session.add_all([Sheet(id=1, title="a"), Sheet(id=2, title="b")])
            session.commit()
            clock.advance(seconds=1)
            for sheet in session.scalars(select(Sheet)):
                sheet.title += "!"
            session.commit()
            clock.advance(seconds=1)
            session.delete(session.get_one(Sheet, 1))
            session.add(Sheet(id=3, title="c"))
            session.commit()
            history = Sheet.__history__
            stored = session.execute(
                select(history.id, history.version, history.title, history.operation).order_by(
                    history.id, history.version
                )
            ).all()
        assert [tuple(row) for row in stored] == [
            (1, 1, "a", "insert"),
            (1, 2, "a!", "update"),
            (1, 3, "a!", "delete"),
            (2, 1, "b", "insert"),
            (2, 2, "b!", "update"),
            (3, 1, "c", "insert"),
        ]
    finally:
        Other.metadata.drop_all(db, tables=[Sheet.__table__, Sheet.__history__.__table__])


@pytest.mark.parametrize(
    "key_type",
    [CHAR(5), DateTime(timezone=True)],
    ids=["char", "aware-datetime"],
)
def test_keys_the_database_gives_back_in_another_form(
    db: Engine, clock: FrozenClock, key_type: Any
) -> None:
    """A ``CHAR`` key comes back padded, an aware time may come back naive or in another zone:
    the rows are still versioned, inserted, updated and deleted."""

    class Other(DeclarativeBase):
        pass

    class Slot(Versioned, Other):
        __tablename__ = "slot"
        code: Mapped[Any] = mapped_column(key_type, primary_key=True)
        label: Mapped[str] = mapped_column(Text)

    keys = (
        ["ab", "cd"]
        if isinstance(key_type, CHAR)
        else [dt.datetime(2024, 5, 1, 12, hour, tzinfo=dt.timezone.utc) for hour in (1, 2)]
    )
    Other.metadata.create_all(db)
    try:
        with Session(db) as session:
            session.add_all([Slot(code=key, label="a") for key in keys])
            session.commit()
            clock.advance(seconds=1)
            for slot in session.scalars(select(Slot)):
                slot.label = "b"
            session.commit()
            clock.advance(seconds=1)
            session.delete(session.scalars(select(Slot)).first())
            session.commit()
            history = Slot.__history__
            stored = session.execute(
                select(history.version, history.label, history.operation).order_by(
                    history.version, history.operation
                )
            ).all()
        assert [tuple(row) for row in stored] == [
            (1, "a", "insert"),
            (1, "a", "insert"),
            (2, "b", "update"),
            (2, "b", "update"),
            (3, "b", "delete"),
        ]
    finally:
        Other.metadata.drop_all(db, tables=[Slot.__table__, Slot.__history__.__table__])
