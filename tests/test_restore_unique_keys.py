"""Rows restored together satisfy foreign keys to any unique key they hold, not only the key.

Issue #12 (6): restoring a deleted shelf with its books, which refer to it by a composite foreign
key to the shelf's unique ``(site, code)``, was refused with "refers to a shelf row that will not
exist", though the shelf came back in the same call; a foreign key to the primary key worked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import (
    Engine,
    ForeignKeyConstraint,
    Integer,
    String,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from sqlalchemy_chronicle import RestoreConflictError, Versioned, restore

from .support import FrozenClock


class Base(DeclarativeBase):
    pass


class Shelf(Versioned, Base):
    """Books refer to a shelf by its unique ``(site, code)``, not by its primary key."""

    __tablename__ = "uk_shelf"
    __table_args__ = (UniqueConstraint("site", "code", name="uq_uk_shelf_site_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    site: Mapped[str] = mapped_column(String(10))
    code: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(20))

    books: Mapped[list[Book]] = relationship(
        back_populates="shelf", order_by="Book.id", cascade="all, delete-orphan"
    )


class Book(Versioned, Base):
    __tablename__ = "uk_book"
    __table_args__ = (
        ForeignKeyConstraint(
            ["shelf_site", "shelf_code"],
            ["uk_shelf.site", "uk_shelf.code"],
            name="fk_uk_book_shelf",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    shelf_site: Mapped[str] = mapped_column(String(10))
    shelf_code: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(20))

    shelf: Mapped[Shelf] = relationship(back_populates="books")


class Bin(Versioned, Base):
    """The same shape with the foreign key on the (composite) primary key: the control."""

    __tablename__ = "uk_bin"

    site: Mapped[str] = mapped_column(String(10), primary_key=True)
    code: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    label: Mapped[str] = mapped_column(String(20))

    items: Mapped[list[Item]] = relationship(
        back_populates="bin", order_by="Item.id", cascade="all, delete-orphan"
    )


class Item(Versioned, Base):
    __tablename__ = "uk_item"
    __table_args__ = (
        ForeignKeyConstraint(["bin_site", "bin_code"], ["uk_bin.site", "uk_bin.code"]),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    bin_site: Mapped[str] = mapped_column(String(10))
    bin_code: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(20))

    bin: Mapped[Bin] = relationship(back_populates="items")


MODELS = [Shelf, Book, Bin, Item]
TABLES = [table for m in MODELS for table in (m.__table__, m.__history__.__table__)]


@pytest.fixture
def shelves(db: Engine, clock: FrozenClock) -> Iterator[Session]:
    """Shelf 1 ("main", 1) with books 1 and 2 and shelf 2 ("main", 2) with book 3, at ``START``;
    bin ("main", 1) with items 1 and 2."""
    Base.metadata.drop_all(db, tables=TABLES)
    Base.metadata.create_all(db, tables=TABLES)
    try:
        with Session(db) as session:
            session.add_all(
                [
                    Shelf(id=1, site="main", code=1, label="a"),
                    Shelf(id=2, site="main", code=2, label="b"),
                    Bin(site="main", code=1, label="a"),
                ]
            )
            session.flush()
            session.add_all(
                [
                    Book(id=1, shelf_site="main", shelf_code=1, title="one"),
                    Book(id=2, shelf_site="main", shelf_code=1, title="two"),
                    Book(id=3, shelf_site="main", shelf_code=2, title="three"),
                    Item(id=1, bin_site="main", bin_code=1, title="one"),
                    Item(id=2, bin_site="main", bin_code=1, title="two"),
                ]
            )
            session.commit()
            clock.advance(seconds=1)
            yield session
    finally:
        Base.metadata.drop_all(db, tables=TABLES)


def books(session: Session) -> list[tuple[int, str, int, str]]:
    return [
        (b.id, b.shelf_site, b.shelf_code, b.title)
        for b in session.scalars(select(Book).order_by(Book.id))
    ]


def test_a_deleted_parent_comes_back_with_children_that_refer_to_its_unique_key(
    shelves: Session, clock: FrozenClock
) -> None:
    session = shelves
    then = clock.now - dt.timedelta(seconds=1)
    session.delete(session.get(Shelf, 1))  # the cascade deletes books 1 and 2
    session.commit()
    clock.advance(seconds=1)
    with pytest.raises(RestoreConflictError, match=r"Book \(1,\).*uk_shelf row"):
        restore(session, Book, 1, as_of=then)  # alone, its shelf stays deleted
    shelf = restore(session, Shelf, 1, as_of=then, include=[Shelf.books])
    session.commit()
    assert (shelf.label, [book.id for book in shelf.books]) == ("a", [1, 2])
    assert books(session) == [(1, "main", 1, "one"), (2, "main", 1, "two"), (3, "main", 2, "three")]


def test_a_parent_whose_unique_key_changed_comes_back_with_its_children(
    shelves: Session, clock: FrozenClock
) -> None:
    """Restored together, the shelf takes back the code its books refer to."""
    session = shelves
    then = clock.now - dt.timedelta(seconds=1)
    shelf = session.get(Shelf, 1)
    assert shelf is not None
    for book in list(shelf.books):
        session.delete(book)
    session.flush()
    shelf.code = 7
    session.commit()
    clock.advance(seconds=1)
    with pytest.raises(RestoreConflictError, match="fk_uk_book_shelf"):
        restore(session, Book, 1, as_of=then)  # ("main", 1) is no shelf's now
    restore(session, Shelf, 1, as_of=then, include=[Shelf.books])
    session.commit()
    assert session.scalars(select(Shelf.code).order_by(Shelf.id)).all() == [1, 2]
    assert [b[0] for b in books(session)] == [1, 2, 3]


def test_a_value_the_restore_takes_away_does_not_satisfy_a_reference(
    shelves: Session, clock: FrozenClock
) -> None:
    """Shelf 2 holds ("main", 1) now, but the restore puts it back to ("main", 2).

    The books that referred to ("main", 1) then (1 and 2) are related to shelf 2 now, so they are
    put back too, still referring to ("main", 1), which no row will hold: the restore is refused
    before it writes, rather than by the database at the flush (or, on SQLite without foreign-key
    enforcement, not at all).
    """
    session = shelves
    then = clock.now - dt.timedelta(seconds=1)
    session.delete(session.get(Shelf, 1))  # and books 1 and 2
    session.delete(session.get(Book, 3))
    session.flush()
    shelf = session.get(Shelf, 2)
    assert shelf is not None
    shelf.code = 1
    session.flush()
    session.add(Book(id=1, shelf_site="main", shelf_code=1, title="new"))
    session.commit()
    clock.advance(seconds=1)
    with pytest.raises(RestoreConflictError, match=r"Book \([12],\).*fk_uk_book_shelf"):
        restore(session, Shelf, 2, as_of=then, include=[Shelf.books])
    assert books(session) == [(1, "main", 1, "new")]
    assert session.scalars(select(Shelf.code)).all() == [1]


def test_the_same_shape_with_the_foreign_key_on_the_primary_key(
    shelves: Session, clock: FrozenClock
) -> None:
    session = shelves
    then = clock.now - dt.timedelta(seconds=1)
    session.delete(session.get(Bin, ("main", 1)))
    session.commit()
    clock.advance(seconds=1)
    with pytest.raises(RestoreConflictError, match=r"Item \(1,\)"):
        restore(session, Item, 1, as_of=then)
    restored = restore(session, Bin, ("main", 1), as_of=then, include=[Bin.items])
    session.commit()
    assert [item.id for item in restored.items] == [1, 2]
