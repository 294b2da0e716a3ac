"""query_as_of, history, navigation and diffs, and the rules for times, on every database."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from typing import Any

import pendulum
import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.orm.exc import DetachedInstanceError

from sqlalchemy_chronicle import (
    Change,
    ConfigurationError,
    InvalidKeyError,
    InvalidTimeError,
    NotVersionedError,
    ReadOnlyError,
    Versioned,
    as_of,
    changes,
    history,
    next_version,
    previous_version,
    query_as_of,
    set_default_timezone,
)
from sqlalchemy_chronicle.config import LIBRARY_COLUMNS
from sqlalchemy_chronicle.instants import to_instant
from sqlalchemy_chronicle.read._asof import PARAM, AsOfQuery
from sqlalchemy_chronicle.schema.history import spec_for

from .models import Article, Car, Employee, Manager, Note, Tag, Vehicle
from .models_travel import Customer, Label, Order, OrderLine, Product
from .shop import Times, build_shop
from .support import FrozenClock, StatementCounter

TICK = dt.timedelta(microseconds=1)
OrderHistory = Order.__history__


@pytest.fixture
def shop(session: Session, clock: FrozenClock) -> Times:
    return build_shop(session, clock)


# -- what a query returns ----------------------------------------------------------------------


def test_rows_have_their_values_at_the_time(session: Session, shop: Times) -> None:
    orders = session.scalars(query_as_of(Order, shop.t1).order_by(Order.id)).all()
    assert [(o.id, o.status, o.customer_id, o.version) for o in orders] == [(1, "new", 1, 1)]
    assert isinstance(orders[0], OrderHistory)
    assert (orders[0].valid_from, orders[0].valid_to) == (shop.t1, shop.t2)

    orders = session.scalars(query_as_of(Order, shop.t3).order_by(Order.id)).all()
    assert [(o.id, o.status, o.version) for o in orders] == [(1, "paid", 2), (2, "new", 1)]


def test_interval_times_are_utc_pendulum_times_converted_once(
    session: Session, shop: Times
) -> None:
    """The snapshot converts each distinct stored time once: rows written together share it."""
    lines = session.scalars(query_as_of(OrderLine, shop.t2).order_by(OrderLine.id)).all()
    assert [(line.id, line.valid_from, line.valid_to) for line in lines] == [
        (1, shop.t2, shop.t3),
        (2, shop.t2, None),
    ]
    for line in lines:
        assert type(line.valid_from) is pendulum.DateTime
        assert line.valid_from.tzinfo is pendulum.UTC
    assert lines[0].valid_from is lines[1].valid_from


def test_rows_created_later_or_deleted_before_are_absent(session: Session, shop: Times) -> None:
    lines = session.scalars(query_as_of(OrderLine, shop.t1).order_by(OrderLine.id)).all()
    assert [(line.id, line.quantity) for line in lines] == [(1, 1)]
    lines = session.scalars(query_as_of(OrderLine, shop.t2).order_by(OrderLine.id)).all()
    assert [(line.id, line.quantity) for line in lines] == [(1, 2), (2, 1)]
    lines = session.scalars(query_as_of(OrderLine, shop.t3).order_by(OrderLine.id)).all()
    assert [(line.id, line.quantity) for line in lines] == [(2, 1)]
    orders = session.scalars(query_as_of(Order, shop.t4)).all()
    assert [o.id for o in orders] == [1]


def test_criteria_on_model_attributes_filter_the_historic_values(
    session: Session, shop: Times
) -> None:
    paid_then = session.scalars(query_as_of(Order, shop.t1).where(Order.status == "paid")).all()
    assert paid_then == []
    new_then = session.scalars(query_as_of(Order, shop.t1).where(Order.status == "new")).all()
    assert [o.id for o in new_then] == [1]
    pens = session.scalars(
        query_as_of(Product, shop.t1).where(Product.price < 4, Product.name.startswith("p"))
    ).all()
    assert [(p.name, p.price) for p in pens] == [("pen", 3)]


def test_criteria_on_the_history_class_work_too(session: Session, shop: Times) -> None:
    History = Product.__history__
    query = query_as_of(Product, shop.t4).where(History.version > 1).order_by(History.price.desc())
    assert [(p.name, p.version) for p in session.scalars(query)] == [("ink", 2), ("pen", 2)]
    query = query_as_of(Product, shop.t4).where(History.valid_from == shop.t4)
    assert [p.name for p in session.scalars(query)] == ["ink"]


def test_the_query_composes_order_limit_offset(session: Session, shop: Times) -> None:
    query = query_as_of(Product, shop.t2).order_by(Product.price.desc()).limit(1)
    assert [(p.name, p.price) for p in session.scalars(query)] == [("ink", 5)]
    query = query_as_of(Product, shop.t2).order_by(Product.price.desc()).offset(1)
    assert [(p.name, p.price) for p in session.scalars(query)] == [("pen", 4)]


def test_relationship_joins_read_the_related_rows_at_the_time(
    session: Session, shop: Times
) -> None:
    # At t1 order 1 had one pen; at t2 it had 2 pens and an ink.
    query = query_as_of(Order, shop.t1).join(Order.lines).where(OrderLine.quantity == 2)
    assert session.scalars(query).all() == []
    query = query_as_of(Order, shop.t2).join(Order.lines).where(OrderLine.quantity == 2)
    assert [o.id for o in session.scalars(query)] == [1]
    # Many-to-many through the versioned association, and a chain of joins.
    query = query_as_of(Order, shop.t1).join(Order.labels).add_columns(Label.name)
    assert [(o.id, name) for o, name in session.execute(query)] == [(1, "rush")]
    query = (
        query_as_of(Order, shop.t1)
        .join(Order.lines)
        .join(OrderLine.product)
        .add_columns(Product.price)
    )
    assert [(o.id, price) for o, price in session.execute(query)] == [(1, 3)]


def test_explicit_joins_to_other_versioned_models_read_them_at_the_time(
    session: Session, shop: Times
) -> None:
    query = (
        query_as_of(Order, shop.t1)
        .join(Customer, Customer.id == Order.customer_id)
        .add_columns(Customer.name)
    )
    assert [(o.id, name) for o, name in session.execute(query)] == [(1, "Ann")]
    query = query_as_of(Order, shop.t3).join(Customer, Customer.id == Order.customer_id)
    assert [o.id for o in session.scalars(query.where(Customer.name == "Ann B"))] == [1, 2]


def test_counting_keeps_the_snapshot(session: Session, shop: Times) -> None:
    query = query_as_of(Order, shop.t3).with_only_columns(func.count(), maintain_column_froms=True)
    assert session.scalar(query) == 2


def test_one_statement_per_query(
    session: Session, shop: Times, statements: StatementCounter
) -> None:
    session.scalars(query_as_of(Order, shop.t1)).all()  # connect, outside the count
    statements.reset()
    session.scalars(query_as_of(Order, shop.t2).where(Order.status == "paid")).all()
    assert statements.count == 1
    statements.reset()
    query = query_as_of(Order, shop.t2).join(Order.lines).join(OrderLine.product)
    session.scalars(query.where(Product.price > 3)).all()
    assert statements.count == 1
    (sql,) = statements.statements
    assert "order_history" in sql and "order_line_history" in sql and "product_history" in sql


def test_one_compiled_statement_serves_every_time(
    session: Session, shop: Times, db: Engine
) -> None:
    """The time is a bound value: the as-of SQL is compiled once and then found in the cache."""
    compiled: list[Any] = []

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        # Not SQLite's BEGIN (tests/conftest.py), nor the read of the pruning horizons.
        if context.compiled is not None and "chronicle_horizon" not in sql:
            compiled.append(context.compiled)

    event.listen(db, "before_cursor_execute", record)
    try:
        for when in (shop.t1, shop.t2, shop.t3, shop.t4):
            for id_ in (1, 2):
                with Session(db) as other:
                    other.scalars(query_as_of(Order, when).where(Order.id == id_)).all()
    finally:
        event.remove(db, "before_cursor_execute", record)
    assert len(compiled) == 8
    assert len({id(each) for each in compiled}) == 1
    assert PARAM in compiled[0].binds


def test_statements_naming_no_history_column_are_used_as_they_are(shop: Times) -> None:
    """Only a statement with criteria on the history class is rewritten; the answer is kept per
    statement shape, and holds for every statement of that shape."""
    query = AsOfQuery.of(spec_for(Order))
    for when in (shop.t1, shop.t2):
        plain = query_as_of(Order, when).where(Order.status == "paid").order_by(Order.id)
        assert query.adapt(plain) is plain
        on_history = query_as_of(Order, when).where(OrderHistory.version > 1)
        adapted = query.adapt(on_history)
        assert adapted is not on_history
        assert str(adapted).endswith('WHERE "order".version > :version_1')


def test_subqueries_on_the_history_class_read_the_versions_current_at_the_time(
    session: Session, shop: Times
) -> None:
    paid = select(OrderHistory.id).where(OrderHistory.status == "paid")
    query = query_as_of(Order, shop.t1).where(Order.id.in_(paid))
    assert session.scalars(query).all() == []  # order 1 was paid at t2
    counted = select(func.count(OrderHistory.id)).scalar_subquery()
    query = query_as_of(Order, shop.t3).order_by(Order.id).add_columns(counted)
    assert [(order.id, count) for order, count in session.execute(query)] == [(1, 2), (2, 2)]


def test_a_full_outer_join_keeps_the_rows_without_a_version_at_the_time(
    db: Engine, session: Session, shop: Times
) -> None:
    if db.dialect.name == "mysql":
        pytest.skip("MariaDB has no FULL OUTER JOIN")
    query = (
        query_as_of(Order, shop.t1)
        .join(Product, Product.id == Order.id, full=True)
        .add_columns(Product.name)
    )
    found = {(order.id if order else None, name) for order, name in session.execute(query)}
    assert found == {(1, "pen"), (None, "ink")}


def _change_ink_later(reader: Session, writer: Session, clock: FrozenClock) -> None:
    """A day later, change the price of the ink (product 2) through ``writer``, in a new
    transaction of ``reader``, so that its next read sees the change."""
    reader.commit()
    clock.advance(days=1)
    product = writer.get(Product, 2)
    assert product is not None
    product.price = 7
    writer.commit()


def test_a_version_already_in_the_session_is_refreshed(
    db: Engine, shop: Times, clock: FrozenClock
) -> None:
    """A version loaded before the row changed again has a stale ``valid_to``; reading it again
    refreshes it, as the query populates the objects already in the session."""
    with Session(db, expire_on_commit=False) as reader, Session(db) as writer:
        query = query_as_of(Product, shop.t4).where(Product.id == 2)
        (ink,) = reader.scalars(query).all()
        assert ink.valid_to is None
        _change_ink_later(reader, writer, clock)
        (again,) = reader.scalars(query).all()
        assert again is ink
        assert ink.valid_to is not None


LIBRARY_COLUMNS_DEFERRED = tuple(name for name in LIBRARY_COLUMNS if name != "version")


def _selected(sql: str) -> str:
    """The select list of a statement: what it reads, before its FROM clause."""
    return sql.split("FROM", 1)[0]


def test_the_library_columns_are_read_on_first_use_all_at_once(
    db: Engine, shop: Times, statements: StatementCounter
) -> None:
    """A snapshot reads the model's values and ``version``; the other library columns are read
    when one of them is first used, all of them in one statement for that object."""
    with Session(db) as reader:
        reader.scalars(query_as_of(Order, shop.t1)).all()  # connect, outside the count
        statements.reset()
        (order,) = reader.scalars(query_as_of(Order, shop.t1)).all()
        (sql,) = statements.statements
        assert "status" in _selected(sql) and "version" in _selected(sql)
        assert not [name for name in LIBRARY_COLUMNS_DEFERRED if name in _selected(sql)]
        assert (order.id, order.status, order.version) == (1, "new", 1)
        assert statements.count == 1
        assert (order.valid_from, order.valid_to, order.operation) == (shop.t1, shop.t2, "insert")
        assert (order.restored_from, order.retired_values) == (None, None)
        assert order.transaction_id is not None
        assert statements.count == 2
        assert all(name in _selected(statements.statements[1]) for name in LIBRARY_COLUMNS_DEFERRED)
        (unread,) = reader.scalars(query_as_of(Order, shop.t2)).all()
    assert unread.status == "paid"
    with pytest.raises(DetachedInstanceError):
        unread.valid_from  # noqa: B018 - the read is the test, and the session is closed


def test_provenance_loads_the_library_columns_with_the_rows(
    db: Engine, shop: Times, statements: StatementCounter
) -> None:
    with Session(db) as reader:
        reader.scalars(query_as_of(Order, shop.t1)).all()  # connect, outside the count
        statements.reset()
        (order,) = reader.scalars(query_as_of(Order, shop.t1, provenance=True)).all()
        (sql,) = statements.statements
        assert all(name in _selected(sql) for name in LIBRARY_COLUMNS_DEFERRED)
    assert (order.valid_from, order.valid_to, order.operation) == (shop.t1, shop.t2, "insert")
    assert (order.restored_from, order.retired_values) == (None, None)
    assert statements.count == 1


def test_a_refreshed_version_reads_its_library_columns_again(
    db: Engine, shop: Times, clock: FrozenClock, statements: StatementCounter
) -> None:
    """A version the session holds is refreshed by a later read (see the test above): the library
    columns it had read are read again on next use, through a rewritten statement too."""
    with Session(db, expire_on_commit=False) as reader, Session(db) as writer:
        query = query_as_of(Product, shop.t4).where(Product.__history__.version >= 1)
        ink = reader.scalars(query.where(Product.id == 2)).one()
        assert (ink.valid_from, ink.valid_to) == (shop.t4, None)
        _change_ink_later(reader, writer, clock)
        assert reader.scalars(query.order_by(Product.id)).all()[1] is ink
        statements.reset()
        assert (ink.valid_from, ink.valid_to) == (shop.t4, clock.now)
        (sql,) = statements.statements
        assert all(name in _selected(sql) for name in LIBRARY_COLUMNS_DEFERRED)


def test_inheritance_joined_single_and_polymorphic(session: Session, clock: FrozenClock) -> None:
    t1 = clock.now
    session.add_all([Car(id=1, name="beetle", doors=2), Vehicle(id=2, name="cart")])
    session.add_all([Manager(id=1, name="m", budget=10), Employee(id=2, name="e")])
    session.commit()
    t2 = clock.advance(hours=1)
    session.get(Car, 1).doors = 4
    session.get(Manager, 1).budget = 20
    session.commit()

    cars = session.scalars(query_as_of(Car, t1).where(Car.doors == 2, Car.name == "beetle")).all()
    assert [(c.id, c.doors, c.version) for c in cars] == [(1, 2, 1)]
    assert session.scalars(query_as_of(Car, t2).where(Car.doors == 2)).all() == []
    vehicles = session.scalars(query_as_of(Vehicle, t1).order_by(Vehicle.id)).all()
    assert [type(v).__name__ for v in vehicles] == ["CarHistory", "VehicleHistory"]
    managers = session.scalars(query_as_of(Manager, t1)).all()
    assert [(m.id, m.budget) for m in managers] == [(1, 10)]
    employees = session.scalars(query_as_of(Employee, t2).order_by(Employee.id)).all()
    assert [type(e).__name__ for e in employees] == ["ManagerHistory", "EmployeeHistory"]


def test_composite_keys_renamed_and_excluded_columns(session: Session, clock: FrozenClock) -> None:
    t1 = clock.now
    session.add_all([Tag(owner="x", code=1, label="one"), Article(id=1, title="a", slug="s1")])
    session.commit()
    clock.advance(seconds=5)
    session.get(Tag, ("x", 1)).label = "uno"
    article = session.get(Article, 1)
    article.slug, article.cached_html = "s2", "<p>"
    session.commit()

    tags = session.scalars(query_as_of(Tag, t1).where(Tag.owner == "x")).all()
    assert [(t.owner, t.code, t.label) for t in tags] == [("x", 1, "one")]
    articles = session.scalars(query_as_of(Article, t1).where(Article.slug == "s1")).all()
    assert [(a.id, a.slug) for a in articles] == [(1, "s1")]
    assert session.scalars(query_as_of(Article, t1).where(Article.cached_html.is_(None))).all()


def test_point_reads_agree_with_the_snapshot_at_every_boundary(
    session: Session, clock: FrozenClock
) -> None:
    """A read of one row by its whole key (its own statement form, see ``_point_select``) finds
    the version a snapshot finds, at and around every time a version begins or ends: versions
    of one transaction, a row deleted and inserted again, composite keys, joined inheritance."""
    session.add_all([Tag(owner="x", code=1, label="a"), Car(id=1, name="beetle", doors=2)])
    session.commit()
    clock.advance(seconds=1)
    tag, car = session.get(Tag, ("x", 1)), session.get(Car, 1)
    tag.label, car.doors = "b", 3
    session.flush()
    tag.label, car.doors = "c", 4  # a second version in the same transaction
    session.commit()
    clock.advance(seconds=1)
    session.delete(session.get(Tag, ("x", 1)))
    session.delete(session.get(Car, 1))
    session.commit()
    clock.advance(seconds=1)
    session.add_all([Tag(owner="x", code=1, label="d"), Car(id=1, name="beetle", doors=5)])
    session.commit()
    clock.advance(seconds=1)
    session.get(Tag, ("x", 1)).label = "e"
    session.get(Car, 1).doors = 6
    session.commit()

    bounds = {v.valid_from for v in session.scalars(select(Tag.__history__))}
    bounds |= {v.valid_to for v in session.scalars(select(Tag.__history__)) if v.valid_to}
    times = sorted({t + d for t in bounds for d in (-TICK, dt.timedelta(0), TICK)})
    seen = set()
    for when in times:
        tags = session.scalars(query_as_of(Tag, when)).all()
        cars = session.scalars(query_as_of(Car, when)).all()
        expected = (
            [(t.label, t.version) for t in tags],
            [(c.doors, c.version) for c in cars],
        )
        tag_point = session.scalars(
            query_as_of(Tag, when).where(Tag.owner == "x", Tag.code == 1)
        ).all()
        car_point = session.scalars(query_as_of(Car, when).where(Car.id == 1)).all()
        found = (
            [(t.label, t.version) for t in tag_point],
            [(c.doors, c.version) for c in car_point],
        )
        assert found == expected, when
        with as_of(session, when) as past:
            got_tag, got_car = past.get(Tag, ("x", 1)), past.get(Car, 1)
            got = (
                [] if got_tag is None else [got_tag.label],
                [] if got_car is None else [got_car.doors],
            )
        assert got == ([label for label, _ in expected[0]], [doors for doors, _ in expected[1]])
        seen.add(str(expected))
    assert len(seen) == 5  # nothing, a, c, d and e (with 2, 4, 5, 6 doors); b only in its flush


# -- times -------------------------------------------------------------------------------------


def test_boundaries_are_closed_open(session: Session, shop: Times) -> None:
    def statuses(when: Any) -> list[str]:
        return [o.status for o in session.scalars(query_as_of(Order, when).order_by(Order.id))]

    assert statuses(shop.t1 - TICK) == []
    assert statuses(shop.t1) == ["new"]
    assert statuses(shop.t2 - TICK) == ["new"]
    assert statuses(shop.t2) == ["paid"]  # a transaction's own time shows its changes
    assert statuses(shop.t3) == ["paid", "new"]
    assert statuses(shop.t4 - TICK) == ["paid", "new"]
    assert statuses(shop.t4) == ["paid"]  # deleted at t4: the delete marker matches no time


def test_before_any_history_nothing_and_in_the_future_the_current_state(
    session: Session, shop: Times
) -> None:
    assert session.scalars(query_as_of(Product, "1999-01-01T00:00:00Z")).all() == []
    future = session.scalars(query_as_of(Product, shop.t4.add(years=50)).order_by(Product.id))
    now = session.scalars(select(Product).order_by(Product.id))
    assert [(p.id, p.price) for p in future] == [(p.id, p.price) for p in now]


def test_every_form_of_time_is_the_same_instant(session: Session, shop: Times) -> None:
    paris = pendulum.instance(shop.t2).in_timezone("Europe/Paris")
    forms = [
        shop.t2,
        dt.datetime(2030, 1, 2, tzinfo=dt.timezone.utc),
        dt.datetime(2030, 1, 2, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        paris,
        "2030-01-02T00:00:00Z",
        "2030-01-02T01:00:00+01:00",
        "2030-01-02 00:00:00.000000+00:00",
    ]
    for form in forms:
        assert to_instant(form) == shop.t2, form
        assert [o.status for o in session.scalars(query_as_of(Order, form))] == ["paid"]


def test_times_around_a_dst_change_convert_like_pendulum() -> None:
    """The quick conversion of aware datetimes agrees with pendulum's, fold included."""
    zone = zoneinfo.ZoneInfo("Europe/Paris")
    forms: list[dt.datetime] = [
        dt.datetime(2024, 10, 27, 2, 30, fold=0, tzinfo=zone),
        dt.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=zone),
        dt.datetime(2024, 3, 31, 3, 30, tzinfo=zone),
        pendulum.datetime(2024, 10, 27, 2, 30, tz="Europe/Paris"),
        pendulum.datetime(2024, 10, 27, 2, 30, tz="Europe/Paris", fold=0),
        dt.datetime(2024, 1, 1, 0, 0, 0, 7, tzinfo=dt.timezone(dt.timedelta(hours=5, seconds=9))),
    ]
    for form in forms:
        instant = to_instant(form)
        expected = pendulum.instance(form).in_timezone("UTC")
        assert (instant, instant.tzinfo, type(instant)) == (
            expected,
            expected.tzinfo,
            pendulum.DateTime,
        ), form
        assert instant.isoformat() == expected.isoformat(), form


