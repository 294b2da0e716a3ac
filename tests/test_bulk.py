"""Bulk ORM statements write the same history and change log as the same changes made through
objects: a differential test over random change sequences, plus the edges."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import ChangeLog, Transaction, UnsupportedStatementError

from .models import Article, Car, Vehicle
from .support import FrozenClock, StatementCounter, assert_well_formed

History = Article.__history__
IDS = st.lists(st.integers(1, 6), min_size=1, max_size=4, unique=True)
KINDS = ["insert", "update_where", "update_by_pk", "delete_where", "upsert"]
STEPS = st.lists(
    st.tuples(st.sampled_from(KINDS), IDS, st.sampled_from(["a", "b"]), st.booleans()),
    min_size=1,
    max_size=8,
)


def upsert_statement(dialect: str, rows: list[dict[str, Any]]) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement = pg_insert(Article).values(rows)
        return statement.on_conflict_do_update(
            index_elements=["id"], set_={"title": statement.excluded.title}
        )
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(Article).values(rows)
        return statement.on_conflict_do_update(
            index_elements=["id"], set_={"title": statement.excluded.title}
        )
    from sqlalchemy.dialects.mysql import insert as mysql_insert

    statement = mysql_insert(Article).values(rows)
    return statement.on_duplicate_key_update(title=statement.inserted.title)


def apply_with_objects(session: Session, kind: str, ids: list[int], title: str) -> None:
    existing = {a.id: a for a in session.scalars(select(Article).where(Article.id.in_(ids)))}
    if kind in ("insert", "upsert"):
        session.add_all(Article(id=i, title=title) for i in ids if i not in existing)
    if kind in ("update_where", "update_by_pk", "upsert"):
        for article in existing.values():
            article.title = title
    if kind == "delete_where":
        for article in existing.values():
            session.delete(article)
    session.flush()


def apply_with_statements(session: Session, kind: str, ids: list[int], title: str) -> None:
    existing = set(session.scalars(select(Article.id).where(Article.id.in_(ids))))
    if kind == "insert":
        rows = [{"id": i, "title": title} for i in ids if i not in existing]
        if rows:
            session.execute(insert(Article), rows)
    elif kind == "update_where":
        session.execute(update(Article).where(Article.id.in_(ids)).values(title=title))
    elif kind == "update_by_pk":
        rows = [{"id": i, "title": title} for i in ids if i in existing]
        if rows:
            session.execute(update(Article), rows)
    elif kind == "delete_where":
        session.execute(delete(Article).where(Article.id.in_(ids)))
    else:
        rows = [{"id": i, "title": title} for i in ids]
        session.execute(upsert_statement(session.get_bind().dialect.name, rows))


def recorded(session: Session) -> tuple[list[tuple], list[tuple]]:
    order = {
        t: n for n, t in enumerate(session.scalars(select(Transaction.id).order_by(Transaction.id)))
    }
    history = [
        (
            v.id,
            v.version,
            v.operation,
            v.title,
            v.views,
            v.valid_from,
            v.valid_to,
            order[v.transaction_id],
        )
        for v in session.scalars(select(History).order_by(History.id, History.version))
    ]
    log = [
        (e.row_id, e.event_type, e.changes, e.timestamp, order[e.transaction_id])
        for e in session.scalars(select(ChangeLog).order_by(ChangeLog.row_id, ChangeLog.id))
    ]
    return history, log


def clear(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in (
            ChangeLog.__table__,
            Transaction.__table__,
            History.__table__,
            Article.__table__,
        ):
            connection.execute(table.delete())


def run(
    engine: Engine,
    clock: FrozenClock,
    steps: list[tuple[str, list[int], str, bool]],
    apply: Callable[[Session, str, list[int], str], None],
) -> tuple[list[tuple], list[tuple]]:
    clear(engine)
    start = clock.now
    with Session(engine) as session:
        for kind, ids, title, commit in steps:
            apply(session, kind, ids, title)
            if commit:
                session.commit()
                clock.advance(seconds=1)
        session.commit()
        clock.now = start
        return recorded(session)


def test_statements_write_what_objects_write(db: Engine, clock: FrozenClock) -> None:
    @settings(settings(), max_examples=min(settings().max_examples, 60))
    @given(steps=STEPS)
    def differential(steps: list[tuple[str, list[int], str, bool]]) -> None:
        by_objects = run(db, clock, steps, apply_with_objects)
        by_statements = run(db, clock, steps, apply_with_statements)
        assert by_statements == by_objects
        assert_well_formed([(h[0], h[1], h[2], h[5], h[6]) for h in by_statements[0]])

    differential()


def test_bulk_update_of_many_rows_is_a_fixed_number_of_statements(
    session: Session, statements: StatementCounter
) -> None:
    session.execute(insert(Article), [{"id": i, "title": "a"} for i in range(1000)])
    session.commit()
    statements.reset()
    result = session.execute(update(Article).where(Article.id < 1000).values(title="b"))
    assert result.rowcount == 1000  # type: ignore[attr-defined]
    session.commit()
    dialect = session.get_bind().dialect.name
    # PostgreSQL/SQLite: the UPDATE .. RETURNING; MariaDB: the SELECT .. FOR UPDATE, the UPDATE.
    # Then: latest versions with their values (MariaDB: + the exact-key re-read), read back of
    # the new values, the transaction row, closing the old versions, the new versions, and the
    # change log. Comparing with the stored versions needs no read of its own.
    expected = 9 if dialect in ("mysql", "mariadb") else 7
    counted = [
        s for s in statements.statements if s.split()[0] in ("SELECT", "INSERT", "UPDATE", "DELETE")
    ]
    assert len(counted) == expected, "\n".join(c[:70] for c in counted)
    assert session.scalar(select(History.title).filter_by(id=999, version=2)) == "b"


def test_the_caller_keeps_its_own_returning_rows(session: Session) -> None:
    session.execute(insert(Article), [{"id": i, "title": "a"} for i in range(3)])
    session.commit()
    result = session.execute(delete(Article).where(Article.id < 2).returning(Article.title))
    assert sorted(result.all()) == [("a",), ("a",)]
    session.commit()
    markers = session.scalars(select(History).filter_by(operation="delete")).all()
    assert sorted(m.id for m in markers) == [0, 1]


def test_bulk_update_that_changes_nothing_writes_nothing(
    session: Session, clock: FrozenClock
) -> None:
    session.execute(insert(Article), [{"id": 1, "title": "a"}])
    session.commit()
    clock.advance(seconds=1)
    session.execute(update(Article).values(title="a"))
    session.commit()
    assert len(session.scalars(select(History)).all()) == 1
    assert len(session.scalars(select(Transaction)).all()) == 1


def test_joined_inheritance_bulk_statements_are_refused(session: Session) -> None:
    session.add(Car(id=1, name="c", doors=3))
    session.commit()
    with pytest.raises(UnsupportedStatementError, match="joined-inheritance"):
        session.execute(update(Car).where(Car.id == 1).values(doors=5))
    session.rollback()
    with pytest.raises(UnsupportedStatementError, match="joined-inheritance"):
        session.execute(update(Vehicle).where(Vehicle.id == 1).values(name="renamed"))
    session.rollback()
    assert session.get(Vehicle, 1).name == "c"  # type: ignore[union-attr]
    assert session.get(Car, 1).doors == 3  # type: ignore[union-attr]
    assert [v.doors for v in session.scalars(select(Car.__history__))] == [3]
    assert isinstance(session.get(Vehicle, 1), Car)
