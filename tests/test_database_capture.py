"""Database capture mode: the triggers write the history ORM mode writes, and more.

The differential test runs one random sequence of writes (objects, ORM bulk statements),
flushes, commits, rollbacks and savepoints on two twin classes in one session: ``OrmNote``
versioned by ORM mode and ``DbNote`` by the database's triggers. Their histories (values,
operations, version numbers, intervals, which versions share a transaction) and change logs must
be the same. The other tests write what only the triggers see: Core and ``text()`` statements,
and other clients (``psql``, ``mariadb``, a raw ``sqlite3`` connection).
"""

from __future__ import annotations

import datetime as dt
import decimal
import random
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pendulum
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, Integer, MetaData, String, delete, insert, select, text, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sqlalchemy_chronicle import (
    ChangeLog,
    ConcurrentVersionError,
    ConfigurationError,
    Transaction,
    Versioned,
    changes_by,
    configure,
    history,
    query_as_of,
    restore,
    restore_all,
)

from .models_capture import DbNote, OrmNote
from .models_shapes import SCHEMA
from .support import FrozenClock, assert_well_formed, blocked_writer
from .test_concurrency import retryable

TWINS = (OrmNote, DbNote)
COLUMNS = ("title", "count", "price", "flag")
KEYS = st.integers(1, 4)
VALUE = {
    "title": st.sampled_from(["a", "b", "c"]),
    "count": st.none() | st.integers(0, 2),
    "price": st.none() | st.sampled_from([decimal.Decimal("1.50"), decimal.Decimal("0.10")]),
    "flag": st.none() | st.booleans(),
}
FULL = st.fixed_dictionaries(VALUE)
PARTIAL = st.fixed_dictionaries({}, optional=VALUE).filter(bool)
CLOCK_MOVES = st.sampled_from(
    [
        dt.timedelta(0),
        -dt.timedelta(minutes=1),
        dt.timedelta(microseconds=1),
        dt.timedelta(seconds=1),
    ]
)
"""Moves of the clock at the end of a transaction: standing still and going back make the next
transaction find versions at or after its time (the concurrency policy)."""
OPERATIONS = st.one_of(
    st.tuples(st.just("save"), KEYS, PARTIAL, FULL),
    st.tuples(st.just("delete"), KEYS),
    st.tuples(st.just("bulk_update"), st.lists(KEYS, min_size=1, max_size=3), PARTIAL),
    st.tuples(st.just("bulk_delete"), st.lists(KEYS, min_size=1, max_size=3)),
    st.tuples(st.just("bulk_insert"), KEYS, FULL),
    st.tuples(st.just("flush")),
    st.tuples(st.just("commit"), CLOCK_MOVES),
    st.tuples(st.just("rollback"), CLOCK_MOVES),
    st.tuples(st.just("savepoint")),
    st.tuples(st.just("end_savepoint"), st.booleans()),
)


def reset(engine: Engine) -> None:
    """Empty the twins' tables and the library's (the live tables first: their triggers write)."""
    configure(strict=False)
    with engine.begin() as connection:
        for cls in TWINS:
            connection.execute(delete(cls.__table__))  # type: ignore[arg-type]
        for cls in TWINS:
            connection.execute(delete(cls.__history__.__table__))  # type: ignore[attr-defined]
        connection.execute(delete(ChangeLog))
        connection.execute(delete(Transaction))


@pytest.fixture
def twins(db: Engine) -> Iterator[Engine]:
    reset(db)
    yield db
    reset(db)


def exists(session: Session, cls: type[Any], key: int) -> bool:
    return session.scalar(select(cls.id).where(cls.id == key)) is not None


def apply(session: Session, cls: type[Any], operation: tuple[Any, ...]) -> None:
    """Do ``operation`` to ``cls``'s rows; the flow operations are done by :func:`run`."""
    name = operation[0]
    if name == "save":
        _, key, changes, full = operation
        if exists(session, cls, key):
            row = session.get(cls, key)
            for column, value in changes.items():
                setattr(row, column, value)
        else:
            session.add(cls(id=key, **full))
    elif name == "delete":
        if exists(session, cls, operation[1]):
            session.delete(session.get(cls, operation[1]))
    elif name == "bulk_update":
        _, keys, changes = operation
        session.execute(update(cls).where(cls.id.in_(keys)).values(**changes))
    elif name == "bulk_delete":
        session.execute(delete(cls).where(cls.id.in_(operation[1])))
    elif name == "bulk_insert":
        _, key, full = operation
        if not exists(session, cls, key):
            session.execute(insert(cls), [{"id": key, **full}])