@pytest.fixture
def paris() -> Iterator[None]:
    set_default_timezone("Europe/Paris")
    yield
    set_default_timezone(None)


def test_a_naive_time_is_refused_with_the_fix(shop: Times) -> None:
    for naive in (dt.datetime(2030, 1, 2), "2030-01-02T00:00:00", pendulum.naive(2030, 1, 2)):
        with pytest.raises(InvalidTimeError) as caught:
            query_as_of(Order, naive)
        message = str(caught.value)
        assert "naive" in message
        assert ("+01:00" if isinstance(naive, str) else "tzinfo=timezone.utc") in message
        assert "set_default_timezone" in message


def test_a_default_timezone_reads_naive_times(session: Session, shop: Times, paris: None) -> None:
    # Midnight UTC on 2 January is 01:00 in Paris.
    assert to_instant(dt.datetime(2030, 1, 2, 1)) == shop.t2
    assert to_instant("2030-01-02T01:00:00") == shop.t2
    assert to_instant("2030-01-02T00:00:00Z") == shop.t2  # an explicit offset still wins
    query = query_as_of(Order, dt.datetime(2030, 1, 2, 0, 59))
    assert [o.status for o in session.scalars(query)] == ["new"]


@pytest.mark.parametrize(
    "bad",
    [
        "yesterday",
        "2030-13-01T00:00:00Z",
        "2030-01-02",
        "10:00",
        "P1D",
        "",
        dt.date(2030, 1, 2),
        1_900_000_000,
        None,
    ],
)
def test_things_that_are_not_times_are_refused(bad: Any) -> None:
    with pytest.raises(InvalidTimeError) as caught:
        query_as_of(Order, bad)
    assert isinstance(caught.value, ValueError)


