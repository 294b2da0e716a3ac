"""Every version holds the row as the database stored it, not the flushed object.

The session's objects can disagree with the stored row: a value the database normalised, a column
left unset that the database stores as SQL NULL, a Python ``onupdate`` computed once per row of an
executemany, a column a concurrent transaction changed. History follows the database.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import JSON, Engine, Integer, Numeric, String, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sqlalchemy_chronicle import ChangeLog, Versioned, history, query_as_of

from .support import FrozenClock

_ticks = itertools.count(1)


def _next_tick() -> int:
    """A new value at every call, as a Python-side ``onupdate`` clock gives."""
    return next(_ticks)


class Other(DeclarativeBase):
    pass


class Ledger(Versioned, Other):
    __tablename__ = "ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    doc: Mapped[Any] = mapped_column(JSON, nullable=True)


class Stamped(Versioned, Other):
    __tablename__ = "stamped"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(20))
    touched: Mapped[int | None] = mapped_column(onupdate=_next_tick)


LedgerHistory = Ledger.__history__
TABLES = [cls.__table__ for cls in (Ledger, LedgerHistory, Stamped, Stamped.__history__)]


@pytest.fixture
def ledger(db: Engine) -> Iterator[Engine]:
    Other.metadata.create_all(db, tables=TABLES)
    yield db
    Other.metadata.drop_all(db, tables=TABLES)


def newest(session: Session, id: int) -> Any:
    return session.scalars(
        select(LedgerHistory).filter_by(id=id).order_by(LedgerHistory.version.desc()).limit(1)
    ).one()


def test_an_unset_json_column_is_sql_null_in_history_too(ledger: Engine) -> None:
    with Session(ledger) as session:
        session.add(Ledger(id=1, name="a"))
        session.commit()
        row = session.get(Ledger, 1)
        assert row is not None
        row.name = "b"  # twice in one transaction: the full path on every database
        session.flush()
        row.name = "c"
        session.commit()
        past = query_as_of(Ledger, dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc))
        assert [v.id for v in session.scalars(past.where(Ledger.doc.is_(None)))] == [1]
        assert session.scalar(select(LedgerHistory.id).where(LedgerHistory.doc.is_(None))) == 1
        assert session.scalar(select(Ledger.id).where(Ledger.doc.is_(None))) == 1


def test_a_value_the_database_normalises_makes_no_version(
    ledger: Engine, clock: FrozenClock
) -> None:
    with Session(ledger) as session:
        session.add(Ledger(id=1, name="a", amount=Decimal("1.00")))
        session.commit()
        clock.advance(seconds=1)
        row = session.get(Ledger, 1)
        assert row is not None
        row.amount = Decimal("1.001")
        session.commit()
        stored = session.scalar(select(Ledger.amount))
        versions = history(session, Ledger, 1)
        if session.get_bind().dialect.name == "sqlite":
            # SQLite keeps the value as sent (a REAL): the stored row did change.
            assert [v.operation for v in versions] == ["insert", "update"]
        else:
            assert stored == Decimal("1.00")
            assert [v.operation for v in versions] == ["insert"]
            entries = session.scalars(select(ChangeLog).filter_by(table_name="ledger")).all()
            assert [e.event_type for e in entries] == ["INSERT"]


def test_a_python_onupdate_of_an_executemany_is_recorded_per_row(
    ledger: Engine, clock: FrozenClock
) -> None:
    stamped = Stamped.__history__
    with Session(ledger) as session:
        session.add_all(Stamped(id=n, name="a") for n in range(1, 6))
        session.commit()
        clock.advance(seconds=1)
        for row in session.scalars(select(Stamped)):
            row.name = "b"
        session.commit()
        live = {id: touched for id, touched in session.execute(select(Stamped.id, Stamped.touched))}
        assert len(set(live.values())) == 5
        recorded = session.execute(
            select(stamped.id, stamped.touched).where(stamped.valid_to.is_(None))
        )
        assert {id: touched for id, touched in recorded} == live


def test_a_column_changed_by_a_concurrent_transaction_is_recorded(
    ledger: Engine, clock: FrozenClock
) -> None:
    """The concurrent change commits before this transaction writes the row."""
    if ledger.dialect.name == "sqlite":
        pytest.skip("SQLite lets one writer at a time: the interleaving cannot happen there")
    with Session(ledger) as session:
        session.add_all([Ledger(id=1, name="a", amount=Decimal(0)), Ledger(id=2, name="x")])
        session.commit()
    clock.advance(seconds=1)
    with Session(ledger) as second, Session(ledger) as first:
        row = second.get(Ledger, 1)
        assert row is not None
        other = second.get(Ledger, 2)
        assert other is not None
        other.name = "y"
        second.flush()  # the second session's transaction has begun and written
        clock.advance(seconds=1)
        first.execute(update(Ledger).where(Ledger.id == 1).values(amount=Decimal(1)))
        first.commit()
        clock.advance(seconds=1)
        row.name = "b"
        second.commit()
        stored = second.execute(select(Ledger.name, Ledger.amount).filter_by(id=1)).one()
        assert tuple(stored) == ("b", Decimal(1))
        version = newest(second, 1)
        assert (version.name, version.amount) == ("b", Decimal(1))
        as_of = second.scalars(
            query_as_of(Ledger, dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)).filter_by(id=1)
        ).one()
        assert (as_of.name, as_of.amount) == ("b", Decimal(1))


def test_a_row_inserted_after_the_snapshot_can_be_updated(
    ledger: Engine, clock: FrozenClock
) -> None:
    """MariaDB's REPEATABLE READ snapshot does not see the versions committed after it."""
    if ledger.dialect.name == "sqlite":
        pytest.skip("SQLite lets one writer at a time: the interleaving cannot happen there")
    with Session(ledger) as session:
        session.add(Ledger(id=9, name="seed"))
        session.commit()
    with Session(ledger) as late, Session(ledger) as early:
        early.scalar(select(Ledger.id).filter_by(id=9))  # takes the snapshot
        clock.advance(seconds=1)
        late.add(Ledger(id=1, name="a"))
        late.commit()
        clock.advance(seconds=1)
        early.execute(update(Ledger).where(Ledger.id == 1).values(name="b"))
        early.commit()
        assert [(v.version, v.operation, v.name) for v in history(early, Ledger, 1)] == [
            (1, "insert", "a"),
            (2, "update", "b"),
        ]