def run(session: Session, clock: FrozenClock, operations: list[tuple[Any, ...]]) -> None:
    savepoints: list[Any] = []
    for operation in operations:
        name = operation[0]
        if name == "flush":
            session.flush()
        elif name in ("commit", "rollback"):
            session.commit() if name == "commit" else session.rollback()
            savepoints.clear()
            clock.now = clock.now + operation[1]
        elif name == "savepoint":
            savepoints.append(session.begin_nested())
        elif name == "end_savepoint":
            if savepoints:
                savepoint = savepoints.pop()
                savepoint.commit() if operation[1] else savepoint.rollback()
        else:
            for cls in TWINS:
                apply(session, cls, operation)
    session.commit()


def recorded(session: Session, cls: type[Any]) -> dict[str, Any]:
    """What the library recorded of ``cls``, transactions numbered in order of their ids."""
    version = cls.__history__
    rows = session.execute(
        select(
            version.id,
            version.version,
            version.operation,
            *(getattr(version, column) for column in COLUMNS),
            version.valid_from,
            version.valid_to,
            version.restored_from,
            version.transaction_id,
        ).order_by(version.id, version.version)
    ).all()
    numbers = {tx: n for n, tx in enumerate(sorted({row.transaction_id for row in rows}))}
    entries = session.scalars(
        select(ChangeLog).where(ChangeLog.table_name == cls.__tablename__)
    ).all()
    times = dict(session.execute(select(Transaction.id, Transaction.timestamp)).all())
    return {
        "live": session.execute(
            select(cls.id, *(getattr(cls, column) for column in COLUMNS)).order_by(cls.id)
        ).all(),
        "history": [(*row[:-1], numbers[row.transaction_id]) for row in rows],
        "transactions": sorted((numbers[tx], times[tx]) for tx in numbers),
        "changelog": sorted(
            (numbers[e.transaction_id], e.row_id, e.event_type, repr(e.changes), e.timestamp)
            for e in entries
        ),
    }


