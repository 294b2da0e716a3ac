"""The API for :class:`~sqlalchemy.ext.asyncio.AsyncSession`.

As SQLAlchemy's ``ext.asyncio`` mirrors its ORM, this module mirrors the library's API.
Capture needs nothing here: an ``AsyncSession`` flushes through a plain session inside, which the
library versions like any other. Reading the past, restoring, backfilling and operating history
(pruning, redaction, the ledger) take the async session and are awaited::

    from sqlalchemy_chronicle import asyncio as chronicle

    versions = await chronicle.history(session, Article, 7)
    await chronicle.restore(session, versions[0])
    await session.commit()

    async with chronicle.as_of(session, last_tuesday) as past:
        order = await past.get(Order, 7)
        lines = await order.awaitable_attrs.lines  # with AsyncAttrs on the models

Each function runs its synchronous counterpart in the session's greenlet
(:meth:`~sqlalchemy.ext.asyncio.AsyncSession.run_sync`), so it behaves, and fails, exactly as
that one does. :func:`query_as_of`, :func:`changes` and the change-log queries build statements
or compare loaded versions, without I/O: use them as they are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar, overload

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from .instants import TimeLike
from .operate import backfill, ledger, redaction, retention
from .operate._targets import Target
from .read import query
from .recovery import api
from .recovery._target import MISSING, Include
from .schema.history import Version

__all__ = [
    "anchor_digest",
    "apply_retention",
    "as_of",
    "backfill_history",
    "history",
    "next_version",
    "previous_version",
    "prune_history",
    "redact",
    "restore",
    "restore_all",
    "seal_history",
    "verify_history",
]

T = TypeVar("T")


@overload
async def history(session: AsyncSession, target: type[T], key: Any, /) -> list[Version[T]]: ...
@overload
async def history(session: AsyncSession, target: T, /) -> list[Version[T]]: ...


async def history(session: AsyncSession, target: Any, key: Any = MISSING, /) -> list[Version[Any]]:
    """Every version of one row, oldest first; see :func:`sqlalchemy_chronicle.history`."""
    if key is MISSING:
        return await session.run_sync(lambda s: query.history(s, target))
    return await session.run_sync(lambda s: query.history(s, target, key))


async def previous_version(session: AsyncSession, version: Version[T]) -> Version[T] | None:
    """The version before ``version``; see :func:`sqlalchemy_chronicle.previous_version`."""
    return await session.run_sync(lambda s: query.previous_version(s, version))


async def next_version(session: AsyncSession, version: Version[T]) -> Version[T] | None:
    """The version after ``version``; see :func:`sqlalchemy_chronicle.next_version`."""
    return await session.run_sync(lambda s: query.next_version(s, version))


@overload
async def restore(
    session: AsyncSession,
    version: Version[T],
    /,
    *,
    include: Iterable[Include] = (),
    allow_delete: bool = False,
    values: Mapping[str, Any] | None = None,
) -> T | None: ...
@overload
async def restore(
    session: AsyncSession,
    cls: type[T],
    key: Any,
    /,
    *,
    as_of: TimeLike | None = None,
    include: Iterable[Include] = (),
    allow_delete: bool = False,
    values: Mapping[str, Any] | None = None,
) -> T | None: ...
@overload
async def restore(
    session: AsyncSession,
    obj: T,
    /,
    *,
    as_of: TimeLike,
    include: Iterable[Include] = (),
    allow_delete: bool = False,
    values: Mapping[str, Any] | None = None,
) -> T | None: ...


async def restore(
    session: AsyncSession,
    target: Any,
    key: Any = MISSING,
    /,
    *,
    as_of: TimeLike | None = None,
    include: Iterable[Include] = (),
    allow_delete: bool = False,
    values: Mapping[str, Any] | None = None,
) -> Any:
    """Put a row back as it was; see :func:`sqlalchemy_chronicle.restore`."""

    def run(sync: Any) -> Any:
        return api.restore(
            sync,
            target,
            key,
            as_of=as_of,
            include=include,
            allow_delete=allow_delete,
            values=values,
        )

    return await session.run_sync(run)


async def restore_all(
    session: AsyncSession,
    cls: type[Any],
    *,
    as_of: TimeLike,
    where: ColumnElement[bool] | Sequence[ColumnElement[bool]] | None = None,
) -> api.RestoreResult:
    """Put a table back as it was, in SQL; see :func:`sqlalchemy_chronicle.restore_all`."""
    return await session.run_sync(lambda s: api.restore_all(s, cls, as_of=as_of, where=where))


async def backfill_history(
    session: AsyncSession,
    cls: type[Any],
    *,
    batch_size: int = 5000,
    commit: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """First versions for rows without history; see :func:`sqlalchemy_chronicle.backfill_history`.

    A ``progress`` callback runs in the session's greenlet, between batches.
    """

    def run(sync: Any) -> int:
        return backfill.backfill_history(
            sync, cls, batch_size=batch_size, commit=commit, progress=progress
        )

    return await session.run_sync(run)


async def prune_history(
    session: AsyncSession,
    before: TimeLike,
    *,
    classes: Iterable[Target] | Target | None = None,
    keep_changelog: bool = False,
    batch_size: int = 5000,
    progress: Callable[[int, int], None] | None = None,
    dry_run: bool = False,
) -> retention.PruneResult:
    """Prune history to a horizon; see :func:`sqlalchemy_chronicle.prune_history`.

    A ``progress`` callback runs in the session's greenlet, between batches.
    """

    def run(sync: Any) -> retention.PruneResult:
        return retention.prune_history(
            sync,
            before,
            classes=classes,
            keep_changelog=keep_changelog,
            batch_size=batch_size,
            progress=progress,
            dry_run=dry_run,
        )

    return await session.run_sync(run)


async def apply_retention(
    session: AsyncSession,
    now: TimeLike | None = None,
    *,
    keep_changelog: bool = False,
    batch_size: int = 5000,
    progress: Callable[[int, int], None] | None = None,
    dry_run: bool = False,
) -> retention.PruneResult:
    """Prune every class to its ``retain``; see :func:`sqlalchemy_chronicle.apply_retention`."""

    def run(sync: Any) -> retention.PruneResult:
        return retention.apply_retention(
            sync,
            now,
            keep_changelog=keep_changelog,
            batch_size=batch_size,
            progress=progress,
            dry_run=dry_run,
        )

    return await session.run_sync(run)


async def redact(
    session: AsyncSession,
    target: Any,
    key: Any,
    columns: Sequence[str],
    *,
    reason: str,
    marker: str | None = None,
) -> redaction.RedactionResult:
    """Redact columns of one row's history; see :func:`sqlalchemy_chronicle.redact`."""
    return await session.run_sync(
        lambda s: redaction.redact(s, target, key, columns, reason=reason, marker=marker)
    )


