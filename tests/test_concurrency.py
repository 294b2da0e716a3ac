"""Concurrent writers never leave overlapping or inverted intervals, nor versions of stale rows.

When a transaction finds that a concurrent one has already given a row a version at or after its
own timestamp, the default policy starts its version one microsecond after that one; strict mode
raises :class:`~sqlalchemy_chronicle.ConcurrentVersionError` instead.

Whatever the isolation level, every version holds the row as the database stored it at the end of
the transaction's last write to it: a column a concurrent transaction changed after the session
loaded the row, and a Python ``onupdate`` value computed per row of an executemany, included.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import threading
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import Engine, exc, select, text, update
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import ChangeLog, ConcurrentVersionError, configure

from .models import Article
from .models_columns import COUNTER_COLUMNS, ColumnRow
from .support import FrozenClock, assert_well_formed, blocked_writer

History = Article.__history__
TICK = dt.timedelta(microseconds=1)


def intervals(session: Session, id: int) -> list[tuple]:
    return [
        (v.version, v.operation, v.title, v.valid_from, v.valid_to)
        for v in session.scalars(select(History).filter_by(id=id).order_by(History.version))
    ]


def all_rows(session: Session) -> list[tuple]:
    return [
        (v.id, v.version, v.operation, v.valid_from, v.valid_to)
        for v in session.scalars(select(History))
    ]


@pytest.fixture
def two_rows(db: Engine, clock: FrozenClock) -> Engine:
    with Session(db) as session:
        session.add_all([Article(id=1, title="a"), Article(id=2, title="b")])
        session.commit()
    return db


def test_a_clock_behind_the_newest_version_steps_after_it(
    two_rows: Engine, clock: FrozenClock
) -> None:
    t0 = clock.now
    clock.advance(seconds=-10)
    with Session(two_rows) as session:
        article = session.get(Article, 1)
        assert article is not None
        article.title = "late"
        session.commit()
        assert intervals(session, 1) == [
            (1, "insert", "a", t0, t0 + TICK),
            (2, "update", "late", t0 + TICK, None),
        ]
        assert_well_formed(all_rows(session))


def test_strict_mode_raises_and_changes_nothing(two_rows: Engine, clock: FrozenClock) -> None:
    configure(strict=True)
    clock.advance(seconds=-10)
    with Session(two_rows) as session:
        article = session.get(Article, 1)
        assert article is not None
        article.title = "late"
        with pytest.raises(ConcurrentVersionError, match="concurrent transaction"):
            session.commit()
        session.rollback()
        assert [v[:3] for v in intervals(session, 1)] == [(1, "insert", "a")]
        assert session.get(Article, 1).title == "a"  # type: ignore[union-attr]


@pytest.mark.parametrize("strict", [False, True], ids=["step-after", "strict"])
def test_real_concurrent_writers(db: Engine, strict: bool) -> None:
    """B stamps its transaction first, then waits on A's row lock; A commits a newer version."""
    if db.dialect.name == "sqlite":
        pytest.skip("SQLite lets one writer at a time: this interleaving cannot happen there")
    configure(clock=None, strict=strict)
    with Session(db) as setup:
        setup.add_all([Article(id=1, title="a"), Article(id=2, title="b")])
        setup.commit()
    outcome = blocked_writer(db, Article)
    with Session(db) as check:
        assert_well_formed(all_rows(check))
        row_1 = intervals(check, 1)
        a_version = row_1[1]
        assert a_version[:3] == (2, "update", "from A")
        if strict:
            assert isinstance(outcome, ConcurrentVersionError)
            assert len(row_1) == 2
            assert [v[2] for v in intervals(check, 2)] == ["b"]
        else:
            assert outcome == "committed"
            b_version = row_1[2]
            assert b_version[:3] == (3, "update", "from B")
            assert a_version[4] == b_version[3] == a_version[3] + TICK
            b_row_2 = intervals(check, 2)[1]
            assert b_row_2[2] == "b2"
            assert b_row_2[3] < a_version[3], "B's transaction time is older than A's"