@settings(
    max_examples=min(settings().max_examples, 60),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(operations=st.lists(OPERATIONS, max_size=25))
def test_both_modes_record_the_same_history(
    twins: Engine, clock: FrozenClock, operations: list[tuple[Any, ...]]
) -> None:
    reset(twins)
    with Session(twins) as session:
        run(session, clock, operations)
    with Session(twins) as session:
        orm, database = (recorded(session, cls) for cls in TWINS)
        assert orm["live"] == database["live"]
        assert database["history"] == orm["history"]
        assert database["transactions"] == orm["transactions"]
        assert database["changelog"] == orm["changelog"]
        assert_well_formed([row[:2] + row[2:3] + row[7:9] for row in database["history"]])


def test_core_and_text_statements_are_versioned(twins: Engine, clock: FrozenClock) -> None:
    """What ORM mode cannot see: a Core statement on a connection, and textual SQL."""
    table = DbNote.__table__
    with twins.begin() as connection:
        connection.execute(insert(table), [{"id": 1, "title": "a"}, {"id": 2, "title": "b"}])
    first = clock.now
    clock.advance(minutes=1)
    with twins.begin() as connection:
        connection.execute(update(table).where(table.c.id == 1).values(count=5))  # type: ignore[attr-defined]
        connection.execute(text("UPDATE capture_db_note SET title = 'c' WHERE id = 1"))
        connection.execute(text("DELETE FROM capture_db_note WHERE id = 2"))
    with Session(twins) as session:
        one = history(session, DbNote, 1)
        assert [(v.version, v.operation, v.title, v.count) for v in one] == [
            (1, "insert", "a", None),
            (2, "update", "c", 5),
        ]
        assert one[0].valid_to == one[1].valid_from == clock.now
        assert [v.operation for v in history(session, DbNote, 2)] == ["insert", "delete"]
        assert session.scalars(query_as_of(DbNote, first)).all()[1].title == "b"
        (entry,) = session.scalars(
            select(ChangeLog).where(ChangeLog.row_id == "1", ChangeLog.event_type == "UPDATE")
        )
        assert entry.changes == {"title": ["a", "c"], "count": [None, 5]}


def test_a_key_change_deletes_the_old_key_and_inserts_the_new(
    twins: Engine, clock: FrozenClock
) -> None:
    """An ``UPDATE`` of the primary key: the old key's delete marker, the new key's insert, and
    later statements of the transaction on the new key rewrite that insert."""
    table = DbNote.__table__
    with twins.begin() as connection:
        connection.execute(insert(table), [{"id": 1, "title": "a"}, {"id": 2, "title": "b"}])
    clock.advance(minutes=1)
    moved = clock.now
    with twins.begin() as connection:
        connection.execute(text("UPDATE capture_db_note SET id = 3 WHERE id = 1"))
        connection.execute(text("UPDATE capture_db_note SET title = 'c' WHERE id = 3"))
        connection.execute(text("DELETE FROM capture_db_note WHERE id = 2"))
        connection.execute(text("UPDATE capture_db_note SET id = 2 WHERE id = 3"))
    clock.advance(minutes=1)
    with twins.begin() as connection:
        connection.execute(text("UPDATE capture_db_note SET id = 1 WHERE id = 2"))
    with Session(twins) as session:
        versions = {
            key: [
                (v.operation, v.title, v.valid_from, v.valid_to)
                for v in history(session, DbNote, key)
            ]
            for key in (1, 2, 3)
        }
        assert versions == {
            1: [
                ("insert", "a", moved - dt.timedelta(minutes=1), moved),
                ("delete", "a", moved, moved),
                ("insert", "c", clock.now, None),
            ],
            2: [
                ("insert", "b", moved - dt.timedelta(minutes=1), moved),
                ("update", "c", moved, clock.now),
                ("delete", "c", clock.now, clock.now),
            ],
            3: [],
        }
        events = session.execute(
            select(ChangeLog.row_id, ChangeLog.event_type, ChangeLog.changes)
            .where(ChangeLog.timestamp >= moved)
            .order_by(ChangeLog.timestamp, ChangeLog.row_id)
        ).all()
        assert [tuple(e) for e in events] == [
            ("1", "DELETE", {"id": 1, "title": "a", "count": None, "price": None, "flag": None}),
            ("2", "UPDATE", {"title": ["b", "c"]}),
            ("1", "INSERT", {"id": 1, "title": "c", "count": None, "price": None, "flag": None}),
            ("2", "DELETE", {"id": 2, "title": "c", "count": None, "price": None, "flag": None}),
        ]


def test_attribution_reaches_the_triggers(twins: Engine, clock: FrozenClock) -> None:
    with Session(twins) as session:
        with changes_by(actor="alice", reason="import"):
            session.add(DbNote(id=1, title="a"))
            session.flush()
        with changes_by(actor="bob"):
            session.execute(text("UPDATE capture_db_note SET count = 1 WHERE id = 1"))
        session.commit()
    with twins.connect() as connection, changes_by(actor="carol", ticket=7):
        connection.execute(update(DbNote.__table__).values(count=2))  # type: ignore[arg-type]
        connection.commit()
    with Session(twins) as session:
        actors = [
            (v.transaction.actor, v.transaction.reason, v.transaction.meta)
            for v in history(session, DbNote, 1)
        ]
        assert actors == [("bob", None, None), ("carol", None, {"ticket": 7})]


def test_strict_mode_raises_in_the_trigger(twins: Engine, clock: FrozenClock) -> None:
    with Session(twins) as session:
        session.add(DbNote(id=1, title="a"))
        session.commit()
    clock.advance(minutes=-1)
    configure(strict=True)
    with Session(twins) as session:
        session.get(DbNote, 1).title = "b"  # type: ignore[union-attr]
        with pytest.raises(ConcurrentVersionError):
            session.commit()
        session.rollback()
    with Session(twins) as session:
        assert [v.title for v in history(session, DbNote, 1)] == ["a"]


def other_client(engine: Engine, statements: list[str]) -> None:
    """Run ``statements`` in one transaction of a client that is not the library."""
    url = engine.url
    name = engine.dialect.name
    if name == "sqlite":
        connection = sqlite3.connect(url.database or "")
        try:
            for statement in statements:
                connection.execute(statement)
            connection.commit()
        finally:
            connection.close()
        return
    script = "BEGIN;\n" + "".join(f"{s};\n" for s in statements) + "COMMIT;\n"
    if name == "postgresql":
        command = ["psql", "-v", "ON_ERROR_STOP=1", "-q", "-h", url.host or "127.0.0.1"]
        command += ["-p", str(url.port or 5432), "-U", url.username or "postgres"]
        command += ["-d", url.database or ""]
    else:
        command = ["mariadb", "-h", url.host or "127.0.0.1", "-P", str(url.port or 3306)]
        command += ["-u", url.username or "root", url.database or ""]
    subprocess.run(command, input=script, text=True, check=True, capture_output=True)


def test_writes_of_another_client_are_versioned(twins: Engine, clock: FrozenClock) -> None:
    clock.now = pendulum.now("UTC").subtract(hours=1)  # before the other client's clock
    with Session(twins) as session:
        session.add(DbNote(id=1, title="a", count=1))
        session.commit()
    other_client(
        twins,
        [
            "INSERT INTO capture_db_note (id, title, count) VALUES (2, 'b', 2)",
            "UPDATE capture_db_note SET title = 'a2' WHERE id = 1",
        ],
    )
    other_client(twins, ["DELETE FROM capture_db_note WHERE id = 2"])
    with Session(twins) as session:
        one, two = history(session, DbNote, 1), history(session, DbNote, 2)
        assert [(v.operation, v.title) for v in one] == [("insert", "a"), ("update", "a2")]
        assert [(v.operation, v.title) for v in two] == [("insert", "b"), ("delete", "b")]
        assert one[0].valid_to == one[1].valid_from
        assert two[1].valid_from == two[1].valid_to >= two[0].valid_from
        assert one[1].transaction.actor is None
        inserted = two[0].valid_from
        assert [n.id for n in session.scalars(query_as_of(DbNote, inserted))] == [1, 2]
        assert [n.title for n in session.scalars(query_as_of(DbNote, two[1].valid_to))] == ["a2"]
        events = session.execute(
            select(ChangeLog.row_id, ChangeLog.event_type, ChangeLog.changes)
            .where(ChangeLog.table_name == "capture_db_note")
            .order_by(ChangeLog.id)
        ).all()
        assert [tuple(e) for e in events[1:]] == [
            ("2", "INSERT", {"id": 2, "title": "b", "count": 2, "price": None, "flag": None}),
            ("1", "UPDATE", {"title": ["a", "a2"]}),
            ("2", "DELETE", {"id": 2, "title": "b", "count": 2, "price": None, "flag": None}),
        ]
        assert_well_formed(
            [(v.id, v.version, v.operation, v.valid_from, v.valid_to) for v in one + two]
        )


def test_concurrent_writers_leave_well_formed_history(twins: Engine) -> None:
    """Writers of the same rows in database mode: no overlapping or inverted interval, and each
    row's open version holds its live values."""
    if twins.dialect.name == "sqlite":
        pytest.skip("SQLite lets one writer at a time: there is nothing to interleave")
    configure(clock=None)
    with Session(twins) as session:
        session.add_all([DbNote(id=key, title="start", count=0) for key in (1, 2, 3)])
        session.commit()
    failures: list[BaseException] = []

    def write(writer: int) -> None:
        chooser = random.Random(writer)
        for _step in range(15):
            keys = chooser.sample([1, 2, 3], 2)
            for _attempt in range(20):
                try:
                    with Session(twins) as session:
                        note = session.get(DbNote, keys[0])
                        assert note is not None
                        note.count = DbNote.count + 1  # type: ignore[assignment]
                        note.title = f"w{writer}"
                        session.flush()
                        time.sleep(0.001)
                        session.execute(
                            text("UPDATE capture_db_note SET count = count + 1 WHERE id = :id"),
                            {"id": keys[1]},
                        )
                        session.commit()
                    break
                except Exception as error:
                    if not retryable(error):
                        failures.append(error)
                        return

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    with Session(twins) as session:
        versions = session.scalars(select(DbNote.__history__)).all()
        assert_well_formed(
            [(v.id, v.version, v.operation, v.valid_from, v.valid_to) for v in versions]
        )
        live = {n.id: (n.title, n.count) for n in session.scalars(select(DbNote))}
        current = {v.id: (v.title, v.count) for v in versions if v.valid_to is None}
        assert current == live
        assert sum(count for _, count in live.values()) == 4 * 15 * 2


def test_changelog_switch_reaches_the_triggers(twins: Engine, clock: FrozenClock) -> None:
    configure(changelog=False)
    with Session(twins) as session:
        session.add(DbNote(id=1, title="a"))
        session.commit()
    configure(changelog=True)
    with Session(twins) as session:
        session.get(DbNote, 1).title = "b"  # type: ignore[union-attr]
        session.commit()
        assert [e.event_type for e in session.scalars(select(ChangeLog))] == ["UPDATE"]
        assert len(history(session, DbNote, 1)) == 2


def trigger_names(engine: Engine) -> set[str]:
    queries = {
        "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger'",
        "postgresql": "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal",
        "mysql": "SELECT trigger_name FROM information_schema.triggers "
        "WHERE trigger_schema = DATABASE()",
    }
    with engine.connect() as connection:
        return set(connection.scalars(text(queries[engine.dialect.name])))


def test_create_all_and_drop_all_create_and_drop_the_triggers(engine: Engine) -> None:
    class Own(DeclarativeBase):
        metadata = MetaData()

    class Sheet(Versioned, Own):
        __tablename__ = "capture_ddl_sheet"
        __versioned__ = {"capture": "database"}

        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
        name: Mapped[str] = mapped_column(String(20))

    tables = [Sheet.__table__, Sheet.__history__.__table__]  # type: ignore[attr-defined]
    before = trigger_names(engine)
    Own.metadata.create_all(engine, tables=tables)
    try:
        added = trigger_names(engine) - before
        assert added and all(
            name.startswith("chronicle_capture_capture_ddl_sheet") for name in added
        )
    finally:
        Own.metadata.drop_all(engine, tables=tables)
    assert trigger_names(engine) == before
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            found = connection.scalar(
                text("SELECT count(*) FROM pg_proc WHERE proname LIKE :name"),
                {"name": "chronicle_capture_capture_ddl%"},
            )
        assert found == 0


def restores(session: Session, clock: FrozenClock, cls: type[Any]) -> None:
    """Restores of every kind on ``cls``'s rows, one transaction each, from ``clock.now`` on."""
    start = clock.now
    session.add_all([cls(id=1, title="a", count=1), cls(id=2, title="x", count=2)])
    session.commit()
    clock.advance(minutes=1)
    session.get(cls, 1).title = "b"
    session.delete(session.get(cls, 2))
    session.add(cls(id=3, title="new"))
    session.commit()
    clock.advance(minutes=1)
    restore(session, cls, 1, as_of=start)  # an update put back
    restore(session, cls, 2, as_of=start)  # a deleted row back
    restore(session, cls, 3, as_of=start, allow_delete=True)  # a row created since deleted
    session.commit()
    clock.advance(minutes=1)
    session.get(cls, 1).count = 7
    session.flush()
    restore(session, cls, 1, as_of=start.add(minutes=1))  # a row this transaction changed
    session.commit()
    clock.advance(minutes=1)
    session.delete(session.get(cls, 2))
    session.add(cls(id=4, title="later"))
    session.commit()
    clock.advance(minutes=1)
    result = restore_all(session, cls, as_of=start)  # update, insert, delete
    session.commit()
    assert result == (1, 1, 1, 0)
    clock.advance(minutes=1)
    result = restore_all(session, cls, as_of=start.add(minutes=1))
    session.commit()
    assert result == (1, 1, 1, 0)


def test_restores_record_what_orm_mode_records(twins: Engine, clock: FrozenClock) -> None:
    """A restore in database mode writes "restore" versions and RESTORE entries, as ORM mode."""
    start = clock.now
    with Session(twins) as session:
        for cls in TWINS:
            clock.now = start
            restores(session, clock, cls)
    with Session(twins) as session:
        orm, database = (recorded(session, cls) for cls in TWINS)
        assert database == orm
        one = history(session, DbNote, 1)
        assert [(v.operation, v.title, v.count, v.restored_from) for v in one] == [
            ("insert", "a", 1, None),
            ("update", "b", 1, None),
            ("restore", "a", 1, 1),
            ("restore", "b", 1, 2),
            ("restore", "a", 1, 1),
            ("restore", "b", 1, 2),
        ]
        log = session.scalars(
            select(ChangeLog)
            .where(ChangeLog.table_name == DbNote.__tablename__, ChangeLog.row_id == "2")
            .order_by(ChangeLog.id)
        ).all()
        assert [(e.event_type, e.changes) for e in log][2] == (
            "RESTORE",
            {
                "id": [None, 2],
                "title": [None, "x"],
                "count": [None, 2],
                "price": [None, None],
                "flag": [None, None],
            },
        )


def test_bad_capture_modes_are_refused() -> None:
    from sqlalchemy import ForeignKey

    from sqlalchemy_chronicle.config import default_capture

    with pytest.raises(ConfigurationError, match="'orm' or 'database'"):
        configure(capture="triggers")  # type: ignore[arg-type]
    assert default_capture() == "orm"

    class Own(DeclarativeBase):
        metadata = MetaData()

    with pytest.raises(ConfigurationError, match="capture='everything'"):

        class Bad(Versioned, Own):
            __tablename__ = "capture_bad"
            __versioned__ = {"capture": "everything"}

            id: Mapped[int] = mapped_column(Integer, primary_key=True)

    class Parent(Versioned, Own):
        __tablename__ = "capture_parent"
        __versioned__ = {"capture": "database"}

        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        kind: Mapped[str] = mapped_column(String(10))
        __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "parent"}

    with pytest.raises(ConfigurationError, match="joined inheritance"):

        class Child(Parent):
            __tablename__ = "capture_child"

            id: Mapped[int] = mapped_column(ForeignKey("capture_parent.id"), primary_key=True)
            __mapper_args__ = {"polymorphic_identity": "child"}

    with pytest.raises(ConfigurationError, match="renames the library's history columns"):

        class Renamed(Versioned, Own):
            __tablename__ = "capture_renamed"
            __versioned__ = {"capture": "database", "columns": {"version": "chronicle_version"}}

            id: Mapped[int] = mapped_column(Integer, primary_key=True)