def test_an_unknown_default_timezone_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        set_default_timezone("Mars/Olympus")


def test_tables_in_a_schema_read_as_of_without_the_schema() -> None:
    """The derived table standing for a schema-qualified table has no schema; nor do its columns
    (the data path is tested on every database in tests/test_mapping_shapes.py)."""

    class OtherBase(DeclarativeBase):
        pass

    class Remote(Versioned, OtherBase):
        __tablename__ = "remote"
        __table_args__ = {"schema": "elsewhere"}

        id: Mapped[int] = mapped_column(primary_key=True)

    assert Remote.__history__.__table__.schema == "elsewhere"  # type: ignore[attr-defined]
    live = str(select(Remote.id).compile())
    assert "elsewhere.remote.id" in live
    past = str(select(Remote.id).compile(column_keys=[PARAM]))  # as a time-travel session does
    assert "elsewhere.remote.id" not in past
    assert "SELECT remote.id" in past
    assert "FROM elsewhere.remote_history" in past
    assert past.rstrip().endswith("AS remote")


def test_only_versioned_classes_have_a_past(shop: Times) -> None:
    with pytest.raises(NotVersionedError):
        query_as_of(Note, shop.t1)
    with pytest.raises(NotVersionedError):
        query_as_of("Order", shop.t1)  # type: ignore[arg-type]


