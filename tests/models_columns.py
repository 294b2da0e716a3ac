"""Models of the tests that compare history with the rows as stored; they share ``Base``.

:class:`ColumnRow` has integer columns that concurrent writers each own one of, and a Python-side
``onupdate`` that takes a new value per row of every UPDATE, executemany included.
:class:`Holding` has the columns whose stored value can differ from what the session sent: a
``Numeric(10, 2)`` that rounds, and a ``JSON`` column that is SQL NULL when left unset.
:class:`Pair` has two columns that two sessions change at the same time.
"""

from __future__ import annotations

import itertools
import threading
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from sqlalchemy_chronicle import Versioned

from .models import Base

_stamps = itertools.count(1)
_stamps_lock = threading.Lock()


def next_stamp() -> int:
    """A new value at every call: a Python ``onupdate`` evaluated once per row written."""
    with _stamps_lock:
        return next(_stamps)


COUNTER_COLUMNS = ("c0", "c1", "c2", "c3")


class ColumnRow(Versioned, Base):
    """Four integer columns for four writers, and a per-row Python ``onupdate`` stamp."""

    __tablename__ = "column_row"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    c0: Mapped[int] = mapped_column(Integer, default=0)
    c1: Mapped[int] = mapped_column(Integer, default=0)
    c2: Mapped[int] = mapped_column(Integer, default=0)
    c3: Mapped[int] = mapped_column(Integer, default=0)
    stamp: Mapped[int | None] = mapped_column(BigInteger, default=0, onupdate=next_stamp)


class Holding(Versioned, Base):
    """A rounding ``Numeric(10, 2)`` and a ``JSON`` column that may be SQL NULL."""

    __tablename__ = "holding"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    doc: Mapped[Any] = mapped_column(JSON, nullable=True)


class Pair(Versioned, Base):
    """Two integer columns, for a session that writes a row another one changed after its load."""

    __tablename__ = "pair"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    a: Mapped[int] = mapped_column(Integer)
    b: Mapped[int] = mapped_column(Integer)
