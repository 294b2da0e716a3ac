"""Database capture mode: statements that write several rows at once, or one row twice.

The triggers see such a statement row by row (PostgreSQL queues the rows' events until the
statement ends, MariaDB and SQLite run them as each row is written). Whatever the order, each
row must end with the history of its net change: keys moved by one statement (on PostgreSQL
even onto each other, with a deferrable primary key), a statement that puts rows back to the
values they had, an upsert, a multi-row statement inside a rolled-back savepoint, a statement
that fails after its first row, a savepoint rolled back by textual SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import (
    Engine,
    Insert,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    select,
    text,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sqlalchemy_chronicle import ChangeLog, Transaction, Versioned, changes_by, history

from .models_capture import DbNote
from .support import FrozenClock, assert_well_formed
from .test_database_capture import reset


@pytest.fixture
def notes(db: Engine) -> Iterator[Engine]:
    """The engine, with the twins' and the library's tables empty (see :func:`reset`)."""
    reset(db)
    yield db
    reset(db)


def entries(session: Session, table: str = "capture_db_note") -> list[tuple[Any, ...]]:
    """The change log of ``table``: (transaction, row, event, changes), in the order written."""
    rows = session.execute(
        select(ChangeLog.transaction_id, ChangeLog.row_id, ChangeLog.event_type, ChangeLog.changes)
        .where(ChangeLog.table_name == table)
        .order_by(ChangeLog.id)
    ).all()
    return [tuple(row) for row in rows]


def versions(session: Session, cls: type[Any], key: int) -> list[tuple[Any, ...]]:
    return [(v.version, v.operation, v.title) for v in history(session, cls, key)]


def seed(db: Engine, clock: FrozenClock, cls: type[Any] = DbNote) -> None:
    """Rows 1, 2, 3 titled a, b, c, in a transaction of their own, a minute ago."""
    with Session(db) as session:
        session.add_all([cls(id=1, title="a"), cls(id=2, title="b"), cls(id=3, title="c")])
        session.commit()
    clock.advance(minutes=1)


def every(key: int, title: str) -> dict[str, Any]:
    return {"id": key, "title": title, "count": None, "price": None, "flag": None}


def test_one_statement_moves_several_keys(notes: Engine, clock: FrozenClock) -> None:
    seed(notes, clock)
    with Session(notes) as session:
        session.execute(text("UPDATE capture_db_note SET id = id + 10 WHERE id <= 2"))
        session.commit()
    with Session(notes) as session:
        assert versions(session, DbNote, 1) == [(1, "insert", "a"), (2, "delete", "a")]
        assert versions(session, DbNote, 11) == [(1, "insert", "a")]
        assert versions(session, DbNote, 12) == [(1, "insert", "b")]
        assert (
            history(session, DbNote, 11)[0].valid_from == history(session, DbNote, 1)[1].valid_from
        )
        moved = sorted(entry[1:3] for entry in entries(session)[3:])
        assert moved == [("1", "DELETE"), ("11", "INSERT"), ("12", "INSERT"), ("2", "DELETE")]


def test_one_statement_that_puts_rows_back_leaves_no_version(
    notes: Engine, clock: FrozenClock
) -> None:
    """The second statement of a transaction rewrites each row's version, and drops it where the
    row is back to the values of the version before it."""
    seed(notes, clock)
    with Session(notes) as session:
        session.execute(text("UPDATE capture_db_note SET count = 1"))
        session.execute(text("UPDATE capture_db_note SET count = NULL WHERE id <> 3"))
        session.commit()
    with Session(notes) as session:
        assert versions(session, DbNote, 1) == [(1, "insert", "a")]
        assert versions(session, DbNote, 2) == [(1, "insert", "b")]
        assert [v.valid_to for v in history(session, DbNote, 1)] == [None]
        assert versions(session, DbNote, 3) == [(1, "insert", "c"), (2, "update", "c")]
        assert [entry[1:] for entry in entries(session)[3:]] == [
            ("3", "UPDATE", {"count": [None, 1]})
        ]


def upsert(db: Engine, rows: list[dict[str, Any]]) -> Insert:
    """``INSERT .. ON CONFLICT DO UPDATE`` (``ON DUPLICATE KEY UPDATE``) of ``rows``' titles."""
    table = DbNote.__table__
    if db.dialect.name == "postgresql":
        pg = postgresql.insert(table).values(rows)
        return pg.on_conflict_do_update(index_elements=["id"], set_={"title": pg.excluded.title})
    if db.dialect.name == "sqlite":
        lite = sqlite.insert(table).values(rows)
        return lite.on_conflict_do_update(
            index_elements=["id"], set_={"title": lite.excluded.title}
        )
    maria = mysql.insert(table).values(rows)
    return maria.on_duplicate_key_update(title=maria.inserted.title)


