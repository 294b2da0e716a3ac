"""The legacy ``Session.bulk_*`` methods: versioned by the triggers, refused in ORM mode.

No hook of ORM mode sees ``bulk_save_objects()``, ``bulk_insert_mappings()`` or
``bulk_update_mappings()``; rather than leave the history silently behind, ORM mode refuses them
for its classes. In database capture mode the triggers version them: the history and change log
are those ORM mode writes for the same changes made with the statements it supports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import UnsupportedStatementError, history

from .models import Car, Note
from .models_capture import DbNote, OrmNote
from .support import FrozenClock
from .test_database_capture import TWINS, recorded, twins

__all__ = ["twins"]

LEGACY: dict[str, Callable[[Session, type[Any]], None]] = {
    "bulk_insert_mappings": lambda s, cls: s.bulk_insert_mappings(cls, [{"id": 9, "title": "n"}]),
    "bulk_update_mappings": lambda s, cls: s.bulk_update_mappings(cls, [{"id": 1, "title": "u"}]),
    "bulk_save_objects": lambda s, cls: s.bulk_save_objects([cls(id=9, title="n")]),
}


@pytest.mark.parametrize("method", sorted(LEGACY))
def test_orm_mode_refuses_them(twins: Engine, clock: FrozenClock, method: str) -> None:
    with Session(twins) as session:
        session.add(OrmNote(id=1, title="a"))
        session.commit()
        before = recorded(session, OrmNote)
    with Session(twins) as session:
        with pytest.raises(UnsupportedStatementError, match=r"legacy Session\.bulk_save_objects"):
            LEGACY[method](session, OrmNote)
        session.rollback()
        assert recorded(session, OrmNote) == before
        session.get_one(OrmNote, 1).title = "b"  # the session works on
        session.commit()
        assert [v.title for v in history(session, OrmNote, 1)] == ["a", "b"]


def test_a_joined_subclass_and_objects_are_refused(twins: Engine, clock: FrozenClock) -> None:
    with Session(twins) as session:
        session.add(Car(id=1, name="car", doors=3))
        session.commit()
        car = session.get_one(Car, 1)
        car.doors = 5
        with pytest.raises(UnsupportedStatementError, match="Vehicle"):
            session.bulk_save_objects([car])
        session.rollback()
        assert session.get_one(Car, 1).doors == 3
        session.delete(session.get_one(Car, 1))
        session.commit()


def test_unversioned_classes_and_flushes_are_untouched(twins: Engine, clock: FrozenClock) -> None:
    with Session(twins) as session:
        session.bulk_insert_mappings(Note, [{"id": 1, "text": "a"}])  # type: ignore[arg-type]
        session.bulk_update_mappings(Note, [{"id": 1, "text": "b"}])  # type: ignore[arg-type]
        session.add(OrmNote(id=1, title="a"))
        session.flush()  # a flush with nothing to do, then one that works
        session.commit()
        assert session.get_one(Note, 1).text == "b"
        session.execute(delete(Note))
        session.commit()


def test_database_mode_versions_them_as_orm_mode_versions_the_same_writes(
    twins: Engine, clock: FrozenClock
) -> None:
    start = clock.now
    for cls in TWINS:
        clock.now = start
        with Session(twins) as session:
            rows = [{"id": 1, "title": "a", "count": 1}, {"id": 2, "title": "b"}]
            if cls is DbNote:
                session.bulk_insert_mappings(cls, rows)  # type: ignore[arg-type]
            else:
                session.execute(insert(cls), rows)
            session.commit()
            clock.advance(minutes=1)
            changes = [{"id": 1, "count": 2}, {"id": 2, "title": "c", "flag": True}]
            if cls is DbNote:
                session.bulk_update_mappings(cls, changes)  # type: ignore[arg-type]
            else:
                session.execute(update(cls), changes)
            session.commit()
            clock.advance(minutes=1)
            one = session.get_one(cls, 1)
            one.title = "z"
            new = cls(id=3, title="new")
            if cls is DbNote:
                session.bulk_save_objects([one, new])
                session.expire_all()
            else:
                session.add(new)
            session.commit()
    with Session(twins) as session:
        orm, database = (recorded(session, cls) for cls in TWINS)
        assert database == orm
        assert [row[:3] for row in database["history"]] == [
            (1, 1, "insert"),
            (1, 2, "update"),
            (1, 3, "update"),
            (2, 1, "insert"),
            (2, 2, "update"),
            (3, 1, "insert"),
        ]
