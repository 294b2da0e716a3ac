"""Session listeners: what a flush changed in versioned tables.

One ``after_flush`` listener on :class:`~sqlalchemy.orm.Session` (and so on every session class,
the one inside :class:`~sqlalchemy.ext.asyncio.AsyncSession` included) looks at the flushed
objects only: ``session.new``, ``session.dirty``, ``session.deleted`` and the rows the unit of
work deleted by cascade, never the whole identity map. At that point the rows are written, so
their locks are held, and the attributes still carry their pre-flush history, which tells a real
change from a value set to itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from sqlalchemy import event, inspect
from sqlalchemy.orm import InstanceState, Session, SessionTransaction, UOWTransaction
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.base import PASSIVE_NO_INITIALIZE

from . import _writer
from ._schema import HistorySpec, TableHistory, spec_for
from .errors import NotVersionedError
from .transaction import forget_rolled_back, forget_transaction

__all__ = ["RowChange", "install"]

Kind = Literal["insert", "update", "delete", "upsert"]


@dataclass
class RowChange:
    """One row of a versioned table that a flush or a bulk statement inserted, updated or deleted.

    ``kind`` ``"upsert"`` (from an ``INSERT .. ON CONFLICT``) is an update when the row has a
    current version and an insert when it has none.
    """

    spec: HistorySpec
    identity: tuple[Any, ...]
    kind: Kind
    values: Mapping[str, Any] = field(default_factory=dict)
    """The row's values by attribute name, as far as known: an object's ``__dict__``, or what a
    bulk statement returned. Whatever is missing is read back from the live table."""
    unsure: tuple[str, ...] = ()
    """Attributes whose old value is unknown (set after a commit expired the object, or written by
    a bulk statement): the writer compares them with the stored version and drops the change when
    nothing differs."""
    read_back: dict[TableHistory, dict[str, Any]] = field(default_factory=dict)
    """Values read back from the live tables, by history column key; they win over ``values``."""
    restored_from: int | None = None
    """When the change puts back an earlier version: that version's number. The new version is
    then written with operation ``"restore"``."""

    def value(self, table: TableHistory, column_key: str, attribute: str | None) -> Any:
        """The value of a history column of ``table`` for this row (None when unknown)."""
        fetched = self.read_back.get(table)
        if fetched is not None:
            return fetched.get(column_key)
        return self.values.get(attribute) if attribute is not None else None


_RESTORING: Final = "_chronicle.restoring"


def mark_restored(session: Session, obj: object, version: int) -> None:
    """Record that the next flush of ``obj`` puts back its version number ``version``."""
    state = inspect(obj)
    spec = spec_for(state.mapper)
    if spec is None:
        raise NotVersionedError(f"{type(obj).__name__} is not a versioned class")
    identity = state.key[1] if state.key is not None else _current_identity(spec, state)
    key = (id(spec.root_spec), identity)
    session.info.setdefault(_RESTORING, {})[key] = version


_installed = False


def install() -> None:
    """Register the session listeners, once per process."""
    global _installed
    if not _installed:
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "after_soft_rollback", _after_soft_rollback)
        event.listen(Session, "after_transaction_end", _after_transaction_end)
        _installed = True


def _after_flush(session: Session, flush_context: UOWTransaction) -> None:
    changes = list(_flushed_changes(session, flush_context))
    restoring: dict[tuple[int, tuple[Any, ...]], int] = session.info.pop(_RESTORING, {})
    for change in changes:
        if restoring and change.kind != "delete":
            change.restored_from = restoring.get((id(change.spec.root_spec), change.identity))
    if changes:
        _writer.write_history(session, changes)


def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    forget_rolled_back(session, previous_transaction)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        forget_transaction(session)


def _flushed_changes(session: Session, flush_context: UOWTransaction) -> Iterator[RowChange]:
    """The rows of versioned tables that the flush inserted, updated or deleted.

    Deletions come from ``session.deleted`` and from the unit of work itself: rows removed by a
    ``delete-orphan`` cascade never appear in ``session.deleted``, and the deleted half of a
    "row switch" (delete and re-add of one key in one flush) is not marked in the unit of work.
    """
    for obj in session.new:
        state = instance_state(obj)
        spec = spec_for(state.mapper)
        if spec is not None:
            yield RowChange(spec, _current_identity(spec, state), "insert", state.dict)
    for obj in session.dirty:
        state = instance_state(obj)
        spec = spec_for(state.mapper)
        if spec is None:
            continue
        known, unsure = _changed_attributes(spec, state)
        if not known and not unsure:
            continue
        identity = _current_identity(spec, state)
        if state.key is not None and state.key[1] != identity:
            yield RowChange(spec, state.key[1], "delete", state.dict)
            yield RowChange(spec, identity, "insert", state.dict)
        else:
            yield RowChange(spec, identity, "update", state.dict, () if known else tuple(unsure))
    deleted = {instance_state(obj) for obj in session.deleted}
    deleted.update(
        state
        for state, (is_delete, list_only) in flush_context.states.items()
        if is_delete and not list_only
    )
    for state in deleted:
        spec = spec_for(state.mapper)
        if spec is not None and state.key is not None:
            yield RowChange(spec, state.key[1], "delete", state.dict)


def _changed_attributes(spec: HistorySpec, state: InstanceState[Any]) -> tuple[bool, list[str]]:
    """Whether a tracked attribute changed for sure, and those set without a loaded old value.

    Only attributes in the state's ``committed_state`` were set since the object was loaded, so
    only those are asked for their history.
    """
    unsure: list[str] = []
    tracked = spec.tracked_keys
    for key in state.committed_state:
        if key not in tracked:
            continue
        history = state.get_history(key, PASSIVE_NO_INITIALIZE)
        if not history.has_changes():
            continue
        if history.deleted:
            return True, []
        unsure.append(key)
    return False, unsure


def _current_identity(spec: HistorySpec, state: InstanceState[Any]) -> tuple[Any, ...]:
    return tuple(state.dict[key] for key in spec.pk_keys)
