"""Twin models for the capture modes: the same columns, one versioned by ORM mode, one by the
database's triggers (``__versioned__ = {"capture": "database"}``)."""

from __future__ import annotations

import decimal

from sqlalchemy import Boolean, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from sqlalchemy_chronicle import Versioned

from .models import Base


class OrmNote(Versioned, Base):
    """Versioned by the session's flushes."""

    __tablename__ = "capture_orm_note"
    __versioned__ = {"capture": "orm"}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(40))
    count: Mapped[int | None] = mapped_column(Integer)
    price: Mapped[decimal.Decimal | None] = mapped_column(Numeric(10, 2))
    flag: Mapped[bool | None] = mapped_column(Boolean)


class DbNote(Versioned, Base):
    """Versioned by the database."""

    __tablename__ = "capture_db_note"
    __versioned__ = {"capture": "database"}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(40))
    count: Mapped[int | None] = mapped_column(Integer)
    price: Mapped[decimal.Decimal | None] = mapped_column(Numeric(10, 2))
    flag: Mapped[bool | None] = mapped_column(Boolean)