def test_configure_sets_the_mode_of_classes_declared_after() -> None:
    from sqlalchemy_chronicle.schema.history import spec_for

    class Own(DeclarativeBase):
        metadata = MetaData()

    configure(capture="database")
    try:

        class Later(Versioned, Own):
            __tablename__ = "capture_later"

            id: Mapped[int] = mapped_column(Integer, primary_key=True)

    finally:
        configure(capture="orm")
    spec = spec_for(Later)
    assert spec is not None and spec.captured_by_database


TICK = dt.timedelta(microseconds=1)


@pytest.mark.parametrize("strict", [False, True], ids=["step-after", "strict"])
def test_a_writer_stamped_earlier_steps_after_a_concurrent_version(
    twins: Engine, strict: bool
) -> None:
    """As ``test_concurrency.test_real_concurrent_writers``, in database mode: B's transaction
    takes its time first, then waits on A's row lock; A commits a newer version of the row."""
    if twins.dialect.name == "sqlite":
        pytest.skip("SQLite lets one writer at a time: this interleaving cannot happen there")
    configure(clock=None, strict=strict)
    with Session(twins) as setup:
        setup.add_all([DbNote(id=1, title="a"), DbNote(id=2, title="b")])
        setup.commit()
    outcome = blocked_writer(twins, DbNote)
    with Session(twins) as check:
        one = [(v.version, v.title, v.valid_from, v.valid_to) for v in history(check, DbNote, 1)]
        two = [(v.version, v.title, v.valid_from, v.valid_to) for v in history(check, DbNote, 2)]
        assert one[1][:2] == (2, "from A")
        if strict:
            assert isinstance(outcome, ConcurrentVersionError)
            assert len(one) == 2 and [v[1] for v in two] == ["b"]
        else:
            assert outcome == "committed"
            assert one[2][:2] == (3, "from B")
            assert one[1][3] == one[2][2] == one[1][2] + TICK
            assert two[1][1] == "b2" and two[1][2] < one[1][2], "B's time is older than A's"