def test_writers_of_different_rows_do_not_wait_for_each_other(db: Engine) -> None:
    """History writes take no locks beyond the rows they version (no gap locks on MariaDB)."""
    if db.dialect.name == "sqlite":
        pytest.skip("SQLite lets one writer at a time: there is nothing to interleave")
    configure(clock=None)
    with Session(db) as setup:
        setup.add_all([Article(id=i, title=f"t{i}") for i in (1, 2, 3)])
        setup.commit()
    a, b = Session(db), Session(db)
    try:
        for session in (a, b):
            if db.dialect.name == "postgresql":
                session.execute(text("SET lock_timeout = '3s'"))
            else:
                session.execute(text("SET SESSION innodb_lock_wait_timeout = 3"))
        a.get(Article, 2).title = "A"  # type: ignore[union-attr]
        a.add(Article(id=10, title="new A"))
        a.flush()
        b.get(Article, 1).title = "B"  # type: ignore[union-attr]
        b.get(Article, 3).title = "B"  # type: ignore[union-attr]
        b.add(Article(id=11, title="new B"))
        b.flush()  # raises a lock timeout if it had to wait for A
        session_b_deletes = b.get(Article, 11)
        b.delete(session_b_deletes)
        b.commit()
        a.delete(a.get(Article, 10))
        a.commit()
    finally:
        a.close()
        b.close()
    with Session(db) as check:
        assert_well_formed(all_rows(check))
        assert [v[2] for v in intervals(check, 2)] == ["t2", "A"]
        assert [v[2] for v in intervals(check, 1)] == ["t1", "B"]
        assert intervals(check, 10) == intervals(check, 11) == []


def test_a_row_written_again_does_not_hold_up_other_writers(db: Engine) -> None:
    """Rewriting a row's version deletes only this transaction's change-log entries' rows.

    On MariaDB a ``DELETE`` by ``transaction_id`` locked the index range after the newest
    transaction, where every other transaction inserts its entries.
    """
    if db.dialect.name == "sqlite":
        pytest.skip("SQLite lets one writer at a time: there is nothing to interleave")
    configure(clock=None)
    with Session(db) as setup:
        setup.add_all([Article(id=i, title=f"t{i}") for i in (1, 2, 3)])
        setup.commit()
    a, b = Session(db), Session(db)
    try:
        for session in (a, b):
            if db.dialect.name == "postgresql":
                session.execute(text("SET lock_timeout = '3s'"))
            else:
                session.execute(text("SET SESSION innodb_lock_wait_timeout = 3"))
        article = a.get(Article, 1)
        assert article is not None
        article.title = "A1"
        a.flush()
        article.title = "A2"  # the same row again: its entry is rewritten
        a.flush()
        a.delete(a.get(Article, 3))
        a.flush()
        a.add(Article(id=3, title="again"))  # deleted and inserted again: rewritten too
        a.flush()
        b.get(Article, 2).title = "B"  # type: ignore[union-attr]
        b.commit()  # raised a lock timeout on MariaDB when it had to wait for A
        a.commit()
    finally:
        a.close()
        b.close()
    with Session(db) as check:
        assert_well_formed(all_rows(check))
        logged = check.execute(
            select(ChangeLog.row_id, ChangeLog.event_type).order_by(ChangeLog.id)
        ).all()
        assert sorted(logged[-3:]) == [("1", "UPDATE"), ("2", "UPDATE"), ("3", "UPDATE")]


# -- versions hold the rows as stored, whoever wrote the other columns -------------------------

ColumnHistory = ColumnRow.__history__
VALUES = (*COUNTER_COLUMNS, "stamp")
SHARED_ROWS = (1, 2, 3)
WRITERS = 4
TRANSACTIONS = {"default": 50, "other": 25}  # per writer, at the default level and the others
ISOLATION_LEVELS = {
    "default": None,
    "read-committed": "READ COMMITTED",
    "repeatable-read": "REPEATABLE READ",
    "serializable": "SERIALIZABLE",
}


def private_row(writer: int) -> int:
    """A row only ``writer`` writes: flushing it first takes the transaction's time early."""
    return 100 + writer


def live_values(session: Session) -> dict[int, tuple[Any, ...]]:
    table = ColumnRow.__table__
    query = select(table.c.id, *(table.c[name] for name in VALUES))
    return {id: tuple(values) for id, *values in session.execute(query)}


