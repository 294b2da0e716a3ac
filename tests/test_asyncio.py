"""The API for AsyncSession: aiosqlite, psycopg's async mode and aiomysql.

Each test runs one coroutine with :func:`asyncio.run` against an async engine on the database of
the run; the synchronous functions given an async session refuse it, pointing here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, selectinload

from sqlalchemy_chronicle import (
    ConfigurationError,
    HistoryPrunedError,
    as_of,
    backfill_history,
    history,
    restore,
    restore_all,
)
from sqlalchemy_chronicle import asyncio as chronicle

from .models import Article
from .models_travel import Customer, Order, OrderLine, Product
from .support import FrozenClock

ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+aiomysql",
}


def run(engine: Engine, body: Callable[[async_sessionmaker[AsyncSession]], Awaitable[Any]]) -> Any:
    """Run ``body`` with sessions of an async engine on ``engine``'s database."""
    url = engine.url.set(drivername=ASYNC_DRIVERS[engine.dialect.name])

    async def main() -> Any:
        async_engine = create_async_engine(url)
        try:
            return await body(async_sessionmaker(async_engine, expire_on_commit=False))
        finally:
            await async_engine.dispose()

    return asyncio.run(main())


def test_history_steps_and_restore(db: Engine, clock: FrozenClock) -> None:
    async def body(sessions: async_sessionmaker[AsyncSession]) -> None:
        async with sessions() as session:
            session.add(Article(id=1, title="first"))
            await session.commit()
            t0 = clock.now
            clock.advance(seconds=1)
            article = await session.get(Article, 1)
            assert article is not None
            article.title = "second"
            await session.commit()
            clock.advance(seconds=1)

            versions = await chronicle.history(session, Article, 1)
            assert [(v.version, v.title) for v in versions] == [(1, "first"), (2, "second")]
            assert await chronicle.history(session, article) == versions
            assert await chronicle.previous_version(session, versions[1]) is versions[0]
            assert await chronicle.next_version(session, versions[0]) is versions[1]

            restored = await chronicle.restore(session, Article, 1, as_of=t0)
            await session.commit()
            assert restored.title == "first"
            versions = await chronicle.history(session, Article, 1)
            assert [v.operation for v in versions] == ["insert", "update", "restore"]

            clock.advance(seconds=1)
            await session.delete(restored)
            await session.commit()
            result = await chronicle.restore_all(session, Article, as_of=t0)
            await session.commit()
            assert result.inserted == 1
            assert (await session.get(Article, 1)) is not None

    run(db, body)


def test_the_time_travel_session_loads_relationships(db: Engine, clock: FrozenClock) -> None:
    async def body(sessions: async_sessionmaker[AsyncSession]) -> None:
        async with sessions() as session:
            session.add_all([Customer(id=1, name="Ann"), Product(id=1, name="pen", price=2)])
            session.add(Order(id=1, customer_id=1, status="new"))
            session.add(OrderLine(id=1, order_id=1, product_id=1, quantity=3))
            await session.commit()
            t0 = clock.now
            clock.advance(seconds=1)
            line = await session.get(OrderLine, 1)
            assert line is not None
            line.quantity = 9
            order = await session.get(Order, 1)
            assert order is not None
            order.status = "paid"
            await session.commit()

            async with chronicle.as_of(session, t0) as past:
                then = await past.get(Order, 1)
                assert then is not None and then.status == "new"
                loaded = await past.scalars(select(Order).options(selectinload(Order.lines)))
                assert [line.quantity for line in loaded.one().lines] == [3]
            async with chronicle.as_of(session.bind, t0) as past:
                assert (await past.scalars(select(Order.status))).all() == ["new"]

    run(db, body)


def test_backfill(db: Engine, clock: FrozenClock) -> None:
    with db.begin() as connection:
        connection.execute(Article.__table__.insert(), [{"id": i, "title": "t"} for i in range(3)])

    async def body(sessions: async_sessionmaker[AsyncSession]) -> int:
        async with sessions() as session:
            done = await chronicle.backfill_history(session, Article, commit=True)
            return done

    assert run(db, body) == 3


def test_the_synchronous_functions_refuse_an_async_session(db: Engine) -> None:
    async def body(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
        errors = []
        async with sessions() as session:
            calls: list[Callable[[], Any]] = [
                lambda: history(session, Article, 1),  # type: ignore[call-overload]
                lambda: restore(session, Article, 1, as_of="2030-01-01T00:00:00Z"),  # type: ignore[call-overload]
                lambda: restore_all(session, Article, as_of="2030-01-01T00:00:00Z"),  # type: ignore[arg-type]
                lambda: backfill_history(session, Article),  # type: ignore[arg-type]
                lambda: as_of(session, "2030-01-01T00:00:00Z"),  # type: ignore[arg-type]
            ]
            for call in calls:
                with pytest.raises(
                    ConfigurationError, match=r"sqlalchemy_chronicle\.asyncio\."
                ) as caught:
                    call()
                errors.append(str(caught.value).split("(")[0])
        return errors

    assert run(db, body) == [
        "history",
        "restore",
        "restore_all",
        "backfill_history",
        "as_of",
    ]
    with Session(db) as session:
        assert history(session, Article, 1) == []


def test_operating_history(db: Engine, clock: FrozenClock) -> None:
    async def body(sessions: async_sessionmaker[AsyncSession]) -> None:
        async with sessions() as session:
            session.add(Article(id=1, title="first", body="secret"))
            await session.commit()
            clock.advance(seconds=1)
            article = await session.get(Article, 1)
            assert article is not None
            article.title = "second"
            await session.commit()
            horizon = clock.advance(seconds=1)

            assert await chronicle.seal_history(session, [Article]) == 4
            await session.commit()
            anchor = await chronicle.anchor_digest(session)
            redacted = await chronicle.redact(session, Article, 1, ["body"], reason="erasure")
            assert redacted.versions == 2
            await session.commit()
            assert (await chronicle.verify_history(session, [Article], anchor=anchor)).ok
            pruned = await chronicle.prune_history(session, horizon, classes=[Article])
            assert (pruned.versions, pruned.changelog) == (1, 2)
            assert (await chronicle.verify_history(session, "article")).ok
            assert "article" not in (await chronicle.apply_retention(session)).horizons
            with pytest.raises(HistoryPrunedError):
                await chronicle.history(session, Article, 1)

    run(db, body)