def test_names_that_need_quoting_in_the_triggers(db: Engine, clock: FrozenClock) -> None:
    """Quotes, double quotes and backslashes in table and column names reach the triggers' SQL
    as the names they are, in the history and in the change log's keys."""
    odd = 'it\'s "odd" \\ name'

    class Own(DeclarativeBase):
        metadata = MetaData()

    class Oddly(Versioned, Own):
        __tablename__ = "capture_o'dd"
        __versioned__ = {"capture": "database"}

        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
        value: Mapped[str | None] = mapped_column(odd, String(20))

    own_tables = [Oddly.__table__, Oddly.__history__.__table__]  # not the library's tables
    Own.metadata.drop_all(db, tables=own_tables)
    Own.metadata.create_all(db)
    try:
        with Session(db) as session:
            session.add(Oddly(id=1, value="a"))
            session.commit()
            clock.advance(seconds=1)
            session.execute(update(Oddly).where(Oddly.id == 1).values(value="b"))
            session.commit()
            assert [(v.operation, v.value) for v in history(session, Oddly, 1)] == [
                ("insert", "a"),
                ("update", "b"),
            ]
            entries = session.scalars(
                select(ChangeLog.changes)
                .where(ChangeLog.table_name == "capture_o'dd")
                .order_by(ChangeLog.id)
            ).all()
            assert entries == [{"id": 1, odd: "a"}, {odd: ["a", "b"]}]
    finally:
        Own.metadata.drop_all(db, tables=own_tables)


