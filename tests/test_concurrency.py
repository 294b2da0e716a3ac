"""Concurrent writers never leave overlapping or inverted intervals.

When a transaction finds that a concurrent one has already given a row a version at or after its
own timestamp, the default policy starts its version one microsecond after that one; strict mode
raises :class:`~sqlalchemy_chronicle.ConcurrentVersionError` instead.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import ConcurrentVersionError, configure

from .models import Article
from .support import FrozenClock, assert_well_formed

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
    two_rows = db
    a, b = Session(two_rows), Session(two_rows)
    outcome: dict[str, object] = {}
    try:
        b_article_2 = b.get(Article, 2)
        b_article_1 = b.get(Article, 1)
        assert b_article_1 is not None and b_article_2 is not None
        b_article_2.title = "b2"
        b.flush()  # B's transaction row and timestamp exist from here on
        time.sleep(0.01)

        a_article = a.get(Article, 1)
        assert a_article is not None
        a_article.title = "from A"
        a.flush()  # A holds the lock on row 1

        def b_writes() -> None:
            try:
                b_article_1.title = "from B"
                b.flush()  # waits for A's lock
                b.commit()
                outcome["b"] = "committed"
            except ConcurrentVersionError as error:
                b.rollback()
                outcome["b"] = error

        writer = threading.Thread(target=b_writes)
        writer.start()
        time.sleep(1.0)
        assert writer.is_alive(), "B should be waiting for A's row lock"
        a.commit()
        writer.join(timeout=60)
        assert not writer.is_alive()
    finally:
        a.close()
        b.close()

    with Session(two_rows) as check:
        assert_well_formed(all_rows(check))
        row_1 = intervals(check, 1)
        a_version = row_1[1]
        assert a_version[:3] == (2, "update", "from A")
        if strict:
            assert isinstance(outcome["b"], ConcurrentVersionError)
            assert len(row_1) == 2
            assert [v[2] for v in intervals(check, 2)] == ["b"]
        else:
            assert outcome["b"] == "committed"
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
