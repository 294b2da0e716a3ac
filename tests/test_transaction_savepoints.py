"""A transaction whose changes were all taken back inside released savepoints leaves no row.

Issue #12 (3): the writer drops the :class:`~sqlalchemy_chronicle.Transaction` row of a
transaction that no longer holds any version after a flush, but not inside a savepoint, since
rolling the savepoint back would bring the versions back. A savepoint that is released instead
leaves nothing to bring back; when the commit follows without another flush, the row used to stay.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import ChangeLog, Transaction

from .models import Article
from .support import FrozenClock


def _counts(session: Session) -> tuple[int, int, int]:
    return (
        session.scalar(select(func.count()).select_from(Transaction)) or 0,
        session.scalar(select(func.count()).select_from(Article.__history__)) or 0,
        session.scalar(select(func.count()).select_from(ChangeLog)) or 0,
    )


def test_a_change_undone_inside_a_released_savepoint_leaves_no_transaction(
    session: Session, clock: FrozenClock
) -> None:
    session.add(Article(id=1, title="a"))
    session.commit()
    clock.advance(seconds=1)
    article = session.get(Article, 1)
    assert article is not None
    with session.begin_nested():
        article.title = "b"
        session.flush()
        article.title = "a"
    session.commit()
    assert _counts(session) == (1, 1, 1)


def test_an_insert_deleted_inside_a_released_savepoint_leaves_no_transaction(
    session: Session,
) -> None:
    with session.begin_nested():
        session.add(Article(id=1, title="a"))
        session.flush()
        session.delete(session.get(Article, 1))
    session.commit()
    assert _counts(session) == (0, 0, 0)


def test_a_savepoint_left_open_at_commit_is_released_and_leaves_no_transaction(
    session: Session,
) -> None:
    session.begin_nested()
    session.add(Article(id=1, title="a"))
    session.flush()
    session.delete(session.get(Article, 1))
    session.flush()
    session.commit()
    assert _counts(session) == (0, 0, 0)


def test_an_insert_before_the_savepoint_deleted_inside_it_leaves_no_transaction(
    session: Session,
) -> None:
    session.add(Article(id=1, title="a"))
    session.flush()
    with session.begin_nested():
        session.delete(session.get(Article, 1))
    session.commit()
    assert _counts(session) == (0, 0, 0)


def test_nested_savepoints_keep_the_row_until_the_outermost_is_released(
    session: Session,
) -> None:
    """Releasing the inner savepoint must not drop the row: the outer one may still roll back."""
    session.add(Article(id=1, title="a"))
    session.flush()
    outer = session.begin_nested()
    with session.begin_nested():
        session.delete(session.get(Article, 1))
    outer.rollback()
    session.commit()
    assert _counts(session) == (1, 1, 1)


def test_nested_released_savepoints_leave_no_transaction(session: Session) -> None:
    with session.begin_nested(), session.begin_nested():
        session.add(Article(id=1, title="a"))
        session.flush()
        session.delete(session.get(Article, 1))
    session.commit()
    assert _counts(session) == (0, 0, 0)


def test_a_released_savepoint_that_keeps_a_version_keeps_the_transaction(
    session: Session,
) -> None:
    with session.begin_nested():
        session.add_all([Article(id=1, title="a"), Article(id=2, title="b")])
        session.flush()
        session.delete(session.get(Article, 1))
    session.commit()
    assert _counts(session) == (1, 1, 1)
