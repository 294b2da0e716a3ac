"""Restoring versions written before a NOT NULL column existed.

The migration that adds ``color`` gives the live table a NOT NULL column and the history table a
nullable one, so the versions from before hold no color. Restoring one uses the column's default,
or the value the caller gives, and otherwise refuses, naming the column, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, Integer, String, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sqlalchemy_chronicle import RestoreConflictError, Versioned, history, restore, restore_all

from .support import FrozenClock


class Before(DeclarativeBase):
    pass


class GadgetBefore(Versioned, Before):
    __tablename__ = "gadget"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(20))


class WithDefault(DeclarativeBase):
    pass


class Gadget(Versioned, WithDefault):
    __tablename__ = "gadget"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(20))
    color: Mapped[str] = mapped_column(String(10), server_default="grey")


class WithoutDefault(DeclarativeBase):
    pass


class BareGadget(Versioned, WithoutDefault):
    __tablename__ = "gadget"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(20))
    color: Mapped[str] = mapped_column(String(10))


@pytest.fixture
def gadgets(db: Engine, clock: FrozenClock) -> Iterator[Any]:
    """Gadget 1 kept, gadget 2 deleted, both before the color column; then the migration."""
    tables = [GadgetBefore.__table__, GadgetBefore.__history__.__table__]
    Before.metadata.drop_all(db, tables=tables)
    Before.metadata.create_all(db, tables=tables)
    with Session(db) as session:
        session.add_all([GadgetBefore(id=1, name="one"), GadgetBefore(id=2, name="two")])
        session.commit()
        t0 = clock.now
        clock.advance(seconds=1)
        session.delete(session.get(GadgetBefore, 2))
        session.commit()
    clock.advance(seconds=1)
    with db.begin() as connection:
        connection.execute(
            text("ALTER TABLE gadget ADD COLUMN color VARCHAR(10) DEFAULT 'grey' NOT NULL")
        )
        connection.execute(text("ALTER TABLE gadget_history ADD COLUMN color VARCHAR(10)"))
    yield t0
    Before.metadata.drop_all(db, tables=tables)


def rows(session: Session) -> list[tuple[Any, ...]]:
    return [
        tuple(r) for r in session.execute(text("SELECT id, name, color FROM gadget ORDER BY id"))
    ]


def test_a_deleted_row_comes_back_with_the_server_default(db: Engine, gadgets: Any) -> None:
    with Session(db) as session:
        restored = restore(session, Gadget, 2, as_of=gadgets)
        session.commit()
        assert restored is not None
        assert rows(session) == [(1, "one", "grey"), (2, "two", "grey")]
        assert [v.operation for v in history(session, Gadget, 2)][-1] == "restore"


def test_a_row_updated_back_keeps_its_current_value(db: Engine, gadgets: Any) -> None:
    with Session(db) as session:
        session.execute(text("UPDATE gadget SET name = 'uno', color = 'red' WHERE id = 1"))
        session.commit()
        restore(session, BareGadget, 1, as_of=gadgets)
        session.commit()
        assert rows(session) == [(1, "one", "red")]


def test_without_a_default_the_restore_is_refused_naming_the_column(
    db: Engine, gadgets: Any
) -> None:
    with Session(db) as session:
        before = rows(session)
        with pytest.raises(
            RestoreConflictError, match=r"gadget\.color is NOT NULL.*values=\{'color'"
        ):
            restore(session, BareGadget, 2, as_of=gadgets)
        session.rollback()
        assert rows(session) == before
        assert [v.operation for v in history(session, BareGadget, 2)] == ["insert", "delete"]


def test_the_caller_gives_the_value(db: Engine, gadgets: Any) -> None:
    with Session(db) as session:
        restore(session, BareGadget, 2, as_of=gadgets, values={"color": "blue"})
        session.commit()
        assert rows(session) == [(1, "one", "grey"), (2, "two", "blue")]
        assert (
            session.scalar(
                select(BareGadget.__history__.color).filter_by(id=2, operation="restore")
            )
            == "blue"
        )


def test_restore_all_keeps_current_values_and_fills_defaults(db: Engine, gadgets: Any) -> None:
    with Session(db) as session:
        session.execute(text("UPDATE gadget SET name = 'uno', color = 'red' WHERE id = 1"))
        session.commit()
        restore_all(session, Gadget, as_of=gadgets)
        session.commit()
        assert rows(session) == [(1, "one", "red"), (2, "two", "grey")]


def test_restore_all_without_a_default_is_refused_and_changes_nothing(
    db: Engine, gadgets: Any
) -> None:
    with Session(db) as session:
        session.execute(text("UPDATE gadget SET name = 'uno' WHERE id = 1"))
        session.commit()
        before = rows(session)
        with pytest.raises(RestoreConflictError, match=r"gadget\.color is NOT NULL"):
            restore_all(session, BareGadget, as_of=gadgets)
        session.rollback()
        assert rows(session) == before