def test_a_value_set_by_a_sql_expression_is_versioned(ledger: Engine, clock: FrozenClock) -> None:
    """The ORM expires an attribute set to a SQL expression: its value is the database's."""
    with Session(ledger) as session:
        session.add(Ledger(id=1, name="a", amount=Decimal("1.00")))
        session.commit()
        clock.advance(seconds=1)
        row = session.get(Ledger, 1)
        assert row is not None
        row.amount = Ledger.amount + 2
        session.commit()
        assert [(v.version, v.amount) for v in history(session, Ledger, 1)] == [
            (1, Decimal("1.00")),
            (2, Decimal("3.00")),
        ]


def test_objects_and_statements_agree_on_a_numeric_beyond_its_scale(
    ledger: Engine, clock: FrozenClock
) -> None:
    """Objects and statements by key agree: a version when the stored row changed, else none."""
    with Session(ledger) as session:
        session.add_all([Ledger(id=1, name="a", amount=Decimal("1.001")), Ledger(id=2, name="a")])
        session.commit()
        clock.advance(seconds=1)
        session.execute(update(Ledger), [{"id": 1, "amount": Decimal("1.004")}])
        session.commit()
        clock.advance(seconds=1)
        row = session.get(Ledger, 2)
        assert row is not None
        row.amount = Decimal("1.001")
        session.flush()
        row.amount = Decimal("1.004")  # twice in one transaction: the full path
        session.commit()
        operations = {id: [v.operation for v in history(session, Ledger, id)] for id in (1, 2)}
        if session.get_bind().dialect.name == "sqlite":
            # SQLite keeps the value as sent (a REAL): the stored rows did change.
            assert operations == {1: ["insert", "update"], 2: ["insert", "update"]}
        else:
            assert operations == {1: ["insert"], 2: ["insert", "update"]}


@pytest.mark.parametrize("rewritten", [False, True], ids=["later", "same-transaction"])
def test_json_null_and_sql_null_are_different_values(
    ledger: Engine, clock: FrozenClock, rewritten: bool
) -> None:
    with Session(ledger) as session:
        session.add(Ledger(id=1, name="a"))  # doc left unset: SQL NULL
        if not rewritten:
            session.commit()
            clock.advance(seconds=1)
        else:
            session.flush()
        session.execute(update(Ledger), [{"id": 1, "doc": None}])  # JSON null
        session.commit()
        live_null = session.scalars(select(Ledger.id).where(Ledger.doc.is_(None))).all()
        assert live_null == []
        past = query_as_of(Ledger, dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc))
        assert session.scalars(past.where(Ledger.doc.is_(None))).all() == []
        expected = ["insert"] if rewritten else ["insert", "update"]
        assert [v.operation for v in history(session, Ledger, 1)] == expected
