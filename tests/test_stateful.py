"""A model-based test of the time rules: random sessions against a model of every row's history.

Hypothesis drives inserts, updates (including updates to the same value, before and after the
object was expired), deletes, flushes, commits, rollbacks and savepoints over a few rows, under a
frozen clock that moves between transactions. The model states what the history must be from the
rules alone; after every step that reaches the database, the history table must equal it.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from .models import Article
from .support import FrozenClock, assert_well_formed

ROW_IDS = (1, 2, 3, 4)
TITLES = st.sampled_from(["a", "b", "c"])
History = Article.__history__


@dataclass
class Expected:
    version: int
    operation: str
    title: str
    valid_from: dt.datetime
    valid_to: dt.datetime | None


@dataclass
class TransactionModel:
    """What the open transaction did, as far as it has been flushed."""

    flushed: dict[int, str | None]
    changed: set[int] = field(default_factory=set)
    deleted_value: dict[int, str] = field(default_factory=dict)


class HistoryMachine(RuleBasedStateMachine):
    engine: Engine
    clock: FrozenClock

    def __init__(self) -> None:
        super().__init__()
        with self.engine.begin() as connection:
            for table in (History.__table__, Article.__table__):  # type: ignore[attr-defined]
                connection.execute(table.delete())
        self.session = Session(self.engine, autoflush=False)
        self.committed: dict[int, list[Expected]] = {}
        self.pending: dict[int, str | None] = {}
        self.txn = TransactionModel(flushed={})
        self.savepoints: list[tuple[Any, TransactionModel, dict[int, str | None]]] = []

    def teardown(self) -> None:
        self.session.close()

    # -- the model -------------------------------------------------------------------------

    def committed_value(self, id: int) -> str | None:
        versions = self.committed.get(id)
        if not versions or versions[-1].valid_to is not None:
            return None
        return versions[-1].title

    def current(self, id: int) -> str | None:
        if id in self.pending:
            return self.pending[id]
        if id in self.txn.flushed:
            return self.txn.flushed[id]
        return self.committed_value(id)

    def model_flush(self) -> None:
        for id, value in self.pending.items():
            before = self.txn.flushed.get(id, self.committed_value(id))
            if value != before:
                self.txn.changed.add(id)
                if value is None and before is not None:
                    self.txn.deleted_value[id] = before
                self.txn.flushed[id] = value
        self.pending = {}

    def history_after(self, txn: TransactionModel) -> dict[int, list[Expected]]:
        at = self.clock.now
        result = copy.deepcopy(self.committed)
        for id in txn.changed:
            before = self.committed_value(id)
            after = txn.flushed.get(id, before)
            versions = result.setdefault(id, [])
            number = len(versions) + 1
            if before == after:
                continue  # nothing, or a change undone within the transaction
            if before is not None:
                versions[-1].valid_to = at
            if after is None:
                versions.append(Expected(number, "delete", txn.deleted_value[id], at, at))
            else:
                operation = "insert" if before is None else "update"
                versions.append(Expected(number, operation, after, at, None))
        return {id: versions for id, versions in result.items() if versions}

    # -- the session -----------------------------------------------------------------------

    def article(self, id: int) -> Article:
        for obj in self.session.new:
            if isinstance(obj, Article) and obj.id == id:
                return obj
        article = self.session.get(Article, id)
        assert article is not None
        return article

    def present(self) -> list[int]:
        return [id for id in ROW_IDS if self.current(id) is not None]

    def absent(self) -> list[int]:
        return [id for id in ROW_IDS if self.current(id) is None]

    @precondition(lambda self: self.absent())
    @rule(data=st.data(), title=TITLES)
    def insert(self, data: st.DataObject, title: str) -> None:
        id = data.draw(st.sampled_from(self.absent()), label="id")
        self.session.add(Article(id=id, title=title))
        self.pending[id] = title

    @precondition(lambda self: self.present())
    @rule(data=st.data(), title=TITLES)
    def update(self, data: st.DataObject, title: str) -> None:
        id = data.draw(st.sampled_from(self.present()), label="id")
        self.article(id).title = title
        self.pending[id] = title

    @precondition(lambda self: self.present())
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        id = data.draw(st.sampled_from(self.present()), label="id")
        article = self.article(id)
        if article in self.session.new:
            self.session.expunge(article)
        else:
            self.session.delete(article)
        self.pending[id] = None

    @precondition(lambda self: not self.pending)
    @rule()
    def expire(self) -> None:
        self.session.expire_all()

    @rule()
    def flush(self) -> None:
        self.session.flush()
        self.model_flush()
        self.check()

    @rule(seconds=st.sampled_from([0, 1, 2]), microseconds=st.sampled_from([1, 500]))
    def commit(self, seconds: int, microseconds: int) -> None:
        self.session.flush()
        self.model_flush()
        self.session.commit()
        self.committed = self.history_after(self.txn)
        self.txn = TransactionModel(flushed={})
        self.savepoints.clear()
        self.clock.advance(seconds=seconds, microseconds=microseconds)
        self.check()

    @rule()
    def rollback(self) -> None:
        self.session.rollback()
        self.pending = {}
        self.txn = TransactionModel(flushed={})
        self.savepoints.clear()
        self.clock.advance(microseconds=1)
        self.check()

    @precondition(lambda self: len(self.savepoints) < 2)
    @rule()
    def begin_savepoint(self) -> None:
        savepoint = self.session.begin_nested()
        self.model_flush()
        self.savepoints.append((savepoint, copy.deepcopy(self.txn), dict(self.pending)))

    @precondition(lambda self: self.savepoints)
    @rule()
    def rollback_savepoint(self) -> None:
        savepoint, txn, pending = self.savepoints.pop()
        savepoint.rollback()
        self.txn, self.pending = txn, pending
        self.check()

    @precondition(lambda self: self.savepoints)
    @rule()
    def release_savepoint(self) -> None:
        savepoint, _, _ = self.savepoints.pop()
        self.session.flush()
        self.model_flush()
        savepoint.commit()
        self.check()

    # -- the checks ------------------------------------------------------------------------

    def check(self) -> None:
        rows = self.session.execute(
            select(
                History.id,
                History.version,
                History.operation,
                History.title,
                History.valid_from,
                History.valid_to,
            ).order_by(History.id, History.version)
        ).all()
        assert_well_formed([(r.id, r.version, r.operation, r.valid_from, r.valid_to) for r in rows])
        actual: dict[int, list[Expected]] = {}
        for r in rows:
            actual.setdefault(r.id, []).append(
                Expected(r.version, r.operation, r.title, r.valid_from, r.valid_to)
            )
        assert actual == self.history_after(self.txn)

    @invariant()
    def live_rows_match_the_model(self) -> None:
        if self.pending:
            return
        with self.session.no_autoflush:
            live = dict(self.session.execute(select(Article.id, Article.title)).all())
        expected = {id: self.txn.flushed.get(id, self.committed_value(id)) for id in ROW_IDS}
        assert live == {id: t for id, t in expected.items() if t is not None}


def test_history_follows_the_model(db: Engine, clock: FrozenClock) -> None:
    HistoryMachine.engine = db
    HistoryMachine.clock = clock
    from hypothesis import settings

    HistoryMachine.TestCase.settings = settings(settings(), stateful_step_count=40)
    HistoryMachine.TestCase().runTest()