def column_versions(session: Session) -> dict[int, list[Any]]:
    by_id: dict[int, list[Any]] = {}
    query = select(ColumnHistory).order_by(ColumnHistory.id, ColumnHistory.version)
    for version in session.scalars(query):
        by_id.setdefault(version.id, []).append(version)
    return by_id


def version_values(version: Any) -> tuple[Any, ...]:
    return tuple(getattr(version, name) for name in VALUES)


def retryable(error: BaseException) -> bool:
    """A failure that a transaction is expected to meet under concurrency, and to retry."""
    if isinstance(error, ConcurrentVersionError):
        return True
    if not isinstance(error, exc.DBAPIError):
        return False
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in ("40001", "40P01", "55P03"):  # serialization failure, deadlock, lock timeout
        return True
    code = orig.args[0] if orig is not None and orig.args else None
    # MariaDB: lock wait timeout, deadlock, record changed since read, and 1467, which InnoDB
    # answers when a deadlock or lock wait timeout ends the wait for a table's AUTO-INC lock
    # (taken by an INSERT .. SELECT into an AUTO_INCREMENT table, here the change log).
    if code in (1205, 1213, 1020, 1467):
        return True
    return "database is locked" in str(orig)


def retry_label(error: BaseException) -> str:
    orig = getattr(error, "orig", None)
    code = orig.args[0] if orig is not None and orig.args else ""
    code = getattr(orig, "sqlstate", None) or code
    return f"{type(error).__name__}{':' if code else ''}{code}"


class ColumnWriter:
    """One thread's writes: it only ever increases its own column, in its own transactions.

    Each transaction picks some of the shared rows and a way of writing them: objects loaded and
    changed (after a pause, so that other writers commit meanwhile), objects flushed twice, the
    same after first flushing the writer's private row (so that its time is older than versions
    other writers commit meanwhile), an ORM ``update()`` with a WHERE clause, or an ORM
    ``update()`` by primary key (an executemany). Only committed changes are recorded.
    """

    def __init__(
        self, number: int, engine: Engine, serial: threading.Lock | None, transactions: int
    ) -> None:
        self.number = number
        self.transactions = transactions
        self.column = COUNTER_COLUMNS[number]
        self.engine = engine
        self.serial = serial
        self.random = random.Random(1000 + number)
        self.mine = dict.fromkeys((*SHARED_ROWS, private_row(number)), 0)
        self.committed: list[tuple[int, str, int]] = []
        self.retries: Counter[str] = Counter()
        self.failure: BaseException | None = None

    def run(self, start: threading.Barrier) -> None:
        try:
            start.wait(timeout=60)
            for _ in range(self.transactions):
                self.one_transaction()
        except BaseException as error:  # reported by the main thread
            self.failure = error

    def one_transaction(self) -> None:
        rows = sorted(self.random.sample(SHARED_ROWS, self.random.randint(1, len(SHARED_ROWS))))
        how = self.random.choice(["objects", "twice", "early", "where", "by-key"])
        pause = self.random.random() * 0.003
        for attempt in range(200):
            try:
                if self.serial is None:
                    written = self.attempt(rows, how, pause)
                else:
                    with self.serial:
                        written = self.attempt(rows, how, 0)
            except Exception as error:
                if not retryable(error):
                    raise
                self.retries[retry_label(error)] += 1
                time.sleep(self.random.random() * 0.002 * min(attempt + 1, 10))
                continue
            for id, value in written.items():
                self.mine[id] = value
                self.committed.append((id, self.column, value))
            return
        raise AssertionError(
            f"writer {self.number}: no commit after 200 attempts ({how}); retried so far: "
            f"{dict(self.retries)}"
        )

    def attempt(self, rows: list[int], how: str, pause: float) -> dict[int, int]:
        column = self.column
        written: dict[int, int] = {}
        with Session(self.engine) as session:
            if how == "early":
                own = session.get(ColumnRow, private_row(self.number))
                assert own is not None
                written[own.id] = self.mine[own.id] + 1
                setattr(own, column, written[own.id])
                session.flush()
            if how in ("objects", "twice", "early"):
                query = select(ColumnRow).where(ColumnRow.id.in_(rows)).order_by(ColumnRow.id)
                objects = session.scalars(query).all()
                time.sleep(pause)  # other writers commit their columns of these rows meanwhile
                for row in objects:
                    assert getattr(row, column) == self.mine[row.id], (column, row.id)
                    written[row.id] = self.mine[row.id] + 1
                    setattr(row, column, written[row.id])
                if how == "twice":
                    session.flush()
                    time.sleep(pause)
                    for row in objects:
                        written[row.id] += 1
                        setattr(row, column, written[row.id])
            elif how == "where":
                session.execute(
                    update(ColumnRow)
                    .where(ColumnRow.id.in_(rows))
                    .values({column: getattr(ColumnRow, column) + 1})
                )
                written.update({id: self.mine[id] + 1 for id in rows})
            else:
                written.update({id: self.mine[id] + 1 for id in rows})
                session.execute(update(ColumnRow), [{"id": id, column: written[id]} for id in rows])
            session.commit()
        return written


