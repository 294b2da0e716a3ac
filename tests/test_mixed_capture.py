"""Transactions that write classes of both capture modes, and transactions that take back all.

A transaction has one ``chronicle_transaction`` row whichever mode versions its rows: the ORM
writer's row when it wrote first, which the triggers are told of, or the triggers' row, which the
writer adopts. A transaction whose every change was taken back leaves no row, in either mode.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, text, update
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import ChangeLog, Transaction, changes_by, configure, history

from .models_capture import DbNote, OrmNote
from .support import FrozenClock
from .test_database_capture import TWINS, twins

__all__ = ["twins"]


def transactions_of(session: Session) -> dict[int, Any]:
    """Every transaction row, in id order, with the classes whose versions refer to it."""
    rows = {
        t.id: (t.timestamp, t.actor, set())
        for t in session.scalars(select(Transaction).order_by(Transaction.id))
    }
    for cls in TWINS:
        for version in session.scalars(select(cls.__history__)):  # type: ignore[attr-defined]
            rows[version.transaction_id][2].add(cls.__name__)
    return rows


def test_orm_first_then_triggers_share_one_row(twins: Engine, clock: FrozenClock) -> None:
    with Session(twins) as session, changes_by(actor="alice"):
        session.add(OrmNote(id=1, title="a"))
        session.flush()
        session.add(DbNote(id=1, title="a"))
        session.flush()
        session.execute(text("UPDATE capture_db_note SET count = 1 WHERE id = 1"))
        session.commit()
    with Session(twins) as session:
        assert list(transactions_of(session).values()) == [
            (clock.now, "alice", {"OrmNote", "DbNote"})
        ]


def test_triggers_first_then_orm_adopts_the_row(twins: Engine, clock: FrozenClock) -> None:
    with Session(twins) as session, changes_by(actor="bob"):
        session.execute(insert(DbNote), [{"id": 1, "title": "a"}])
        session.add(OrmNote(id=1, title="a"))
        session.flush()
        session.add(DbNote(id=2, title="b"))
        session.commit()
    with Session(twins) as session:
        assert list(transactions_of(session).values()) == [
            (clock.now, "bob", {"OrmNote", "DbNote"})
        ]


def test_one_flush_of_both_modes_has_one_row(twins: Engine, clock: FrozenClock) -> None:
    with Session(twins) as session:
        session.add_all([OrmNote(id=1, title="a"), DbNote(id=1, title="a")])
        session.commit()
        clock.advance(minutes=1)
        session.get(OrmNote, 1).title = "b"  # type: ignore[union-attr]
        session.get(DbNote, 1).title = "b"  # type: ignore[union-attr]
        session.commit()
    with Session(twins) as session:
        rows = transactions_of(session)
        assert [(tx[0], tx[2]) for tx in rows.values()] == [
            (clock.now.subtract(minutes=1), {"OrmNote", "DbNote"}),
            (clock.now, {"OrmNote", "DbNote"}),
        ]
        for cls in TWINS:
            assert [v.transaction_id for v in history(session, cls, 1)] == sorted(rows)


def test_the_database_clock_is_shared_too(twins: Engine) -> None:
    """With the default clock, the second mode takes the first one's time."""
    configure(clock=None)
    for first, second in (TWINS, TWINS[::-1]):
        with Session(twins) as session:
            session.add(first(id=1, title="a"))
            session.flush()
            session.add(second(id=1, title="a"))
            session.commit()
        with Session(twins) as session:
            (row,) = transactions_of(session).values()
            assert row[2] == {"OrmNote", "DbNote"}
            for cls in TWINS:
                assert history(session, cls, 1)[0].valid_from == row[0]
        for cls in TWINS:
            with twins.begin() as connection:
                connection.execute(cls.__table__.delete())  # type: ignore[attr-defined]
                connection.execute(cls.__history__.__table__.delete())  # type: ignore[attr-defined]
        with twins.begin() as connection:
            connection.execute(ChangeLog.__table__.delete())  # type: ignore[attr-defined]
            connection.execute(Transaction.__table__.delete())  # type: ignore[attr-defined]