def test_an_upsert_versions_the_rows_it_inserts_and_those_it_updates(
    notes: Engine, clock: FrozenClock
) -> None:
    seed(notes, clock)
    with notes.begin() as connection:
        connection.execute(upsert(notes, [{"id": 1, "title": "a2"}, {"id": 4, "title": "d"}]))
    clock.advance(minutes=1)
    with notes.begin() as connection:
        connection.execute(upsert(notes, [{"id": 1, "title": "a2"}, {"id": 2, "title": "b"}]))
    with Session(notes) as session:
        assert versions(session, DbNote, 1) == [(1, "insert", "a"), (2, "update", "a2")]
        assert versions(session, DbNote, 2) == [(1, "insert", "b")]
        assert versions(session, DbNote, 4) == [(1, "insert", "d")]
        assert [entry[1:] for entry in entries(session)[3:]] == [
            ("1", "UPDATE", {"title": ["a", "a2"]}),
            ("4", "INSERT", every(4, "d")),
        ]


def test_a_rolled_back_savepoint_takes_back_its_statements_rewrites(
    notes: Engine, clock: FrozenClock
) -> None:
    seed(notes, clock)
    with Session(notes) as session:
        session.execute(update(DbNote).values(title="x"))
        savepoint = session.begin_nested()
        session.execute(update(DbNote).where(DbNote.id >= 2).values(title="y"))
        session.execute(text("DELETE FROM capture_db_note WHERE id = 3"))
        savepoint.rollback()
        session.execute(update(DbNote).where(DbNote.id == 1).values(title="a"))
        session.commit()
    with Session(notes) as session:
        assert versions(session, DbNote, 1) == [(1, "insert", "a")]
        assert versions(session, DbNote, 2) == [(1, "insert", "b"), (2, "update", "x")]
        assert versions(session, DbNote, 3) == [(1, "insert", "c"), (2, "update", "x")]
        assert sorted(entry[1:] for entry in entries(session)[3:]) == [
            ("2", "UPDATE", {"title": ["b", "x"]}),
            ("3", "UPDATE", {"title": ["c", "x"]}),
        ]


