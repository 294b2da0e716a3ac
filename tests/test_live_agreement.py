"""A differential test: after any workload, the present read through history is the live table.

Hypothesis mixes the ways a row is written (objects, ``INSERT`` and ``UPDATE`` statements by key,
``UPDATE`` and ``DELETE`` statements with a ``WHERE``), with flushes, commits, rollbacks and
savepoints, over :class:`Holding`, whose ``Numeric(10, 2)`` rounds what it is sent and whose JSON
column may be SQL NULL or JSON ``null``. After every commit, ``query_as_of(now)`` and the
time-travel session must answer exactly as a plain read of the live table, including which rows
hold SQL NULL; the history must stay well formed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule
from sqlalchemy import JSON, Engine, delete, insert, null, select, update
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import as_of, query_as_of

from .models_columns import Holding
from .support import FrozenClock, assert_well_formed

ROW_IDS = (1, 2, 3, 4)
History = Holding.__history__
NAMES = st.sampled_from(["x", "y"])
AMOUNTS = st.sampled_from([None, Decimal("1.00"), Decimal("1.004"), Decimal("1.006"), Decimal("2")])
DOCUMENTS = st.sampled_from([None, "sql-null", {"k": 1}, {"k": 2}, [1, "two"], "text"])


def document(value: Any) -> Any:
    """A JSON value to send: ``"sql-null"`` stands for SQL NULL, ``None`` for JSON ``null``."""
    return null() if value == "sql-null" else value


class LiveAgreementMachine(RuleBasedStateMachine):
    engine: Engine
    clock: FrozenClock

    def __init__(self) -> None:
        super().__init__()
        with self.engine.begin() as connection:
            for table in (History.__table__, Holding.__table__):  # type: ignore[attr-defined]
                connection.execute(table.delete())
        self.session = Session(self.engine, autoflush=False)
        self.savepoints: list[Any] = []

    def teardown(self) -> None:
        self.session.close()

    def ids(self) -> set[int]:
        with self.session.no_autoflush:
            return set(self.session.scalars(select(Holding.id)))

    @rule(id=st.sampled_from(ROW_IDS), name=NAMES, amount=AMOUNTS, doc=DOCUMENTS)
    def add_object(self, id: int, name: str, amount: Decimal | None, doc: Any) -> None:
        if id in self.ids() or any(getattr(o, "id", None) == id for o in self.session.new):
            return
        row = Holding(id=id, name=name, amount=amount)
        if doc != "sql-null":
            row.doc = doc
        self.session.add(row)

    @rule(id=st.sampled_from(ROW_IDS), amount=AMOUNTS, doc=DOCUMENTS, name=NAMES)
    def change_object(self, id: int, amount: Decimal | None, doc: Any, name: str) -> None:
        row = self.session.get(Holding, id)
        if row is None:
            return
        row.amount = amount
        row.doc = document(doc)
        row.name = name

    @rule(id=st.sampled_from(ROW_IDS))
    def delete_object(self, id: int) -> None:
        row = self.session.get(Holding, id)
        if row is not None and row not in self.session.new:
            self.session.delete(row)

    @rule(ids=st.sets(st.sampled_from(ROW_IDS), min_size=1), name=NAMES, amount=AMOUNTS)
    def insert_statement(self, ids: set[int], name: str, amount: Decimal | None) -> None:
        self.session.flush()
        fresh = sorted(ids - self.ids())
        if fresh:
            self.session.execute(
                insert(Holding), [{"id": id, "name": name, "amount": amount} for id in fresh]
            )

    @rule(ids=st.sets(st.sampled_from(ROW_IDS), min_size=1), amount=AMOUNTS, doc=DOCUMENTS)
    def update_by_key(self, ids: set[int], amount: Decimal | None, doc: Any) -> None:
        self.session.flush()
        present = sorted(ids & self.ids())
        if present:
            self.session.execute(
                update(Holding),
                [{"id": id, "amount": amount, "doc": document(doc)} for id in present],
            )

    @rule(ids=st.sets(st.sampled_from(ROW_IDS), min_size=1), name=NAMES, doc=DOCUMENTS)
    def update_where(self, ids: set[int], name: str, doc: Any) -> None:
        self.session.execute(
            update(Holding).where(Holding.id.in_(ids)).values(name=name, doc=document(doc))
        )

    @rule(ids=st.sets(st.sampled_from(ROW_IDS), min_size=1))
    def delete_where(self, ids: set[int]) -> None:
        self.session.execute(delete(Holding).where(Holding.id.in_(ids)))

    @rule()
    def flush(self) -> None:
        self.session.flush()

    @precondition(lambda self: len(self.savepoints) < 2)
    @rule()
    def begin_savepoint(self) -> None:
        self.savepoints.append(self.session.begin_nested())

    @precondition(lambda self: self.savepoints)
    @rule(keep=st.booleans())
    def end_savepoint(self, keep: bool) -> None:
        savepoint = self.savepoints.pop()
        if keep:
            savepoint.commit()
        else:
            savepoint.rollback()

    @rule()
    def rollback(self) -> None:
        self.session.rollback()
        self.savepoints.clear()
        self.clock.advance(microseconds=1)

    @rule(seconds=st.sampled_from([0, 1]))
    def commit(self, seconds: int) -> None:
        self.session.commit()
        self.savepoints.clear()
        self.clock.advance(seconds=seconds, microseconds=1)
        self.check()

    def check(self) -> None:
        now = self.clock.now
        with Session(self.engine) as reader:
            live = self.rows(reader, select(Holding))
            assert self.rows(reader, query_as_of(Holding, now)) == live
            null_live = set(reader.scalars(select(Holding.id).where(Holding.doc.is_(None))))
            null_asof = {
                row.id
                for row in reader.scalars(query_as_of(Holding, now).where(Holding.doc.is_(None)))
            }
            assert null_asof == null_live
            history = reader.execute(
                select(
                    History.id,
                    History.version,
                    History.operation,
                    History.valid_from,
                    History.valid_to,
                )
            ).all()
        assert_well_formed([tuple(r) for r in history])
        with as_of(self.engine, now) as past:
            assert {r.id: self.values(r) for r in past.scalars(select(Holding))} == live

    @staticmethod
    def values(row: Holding) -> tuple[Any, ...]:
        return (row.name, row.amount, row.doc)

    def rows(self, reader: Session, statement: Any) -> dict[int, tuple[Any, ...]]:
        return {row.id: self.values(row) for row in reader.scalars(statement)}


assert isinstance(Holding.__table__.c.doc.type, JSON)  # type: ignore[attr-defined]


def test_the_present_read_through_history_is_the_live_table(db: Engine, clock: FrozenClock) -> None:
    LiveAgreementMachine.engine = db
    LiveAgreementMachine.clock = clock
    LiveAgreementMachine.TestCase.settings = settings(
        settings(), max_examples=min(settings().max_examples, 60), stateful_step_count=30
    )
    LiveAgreementMachine.TestCase().runTest()
