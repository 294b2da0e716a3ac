"""The models every test shares; the tables are created once per database."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sqlalchemy_chronicle import Versioned


class Base(DeclarativeBase):
    pass


class Article(Versioned, Base):
    """App-assigned key, a server default, a renamed column and an excluded column."""

    __tablename__ = "article"
    __versioned__ = {"exclude": ["cached_html"]}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str | None] = mapped_column(Text)
    views: Mapped[int] = mapped_column(Integer, server_default="0")
    slug: Mapped[str | None] = mapped_column("slug_column", String(50), unique=True)
    cached_html: Mapped[str | None] = mapped_column(Text)


class Tag(Versioned, Base):
    """A composite primary key."""

    __tablename__ = "tag"

    owner: Mapped[str] = mapped_column(String(20), primary_key=True)
    code: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    label: Mapped[str] = mapped_column(String(50))


class Employee(Versioned, Base):
    """Single-table inheritance."""

    __tablename__ = "employee"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(50))

    __mapper_args__ = {"polymorphic_on": "type", "polymorphic_identity": "employee"}


class Manager(Employee):
    budget: Mapped[int | None] = mapped_column(Integer)

    __mapper_args__ = {"polymorphic_identity": "manager"}


class Vehicle(Versioned, Base):
    """Joined-table inheritance."""

    __tablename__ = "vehicle"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(50))

    __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "vehicle"}


class Car(Vehicle):
    __tablename__ = "car"

    id: Mapped[int] = mapped_column(ForeignKey("vehicle.id"), primary_key=True)
    doors: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"polymorphic_identity": "car"}


class Note(Base):
    """Not versioned."""

    __tablename__ = "note"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(String(100))