def test_a_rolled_back_savepoint_leaves_one_row(twins: Engine, clock: FrozenClock) -> None:
    """The row a rolled-back savepoint took away is replaced by one row for both modes."""
    for first, second in (TWINS, TWINS[::-1]):
        with Session(twins) as session:
            savepoint = session.begin_nested()
            session.add(first(id=1, title="gone"))
            session.flush()
            session.add(second(id=1, title="gone"))
            session.flush()
            savepoint.rollback()
            session.add(second(id=2, title="kept"))
            session.flush()
            session.add(first(id=2, title="kept"))
            session.commit()
        with Session(twins) as session:
            (row,) = transactions_of(session).values()
            assert row[2] == {"OrmNote", "DbNote"}
            for cls in TWINS:
                cls_rows = session.scalars(select(func.count()).select_from(cls)).one()
                assert cls_rows == 1
        clock.advance(minutes=1)
        with twins.begin() as connection:
            for cls in TWINS:
                connection.execute(cls.__table__.delete())  # type: ignore[attr-defined]
            for cls in TWINS:
                connection.execute(cls.__history__.__table__.delete())  # type: ignore[attr-defined]
            connection.execute(ChangeLog.__table__.delete())  # type: ignore[attr-defined]
            connection.execute(Transaction.__table__.delete())  # type: ignore[attr-defined]


def test_attribution_changed_after_adoption(twins: Engine, clock: FrozenClock) -> None:
    with Session(twins) as session:
        with changes_by(actor="alice"):
            session.execute(update(DbNote).values(count=1))
            session.add(DbNote(id=1, title="a"))
            session.flush()
        with changes_by(actor="bob"):
            session.add(OrmNote(id=1, title="a"))
            session.commit()
    with Session(twins) as session:
        assert [(tx[1], tx[2]) for tx in transactions_of(session).values()] == [
            ("bob", {"OrmNote", "DbNote"})
        ]


def count_transactions(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalars(select(func.count()).select_from(Transaction)).one()


def test_a_session_that_takes_back_every_change_leaves_no_row(
    twins: Engine, clock: FrozenClock
) -> None:
    with Session(twins) as session:
        session.add_all([cls(id=1, title="a") for cls in TWINS])
        session.commit()
    assert count_transactions(twins) == 1
    for cls in (*TWINS, None):
        for classes in ([cls] if cls is not None else list(TWINS),):
            with Session(twins) as session:
                for each in classes:
                    session.add(each(id=2, title="new"))
                    session.get(each, 1).title = "b"  # type: ignore[union-attr]
                session.flush()
                savepoint = session.begin_nested()
                for each in classes:
                    session.delete(session.get(each, 2))
                session.flush()
                savepoint.commit()
                for each in classes:
                    session.get(each, 1).title = "a"  # type: ignore[union-attr]
                session.commit()
            assert count_transactions(twins) == 1, classes


def test_a_connection_that_takes_back_every_change_leaves_no_row(
    twins: Engine, clock: FrozenClock
) -> None:
    with twins.begin() as connection:
        connection.execute(insert(DbNote), [{"id": 1, "title": "a"}])
        connection.execute(text("DELETE FROM capture_db_note WHERE id = 1"))
    assert count_transactions(twins) == 0


@pytest.mark.parametrize("send", ["text", "exec_driver_sql"])
def test_textual_sql_that_may_write_unnamed_tables_keeps_the_row(
    twins: Engine, clock: FrozenClock, send: str
) -> None:
    """A writable CTE, a function or a ``CALL`` may write versions of tables it does not name."""
    statement = "WITH x AS (SELECT 1 AS one) SELECT one FROM x"
    with twins.begin() as connection:
        connection.execute(insert(DbNote), [{"id": 1, "title": "a"}])
        connection.execute(text("DELETE FROM capture_db_note WHERE id = 1"))
        if send == "text":
            connection.execute(text(statement))
        else:
            connection.exec_driver_sql(statement)
    assert count_transactions(twins) == 1


def test_a_row_kept_by_one_mode_stays(twins: Engine, clock: FrozenClock) -> None:
    for kept, taken_back in (TWINS, TWINS[::-1]):
        with Session(twins) as session:
            session.add(taken_back(id=1, title="a"))
            session.add(kept(id=1, title="a"))
            session.flush()
            session.delete(session.get(taken_back, 1))
            session.commit()
        with Session(twins) as session:
            assert [tx[2] for tx in transactions_of(session).values()] == [{kept.__name__}]
        with twins.begin() as connection:
            connection.execute(kept.__table__.delete())  # type: ignore[attr-defined]
            for cls in TWINS:
                connection.execute(cls.__history__.__table__.delete())  # type: ignore[attr-defined]
            connection.execute(ChangeLog.__table__.delete())  # type: ignore[attr-defined]
            connection.execute(Transaction.__table__.delete())  # type: ignore[attr-defined]