def test_triggers_are_dropped_and_created_for_a_class(twins: Engine, clock: FrozenClock) -> None:
    """``drop_triggers()`` and ``create_triggers()``, as a migration that changed a table calls."""
    from sqlalchemy_chronicle import (
        ConfigurationError,
        NotVersionedError,
        create_triggers,
        drop_triggers,
    )

    table = DbNote.__table__
    with twins.begin() as connection:
        drop_triggers(connection, DbNote)
        connection.execute(insert(table).values(id=1, title="unseen"))
    with twins.begin() as connection:
        create_triggers(connection, DbNote)
        connection.execute(insert(table).values(id=2, title="seen"))
    with Session(twins) as session:
        assert history(session, DbNote, 1) == []
        assert [v.title for v in history(session, DbNote, 2)] == ["seen"]
    with twins.connect() as connection:
        with pytest.raises(ConfigurationError, match="ORM capture mode"):
            create_triggers(connection, OrmNote)
        with pytest.raises(NotVersionedError):
            drop_triggers(connection, ChangeLog)


def test_create_all_versions_a_table_of_another_schema(db: Engine, clock: FrozenClock) -> None:
    """The triggers that ``create_all()`` makes for a table of another schema write the library's
    tables where they are (on MariaDB a trigger reads a bare name in its own database); SQLite,
    whose triggers cannot write another database's tables, refuses such a table."""

    class Own(DeclarativeBase):
        metadata = MetaData()

    class Shelved(Versioned, Own):
        __tablename__ = "capture_shelved"
        __table_args__ = {"schema": SCHEMA}
        __versioned__ = {"capture": "database"}

        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
        label: Mapped[str | None] = mapped_column(String(20))

    own_tables = [Shelved.__table__, Shelved.__history__.__table__]
    Own.metadata.drop_all(db, tables=own_tables)
    if db.dialect.name == "sqlite":
        with pytest.raises(ConfigurationError, match="attached database"):
            Own.metadata.create_all(db, tables=own_tables)
        Own.metadata.drop_all(db, tables=own_tables)
        return
    Own.metadata.create_all(db, tables=own_tables)
    try:
        live = Shelved.__table__
        with db.begin() as connection:  # another client: no library session
            connection.execute(insert(live).values(id=1, label="a"))
        clock.advance(seconds=1)
        with db.begin() as connection:
            connection.execute(update(live).where(live.c.id == 1).values(label="b"))
        with Session(db) as session:
            assert [(v.operation, v.label) for v in history(session, Shelved, 1)] == [
                ("insert", "a"),
                ("update", "b"),
            ]
            entries = session.scalars(
                select(ChangeLog.changes)
                .where(ChangeLog.table_name == f"{SCHEMA}.capture_shelved")
                .order_by(ChangeLog.id)
            ).all()
            assert entries == [{"id": 1, "label": "a"}, {"label": ["a", "b"]}]
    finally:
        Own.metadata.drop_all(db, tables=own_tables)
