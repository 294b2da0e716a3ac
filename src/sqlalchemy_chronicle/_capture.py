"""Session listeners: what a flush changed in versioned tables.

One ``after_flush`` listener on :class:`~sqlalchemy.orm.Session` (and so on every session class,
the one inside :class:`~sqlalchemy.ext.asyncio.AsyncSession` included) looks at the flushed
objects only: ``session.new``, ``session.dirty`` and ``session.deleted``, never the whole identity
map. At that point the rows are written, so their locks are held, and the attributes still carry
their pre-flush history, which tells a real change from a value set to itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import event, inspect
from sqlalchemy.orm import InstanceState, Session, SessionTransaction, UOWTransaction

from . import _writer
from ._schema import HistorySpec, spec_for
from .transaction import forget_rolled_back

__all__ = ["RowChange", "install"]

Kind = Literal["insert", "update", "delete"]


@dataclass
class RowChange:
    """One row of a versioned table that a flush inserted, updated or deleted."""

    spec: HistorySpec
    identity: tuple[Any, ...]
    kind: Kind
    state: InstanceState[Any]
    unsure: tuple[str, ...] = ()
    """For an update whose every changed attribute had no loaded old value (for example one set
    after a commit expired the object): those attributes. The writer compares them with the stored
    version and drops the change when nothing differs."""


_installed = False


def install() -> None:
    """Register the session listeners, once per process."""
    global _installed
    if not _installed:
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "after_soft_rollback", _after_soft_rollback)
        _installed = True


def _after_flush(session: Session, flush_context: UOWTransaction) -> None:
    changes = list(_flushed_changes(session, flush_context))
    if changes:
        _writer.write_history(session, changes)


def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    forget_rolled_back(session, previous_transaction)


def _flushed_changes(session: Session, flush_context: UOWTransaction) -> Iterator[RowChange]:
    """The rows of versioned tables that the flush inserted, updated or deleted.

    Deletions come from ``session.deleted`` and from the unit of work itself: rows removed by a
    ``delete-orphan`` cascade never appear in ``session.deleted``, and the deleted half of a
    "row switch" (delete and re-add of one key in one flush) is not marked in the unit of work.
    """
    for obj in session.new:
        state = inspect(obj)
        spec = spec_for(state.mapper)
        if spec is not None:
            yield RowChange(spec, _current_identity(spec, state), "insert", state)
    for obj in session.dirty:
        state = inspect(obj)
        spec = spec_for(state.mapper)
        if spec is None:
            continue
        known, unsure = _changed_attributes(spec, state)
        if not known and not unsure:
            continue
        identity = _current_identity(spec, state)
        if state.key is not None and state.key[1] != identity:
            yield RowChange(spec, state.key[1], "delete", state)
            yield RowChange(spec, identity, "insert", state)
        else:
            yield RowChange(spec, identity, "update", state, () if known else tuple(unsure))
    deleted = {inspect(obj) for obj in session.deleted}
    deleted.update(
        state
        for state, (is_delete, list_only) in flush_context.states.items()
        if is_delete and not list_only
    )
    for state in deleted:
        spec = spec_for(state.mapper)
        if spec is not None and state.key is not None:
            yield RowChange(spec, state.key[1], "delete", state)


def _changed_attributes(spec: HistorySpec, state: InstanceState[Any]) -> tuple[bool, list[str]]:
    """Whether a tracked attribute changed for sure, and those set without a loaded old value."""
    unsure: list[str] = []
    for key in spec.tracked_keys:
        history = state.attrs[key].history
        if not history.has_changes():
            continue
        if history.deleted:
            return True, []
        unsure.append(key)
    return False, unsure


def _current_identity(spec: HistorySpec, state: InstanceState[Any]) -> tuple[Any, ...]:
    return tuple(state.dict[key] for key in spec.pk_keys)