# -- snapshots are read-only -------------------------------------------------------------------


def test_changing_a_snapshot_cannot_reach_any_table(
    session: Session, shop: Times, db: Engine
) -> None:
    (order,) = session.scalars(query_as_of(Order, shop.t1)).all()
    order.status = "hacked"
    with pytest.raises(ReadOnlyError):
        session.flush()
    session.rollback()
    (order,) = session.scalars(query_as_of(Order, shop.t1)).all()
    session.delete(order)
    with pytest.raises(ReadOnlyError):
        session.flush()
    session.rollback()
    with Session(db) as fresh:
        assert fresh.get(Order, 1).status == "paid"
        assert [v.status for v in history(fresh, Order, 1)] == ["new", "paid"]


# -- one row's versions ------------------------------------------------------------------------


def test_history_of_an_object_and_of_a_key(session: Session, shop: Times) -> None:
    order = session.get(Order, 1)
    versions = history(session, order)
    assert [(v.version, v.operation, v.status) for v in versions] == [
        (1, "insert", "new"),
        (2, "update", "paid"),
    ]
    assert history(session, Order, 1) == versions
    assert history(session, Order, (1,)) == versions
    assert history(session, Order, {"id": 1}) == versions


def test_history_of_a_deleted_row(session: Session, shop: Times) -> None:
    assert session.get(Order, 2) is None
    versions = history(session, Order, 2)
    assert [(v.version, v.operation, v.valid_from, v.valid_to) for v in versions] == [
        (1, "insert", shop.t3, shop.t4),
        (2, "delete", shop.t4, shop.t4),
    ]
    assert history(session, Order, 99) == []


