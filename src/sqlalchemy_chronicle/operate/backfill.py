"""Schema changes and adopting history on existing tables.

History tables are ordinary tables of the application's ``MetaData``, so Alembic's autogenerate
proposes them, and their new columns, like any other (see :doc:`/migrations`). What a migration
cannot do by itself is give rows that existed before versioning a first version: until their first
change, an as-of query does not see them. :func:`backfill_history` writes that version.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, exists, func, inspect, select
from sqlalchemy.orm import Session

from ..capture.changes import RowChange
from ..errors import ConfigurationError, NotVersionedError
from ..read.query import refuse_async
from ..schema.history import spec_for
from ..write import write_history

__all__ = ["backfill_history"]


def backfill_history(
    session: Session,
    cls: type[Any],
    *,
    batch_size: int = 5000,
    commit: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Give every row of ``cls`` that has no history a first version, as it is now.

    The version has operation ``"insert"`` and starts at the time of the session's transaction,
    like any version that transaction writes; rows that already have history are left alone, so
    running it twice adds nothing. The rows are read and written ``batch_size`` at a time, each
    batch with one query and the writer's fixed number of statements.

    :param commit: commit the session after each batch. A long backfill then holds no huge
        transaction, and one that is interrupted keeps the batches it finished: running it again
        resumes with the rows still without history, and duplicates no version. Without it,
        commit the session afterwards.
    :param progress: called after each batch with the number of rows done so far and the number
        that had no history when the call began (the command line's progress bar uses it).
    :returns: the number of rows that got a first version.
    :raises ConfigurationError: ``batch_size`` is not a positive integer.
    """
    refuse_async(session, "backfill_history")
    spec = spec_for(cls)
    if spec is None:
        raise NotVersionedError(f"{cls.__name__} is not a versioned class")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError(f"batch_size={batch_size!r}: give a positive number of rows")
    base = spec.root_spec.base
    has_history = exists().where(
        and_(*(hist == live for hist, live in zip(base.key, base.live_key, strict=True)))
    )
    total = session.scalar(select(func.count()).select_from(cls).where(~has_history)) or 0
    query = select(cls).where(~has_history).limit(batch_size)
    written = 0
    while batch := session.scalars(query).all():
        changes = []
        for obj in batch:
            state = inspect(obj)
            row_spec = spec_for(state.mapper)
            assert row_spec is not None and state.key is not None
            changes.append(RowChange(row_spec, state.key[1], "insert", state.dict))
        write_history(session, changes)
        written += len(changes)
        for obj in batch:
            session.expunge(obj)
        if commit:
            session.commit()
        if progress is not None:
            progress(written, total)
    return written