def check_versions_against_live(engine: Engine, committed: list[tuple[int, str, int]]) -> None:
    """(a) newest version == live row; (b) no value goes back; (c) well-formed intervals.

    Also: one version per committed transaction and row, each raising exactly the column of the
    writer that committed it to the value it wrote.
    """
    with Session(engine) as check:
        live = live_values(check)
        by_id = column_versions(check)
        assert_well_formed(
            [
                (v.id, v.version, v.operation, v.valid_from, v.valid_to)
                for versions in by_id.values()
                for v in versions
            ]
        )
        assert set(by_id) == set(live)
        steps: Counter[tuple[int, str, int]] = Counter()
        for id, versions in by_id.items():
            newest = versions[-1]
            assert newest.valid_to is None, (id, newest.version)
            assert version_values(newest) == live[id], (
                f"row {id}: newest version {newest.version} holds {version_values(newest)}, "
                f"the live row {live[id]} (columns {VALUES})"
            )
            for before, after in itertools.pairwise(versions):
                moved = [
                    name
                    for name in COUNTER_COLUMNS
                    if getattr(after, name) != getattr(before, name)
                ]
                went_back = [
                    name for name in COUNTER_COLUMNS if getattr(after, name) < getattr(before, name)
                ]
                assert not went_back, (
                    f"row {id}: version {after.version} {version_values(after)} has "
                    f"{went_back} below version {before.version} {version_values(before)}: "
                    "a value the row never held again"
                )
                assert len(moved) == 1, (id, version_values(before), version_values(after))
                steps[id, moved[0], getattr(after, moved[0])] += 1
        assert steps == Counter(committed)


def seed_column_rows(engine: Engine) -> None:
    with Session(engine) as setup:
        ids = [*SHARED_ROWS, *(private_row(n) for n in range(WRITERS))]
        setup.add_all(ColumnRow(id=id) for id in ids)
        setup.commit()


