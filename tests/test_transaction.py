"""Transactions and attribution: who and why, per context, per session, per thread and task."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import (
    ChangeLog,
    ConfigurationError,
    Transaction,
    attribute_session,
    changelog_by,
    changes_by,
    use_sqlite_savepoints,
)

from .models import Article
from .support import FrozenClock


def actors(session: Session) -> list[tuple[str | None, str | None, dict | None]]:
    return [
        (t.actor, t.reason, t.meta)
        for t in session.scalars(select(Transaction).order_by(Transaction.id))
    ]


def test_changes_by_lands_on_the_transaction(session: Session) -> None:
    with changes_by(actor="alice", reason="fix typo", ticket="T-1"):
        session.add(Article(id=1, title="a"))
        session.commit()
    session.add(Article(id=2, title="b"))
    session.commit()
    assert actors(session) == [("alice", "fix typo", {"ticket": "T-1"}), (None, None, None)]
    (version,) = session.scalars(select(Article.__history__).filter_by(id=1))
    assert version.transaction.actor == "alice"
    assert [e.row_id for e in session.scalars(changelog_by("alice"))] == ["1"]


def test_an_actor_too_long_to_record_is_refused_before_anything_is_written(
    session: Session,
) -> None:
    """The database would refuse it only at the flush (or, on SQLite, store it whole)."""
    with pytest.raises(ConfigurationError, match="255"), changes_by(actor="x" * 256):
        pass
    with pytest.raises(ConfigurationError, match="255"):
        attribute_session(session, actor="x" * 256)
    with changes_by(actor="x" * 255):
        session.add(Article(id=1, title="a"))
        session.commit()
    assert actors(session) == [("x" * 255, None, None)]


def test_blocks_nest(session: Session) -> None:
    with changes_by(actor="alice", reason="outer"), changes_by(reason="inner"):
        session.add(Article(id=1, title="a"))
        session.commit()
    assert actors(session) == [("alice", "inner", None)]


def test_session_attribution_wins_over_the_context(session: Session) -> None:
    attribute_session(session, actor="job", reason="nightly")
    with changes_by(actor="alice"):
        session.add(Article(id=1, title="a"))
        session.commit()
    attribute_session(session)
    session.add(Article(id=2, title="b"))
    session.commit()
    assert actors(session) == [("job", "nightly", None), (None, None, None)]


def test_a_later_flush_under_other_values_updates_the_transaction(session: Session) -> None:
    session.add(Article(id=1, title="a"))
    session.flush()
    with changes_by(actor="alice", reason="review"):
        session.add(Article(id=2, title="b"))
        session.commit()
    assert actors(session) == [("alice", "review", None)]


def test_threads_do_not_share_attribution(db: Engine, clock: FrozenClock) -> None:
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(actor: str, first_id: int) -> None:
        try:
            with changes_by(actor=actor), Session(db) as session:
                session.add(Article(id=first_id, title=actor))
                barrier.wait(timeout=10)
                session.flush()
                barrier.wait(timeout=10)
                session.add(Article(id=first_id + 1, title=actor))
                session.commit()
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
            barrier.abort()

    if db.dialect.name == "sqlite":
        # One writer at a time: the threads take turns, attribution must still not leak.
        for actor, first_id in (("alice", 1), ("bob", 3)):
            barrier = threading.Barrier(1)
            work(actor, first_id)
    else:
        threads = [
            threading.Thread(target=work, args=("alice", 1)),
            threading.Thread(target=work, args=("bob", 3)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors
    with Session(db) as session:
        rows = session.execute(
            select(ChangeLog.row_id, Transaction.actor).join(
                Transaction, Transaction.id == ChangeLog.transaction_id
            )
        ).all()
        assert sorted(rows) == [("1", "alice"), ("2", "alice"), ("3", "bob"), ("4", "bob")]


def async_url(engine: Engine) -> str:
    url = engine.url
    driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}.get(
        engine.dialect.name, "mysql+aiomysql"
    )
    return url.set(drivername=driver).render_as_string(hide_password=False)


def test_async_sessions_are_versioned_and_tasks_do_not_share_attribution(
    db: Engine, clock: FrozenClock
) -> None:
    async def main() -> None:
        engine = create_async_engine(async_url(db))
        lock = asyncio.Lock() if db.dialect.name == "sqlite" else None

        async def work(actor: str, first_id: int) -> None:
            with changes_by(actor=actor):
                async with AsyncSession(engine) as session:
                    if lock is not None:
                        await lock.acquire()
                    try:
                        session.add(Article(id=first_id, title=actor))
                        await session.flush()
                        await asyncio.sleep(0.05)
                        session.add(Article(id=first_id + 1, title=actor))
                        await session.commit()
                    finally:
                        if lock is not None:
                            lock.release()

        await asyncio.gather(work("alice", 1), work("bob", 3))
        async with AsyncSession(engine) as session:
            article = await session.get(Article, 1)
            assert article is not None
            article.title = "changed"
            await session.commit()
        await engine.dispose()

    asyncio.run(main())
    with Session(db) as session:
        rows = session.execute(
            select(ChangeLog.row_id, ChangeLog.event_type, Transaction.actor).join(
                Transaction, Transaction.id == ChangeLog.transaction_id
            )
        ).all()
        assert sorted(rows) == [
            ("1", "INSERT", "alice"),
            ("1", "UPDATE", None),
            ("2", "INSERT", "alice"),
            ("3", "INSERT", "bob"),
            ("4", "INSERT", "bob"),
        ]
        titles = [v.title for v in session.scalars(select(Article.__history__).filter_by(id=1))]
        assert sorted(titles) == ["alice", "changed"]


def test_use_sqlite_savepoints_is_idempotent_and_leaves_other_databases_alone(
    engine: Engine,
) -> None:
    fresh = create_engine(engine.url)

    def listeners() -> int:
        return len(fresh.pool.dispatch.connect) + len(fresh.dispatch.begin)

    try:
        before = listeners()
        added = []
        for _ in range(2):
            use_sqlite_savepoints(fresh)
            added.append(listeners() - before)
        assert added == ([2, 2] if fresh.dialect.name == "sqlite" else [0, 0])
    finally:
        fresh.dispose()


def test_a_rolled_back_savepoint_brings_back_the_rows_it_unversioned(
    session: Session, clock: FrozenClock
) -> None:
    """Versions removed inside a rolled-back savepoint are the transaction's own again.

    Found by the state machine of ``test_stateful.py`` on MariaDB: the transaction had forgotten
    them, dropped its row at the next flush, and a later flush took its own version for a
    concurrent one.
    """
    session.add_all([Article(id=1, title="a"), Article(id=2, title="a")])
    session.flush()
    savepoint = session.begin_nested()
    session.delete(session.get(Article, 1))
    session.delete(session.get(Article, 2))
    session.flush()
    savepoint.rollback()
    session.delete(session.get(Article, 1))
    session.flush()
    session.delete(session.get(Article, 2))
    session.commit()
    assert session.scalars(select(Article.__history__)).all() == []
    assert session.scalars(select(Transaction)).all() == []
