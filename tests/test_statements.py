"""History writes are set-based: the statements they add do not grow with the number of rows."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import configure

from .models import Article
from .support import FrozenClock, StatementCounter


def history_statements(counter: StatementCounter) -> list[str]:
    tables = ("article_history", "chronicle_transaction", "chronicle_changelog")
    return [s for s in counter.statements if any(t in s for t in tables)]


def run_workload(
    session: Session, clock: FrozenClock, statements: StatementCounter, rows: int, first: int
) -> dict[str, list[str]]:
    ids = range(first, first + rows)
    seen: dict[str, list[str]] = {}
    statements.reset()
    session.add_all([Article(id=i, title=f"t{i}") for i in ids])
    session.commit()
    seen["insert"] = history_statements(statements)

    clock.advance(seconds=1)
    articles = session.scalars(select(Article).where(Article.id.in_(ids))).all()
    statements.reset()
    for article in articles:
        article.title += "!"
        article.views = 7
    session.commit()
    seen["update"] = history_statements(statements)

    clock.advance(seconds=1)
    articles = session.scalars(select(Article).where(Article.id.in_(ids))).all()
    statements.reset()
    for article in articles:
        session.delete(article)
    session.commit()
    seen["delete"] = history_statements(statements)
    return seen


@pytest.mark.parametrize("changelog", [True, False], ids=["with-changelog", "history-only"])
@pytest.mark.parametrize("rows", [1000])
def test_history_statements_per_flush_do_not_grow_with_rows(
    session: Session, clock: FrozenClock, statements: StatementCounter, rows: int, changelog: bool
) -> None:
    configure(changelog=changelog)
    small = run_workload(session, clock, statements, rows=10, first=1)
    large = run_workload(session, clock, statements, rows=rows, first=100_000)
    # The transaction row: one INSERT (the frozen test clock reads no SQL).
    # PostgreSQL and SQLite write from the live rows and the closed versions:
    #   insert: INSERT .. SELECT; update: close UPDATE .. RETURNING + INSERT .. SELECT;
    #   delete: close UPDATE .. RETURNING + INSERT .. SELECT of the markers.
    # MySQL/MariaDB, which cannot return updated rows, read the latest versions first:
    #   insert: SELECT + INSERT; update: SELECT + close UPDATE + INSERT; delete: SELECT + close
    #   UPDATE + INSERT .. SELECT of the markers; updates and deletes add the exact-key re-read
    #   FOR UPDATE of the open versions (their plain read sees the transaction's snapshot).
    # The change log adds one INSERT of the entries: the versions it compares are those the
    # writer read and wrote.
    snapshot_reads = session.get_bind().dialect.name in ("mysql", "mariadb")
    log = int(changelog)
    expected = {
        "insert": (3 if snapshot_reads else 2) + log,
        "update": (5 if snapshot_reads else 3) + log,
        "delete": (5 if snapshot_reads else 3) + log,
    }
    assert {phase: len(s) for phase, s in large.items()} == expected
    assert {phase: len(s) for phase, s in small.items()} == expected
    for phase in ("update", "delete"):
        locking = [s for s in large[phase] if "FOR UPDATE" in s]
        assert len(locking) == snapshot_reads