def test_history_with_composite_keys_and_inheritance(
    session: Session, clock: FrozenClock, statements: StatementCounter
) -> None:
    session.add_all([Tag(owner="x", code=1, label="one"), Car(id=1, name="c", doors=2)])
    session.commit()
    clock.advance(seconds=1)
    session.get(Tag, ("x", 1)).label = "uno"
    session.get(Car, 1).doors = 4
    session.commit()
    session.expunge_all()

    assert [t.label for t in history(session, Tag, ("x", 1))] == ["one", "uno"]
    statements.reset()
    versions = history(session, Vehicle, 1)  # the base class: the subclass's columns come along
    assert [(type(v).__name__, v.doors) for v in versions] == [("CarHistory", 2), ("CarHistory", 4)]
    assert statements.count == 1


def test_history_refuses_bad_keys(session: Session, shop: Times) -> None:
    with pytest.raises(InvalidKeyError):
        history(session, Tag, "x")
    with pytest.raises(InvalidKeyError):
        history(session, Tag, ("x", 1, 2))
    with pytest.raises(InvalidKeyError):
        history(session, Tag, {"owner": "x"})
    with pytest.raises(InvalidKeyError):
        history(session, Order)
    with pytest.raises(InvalidKeyError):
        history(session, Tag(label="no key yet"))
    with pytest.raises(NotVersionedError):
        history(session, Note, 1)


