"""Session listeners: what a flush changed in versioned tables.

One ``after_flush`` listener on :class:`~sqlalchemy.orm.Session` (and so on every session class,
the one inside :class:`~sqlalchemy.ext.asyncio.AsyncSession` included) looks at the flushed
objects only: ``session.new``, ``session.dirty``, ``session.deleted`` and the rows the unit of
work deleted by cascade, never the whole identity map. At that point the rows are written, so
their locks are held, and the attributes still carry their pre-flush history, which tells a real
change from a value set to itself.

The links of a many-to-many relationship through a versioned association table (see
:func:`~sqlalchemy_chronicle.versioned_table`) are rows no object stands for: the unit of work
inserts and deletes them from the relationship's history, and so does capture here, reading the
same history the unit of work used (:func:`_link_changes`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Column, Table, event
from sqlalchemy.orm import InstanceState, RelationshipProperty, Session, UOWTransaction
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.base import PASSIVE_NO_INITIALIZE

from ..schema.history import HistorySpec, link_spec, spec_for
from .changes import Kind, RowChange, current_identity, hand_over, take_restored

__all__ = ["install"]


def install() -> None:
    """Listen to every session's flushes (once per process)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)


def _after_flush(session: Session, flush_context: UOWTransaction) -> None:
    changes = list(_flushed_changes(session, flush_context))
    changes += _link_changes(session, flush_context)
    restoring = take_restored(session)
    for change in changes:
        if restoring and change.kind != "delete":
            change.restored_from = restoring.get((id(change.spec.root_spec), change.identity))
    if changes:
        hand_over(session, changes)


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
            yield RowChange(spec, current_identity(spec, state), "insert", state.dict)
    for obj in session.dirty:
        state = instance_state(obj)
        spec = spec_for(state.mapper)
        if spec is None:
            continue
        known, unsure = _changed_attributes(spec, state)
        if not known and not unsure:
            continue
        identity = current_identity(spec, state)
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


def _link_changes(session: Session, flush_context: UOWTransaction) -> list[RowChange]:
    """The links the flush added to and removed from versioned association tables.

    A link added is an insert of its row, a link removed (or every link of an object deleted) a
    delete; both sides of a two-way relationship report the same link once.
    """
    deleted = {instance_state(obj) for obj in session.deleted}
    deleted.update(
        state
        for state, (is_delete, list_only) in flush_context.states.items()
        if is_delete and not list_only
    )
    states = [*(instance_state(o) for o in (*session.new, *session.dirty)), *deleted]
    found: dict[tuple[int, tuple[Any, ...]], RowChange] = {}
    for state in states:
        for prop in state.mapper.relationships:
            secondary = prop.secondary
            if prop.viewonly or not isinstance(secondary, Table):
                continue
            spec = link_spec(secondary)
            if spec is None:
                continue
            history = flush_context.get_attribute_history(  # type: ignore[no-untyped-call]
                state, prop.key, PASSIVE_NO_INITIALIZE
            )
            if state in deleted:
                removed, added = list(history.non_added()), []
            else:
                removed, added = list(history.deleted), list(history.added)
            batches: tuple[tuple[Kind, list[Any]], ...] = (("delete", removed), ("insert", added))
            for kind, others in batches:
                for other in others:
                    if other is None:
                        continue
                    other_state = (
                        other if isinstance(other, InstanceState) else instance_state(other)
                    )
                    values = _link_values(prop, state, other_state)
                    identity = tuple(values[str(column.key)] for column in spec.mapper.primary_key)
                    found[id(spec), identity] = RowChange(spec, identity, kind, values)
    return list(found.values())


def _link_values(
    prop: RelationshipProperty[Any], state: InstanceState[Any], other: InstanceState[Any]
) -> dict[str, Any]:
    """The association row that links ``state`` to ``other`` through ``prop``, by column key."""
    values: dict[str, Any] = {}
    pairs = [
        *((state, source, target) for source, target in prop.synchronize_pairs),
        *((other, source, target) for source, target in prop.secondary_synchronize_pairs or ()),
    ]
    for owner, source, target in pairs:
        assert isinstance(source, Column)
        key = owner.mapper.get_property_by_column(source).key
        values[str(target.key)] = (
            owner.dict[key] if key in owner.dict else getattr(owner.obj(), key)
        )
    return values


def _changed_attributes(spec: HistorySpec, state: InstanceState[Any]) -> tuple[bool, list[str]]:
    """Whether a tracked attribute changed for sure, and those set without a loaded old value.

    Only attributes in the state's ``committed_state`` were set since the object was loaded, so
    only those are asked for their history. One the flush expired (it was set to a SQL
    expression, such as ``null()`` or ``Item.count + 1``) has no history left to ask: its new
    value is the database's, so it counts as set without a known old value.
    """
    tracked = spec.tracked_keys
    unsure: list[str] = [key for key in state.expired_attributes if key in tracked]
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
