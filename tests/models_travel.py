"""Related models for the time-travel tests; they share :class:`tests.models.Base`.

An order shop: a :class:`Customer` has orders (one-to-many), an :class:`Order` has lines
(one-to-many) and labels (many-to-many through the versioned association class
:class:`OrderLabel`), a line points at a :class:`Product` (many-to-one). Every class is versioned,
the association included, so that every relationship can be read as of a past time.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sqlalchemy_chronicle import Versioned

from .models import Base


class Customer(Versioned, Base):
    __tablename__ = "customer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(50))

    orders: Mapped[list[Order]] = relationship(back_populates="customer", order_by="Order.id")


class Product(Versioned, Base):
    __tablename__ = "product"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(50))
    price: Mapped[int] = mapped_column(Integer)


class Label(Versioned, Base):
    __tablename__ = "label"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(50))


class Order(Versioned, Base):
    """``order`` is a reserved word: every statement must quote it."""

    __tablename__ = "order"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    status: Mapped[str] = mapped_column(String(20))

    customer: Mapped[Customer | None] = relationship(back_populates="orders")
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.id", cascade="all, delete-orphan"
    )
    labels: Mapped[list[Label]] = relationship(
        secondary="order_label", order_by="Label.id", viewonly=True
    )


class OrderLine(Versioned, Base):
    __tablename__ = "order_line"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    quantity: Mapped[int] = mapped_column(Integer)

    order: Mapped[Order] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()


class OrderLabel(Versioned, Base):
    """The versioned association behind ``Order.labels``; written through this class."""

    __tablename__ = "order_label"

    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("label.id"), primary_key=True)

    order: Mapped[Order] = relationship()
    label: Mapped[Label] = relationship()
