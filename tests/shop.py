"""A small history of the order shop (:mod:`tests.models_travel`), shared by the as-of tests.

Four transactions, one day apart:

``t1``
    Ann's order 1 is placed: one pen; labelled "rush". Products pen (3) and ink (5).
``t2``
    Order 1 is paid; the pen line goes to 2; an ink line is added; the pen costs 4; Ann becomes
    "Ann B"; the label "rush" is swapped for "gift".
``t3``
    The pen line is deleted; Ann places order 2.
``t4``
    Order 2 is deleted; ink costs 6.
"""

from __future__ import annotations

from dataclasses import dataclass

import pendulum
from sqlalchemy.orm import Session

from .models_travel import Customer, Label, Order, OrderLabel, OrderLine, Product
from .support import FrozenClock


@dataclass
class Times:
    t1: pendulum.DateTime
    t2: pendulum.DateTime
    t3: pendulum.DateTime
    t4: pendulum.DateTime


def build_shop(session: Session, clock: FrozenClock) -> Times:
    t1 = clock.now
    ann = Customer(id=1, name="Ann")
    pen, ink = Product(id=1, name="pen", price=3), Product(id=2, name="ink", price=5)
    rush, gift = Label(id=1, name="rush"), Label(id=2, name="gift")
    order = Order(
        id=1, customer=ann, status="new", lines=[OrderLine(id=1, product=pen, quantity=1)]
    )
    session.add_all([order, ink, rush, gift, OrderLabel(order=order, label=rush)])
    session.commit()

    t2 = clock.advance(days=1)
    order.status = "paid"
    order.lines[0].quantity = 2
    order.lines.append(OrderLine(id=2, product=ink, quantity=1))
    pen.price = 4
    ann.name = "Ann B"
    session.delete(session.get(OrderLabel, (1, 1)))
    session.add(OrderLabel(order=order, label=gift))
    session.commit()

    t3 = clock.advance(days=1)
    session.delete(order.lines[0])
    session.add(Order(id=2, customer=ann, status="new"))
    session.commit()

    t4 = clock.advance(days=1)
    session.delete(session.get(Order, 2))
    ink.price = 6
    session.commit()
    session.expunge_all()
    return Times(t1, t2, t3, t4)
