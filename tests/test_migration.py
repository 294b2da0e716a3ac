"""Adopting history on a table that already has rows."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import ChangeLog, NotVersionedError, backfill_history, query_as_of

from .models import Article, Car, Note, Vehicle
from .support import FrozenClock


def test_rows_from_before_versioning_get_a_first_version(db: Engine, clock: FrozenClock) -> None:
    with db.begin() as connection:  # written behind the library's back, as before versioning
        connection.execute(
            insert(Article.__table__), [{"id": i, "title": f"t{i}"} for i in range(7)]
        )
    with Session(db) as session:
        session.add(Article(id=100, title="versioned"))
        session.commit()
        t1 = clock.advance(seconds=1)
        assert backfill_history(session, Article, batch_size=3) == 7
        session.commit()
        assert backfill_history(session, Article) == 0
        session.commit()
        versions = session.scalars(
            select(Article.__history__).where(Article.__history__.id < 7)
        ).all()
        assert {(v.version, v.operation, v.valid_from, v.views) for v in versions} == {
            (1, "insert", t1, 0)
        }
        assert len(session.scalars(query_as_of(Article, t1)).all()) == 8
        assert session.scalar(select(func.count()).select_from(ChangeLog)) == 8


def test_joined_inheritance_backfills_every_table(db: Engine, clock: FrozenClock) -> None:
    with db.begin() as connection:
        connection.execute(text("INSERT INTO vehicle (id, kind, name) VALUES (1, 'car', 'c')"))
        connection.execute(text("INSERT INTO car (id, doors) VALUES (1, 4)"))
    with Session(db) as session:
        assert backfill_history(session, Vehicle) == 1
        session.commit()
        (version,) = session.scalars(select(Car.__history__)).all()
        assert (type(version), version.name, version.doors) == (Car.__history__, "c", 4)


def test_unversioned_classes_are_refused(session: Session) -> None:
    with pytest.raises(NotVersionedError):
        backfill_history(session, Note)
