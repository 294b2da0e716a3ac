"""The models the command-line tests import with ``--models tests.cli_models``.

Their own declarative base, so that the command line finds exactly these: a table with an
integer key, one with a composite key, a joined-inheritance pair, a table whose history table
has a name of its own (which only the models know), and a table that is not versioned.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sqlalchemy_chronicle import Versioned


class Base(DeclarativeBase):
    pass


class Ticket(Versioned, Base):
    __tablename__ = "cli_ticket"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    points: Mapped[int | None] = mapped_column(Integer)


class Label(Versioned, Base):
    __tablename__ = "cli_label"
    __versioned__ = {"retain": dt.timedelta(hours=1)}  # for prune --by-policy

    owner: Mapped[str] = mapped_column(String(20), primary_key=True)
    code: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    text: Mapped[str] = mapped_column(String(50))


class Asset(Versioned, Base):
    __tablename__ = "cli_asset"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(50))

    __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "asset"}


class Laptop(Asset):
    __tablename__ = "cli_laptop"

    id: Mapped[int] = mapped_column(ForeignKey("cli_asset.id"), primary_key=True)
    memory: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"polymorphic_identity": "laptop"}


class Badge(Versioned, Base):
    __tablename__ = "cli_badge"
    __versioned__ = {"table": "cli_badge_versions"}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holder: Mapped[str] = mapped_column(String(50))


class Memo(Base):
    __tablename__ = "cli_memo"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(String(50))


OWN_TABLES = [t for t in Base.metadata.sorted_tables if t.name.startswith("cli_")]
"""This module's tables, without the library's own (which the suite's models share)."""