def test_navigation_steps_through_the_versions(
    session: Session, shop: Times, statements: StatementCounter
) -> None:
    first, second = history(session, Product, 2)
    statements.reset()
    assert next_version(session, first) is second  # from the identity map: no SQL
    assert previous_version(session, second) is first
    assert previous_version(session, first) is None
    assert statements.count == 0
    assert next_version(session, second) is None

    session.expunge_all()
    (ink,) = session.scalars(query_as_of(Product, shop.t1).where(Product.name == "ink")).all()
    statements.reset()
    following = next_version(session, ink)
    assert statements.count == 1
    assert (following.version, following.price) == (2, 6)


def test_changes_between_two_versions(
    session: Session, shop: Times, statements: StatementCounter
) -> None:
    first, second = history(session, Order, 1)
    statements.reset()
    assert changes(first, second) == {"status": Change("new", "paid")}
    assert changes(second, first) == {"status": Change("paid", "new")}
    assert changes(None, first) == {
        "id": Change(None, 1),
        "customer_id": Change(None, 1),
        "status": Change(None, "new"),
    }
    assert changes(first, first) == {}
    assert statements.count == 0
    line_one = history(session, OrderLine, 1)
    assert [changes(previous_version(session, v), v) for v in line_one][1:] == [
        {"quantity": Change(1, 2)},
        {},  # the delete marker keeps the last values
    ]
    with pytest.raises(InvalidKeyError):
        changes(first, history(session, Order, 2)[0])
