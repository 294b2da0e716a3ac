"""A model-based test of history under a second writer: versions hold the rows as stored.

One session loads rows, changes them, flushes, commits and rolls back, while a second session
commits its own changes to rows the first one has loaded but not yet written. The first session's
``UPDATE`` sends only the columns it changed, so the database merges both writers' values; the
model keeps the rows as the database holds them and the values every version must have, and
after every commit the history must equal it: each version the row as stored at the end of the
transaction that wrote it, the newest one the live row.

It runs on PostgreSQL and MariaDB at their default isolation levels (on MariaDB, REPEATABLE
READ: the first session reads from its snapshot, and the model follows it). SQLite lets one writer
at a time, so the interleaving cannot happen there.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from .models_columns import Pair
from .support import FrozenClock, assert_well_formed

ROW_IDS = (1, 2, 3)
COLUMNS = ("a", "b")
VALUES = st.integers(0, 3)
History = Pair.__history__

Row = dict[str, int]
Version = tuple[str, int, int]


class TwoWritersMachine(RuleBasedStateMachine):
    engine: Engine
    clock: FrozenClock

    def __init__(self) -> None:
        super().__init__()
        with self.engine.begin() as connection:
            for table in (History.__table__, Pair.__table__):  # type: ignore[attr-defined]
                connection.execute(table.delete())
        self.snapshot_reads = self.engine.dialect.name == "mysql"
        self.session = Session(self.engine, autoflush=False)
        self.stored: dict[int, Row] = {}
        """The rows as the database holds them, the session's flushed changes included."""
        self.versions: dict[int, list[Version]] = {}
        self.start_transaction()

    def start_transaction(self) -> None:
        self.session.expunge_all()
        self.objects: dict[int, Pair] = {}
        self.loaded: dict[int, Row] = {}
        """Per object, the values the session compares its attributes with."""
        self.inserted: set[int] = set()
        self.deleted: set[int] = set()
        self.before: dict[int, Row | None] = {}
        """The stored row before the session's first flush of it in this transaction."""
        self.snapshot: dict[int, Row] | None = None

    def teardown(self) -> None:
        self.session.close()

    # -- the model -------------------------------------------------------------------------

    def visible(self, id: int) -> Row | None:
        """The row as the session's next read of it sees it."""
        if self.snapshot_reads and id not in self.before:
            if self.snapshot is None:
                self.snapshot = copy.deepcopy(self.stored)
            return self.snapshot.get(id)
        return self.stored.get(id)

    def append_version(self, id: int, after: Row | None) -> None:
        versions = self.versions.setdefault(id, [])
        latest = versions[-1] if versions else None
        live = None if latest is None or latest[0] == "delete" else latest
        if after is None:
            if live is not None:
                versions.append(("delete", live[1], live[2]))
        elif live is None:
            versions.append(("insert", after["a"], after["b"]))
        elif (live[1], live[2]) != (after["a"], after["b"]):
            versions.append(("update", after["a"], after["b"]))

    # -- the first session -----------------------------------------------------------------

    def loadable(self) -> list[int]:
        return [
            id
            for id in ROW_IDS
            if id not in self.objects and id not in self.deleted and id in self.stored
        ]

    def held(self) -> list[int]:
        return [id for id in self.objects if id not in self.deleted]

    def insertable(self) -> list[int]:
        return [id for id in ROW_IDS if id not in self.stored and id not in self.objects]

    @precondition(lambda self: self.loadable())
    @rule(data=st.data())
    def load(self, data: st.DataObject) -> None:
        id = data.draw(st.sampled_from(self.loadable()), label="id")
        seen = self.visible(id)
        assert seen is not None
        obj = self.session.get(Pair, id)
        assert obj is not None
        assert {"a": obj.a, "b": obj.b} == seen
        self.objects[id] = obj
        self.loaded[id] = dict(seen)

    @precondition(lambda self: self.held())
    @rule(data=st.data(), column=st.sampled_from(COLUMNS), value=VALUES)
    def set_value(self, data: st.DataObject, column: str, value: int) -> None:
        id = data.draw(st.sampled_from(self.held()), label="id")
        setattr(self.objects[id], column, value)

    @precondition(lambda self: self.insertable())
    @rule(data=st.data(), a=VALUES, b=VALUES)
    def insert(self, data: st.DataObject, a: int, b: int) -> None:
        id = data.draw(st.sampled_from(self.insertable()), label="id")
        obj = Pair(id=id, a=a, b=b)
        self.session.add(obj)
        self.objects[id] = obj
        self.inserted.add(id)

    @precondition(lambda self: [id for id in self.held() if id not in self.inserted])
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        choices = [id for id in self.held() if id not in self.inserted]
        id = data.draw(st.sampled_from(choices), label="id")
        self.session.delete(self.objects[id])
        self.deleted.add(id)

    @rule()
    def flush(self) -> None:
        self.session.flush()
        for id, obj in list(self.objects.items()):
            if id in self.deleted:
                self.before.setdefault(id, self.stored.get(id))
                self.stored.pop(id, None)
                del self.objects[id]
            elif id in self.inserted:
                self.before.setdefault(id, None)
                self.stored[id] = {"a": obj.a, "b": obj.b}
                self.loaded[id] = {"a": obj.a, "b": obj.b}
            else:
                sent = {
                    c: getattr(obj, c) for c in COLUMNS if getattr(obj, c) != self.loaded[id][c]
                }
                if sent:
                    self.before.setdefault(id, dict(self.stored[id]))
                    self.stored[id].update(sent)
                    self.loaded[id].update(sent)
        self.inserted.clear()
        self.deleted.clear()

    @rule(seconds=st.sampled_from([0, 1]))
    def commit(self, seconds: int) -> None:
        self.flush()
        self.session.commit()
        for id in self.before:
            self.append_version(id, self.stored.get(id))
        self.start_transaction()
        self.clock.advance(seconds=seconds, microseconds=1)
        self.check()

    @rule()
    def rollback(self) -> None:
        self.session.rollback()
        for id, row in self.before.items():
            if row is None:
                self.stored.pop(id, None)
            else:
                self.stored[id] = row
        self.start_transaction()
        self.clock.advance(microseconds=1)
        self.check()

    # -- the second session ----------------------------------------------------------------

    def others(self) -> list[int]:
        """Rows the second session may change: stored, and not written by the first yet."""
        return [id for id in self.stored if id not in self.before]

    @precondition(lambda self: self.others())
    @rule(data=st.data(), column=st.sampled_from(COLUMNS), value=VALUES)
    def other_commits(self, data: st.DataObject, column: str, value: int) -> None:
        id = data.draw(st.sampled_from(self.others()), label="id")
        self.clock.advance(seconds=1)
        with Session(self.engine) as other:
            row = other.get(Pair, id)
            assert row is not None
            setattr(row, column, value)
            other.commit()
        self.stored[id][column] = value
        self.append_version(id, self.stored[id])
        self.clock.advance(seconds=1)

    # -- the checks ------------------------------------------------------------------------

    def check(self) -> None:
        with Session(self.engine) as reader:
            rows = reader.execute(
                select(
                    History.id,
                    History.version,
                    History.operation,
                    History.a,
                    History.b,
                    History.valid_from,
                    History.valid_to,
                ).order_by(History.id, History.version)
            ).all()
            live = {r.id: {"a": r.a, "b": r.b} for r in reader.scalars(select(Pair))}
        assert_well_formed([(r.id, r.version, r.operation, r.valid_from, r.valid_to) for r in rows])
        actual: dict[int, list[Any]] = {}
        for r in rows:
            actual.setdefault(r.id, []).append((r.operation, r.a, r.b))
        assert actual == {id: v for id, v in self.versions.items() if v}
        assert live == self.stored
        for id, versions in actual.items():
            newest = versions[-1]
            if newest[0] == "delete":
                assert id not in live
            else:
                assert live[id] == {"a": newest[1], "b": newest[2]}


def test_history_holds_rows_as_stored_under_a_second_writer(db: Engine, clock: FrozenClock) -> None:
    if db.dialect.name == "sqlite":
        pytest.skip("SQLite lets one writer at a time: the interleaving cannot happen there")
    TwoWritersMachine.engine = db
    TwoWritersMachine.clock = clock
    TwoWritersMachine.TestCase.settings = settings(
        settings(), max_examples=min(settings().max_examples, 100), stateful_step_count=30
    )
    TwoWritersMachine.TestCase().runTest()