@pytest.mark.parametrize("strict", [False, True], ids=["step-after", "strict"])
@pytest.mark.parametrize("isolation", list(ISOLATION_LEVELS), ids=list(ISOLATION_LEVELS))
def test_writers_of_different_columns_of_the_same_rows(
    db: Engine, isolation: str, strict: bool
) -> None:
    """Four writers, each raising its own column of the same rows, at every isolation level.

    On SQLite, which lets one writer at a time, the same writers take turns (each transaction
    whole, under a lock), and only at its one isolation level.
    """
    level = ISOLATION_LEVELS[isolation]
    sqlite = db.dialect.name == "sqlite"
    if level is not None and sqlite:
        pytest.skip("SQLite has one isolation level for writers: run as 'default'")
    if level is not None:
        with db.connect() as connection:
            default = connection.get_isolation_level()
        if level == default:
            pytest.skip(f"{level} is this database's default: run as 'default'")
    configure(clock=None, strict=strict)
    seed_column_rows(db)
    engine = db if level is None else db.execution_options(isolation_level=level)
    serial = threading.Lock() if sqlite else None
    transactions = TRANSACTIONS["default" if level is None else "other"]
    writers = [ColumnWriter(n, engine, serial, transactions) for n in range(WRITERS)]
    start = threading.Barrier(WRITERS)
    threads = [threading.Thread(target=w.run, args=(start,)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a writer is stuck"
    for writer in writers:
        if writer.failure is not None:
            raise writer.failure
    committed = [step for writer in writers for step in writer.committed]
    assert len({step[:2] for step in committed}) >= WRITERS  # every writer got commits through
    check_versions_against_live(db, committed)


def test_a_column_a_concurrent_transaction_changed_after_the_load(
    db: Engine, clock: FrozenClock
) -> None:
    """Issue #12: S2 loads the row, S1 commits column c0, S2 commits column c1.

    On PostgreSQL S2 has first flushed another row, so that its time is older than S1's version
    and its version of row 1 goes the full path (one microsecond after S1's).
    """
    if db.dialect.name == "sqlite":
        pytest.skip("SQLite lets one writer at a time: the interleaving cannot happen there")
    seed_column_rows(db)
    t0 = clock.now
    with Session(db) as s1, Session(db) as s2:
        other = s2.get(ColumnRow, 2)
        assert other is not None
        other.c3 = 1
        s2.flush()  # S2's time is taken here
        row = s2.get(ColumnRow, 1)
        assert row is not None and (row.c0, row.c1) == (0, 0)

        t1 = clock.advance(seconds=1)
        concurrent = s1.get(ColumnRow, 1)
        assert concurrent is not None
        concurrent.c0 = 1
        s1.commit()

        clock.advance(seconds=1)
        row.c1 = 1  # S2's object still holds c0 = 0
        s2.commit()

    with Session(db) as check:
        live = live_values(check)[1]
        assert live[:4] == (1, 1, 0, 0)
        versions = column_versions(check)[1]
        assert [(v.version, v.operation, v.c0, v.c1) for v in versions] == [
            (1, "insert", 0, 0),
            (2, "update", 1, 0),
            (3, "update", 1, 1),
        ]
        assert version_values(versions[-1]) == live
        assert [(v.valid_from, v.valid_to) for v in versions] == [
            (t0, t1),
            (t1, t1 + TICK),
            (t1 + TICK, None),
        ]


def test_a_column_changed_while_the_object_was_held_over_a_commit(
    db: Engine, clock: FrozenClock
) -> None:
    """The same on every database: S2 keeps its loaded object across a commit of its own.

    S2's row is written twice in its transaction, so it goes the full path everywhere.
    """
    seed_column_rows(db)
    with Session(db, expire_on_commit=False) as s2:
        row = s2.get(ColumnRow, 1)
        assert row is not None
        s2.commit()  # ends the read; the object keeps c0 = 0

        clock.advance(seconds=1)
        with Session(db) as s1:
            concurrent = s1.get(ColumnRow, 1)
            assert concurrent is not None
            concurrent.c0 = 5
            s1.commit()

        clock.advance(seconds=1)
        row.c1 = 1
        s2.flush()
        row.c2 = 1
        s2.commit()

    with Session(db) as check:
        live = live_values(check)[1]
        assert live[:4] == (5, 1, 1, 0)
        versions = column_versions(check)[1]
        assert [(v.operation, v.c0, v.c1, v.c2) for v in versions] == [
            ("insert", 0, 0, 0),
            ("update", 5, 0, 0),
            ("update", 5, 1, 1),
        ]
        assert version_values(versions[-1]) == live


@pytest.mark.parametrize("how", ["one-flush", "two-flushes", "by-key"])
def test_a_python_onupdate_of_an_executemany_is_recorded_per_row(
    db: Engine, clock: FrozenClock, how: str
) -> None:
    """Several rows updated by one executemany UPDATE: each version has its row's own stamp."""
    with Session(db) as session:
        session.add_all(ColumnRow(id=id) for id in range(1, 6))
        session.commit()
        clock.advance(seconds=1)
        rows = session.scalars(select(ColumnRow).order_by(ColumnRow.id)).all()
        if how == "by-key":
            session.execute(update(ColumnRow), [{"id": row.id, "c0": 1} for row in rows])
        else:
            for row in rows:
                row.c0 = 1
            if how == "two-flushes":  # written twice: the full path on every database
                session.flush()
                for row in rows:
                    row.c1 = 1
        session.commit()

        live = live_values(session)
        assert len({values[-1] for values in live.values()}) == 5, live
        by_id = column_versions(session)
        for id, versions in by_id.items():
            assert [v.operation for v in versions] == ["insert", "update"]
            assert version_values(versions[-1]) == live[id], (id, live)
