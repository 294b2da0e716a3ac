"""Reading the change log: one audit feed across every versioned table.

Next to the per-table history, every transaction that changes versioned rows writes one
:class:`ChangeLog` row per changed row: which table and row, what happened (``INSERT``,
``UPDATE``, ``DELETE`` or ``RESTORE``), when (the transaction's timestamp) and what changed. Who
and why are on the :class:`~sqlalchemy_chronicle.Transaction` the entry points to.

The entries are written in the flush, in the same database transaction as the change, with a fixed
number of statements whatever the number of rows; a rollback takes them away with the change. Like
the history, they are net per transaction: a row changed by several flushes of one transaction has
one entry, comparing its state before the transaction with its state after.

``row_id`` is the primary key as text: the value itself for a one-column key (``"42"``), a JSON
array for a composite key (``'["acme",7]'``); :func:`format_row_id` builds it.

``changes`` is JSON keyed by column name: for an insert the new values, for a delete the last
values, for an update or restore ``{"column": [old, new]}`` for each column that differs. Values
that JSON cannot hold are written as text (dates and times in ISO 8601, decimals as strings,
NaN and infinities by name). Text is kept exactly, NUL characters included; on PostgreSQL, whose
``JSONB`` holds no NUL, a string with one is stored escaped (a leading U+FDD0, then ``%`` as
``%25`` and NUL as ``%00``, see :data:`~sqlalchemy_chronicle.write._changelog.ESCAPE`), and a
:class:`ChangeLog` entry has the escape undone as it is loaded, so ``entry.changes`` holds the
text as it was. Only SQL that reads the column itself sees the escape.

Every helper here returns a :class:`~sqlalchemy.Select` (one SQL statement) to run with
``session.scalars(...)`` and to refine with ``.where()``, ``.order_by()`` or ``.limit()``.

**Pruned history.** :func:`changelog_between` asks about a time range, as an as-of read asks about
a time: a range that starts before the table's pruning horizon (see :mod:`.horizon`) raises
:class:`~sqlalchemy_chronicle.HistoryPrunedError` when the statement runs in a session, as every
read of the time before a horizon does, rather than answer from the entries a pruning happened to
leave. The statement carries the table and the start as an execution option, which a
``do_orm_execute`` listener checks; the listener is registered by the first
:func:`changelog_between`, so that an application that never calls it runs none of it. The other
helpers ask about no time: they list the entries there are, those older than a horizon included
when the pruning kept the change log (``keep_changelog=True``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, Final

import pendulum
from sqlalchemy import Select, event, inspect, select
from sqlalchemy.orm import ORMExecuteState, QueryContext, Session
from sqlalchemy.orm.attributes import set_committed_value

from ..errors import NotVersionedError
from ..instants import to_instant
from ..schema.history import spec_for
from ..schema.tables import ChangeLog, Transaction, format_row_id
from ..write._changelog import ESCAPE
from .horizon import check_horizon, session_horizons
from .query import normalize_key

__all__ = [
    "changelog_between",
    "changelog_by",
    "changelog_for",
    "changelog_of_transaction",
]


def _ordered() -> Select[ChangeLog]:
    return select(ChangeLog).order_by(ChangeLog.id)


def changelog_for(target: object, pk: Any = None) -> Select[ChangeLog]:
    """The entries of one row: ``changelog_for(article)`` or ``changelog_for(Article, 42)``.

    A composite primary key is given as a tuple, in the order of the mapper's primary key.
    """
    if isinstance(target, type):
        spec = spec_for(target)
        if spec is None:
            raise NotVersionedError(f"{target.__name__} is not a versioned class")
        identity = normalize_key(spec, pk)
    else:
        spec = spec_for(type(target))
        if spec is None:
            raise NotVersionedError(f"{type(target).__name__} is not a versioned class")
        state = inspect(target)
        identity = state.key[1] if state.key else tuple(state.dict.get(k) for k in spec.pk_keys)
    table = spec.root_spec.base.live.fullname
    return _ordered().where(
        ChangeLog.table_name == table, ChangeLog.row_id == format_row_id(tuple(identity))
    )


def changelog_of_transaction(transaction_id: int) -> Select[ChangeLog]:
    """The entries written by one transaction."""
    return _ordered().where(ChangeLog.transaction_id == transaction_id)


def changelog_between(target: type[Any] | str, start: Any, end: Any) -> Select[ChangeLog]:
    """The entries of one table (a versioned class or a table name) in ``[start, end)``.

    ``start`` and ``end`` take what :func:`~sqlalchemy_chronicle.query_as_of` takes.

    :raises HistoryPrunedError: when run in a session, if ``start`` is before the table's
        pruning horizon (see the module documentation).
    """
    if isinstance(target, str):
        table = target
    else:
        spec = spec_for(target)
        if spec is None:
            raise NotVersionedError(f"{target.__name__} is not a versioned class")
        table = spec.root_spec.base.live.fullname
    since = to_instant(start)
    _watch_ranges()
    return (
        _ordered()
        .where(
            ChangeLog.table_name == table,
            ChangeLog.timestamp >= since,
            ChangeLog.timestamp < to_instant(end),
        )
        .execution_options(**{_SINCE: (table, since)})
    )


_SINCE: Final = "_chronicle.changelog_since"
"""The execution option of a :func:`changelog_between` statement: (table, start)."""

_watching = False
_watching_lock = threading.Lock()


def _check_range(state: ORMExecuteState) -> None:
    """Refuse a :func:`changelog_between` statement whose range starts before a horizon."""
    since: tuple[str, pendulum.DateTime] | None = state.execution_options.get(_SINCE)
    if since is not None:
        table, start = since
        check_horizon(session_horizons(state.session, state.bind_arguments), [table], start)


def _watch_ranges() -> None:
    """Register :func:`_check_range` on every session, once per process."""
    global _watching
    if _watching:
        return
    with _watching_lock:
        if not _watching:
            event.listen(Session, "do_orm_execute", _check_range)
            _watching = True


def changelog_by(actor: str) -> Select[ChangeLog]:
    """The entries of the transactions attributed to ``actor``."""
    return (
        _ordered()
        .join(Transaction, Transaction.id == ChangeLog.transaction_id)
        .where(Transaction.actor == actor)
    )


def _is_escaped(value: Any) -> bool:
    """Whether ``value`` holds a string the change-log writer escaped."""
    if isinstance(value, str):
        return value.startswith(ESCAPE)
    if isinstance(value, dict):
        return any(_is_escaped(k) or _is_escaped(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_is_escaped(v) for v in value)
    return False


def _unescaped_text(text: str) -> str:
    if not text.startswith(ESCAPE):
        return text
    return text[1:].replace("%00", "\x00").replace("%25", "%")


def _unescaped(value: Any) -> Any:
    """``value`` with the writer's escapes undone (see the module's docstring)."""
    if isinstance(value, str):
        return _unescaped_text(value)
    if isinstance(value, dict):
        return {_unescaped_text(k): _unescaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unescaped(v) for v in value]
    return value


@event.listens_for(ChangeLog, "load")
def _unescape_on_load(entry: ChangeLog, context: QueryContext) -> None:
    changes = entry.__dict__.get("changes")
    if _is_escaped(changes):
        set_committed_value(entry, "changes", _unescaped(changes))


@event.listens_for(ChangeLog, "refresh")
def _unescape_on_refresh(
    entry: ChangeLog, context: QueryContext, attrs: Iterable[str] | None
) -> None:
    _unescape_on_load(entry, context)