async def seal_history(
    session: AsyncSession,
    classes: Iterable[Target] | Target | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Seal what is not sealed yet; see :func:`sqlalchemy_chronicle.seal_history`."""
    return await session.run_sync(lambda s: ledger.seal_history(s, classes, progress=progress))


async def verify_history(
    session: AsyncSession,
    classes: Iterable[Target] | Target | None = None,
    *,
    anchor: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ledger.VerificationReport:
    """Check history against the ledger; see :func:`sqlalchemy_chronicle.verify_history`."""
    return await session.run_sync(
        lambda s: ledger.verify_history(s, classes, anchor=anchor, progress=progress)
    )


async def anchor_digest(session: AsyncSession) -> str:
    """The ledger's anchor digest; see :func:`sqlalchemy_chronicle.anchor_digest`."""
    return await session.run_sync(ledger.anchor_digest)


@asynccontextmanager
async def as_of(
    source: AsyncSession | AsyncEngine | AsyncConnection, when: TimeLike
) -> AsyncIterator[AsyncSession]:
    """A read-only :class:`~sqlalchemy.ext.asyncio.AsyncSession` over the database at ``when``.

    The async counterpart of :func:`sqlalchemy_chronicle.as_of`: statements, ``get()`` and
    relationship loads (eager, or lazy through ``awaitable_attrs``) see every versioned table as
    it was. The session is closed when the block ends.
    """
    if isinstance(source, AsyncSession):
        past = AsyncSession(
            sync_session_class=query.AsOfSession, when=when, source=source.sync_session
        )
    else:
        past = AsyncSession(source, sync_session_class=query.AsOfSession, when=when)
    try:
        yield past
    finally:
        await past.close()
