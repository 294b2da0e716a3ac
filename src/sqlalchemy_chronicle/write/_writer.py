"""Writing the history of one flush: the short path first, the full path for the rest.

:func:`write_history` is what the capture layer hands its changes to (see
:data:`~sqlalchemy_chronicle.capture.changes.Writer`). Per versioned hierarchy it lets the short
path (:mod:`._short_path`) version the rows the database can copy by itself, the full path
(:mod:`._full_path`) the others, then derives the change-log entries (:mod:`._changelog`) and
keeps the transaction's bookkeeping (:mod:`._transaction`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from ..capture.changes import RowChange
from ..config import changelog_enabled
from ..schema.history import HistorySpec
from ._changelog import write_changelog
from ._full_path import FullPath
from ._plan import NewVersion, Plan
from ._short_path import copy_versions
from ._transaction import OpenTransaction, drop_if_unused, forget_versioned_rows

__all__ = ["write_history"]


def write_history(session: Session, changes: Sequence[RowChange]) -> None:
    """Write the history of the rows a flush changed; called from ``after_flush``."""
    by_root: dict[HistorySpec, list[RowChange]] = defaultdict(list)
    for change in _merge(changes):
        by_root[change.spec.root_spec].append(change)
    touched: list[tuple[Connection, OpenTransaction]] = []
    for root, group in by_root.items():
        connection = session.connection(bind_arguments={"mapper": root.mapper})
        writer = FullPath(connection, root, changelog_enabled() and root.changelog)
        copied, rest = copy_versions(session, writer, group)
        plan = writer.plan_and_write(session, rest) if rest else Plan()
        if not writer.opened:
            continue
        at = writer.transaction.timestamp
        plan.new += [
            NewVersion(c, number, at, operation, is_marker=operation == "delete")
            for c, number, operation in copied
        ]
        if writer.keep_written:
            write_changelog(writer, plan)
        _note_versioned_rows(session, writer.transaction, root, plan)
        touched.append((connection, writer.transaction))
    for connection, transaction in touched:
        drop_if_unused(session, connection, transaction)


def _note_versioned_rows(
    session: Session, transaction: OpenTransaction, root: HistorySpec, plan: Plan
) -> None:
    written = {change.identity for change, _ in plan.to_marker}
    written.update(change.identity for rows in plan.copy_marker.values() for change, _ in rows)
    written.update(new.change.identity for new in plan.new)
    removed = {change.identity for change, _ in plan.remove} - written
    forget_versioned_rows(session, transaction, {(id(root), identity) for identity in removed})
    transaction.versioned_rows.update((id(root), identity) for identity in written)


def _merge(changes: Iterable[RowChange]) -> list[RowChange]:
    """One change per row: a delete and an insert of the same identity make an update.

    The ORM turns such a pair into an UPDATE of the columns the new object sets ("row switch");
    whether a tracked value changed is then decided against the stored version.
    """
    merged: dict[tuple[int, tuple[Any, ...]], RowChange] = {}
    for change in changes:
        key = (id(change.spec.root_spec), change.identity)
        earlier = merged.get(key)
        if earlier is None:
            merged[key] = change
        elif {earlier.kind, change.kind} == {"delete", "insert"}:
            survivor = change if change.kind == "insert" else earlier
            survivor.kind = "update"
            survivor.unsure = tuple(survivor.spec.tracked_keys)
            merged[key] = survivor
    return list(merged.values())
