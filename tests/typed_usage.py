"""Typed user code of the public API: ``mypy --strict`` checks it, the test suite runs it.

Every ``assert_type`` states what a type checker must infer for a call as an application would
write it; CI runs ``mypy`` with this file in its ``files``, so a signature that loses a type fails
there. :func:`exercise` runs the same code on a real database (``tests/test_typed_usage.py``),
so the types stated are also the values' types at run time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pendulum
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, Session
from typing_extensions import assert_type

from sqlalchemy_chronicle import (
    Change,
    Finding,
    HistoryPrunedError,
    PruneResult,
    RedactionResult,
    RestoreResult,
    Transaction,
    VerificationReport,
    Version,
    anchor_digest,
    apply_retention,
    as_of,
    changes,
    history,
    next_version,
    previous_version,
    prune_history,
    query_as_of,
    redact,
    restore,
    restore_all,
    seal_history,
    verify_history,
)
from sqlalchemy_chronicle import asyncio as chronicle

from .models import Article


def exercise(session: Session, tick: Callable[[], dt.datetime]) -> dict[str, Any]:
    """Write three versions of an article, read them back through every typed entry point.

    ``tick`` moves the clock on and returns the new time, at which the next commit is made.
    What was read is returned, for the test to compare with what was written.
    """
    written = tick()
    article = Article(id=1, title="First", body="one")
    session.add(article)
    session.commit()
    tick()
    article.title = "Second"
    session.commit()
    tick()
    article.title = "Third"
    session.commit()

    history_class = Article.__history__
    assert_type(history_class, type[Version[Article]])
    assert_type(history_class.version, InstrumentedAttribute[int])
    assert_type(history_class.valid_to, InstrumentedAttribute[pendulum.DateTime | None])
    current = session.scalars(
        select(history_class)
        .where(history_class.valid_to.is_(None), history_class.title != "")
        .order_by(history_class.version.desc())
    ).all()
    assert_type(current, Sequence[Version[Article]])

    then = session.scalars(query_as_of(Article, written).where(Article.title != "")).all()
    assert_type(then, Sequence[Version[Article]])
    assert_type(then[0][Article.title], str)
    assert_type(then[0][Article.body], str | None)
    assert_type(then[0].title, Any)

    versions = history(session, article)
    assert_type(versions, list[Version[Article]])
    by_key = history(session, Article, 1)
    assert_type(by_key, list[Version[Article]])
    first = versions[0]
    assert_type(first.version, int)
    assert_type(first.valid_from, pendulum.DateTime)
    assert_type(first.operation, str)
    assert_type(first.restored_from, int | None)
    assert_type(first.transaction, Transaction)
    after = next_version(session, first)
    assert_type(after, Version[Article] | None)
    assert after is not None
    assert_type(previous_version(session, after), Version[Article] | None)
    diff = changes(first, after)
    assert_type(diff, dict[str, Change])

    with as_of(session, written) as past:
        old = past.get(Article, 1)
        assert_type(old, Article | None)
        past_title = old.title if old is not None else None

    restored = restore(session, first)
    assert_type(restored, Article | None)
    session.commit()
    tick()
    by_time = restore(session, Article, 1, as_of=written)
    assert_type(by_time, Article | None)
    session.commit()
    tick()
    result = restore_all(session, Article, as_of=written)
    assert_type(result, RestoreResult)
    session.commit()

    return {
        "current": [(v.version, v[Article.title]) for v in current],
        "then": [(v[Article.title], v[Article.body]) for v in then],
        "titles": [v[Article.title] for v in versions],
        "by_key": [v.version for v in by_key],
        "diff": diff,
        "past_title": past_title,
        "restored": restored.title if restored is not None else None,
        "by_time": by_time.title if by_time is not None else None,
        "result": result,
        "operations": [v.operation for v in history(session, Article, 1)],
    }


async def exercise_async(session: AsyncSession, written: dt.datetime) -> dict[str, Any]:
    """The awaitable API on the article :func:`exercise` wrote; ``written`` is its first time."""
    versions = await chronicle.history(session, Article, 1)
    assert_type(versions, list[Version[Article]])
    article = await session.get_one(Article, 1)
    assert_type(await chronicle.history(session, article), list[Version[Article]])
    after = await chronicle.next_version(session, versions[0])
    assert_type(after, Version[Article] | None)
    assert_type(await chronicle.previous_version(session, versions[1]), Version[Article] | None)
    then = (await session.scalars(query_as_of(Article, written))).all()
    assert_type(then, Sequence[Version[Article]])
    async with chronicle.as_of(session, written) as past:
        assert_type(past, AsyncSession)
        old = await past.get(Article, 1)
        assert_type(old, Article | None)
        past_title = old.title if old is not None else None
    restored = await chronicle.restore(session, versions[1])
    assert_type(restored, Article | None)
    restored_title = restored.title if restored is not None else None
    by_time = await chronicle.restore(session, Article, 1, as_of=written)
    assert_type(by_time, Article | None)
    await session.commit()
    return {
        "titles": [v[Article.title] for v in versions],
        "next": after.version if after is not None else None,
        "then": [v[Article.title] for v in then],
        "past_title": past_title,
        "restored": restored_title,
        "by_time": by_time.title if by_time is not None else None,
    }


def exercise_operations(session: Session, tick: Callable[[], dt.datetime]) -> dict[str, Any]:
    """Seal, verify, redact and prune the article :func:`exercise` wrote, with the stated types."""
    sealed = seal_history(session, [Article])
    assert_type(sealed, int)
    session.commit()
    anchor = anchor_digest(session)
    assert_type(anchor, str)
    redacted = redact(session, Article, 1, ["body"], reason="erasure", marker=None)
    assert_type(redacted, RedactionResult)
    session.commit()
    report = verify_history(session, "article", anchor=anchor)
    assert_type(report, VerificationReport)
    findings: list[Finding] = report.findings
    horizon = tick()
    pruned = prune_history(session, horizon, classes=[Article], progress=lambda done, total: None)
    assert_type(pruned, PruneResult)
    assert_type(pruned.horizons, dict[str, pendulum.DateTime])
    kept = apply_retention(session)
    assert_type(kept, PruneResult)
    try:
        history(session, Article, 1)
        refused = None
    except HistoryPrunedError as error:
        refused = (error.table, error.horizon)
    return {
        "sealed": sealed,
        "redacted": redacted.versions,
        "ok": report.ok and not findings,
        "pruned": pruned.versions,
        "refused": refused,
    }
