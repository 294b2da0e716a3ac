"""The time-travel session on every database, and a model-based test of both as-of readers.

:func:`as_of` gives a read-only session in which ORM loads see versioned tables as they were. The
last test drives random transactions over related rows under a frozen clock that advances, keeps a
model of every committed state, and checks at random times (transaction times among them, and the
microseconds on either side) that :func:`query_as_of` and the time-travel session both return
exactly the model's state at that time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, joinedload, selectinload, subqueryload

from sqlalchemy_chronicle import AsOfSession, ConfigurationError, ReadOnlyError, as_of, query_as_of

from .models import Article, Base, Car, Manager, Note, Vehicle
from .models_travel import Customer, Label, Order, OrderLabel, OrderLine, Product
from .shop import Times, build_shop
from .support import FrozenClock, StatementCounter

TICK = dt.timedelta(microseconds=1)


@pytest.fixture
def shop(session: Session, clock: FrozenClock) -> Times:
    return build_shop(session, clock)


def describe(order: Order | None) -> Any:
    """An order and everything reachable from it, as plain values."""
    if order is None:
        return None
    return (
        order.id,
        order.status,
        order.customer.name if order.customer else None,
        [(line.id, line.quantity, line.product.name, line.product.price) for line in order.lines],
        [label.name for label in order.labels],
    )


SHOP_ORDER_1 = {
    "t1": (1, "new", "Ann", [(1, 1, "pen", 3)], ["rush"]),
    "t2": (1, "paid", "Ann B", [(1, 2, "pen", 4), (2, 1, "ink", 5)], ["gift"]),
    "t3": (1, "paid", "Ann B", [(2, 1, "ink", 5)], ["gift"]),
    "t4": (1, "paid", "Ann B", [(2, 1, "ink", 6)], ["gift"]),
}


@pytest.mark.parametrize("moment", ["t1", "t2", "t3", "t4"])
def test_get_and_lazy_loads_show_the_past(session: Session, shop: Times, moment: str) -> None:
    when = getattr(shop, moment)
    with as_of(session, when) as past:
        assert describe(past.get(Order, 1)) == SHOP_ORDER_1[moment]
        ann = past.get(Customer, 1)
        expected_orders = {"t1": [1], "t2": [1], "t3": [1, 2], "t4": [1]}[moment]
        assert [o.id for o in ann.orders] == expected_orders  # one-to-many, the other way
        line = past.get(OrderLine, 2)
        assert (line is not None) == (moment != "t1")
        if line is not None:
            assert line.order.status == "paid"  # many-to-one, the other way
    # The live objects are untouched by all this.
    assert describe(session.get(Order, 1)) == SHOP_ORDER_1["t4"]


@pytest.mark.parametrize(
    "loader",
    [
        joinedload(Order.lines).joinedload(OrderLine.product),
        selectinload(Order.lines).selectinload(OrderLine.product),
        subqueryload(Order.lines).subqueryload(OrderLine.product),
    ],
    ids=["joined", "selectin", "subquery"],
)
def test_eager_loads_show_the_past(session: Session, shop: Times, loader: Any) -> None:
    for moment in ("t1", "t2", "t3"):
        with as_of(session, getattr(shop, moment)) as past:
            query = (
                select(Order)
                .where(Order.id == 1)
                .options(loader, joinedload(Order.customer), selectinload(Order.labels))
            )
            order = past.scalars(query).unique().one()
            assert describe(order) == SHOP_ORDER_1[moment]


def test_queries_see_rows_that_existed_then(session: Session, shop: Times) -> None:
    with as_of(session, shop.t1) as past:
        assert past.scalars(select(Order).where(Order.status == "paid")).all() == []
        assert past.get(Order, 2) is None  # not created yet
    with as_of(session, shop.t3) as past:
        assert [o.status for o in past.scalars(select(Order).order_by(Order.id))] == ["paid", "new"]
        assert past.get(OrderLine, 1) is None  # deleted at t3
    with as_of(session, shop.t3 - TICK) as past:
        assert past.get(OrderLine, 1).quantity == 2
        assert past.get(Order, 2) is None
    with as_of(session, shop.t4) as past:
        assert past.get(Order, 2) is None  # deleted at t4
    with as_of(session, shop.t1 - TICK) as past:
        assert past.scalars(select(Customer)).all() == []
        assert past.get(Order, 1) is None
    with as_of(session, shop.t4.add(years=10)) as past:
        assert describe(past.get(Order, 1)) == SHOP_ORDER_1["t4"]


def test_statement_counts(session: Session, shop: Times, statements: StatementCounter) -> None:
    with as_of(session, shop.t2) as past:
        pen = past.get(Product, 1)  # connect, outside the count
        statements.reset()
        order = past.get(Order, 1)
        assert statements.count == 1
        for attribute, expected in [("lines", 2), ("customer", "Ann B"), ("labels", ["gift"])]:
            statements.reset()
            value = getattr(order, attribute)
            assert statements.count == 1, attribute
            if attribute == "lines":
                assert len(value) == expected
        statements.reset()
        assert order.lines[0].product is pen
        assert [line.product.name for line in order.lines] == ["pen", "ink"]
        assert statements.count == 1  # the pen was loaded already: only the ink is read
    with as_of(session, shop.t2) as past:
        past.get(Product, 1)
        statements.reset()
        query = select(Order).options(
            joinedload(Order.lines).joinedload(OrderLine.product),
            joinedload(Order.customer),
            joinedload(Order.labels),
        )
        order = past.scalars(query).unique().one()
        assert describe(order) == SHOP_ORDER_1["t2"]
        assert statements.count == 1


def test_the_session_is_read_only(session: Session, shop: Times, db: Engine) -> None:
    with as_of(session, shop.t1) as past:
        order = past.get(Order, 1)
        order.status = "rewritten"
        with pytest.raises(ReadOnlyError):
            past.flush()
        past.rollback()
    with as_of(session, shop.t1) as past:
        past.add(Order(id=9, status="new"))
        with pytest.raises(ReadOnlyError):
            past.commit()
    with as_of(session, shop.t1) as past:
        past.delete(past.get(Product, 1))
        with pytest.raises(ReadOnlyError):
            past.flush()
    with as_of(session, shop.t1) as past, pytest.raises(ReadOnlyError):
        past.execute(update(Order).values(status="x"))
    with Session(db) as fresh:
        assert fresh.get(Order, 1).status == "paid"
        assert fresh.get(Order, 9) is None
        assert fresh.get(Product, 1) is not None


def test_unversioned_tables_read_as_now_and_excluded_columns_as_null(
    session: Session, clock: FrozenClock
) -> None:
    t1 = clock.now
    session.add_all([Note(id=1, text="first"), Article(id=1, title="a", cached_html="<p>a</p>")])
    session.commit()
    clock.advance(seconds=1)
    session.get(Note, 1).text = "second"
    session.get(Article, 1).title = "b"
    session.commit()
    with as_of(session, t1) as past:
        assert past.get(Note, 1).text == "second"
        article = past.get(Article, 1)
        assert (article.title, article.cached_html) == ("a", None)
        assert past.scalars(select(Article).where(Article.cached_html.is_(None))).all()


def test_inheritance(session: Session, clock: FrozenClock) -> None:
    t1 = clock.now
    session.add_all([Car(id=1, name="beetle", doors=2), Manager(id=1, name="m", budget=10)])
    session.commit()
    clock.advance(seconds=1)
    session.get(Car, 1).doors = 4
    session.get(Manager, 1).budget = 20
    session.commit()
    with as_of(session, t1) as past:
        (vehicle,) = past.scalars(select(Vehicle)).all()
        assert (type(vehicle), vehicle.doors) == (Car, 2)
        assert past.get(Manager, 1).budget == 10


def test_sources_engine_connection_and_query_as_of_inside(
    session: Session, shop: Times, db: Engine
) -> None:
    with as_of(db, shop.t1) as past:
        assert isinstance(past, AsOfSession) and past.when == shop.t1
        assert past.get(Order, 1).status == "new"
        # query_as_of inside a time-travel session keeps its own time.
        assert [o.status for o in past.scalars(query_as_of(Order, shop.t2))] == ["paid"]
    with db.connect() as connection, as_of(connection, shop.t2) as past:
        assert past.get(Order, 1).status == "paid"
    with as_of(session, "2030-01-01T00:00:00Z") as past:
        assert past.get(Order, 1).status == "new"


def test_a_past_left_open_does_not_block_a_writer(
    session: Session, shop: Times, db: Engine
) -> None:
    """On a SQLite file with SQLAlchemy beginning transactions, the time-travel session holds
    no lock between its statements, so the writer's commit does not fail "database is locked"
    (on the servers, reads take no lock that an update waits for)."""
    with as_of(session, shop.t1) as past:
        assert past.get(Order, 1).status == "new"
        assert [o.id for o in past.scalars(select(Order))] == [1]
        order = session.get_one(Order, 1)
        order.status = "shipped"
        session.commit()
        # The past stays the past, and the session goes on reading it.
        assert [
            o.status for o in past.scalars(select(Order).execution_options(populate_existing=True))
        ] == ["new"]
    with as_of(session, "2999-01-01T00:00:00Z") as now:
        assert now.get_one(Order, 1).status == "shipped"
        session.get_one(Order, 1).status = "returned"
        session.commit()
    assert session.get_one(Order, 1).status == "returned"


def test_query_as_of_is_refused_by_a_plain_connection(shop: Times, db: Engine) -> None:
    """A Core connection does not hand the statement its time: it says to use a Session."""
    query = query_as_of(Order, shop.t1)
    with db.connect() as connection:
        with pytest.raises(ConfigurationError, match=r"Session\(bind=connection\)"):
            connection.execute(query)
        with Session(bind=connection) as wrapped:
            assert [o.status for o in wrapped.scalars(query)] == ["new"]
    with Session(db) as session:
        wrapping = select(query.subquery())
        with pytest.raises(ConfigurationError, match="get_execution_options"):
            session.execute(wrapping)
        wrapping = wrapping.execution_options(**query.get_execution_options())
        assert len(session.execute(wrapping).all()) == 1


# -- the model-based test ----------------------------------------------------------------------


@dataclass
class World:
    """The committed state of the shop, as plain values."""

    customers: dict[int, str] = field(default_factory=dict)
    products: dict[int, int] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)
    orders: dict[int, tuple[int | None, str]] = field(default_factory=dict)
    lines: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    order_labels: set[tuple[int, int]] = field(default_factory=set)

    def copy(self) -> World:
        return World(
            dict(self.customers),
            dict(self.products),
            dict(self.labels),
            dict(self.orders),
            dict(self.lines),
            set(self.order_labels),
        )

    def tables(self) -> dict[type[Any], set[tuple[Any, ...]]]:
        """Every row by class, as ``query_as_of`` rows are compared."""
        return {
            Customer: {(k, v) for k, v in self.customers.items()},
            Product: {(k, v) for k, v in self.products.items()},
            Label: {(k, v) for k, v in self.labels.items()},
            Order: {(k, *v) for k, v in self.orders.items()},
            OrderLine: {(k, *v) for k, v in self.lines.items()},
            OrderLabel: set(self.order_labels),
        }

    def graph(self) -> list[Any]:
        """Every order and what hangs off it, as :func:`graph` reads it through a session."""
        return [
            (
                order_id,
                status,
                self.customers[customer_id] if customer_id is not None else None,
                sorted(
                    (line_id, quantity, self.products[product_id])
                    for line_id, (owner, product_id, quantity) in self.lines.items()
                    if owner == order_id
                ),
                [self.labels[lid] for oid, lid in sorted(self.order_labels) if oid == order_id],
            )
            for order_id, (customer_id, status) in sorted(self.orders.items())
        ] + [
            (customer_id, name, sorted(o for o, (c, _) in self.orders.items() if c == customer_id))
            for customer_id, name in sorted(self.customers.items())
        ]


FIELDS: dict[type[Any], Callable[[Any], tuple[Any, ...]]] = {
    Customer: lambda v: (v.id, v.name),
    Product: lambda v: (v.id, v.price),
    Label: lambda v: (v.id, v.name),
    Order: lambda v: (v.id, v.customer_id, v.status),
    OrderLine: lambda v: (v.id, v.order_id, v.product_id, v.quantity),
    OrderLabel: lambda v: (v.order_id, v.label_id),
}


def graph(session: Session, loader: str) -> list[Any]:
    options: list[Any] = []
    if loader == "joined":
        options = [
            joinedload(Order.customer),
            joinedload(Order.lines).joinedload(OrderLine.product),
            joinedload(Order.labels),
        ]
    elif loader == "selectin":
        options = [
            selectinload(Order.customer),
            selectinload(Order.lines).selectinload(OrderLine.product),
            selectinload(Order.labels),
        ]
    orders = session.scalars(select(Order).options(*options).order_by(Order.id)).unique().all()
    customers = session.scalars(select(Customer).order_by(Customer.id)).all()
    return [
        (
            order.id,
            order.status,
            order.customer.name if order.customer else None,
            sorted((line.id, line.quantity, line.product.price) for line in order.lines),
            [label.name for label in order.labels],
        )
        for order in orders
    ] + [(c.id, c.name, sorted(o.id for o in c.orders)) for c in customers]


IDS = st.integers(1, 3)
OPERATION = st.one_of(
    st.tuples(st.just("customer"), IDS, st.sampled_from(["Ann", "Bob", None])),
    st.tuples(st.just("product"), IDS, st.sampled_from([1, 2, None])),
    st.tuples(st.just("label"), IDS, st.sampled_from(["rush", "gift", None])),
    st.tuples(
        st.just("order"), IDS, st.sampled_from([1, 2, None]), st.sampled_from(["new", "paid", None])
    ),
    st.tuples(st.just("line"), st.integers(1, 4), IDS, IDS, st.sampled_from([1, 2, None])),
    st.tuples(st.just("order_label"), IDS, IDS, st.booleans()),
)
TRANSACTIONS = st.lists(
    st.tuples(st.lists(OPERATION, min_size=1, max_size=4), st.integers(1, 3_000_000)),
    min_size=1,
    max_size=5,
)


def apply(session: Session, world: World, operation: tuple[Any, ...]) -> None:
    """Carry out one operation through the ORM and on the model, if it is valid in the model."""
    kind, key, *args = operation
    get = session.get
    if kind == "customer":
        (name,) = args
        if name is None:
            if key in world.customers:
                for order_id, (customer_id, status) in world.orders.items():
                    if customer_id == key:
                        get(Order, order_id).customer_id = None
                        world.orders[order_id] = (None, status)
                session.flush()
                session.delete(get(Customer, key))
                del world.customers[key]
        elif key in world.customers:
            get(Customer, key).name = name
            world.customers[key] = name
        else:
            session.add(Customer(id=key, name=name))
            world.customers[key] = name
    elif kind == "product":
        (price,) = args
        if price is None:
            if key in world.products and all(p != key for _, p, _ in world.lines.values()):
                session.delete(get(Product, key))
                del world.products[key]
        elif key in world.products:
            get(Product, key).price = price
            world.products[key] = price
        else:
            session.add(Product(id=key, name=f"p{key}", price=price))
            world.products[key] = price
    elif kind == "label":
        (name,) = args
        if name is None:
            if key in world.labels:
                for pair in [p for p in world.order_labels if p[1] == key]:
                    session.delete(get(OrderLabel, pair))
                    world.order_labels.discard(pair)
                session.flush()
                session.delete(get(Label, key))
                del world.labels[key]
        elif key in world.labels:
            get(Label, key).name = name
            world.labels[key] = name
        else:
            session.add(Label(id=key, name=name))
            world.labels[key] = name
    elif kind == "order":
        customer_id, status = args
        if customer_id not in world.customers:
            customer_id = None
        if status is None:
            if key in world.orders:
                for line_id in [i for i, line in world.lines.items() if line[0] == key]:
                    session.delete(get(OrderLine, line_id))
                    del world.lines[line_id]
                for pair in [p for p in world.order_labels if p[0] == key]:
                    session.delete(get(OrderLabel, pair))
                    world.order_labels.discard(pair)
                session.flush()
                session.delete(get(Order, key))
                del world.orders[key]
        elif key in world.orders:
            order = get(Order, key)
            order.customer_id, order.status = customer_id, status
            world.orders[key] = (customer_id, status)
        else:
            session.add(Order(id=key, customer_id=customer_id, status=status))
            world.orders[key] = (customer_id, status)
    elif kind == "line":
        order_id, product_id, quantity = args
        if quantity is None:
            if key in world.lines:
                session.delete(get(OrderLine, key))
                del world.lines[key]
        elif order_id in world.orders and product_id in world.products:
            if key in world.lines:
                line = get(OrderLine, key)
                line.order_id, line.product_id, line.quantity = order_id, product_id, quantity
            else:
                session.add(
                    OrderLine(id=key, order_id=order_id, product_id=product_id, quantity=quantity)
                )
            world.lines[key] = (order_id, product_id, quantity)
    elif kind == "order_label":
        label_id, present = args
        pair = (key, label_id)
        if present and pair not in world.order_labels:
            if key in world.orders and label_id in world.labels:
                session.add(OrderLabel(order_id=key, label_id=label_id))
                world.order_labels.add(pair)
        elif not present and pair in world.order_labels:
            session.delete(get(OrderLabel, pair))
            world.order_labels.discard(pair)
    session.flush()


def clear(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


def state_at(timeline: list[tuple[Any, World]], when: Any) -> World:
    state = World()
    for committed_at, world in timeline:
        if committed_at <= when:
            state = world
    return state


# An example takes about 50 ms per database; the "thorough" profile's 300 examples on three
# databases would take a minute of their own, so this test stops at 100.
_EXAMPLES = min(settings.default.max_examples, 100)


@settings(
    parent=settings.default,
    max_examples=_EXAMPLES,
    suppress_health_check=[
        *settings.default.suppress_health_check,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(transactions=TRANSACTIONS, data=st.data())
def test_as_of_readers_match_the_model(
    db: Engine, clock: FrozenClock, transactions: list[Any], data: st.DataObject
) -> None:
    clear(db)
    world = World()
    timeline: list[tuple[Any, World]] = []
    with Session(db) as session:
        for operations, pause in transactions:
            clock.advance(microseconds=pause)
            for operation in operations:
                apply(session, world, operation)
            session.commit()
            timeline.append((clock.now, world.copy()))
            world = world.copy()

    boundaries = [t + delta for t, _ in timeline for delta in (-TICK, dt.timedelta(0), TICK)]
    candidates = [timeline[0][0] - dt.timedelta(seconds=1), clock.now.add(days=1), *boundaries]
    times = data.draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=4, unique=True))
    times.append(data.draw(st.sampled_from([t for t, _ in timeline])))  # always one exact time
    loader = data.draw(st.sampled_from(["lazy", "joined", "selectin"]))

    with Session(db) as session:
        for when in times:
            expected = state_at(timeline, when)
            for cls, rows in expected.tables().items():
                found = {FIELDS[cls](v) for v in session.scalars(query_as_of(cls, when))}
                assert found == rows, (cls.__name__, when)
            with as_of(session, when) as past:
                assert graph(past, loader) == expected.graph(), when
                for order_id in (1, 2, 3):
                    order = past.get(Order, order_id)
                    status = expected.orders.get(order_id, (None, None))[1]
                    assert (order.status if order else None) == status, (order_id, when)
