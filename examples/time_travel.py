"""Time travel: an order as it was last Tuesday, its lines and their products included.

A week in a small shop: an order is placed on Monday, changed on Tuesday and Wednesday, a product
is withdrawn on Thursday. Then the example looks back: the whole order as of Tuesday noon through
a time-travel session, an as-of query, and the order's versions with what each one changed.

Run it with an in-memory SQLite database::

    python examples/time_travel.py

or on a database of your own (the example creates, and first drops, only its own tables, the
``shop_*`` tables and their ``*_history`` tables; ``chronicle_transaction`` is shared by every
versioned table of a database, so it is created if missing and otherwise left alone)::

    pip install -e '.[postgresql]'   # or '.[mysql]': the database driver
    python examples/time_travel.py postgresql+psycopg://user@localhost/mydb
"""

from __future__ import annotations

import datetime as dt
import sys

import pendulum
from sqlalchemy import Connection, Engine, ForeignKey, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from sqlalchemy_chronicle import (
    Versioned,
    as_of,
    changes,
    configure,
    history,
    previous_version,
    query_as_of,
)


class Base(DeclarativeBase):
    pass


class Product(Versioned, Base):
    __tablename__ = "shop_product"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    price_cents: Mapped[int]


class Order(Versioned, Base):
    __tablename__ = "shop_order"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20))

    lines: Mapped[list[OrderLine]] = relationship(order_by="OrderLine.id")


class OrderLine(Versioned, Base):
    __tablename__ = "shop_order_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("shop_order.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("shop_product.id"))
    quantity: Mapped[int]

    product: Mapped[Product] = relationship()


MONDAY = pendulum.datetime(2024, 3, 4, 9, tz="UTC")


class StoryClock:
    """The days of this story, in place of the database's clock (an application keeps that one)."""

    now = MONDAY

    def __call__(self, connection: Connection) -> dt.datetime:
        return self.now


def create_tables(engine: Engine) -> None:
    own = [table for table in Base.metadata.sorted_tables if table.name.startswith("shop_")]
    Base.metadata.drop_all(engine, tables=own)  # so that the example can run again
    Base.metadata.create_all(engine)


def a_week_in_the_shop(engine: Engine, clock: StoryClock) -> None:
    with Session(engine) as session:
        pen = Product(id=1, name="pen", price_cents=150)
        notebook = Product(id=2, name="notebook", price_cents=400)
        order = Order(id=1, customer="Ada", status="new")
        session.add_all([pen, notebook, order])
        session.flush()
        session.add(OrderLine(id=1, order_id=1, product_id=1, quantity=2))
        session.commit()  # Monday: two pens

        clock.now = MONDAY.add(days=1)
        session.add(OrderLine(id=2, order_id=1, product_id=2, quantity=1))
        pen.price_cents = 180
        session.commit()  # Tuesday: a notebook too, and pens cost more

        clock.now = MONDAY.add(days=2)
        session.get_one(OrderLine, 1).quantity = 5
        session.delete(session.get_one(OrderLine, 2))
        order.status = "paid"
        session.commit()  # Wednesday: five pens, no notebook after all; paid

        clock.now = MONDAY.add(days=3)
        session.delete(notebook)
        session.commit()  # Thursday: notebooks are withdrawn


def money(cents: int) -> str:
    return f"{cents / 100:.2f}"


def print_order(title: str, order: Order) -> None:
    print(f"{title}: order {order.id} for {order.customer}, {order.status}")
    for line in order.lines:
        product = line.product
        print(f"  {line.quantity} x {product.name} at {money(product.price_cents)}")


def look_back(engine: Engine) -> None:
    monday_evening = MONDAY.add(hours=9)
    tuesday_noon = MONDAY.add(days=1, hours=3)
    with Session(engine) as session:
        print_order("Now", session.get_one(Order, 1))

        # The headline: a read-only session in which ordinary ORM code sees the past, the
        # relationships included.
        for title, when in [("Monday evening", monday_evening), ("Tuesday noon", tuesday_noon)]:
            with as_of(session, when) as past:
                print_order(title, past.get_one(Order, 1))

        # An as-of query: criteria on the models' own attributes filter Tuesday's values.
        query = (
            query_as_of(Order, tuesday_noon)
            .join(Order.lines)
            .join(OrderLine.product)
            .where(Product.name == "notebook")
        )
        ids = [version.id for version in session.scalars(query)]
        print(f"Orders with a notebook on Tuesday noon: {ids}")

        print("Versions of order 1:")
        for version in history(session, Order, 1):
            changed = changes(previous_version(session, version), version)
            what = ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in changed.items())
            print(f"  v{version.version} {version.operation:<7} from {version.valid_from}: {what}")

        print("Versions of the withdrawn notebook:")
        for notebook in history(session, Product, 2):
            price = money(notebook[Product.price_cents])
            print(f"  v{notebook.version} {notebook.operation:<7} at {price}")


def main(url: str = "sqlite://") -> None:
    engine = create_engine(url)
    clock = StoryClock()
    configure(clock=clock)
    try:
        create_tables(engine)
        a_week_in_the_shop(engine, clock)
        look_back(engine)
    finally:
        configure(clock=None)
        engine.dispose()


if __name__ == "__main__":
    main(*sys.argv[1:2])
