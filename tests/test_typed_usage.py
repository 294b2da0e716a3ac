"""The typed user code of ``tests/typed_usage.py`` runs, on every database; typed accessors.

``mypy --strict`` checks the types that file states (CI); this runs it and checks the values,
and the typed accessor ``version[Model.attribute]`` on what it refuses.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import Change, ConfigurationError, RestoreResult, history

from .models import Article, Car, Employee, Manager, Tag, Vehicle
from .support import FrozenClock
from .test_asyncio import ASYNC_DRIVERS
from .typed_usage import exercise, exercise_async, exercise_operations


def test_typed_usage_runs(session: Session, clock: FrozenClock) -> None:
    def tick() -> dt.datetime:
        return clock.advance(seconds=1)

    read = exercise(session, tick)
    assert read["current"] == [(3, "Third")]
    assert read["then"] == [("First", "one")]
    assert read["titles"] == ["First", "Second", "Third"]
    assert read["by_key"] == [1, 2, 3]
    assert read["diff"] == {"title": Change("First", "Second")}
    assert read["past_title"] == "First"
    assert read["restored"] == "First"
    assert read["by_time"] == "First"
    assert read["result"] == RestoreResult(inserted=0, updated=0, deleted=0, unchanged=1)
    assert read["operations"] == ["insert", "update", "update", "restore"]


def test_typed_operations_run(session: Session, clock: FrozenClock) -> None:
    def tick() -> dt.datetime:
        return clock.advance(seconds=1)

    exercise(session, tick)
    read = exercise_operations(session, tick)
    assert read["sealed"] == 8  # four versions (see test_typed_usage_runs), four log entries
    assert (read["redacted"], read["ok"]) == (4, True)
    assert read["pruned"] == 3  # every version but the current one
    assert read["refused"] is not None and read["refused"][0] == "article"


def test_typed_async_usage_runs(session: Session, clock: FrozenClock) -> None:
    times: list[dt.datetime] = []

    def tick() -> dt.datetime:
        times.append(clock.advance(seconds=1))
        return times[-1]

    exercise(session, tick)
    engine = session.get_bind()
    session.close()  # its read transaction would keep a SQLite file locked
    url = engine.url.set(drivername=ASYNC_DRIVERS[engine.dialect.name])

    async def main() -> dict[str, Any]:
        async_engine = create_async_engine(url)
        try:
            async with AsyncSession(async_engine, expire_on_commit=False) as async_session:
                return await exercise_async(async_session, times[0])
        finally:
            await async_engine.dispose()

    clock.advance(seconds=1)
    read = asyncio.run(main())
    assert read == {
        "titles": ["First", "Second", "Third", "First"],
        "next": 2,
        "then": ["First"],
        "past_title": "First",
        "restored": "Second",
        "by_time": "First",
    }


def test_item_access_reads_the_models_columns(session: Session, clock: FrozenClock) -> None:
    session.add_all([Manager(id=1, name="Ada", budget=10), Car(id=2, name="Fox", doors=3)])
    session.add(Tag(owner="o", code=1, label="x"))
    session.commit()
    manager = history(session, Manager, 1)[0]
    assert (manager[Employee.name], manager[Manager.name], manager[Manager.budget]) == (
        "Ada",
        "Ada",
        10,
    )
    car = history(session, Car, 2)[0]
    assert (car[Vehicle.name], car[Car.doors], car[Car.id]) == ("Fox", 3, 2)
    tag = history(session, Tag, ("o", 1))[0]
    assert (tag[Tag.owner], tag[Tag.code], tag[Tag.label]) == ("o", 1, "x")


def test_item_access_refuses_what_the_version_does_not_keep(
    session: Session, clock: FrozenClock
) -> None:
    session.add(Article(id=1, title="a", cached_html="<p>a</p>"))
    session.add(Employee(id=2, name="Bo"))
    session.commit()
    version = history(session, Article, 1)[0]
    with pytest.raises(ConfigurationError, match="cached_html"):
        version[Article.cached_html]  # excluded from history
    with pytest.raises(ConfigurationError, match="versions of Article"):
        version[Tag.label]
    employee = history(session, Employee, 2)[0]
    with pytest.raises(ConfigurationError, match="budget"):
        employee[Manager.budget]  # a subclass's column, on a version of the base class
    with pytest.raises(ConfigurationError):
        version["title"]  # type: ignore[index]