def test_keys_moved_onto_each_other_by_one_statement(engine: Engine, clock: FrozenClock) -> None:
    """With a deferrable primary key, one statement may move a row onto the key another row of
    the same statement leaves: each key's history then says what the key holds before and
    after the statement, whichever order the rows' events come in."""
    if engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL has deferrable primary keys, which let keys overlap")

    class Own(DeclarativeBase):
        metadata = MetaData()

    class Shifted(Versioned, Own):
        __tablename__ = "capture_shifted"
        __table_args__ = (PrimaryKeyConstraint("id", deferrable=True, initially="IMMEDIATE"),)
        __versioned__ = {"capture": "database"}

        id: Mapped[int] = mapped_column(Integer, autoincrement=False)
        title: Mapped[str] = mapped_column(String(20))

    own_tables = [Shifted.__table__, Shifted.__history__.__table__]  # type: ignore[attr-defined]
    Own.metadata.drop_all(engine, tables=own_tables)
    Own.metadata.create_all(engine, tables=own_tables)
    try:
        seed(engine, clock, Shifted)
        with Session(engine) as session:
            session.execute(text("UPDATE capture_shifted SET id = id + 1"))
            session.commit()
        clock.advance(minutes=1)
        with Session(engine) as session:
            session.execute(text("UPDATE capture_shifted SET id = 5 - id WHERE id IN (2, 3)"))
            session.commit()
        with Session(engine) as session:
            assert [versions(session, Shifted, key) for key in (1, 2, 3, 4)] == [
                [(1, "insert", "a"), (2, "delete", "a")],
                [(1, "insert", "b"), (2, "update", "a"), (3, "update", "b")],
                [(1, "insert", "c"), (2, "update", "b"), (3, "update", "a")],
                [(1, "insert", "c")],
            ]
            rows = [history(session, Shifted, key) for key in (1, 2, 3, 4)]
            assert_well_formed(
                [
                    (v.id, v.version, v.operation, v.valid_from, v.valid_to)
                    for row in rows
                    for v in row
                ]
            )
            second = [entry[1:] for entry in entries(session, "capture_shifted")[3:]]
            assert sorted(second, key=repr) == sorted(
                [
                    ("1", "DELETE", {"id": 1, "title": "a"}),
                    ("2", "UPDATE", {"title": ["b", "a"]}),
                    ("3", "UPDATE", {"title": ["c", "b"]}),
                    ("4", "INSERT", {"id": 4, "title": "c"}),
                    ("2", "UPDATE", {"title": ["a", "b"]}),
                    ("3", "UPDATE", {"title": ["b", "a"]}),
                ],
                key=repr,
            )
    finally:
        Own.metadata.drop_all(engine, tables=own_tables)


def transactions_of(session: Session, key: int) -> list[tuple[Any, ...]]:
    """(version, transaction row's id or None when it is gone, actor) of row ``key``'s versions."""
    found = session.execute(
        select(DbNote.__history__.version, Transaction.id, Transaction.actor)  # type: ignore[attr-defined]
        .outerjoin(Transaction, Transaction.id == DbNote.__history__.transaction_id)  # type: ignore[attr-defined]
        .where(DbNote.__history__.id == key)  # type: ignore[attr-defined]
        .order_by(DbNote.__history__.version)  # type: ignore[attr-defined]
    ).all()
    return [(version, tx is not None, actor) for version, tx, actor in found]


def test_a_textual_rollback_to_a_savepoint_takes_back_the_transaction_row(
    notes: Engine, clock: FrozenClock
) -> None:
    seed(notes, clock)
    with changes_by(actor="alice"), notes.connect() as connection:
        connection.exec_driver_sql("SAVEPOINT s1")
        connection.execute(text("INSERT INTO capture_db_note (id, title) VALUES (4, 'd')"))
        connection.exec_driver_sql("ROLLBACK TO SAVEPOINT s1")
        connection.execute(text("INSERT INTO capture_db_note (id, title) VALUES (5, 'e')"))
        connection.commit()
    with Session(notes) as session:
        assert transactions_of(session, 4) == []
        assert transactions_of(session, 5) == [(1, True, "alice")]


def test_a_failed_statement_takes_back_the_transaction_row_it_made(
    notes: Engine, clock: FrozenClock
) -> None:
    if notes.dialect.name == "postgresql":
        pytest.skip("PostgreSQL takes no statement after a failed one until the rollback")
    seed(notes, clock)
    with changes_by(actor="alice"), notes.connect() as connection:
        with pytest.raises(IntegrityError):
            connection.execute(
                text("INSERT INTO capture_db_note (id, title) VALUES (4, 'd'), (1, 'again')")
            )
        connection.execute(text("INSERT INTO capture_db_note (id, title) VALUES (5, 'e')"))
        connection.commit()
    with Session(notes) as session:
        assert transactions_of(session, 4) == []
        assert transactions_of(session, 5) == [(1, True, "alice")]
