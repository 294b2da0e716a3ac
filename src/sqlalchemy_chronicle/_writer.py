"""Set-based history writes for one flush.

The rows that the short path of :mod:`._copy` can take are versioned there, by the database
from the live rows. For the others (the full path), for every versioned base table touched by a
flush the writer reads, in one statement, the latest version of each touched row with its values
(:mod:`._versions`), decides in Python what each row needs, and then writes with a small, fixed
number of statements whatever the number of rows (an executemany counts as one):

1. delete this transaction's own earlier version of a row that is written again (rule: one
   version per row per transaction), or turn it into the delete marker;
2. close the open versions of other transactions (``valid_to`` = this transaction's time);
3. copy delete markers from the history itself;
4. insert the new versions with one statement per table.

Values come from the flushed objects; columns the object does not hold (server defaults, expired
or deferred attributes) are read back from the live table in one more statement. Whether an
update changed anything, and the change-log entries, are decided against the versions the writer
has read or written, so they rarely need a read of their own.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, delete, insert, literal, select, update
from sqlalchemy.orm import Session

from ._changelog import write_changelog
from ._copy import copy_versions
from ._schema import HistorySpec, TableHistory
from ._sql import Use, by_primary_key, chunks, insert_rows, rows_in, versions_in
from ._types import UTCDateTime
from ._versions import Identity, Latest, StoredVersions, read_latest
from .errors import ConcurrentVersionError
from .transaction import (
    OpenTransaction,
    changelog_enabled,
    current_transaction,
    drop_if_unused,
    forget_versioned_rows,
    is_strict,
    open_transaction,
)

if TYPE_CHECKING:
    from ._capture import RowChange

__all__ = ["write_history"]

_TICK = dt.timedelta(microseconds=1)


@dataclass
class NewVersion:
    """A history row to insert from an object's values, or one the short path has inserted."""

    change: RowChange
    version: int
    valid_from: dt.datetime
    operation: str
    is_marker: bool = False
    restored_from: int | None = None


@dataclass
class Plan:
    """What one flush writes to the history of one versioned hierarchy."""

    remove: list[tuple[RowChange, int]] = field(default_factory=list)
    to_marker: list[tuple[RowChange, int]] = field(default_factory=list)
    close: dict[dt.datetime, list[tuple[RowChange, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    copy_marker: dict[dt.datetime, list[tuple[RowChange, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    new: list[NewVersion] = field(default_factory=list)
    reopen: list[tuple[RowChange, int]] = field(default_factory=list)
    """Versions made current again because this transaction's change to the row was undone."""


def write_history(session: Session, changes: Sequence[RowChange]) -> None:
    """Write the history of the rows a flush changed; called from ``after_flush``."""
    by_root: dict[HistorySpec, list[RowChange]] = defaultdict(list)
    for change in _merge(changes):
        by_root[change.spec.root_spec].append(change)
    touched: list[tuple[Connection, OpenTransaction]] = []
    for root, group in by_root.items():
        connection = session.connection(bind_arguments={"mapper": root.mapper})
        writer = _HierarchyWriter(connection, root, changelog_enabled() and root.changelog)
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


def _same(column: ColumnElement[Any], stored: Any, current: Any) -> bool:
    try:
        return bool(column.type.compare_values(stored, current))
    except Exception:
        return False


class _HierarchyWriter:
    """Writes the history of one versioned hierarchy (one base table) for one flush."""

    transaction: OpenTransaction
    """Set once the writer knows there is something to write."""

    keep_written: bool
    """Whether to keep the versions written, as stored (the change log compares them)."""

    def __init__(self, connection: Connection, root: HistorySpec, keep_written: bool):
        self.connection = connection
        self.keep_written = keep_written
        self.root = root
        self.base = root.base
        self.stored = StoredVersions(connection)

    @property
    def opened(self) -> bool:
        """Whether the flush had history to write, so that :attr:`transaction` is set."""
        return hasattr(self, "transaction")

    def open(self, session: Session) -> None:
        """Set :attr:`transaction`, inserting the transaction's row on its first write."""
        self.transaction = open_transaction(session, self.connection)

    def plan_and_write(self, session: Session, changes: Sequence[RowChange]) -> Plan:
        """The full path: read the latest versions, decide per row, write."""
        latest = self.latest_versions(changes)
        self.read_back(changes)
        changes = self.without_unchanged(changes, latest)
        reverted = self.reverted(changes, latest, current_transaction(session))
        if not changes:
            return Plan()
        self.open(session)
        plan = self.plan([c for c in changes if c.identity not in reverted], latest)
        for identity, change in reverted.items():
            plan.remove.append((change, latest[identity].version))
            plan.reopen.append((change, latest[identity].version - 1))
        self.write(plan)
        return plan

    def latest_versions(self, changes: Sequence[RowChange]) -> dict[Identity, Latest]:
        """The newest history row of each changed identity; see :func:`read_latest`."""
        return read_latest(
            self.connection, self.base, [change.identity for change in changes], self.stored
        )

    def _time_after(self, latest: Latest) -> dt.datetime:
        """This transaction's time, or just after ``latest`` when a concurrent one got ahead."""
        timestamp = self.transaction.timestamp
        if timestamp > latest.valid_from:
            return timestamp
        if is_strict():
            raise ConcurrentVersionError(
                f"{self.base.live.name} row {latest!r}: a concurrent transaction "
                f"{latest.transaction_id} wrote a version at {latest.valid_from}, not before "
                f"this transaction's time {timestamp}"
            )
        return latest.valid_from + _TICK

    def plan(
        self, changes: Sequence[RowChange], latest_by_identity: dict[tuple[Any, ...], Latest]
    ) -> Plan:
        """Decide, per row, which history rows to remove, close, copy and insert."""
        own_id = self.transaction.id
        plan = Plan()
        for change in changes:
            latest = latest_by_identity.get(change.identity)
            kind = change.kind
            if kind == "upsert":
                exists = latest is not None and latest.valid_to is None
                kind = "update" if exists else "insert"
            if latest is None:
                first_at: dt.datetime = self.transaction.timestamp
                if kind == "delete":
                    plan.new.append(NewVersion(change, 1, first_at, "delete", is_marker=True))
                else:
                    plan.new.append(self._new_version(change, 1, first_at, kind))
                continue
            is_open = latest.valid_to is None
            is_marker = latest.operation == "delete"
            if latest.transaction_id == own_id:
                self._plan_own(plan, change, kind, latest, is_marker)
                continue
            at = self._time_after(latest)
            if kind == "delete":
                if is_open:
                    plan.close[at].append((change, latest.version))
                plan.copy_marker[at].append((change, latest.version))
                continue
            if is_open:
                plan.close[at].append((change, latest.version))
            operation = "insert" if is_marker else kind
            plan.new.append(self._new_version(change, latest.version + 1, at, operation))
        return plan

    def reverted(
        self,
        changes: Sequence[RowChange],
        latest: dict[tuple[Any, ...], Latest],
        transaction: OpenTransaction | None,
    ) -> dict[tuple[Any, ...], RowChange]:
        """Changes that set a row back to what it was before this transaction changed it.

        An update undone by a later update, or a delete undone by inserting the same values
        again: the row keeps no version of this transaction, its earlier version becomes current
        again. Only rows this transaction has already versioned are compared, with one statement
        per history table involved.
        """
        if transaction is None:
            return {}
        candidates = {
            c.identity: c
            for c in changes
            if c.kind in ("update", "insert", "upsert")
            and (mine := latest.get(c.identity)) is not None
            and mine.transaction_id == transaction.id
            and mine.operation in ("update", "delete")
            and mine.version > 1
        }
        equal = self._equal_to_stored(
            {i: (c, latest[i].version - 1) for i, c in candidates.items()}, only_unsure=False
        )
        return {i: candidates[i] for i in equal}

    def without_unchanged(
        self, changes: Sequence[RowChange], latest: dict[tuple[Any, ...], Latest]
    ) -> list[RowChange]:
        """``changes`` less the updates whose values equal their latest stored version.

        Only updates whose old values were not loaded are compared, with one statement per
        history table involved; a value that cannot be compared counts as changed.
        """
        candidates = {
            c.identity: c
            for c in changes
            if c.unsure and c.identity in latest and latest[c.identity].operation != "delete"
        }
        equal = self._equal_to_stored(
            {i: (c, latest[i].version) for i, c in candidates.items()}, only_unsure=True
        )
        return [c for c in changes if c.identity not in equal]

    def _equal_to_stored(
        self, candidates: dict[Identity, tuple[RowChange, int]], only_unsure: bool
    ) -> set[Identity]:
        """Identities whose values equal the stored version given for each.

        Compares every tracked value, or with ``only_unsure`` the attributes whose old value was
        unknown. A delete marker, or a value that cannot be compared, counts as different.
        """
        self.stored.load(
            (table, identity, version)
            for identity, (change, version) in candidates.items()
            for table in change.spec.tables
        )
        return {
            identity
            for identity, (change, version) in candidates.items()
            if self.stored.operations.get((identity, version), "delete") != "delete"
            and all(
                self._table_equal(table, change, version, only_unsure)
                for table in change.spec.tables
            )
        }

    def _table_equal(
        self, table: TableHistory, change: RowChange, version: int, only_unsure: bool
    ) -> bool:
        stored = self.stored.get(table, change.identity, version)
        if stored is None:
            return False
        width = len(table.key)
        for (_, hist), (key, attr) in zip(
            table.copied[width:], change.spec.value_keys(table)[width:], strict=True
        ):
            if attr is None or (only_unsure and attr not in change.unsure):
                continue
            if not _same(hist, stored.get(key), change.value(table, key, attr)):
                return False
        return True

    @staticmethod
    def _plan_own(
        plan: Plan, change: RowChange, kind: str, latest: Latest, is_marker: bool
    ) -> None:
        """A row this transaction has versioned already: rewrite its one version in place."""
        if kind == "delete":
            if latest.operation == "insert":
                plan.remove.append((change, latest.version))
            elif not is_marker:
                plan.to_marker.append((change, latest.version))
            return
        plan.remove.append((change, latest.version))
        if change.restored_from is None and latest.operation == "restore":
            change.restored_from = latest.restored_from
        operation = "update" if is_marker else latest.operation
        plan.new.append(
            _HierarchyWriter._new_version(change, latest.version, latest.valid_from, operation)
        )

    @staticmethod
    def _new_version(
        change: RowChange, version: int, valid_from: dt.datetime, operation: str
    ) -> NewVersion:
        """A version to insert; a change that puts back an earlier version is a restore."""
        if change.restored_from is not None:
            return NewVersion(change, version, valid_from, "restore", False, change.restored_from)
        return NewVersion(change, version, valid_from, operation)

    def write(self, plan: Plan) -> None:
        """Carry out ``plan`` with a fixed number of statements per table."""
        base = self.base.history
        for table, keys in self._by_table(plan.remove).items():
            for chunk in chunks(keys):
                self.connection.execute(
                    delete(table.history).where(self._versions_in(table, chunk, use="write"))
                )
        for chunk in chunks(self._keys(plan.to_marker)):
            self.connection.execute(
                update(base)
                .where(self._versions_in(self.base, chunk, use="write"))
                .values(operation="delete", valid_to=base.c.valid_from, restored_from=None)
            )
        for at, rows in plan.close.items():
            for chunk in chunks(self._keys(rows)):
                self.connection.execute(
                    update(base)
                    .where(self._versions_in(self.base, chunk, use="write"))
                    .values(valid_to=at)
                )
        for at, rows in plan.copy_marker.items():
            for table, keys in self._by_table(rows).items():
                for chunk in chunks(keys):
                    self.connection.execute(self.copy_marker(table, chunk, at))
        for chunk in chunks(self._keys(plan.reopen)):
            self.connection.execute(
                update(base)
                .where(self._versions_in(self.base, chunk, use="write"))
                .values(valid_to=None)
            )
        self._note_written_markers(plan)
        if plan.new:
            self._insert_new(plan.new)

    def _note_written_markers(self, plan: Plan) -> None:
        """Keep :attr:`stored` equal to the history after the removals and delete markers."""
        stored = self.stored
        for change, version in plan.remove:
            for table in change.spec.tables:
                stored.forget(table, change.identity, version)
        for change, version in plan.to_marker:
            stored.operations[change.identity, version] = "delete"
        for rows in plan.copy_marker.values():
            for change, version in rows:
                for table in change.spec.tables:
                    values = stored.get(table, change.identity, version)
                    if values is not None:
                        stored.know(table, change.identity, version + 1, values)
                stored.operations[change.identity, version + 1] = "delete"

    def _keys(self, rows: Iterable[tuple[RowChange, int]]) -> list[tuple[Any, ...]]:
        return [(*change.identity, version) for change, version in rows]

    def _by_table(
        self, rows: Iterable[tuple[RowChange, int]]
    ) -> dict[TableHistory, list[tuple[Any, ...]]]:
        grouped: dict[TableHistory, list[tuple[Any, ...]]] = {}
        for change, version in rows:
            for table in change.spec.tables:
                grouped.setdefault(table, []).append((*change.identity, version))
        return grouped

    def _versions_in(
        self, table: TableHistory, keys: Sequence[tuple[Any, ...]], use: Use = "read"
    ) -> ColumnElement[bool]:
        return versions_in(self.connection, table, keys, use)

    def copy_marker(
        self, table: TableHistory, keys: Sequence[tuple[Any, ...]], at: dt.datetime
    ) -> Any:
        """``INSERT .. SELECT`` of delete markers from the versions they follow."""
        history = table.history
        values = [hist for _, hist in table.copied]
        targets: list[ColumnElement[Any]] = [*values, history.c.version]
        selected: list[ColumnElement[Any]] = [*values, (history.c.version + 1).label("version")]
        if table is self.base:
            selected += [
                literal(at, UTCDateTime).label("valid_from"),
                literal(at, UTCDateTime).label("valid_to"),
                literal("delete").label("operation"),
                literal(self.transaction.id).label("transaction_id"),
            ]
            targets += [history.c[name] for name in ("valid_from", "valid_to")]
            targets += [history.c.operation, history.c.transaction_id]
        source = by_primary_key(
            self.connection,
            select(*selected).where(self._versions_in(table, keys, use="lock")),
            table,
        )
        return insert(history).from_select(targets, source)

    def _insert_new(self, versions: Sequence[NewVersion]) -> None:
        rows: dict[TableHistory, list[dict[str, Any]]] = defaultdict(list)
        for version in versions:
            change = version.change
            for table in change.spec.tables:
                row = {
                    key: change.value(table, key, attr)
                    for key, attr in change.spec.value_keys(table)
                }
                row["version"] = version.version
                if table is self.base:
                    row["valid_from"] = version.valid_from
                    row["valid_to"] = version.valid_from if version.is_marker else None
                    row["operation"] = version.operation
                    row["transaction_id"] = self.transaction.id
                    row["restored_from"] = version.restored_from
                    self.stored.operations[change.identity, version.version] = version.operation
                rows[table].append(row)
        for table, table_rows in rows.items():
            returning = [table.history.c.version, *(hist for _, hist in table.copied)]
            stored = insert_rows(
                self.connection, table.history, table_rows, returning if self.keep_written else ()
            )
            width = len(table.key)
            keys = [hist.key for _, hist in table.copied]
            for record in stored or ():
                values: dict[str, Any] = dict(zip(keys, record[1:], strict=True))
                self.stored.know(table, tuple(record[1 : width + 1]), record[0], values)

    def read_back(self, changes: Sequence[RowChange]) -> None:
        """Read from the live tables the values that inserted or updated rows do not carry.

        Server defaults, expired or deferred attributes and everything a bulk statement wrote
        are read with one statement per table, so that a version holds the row as stored.
        """
        by_table: dict[TableHistory, dict[tuple[Any, ...], RowChange]] = defaultdict(dict)
        for change in changes:
            if change.kind == "delete":
                continue
            for table in change.spec.tables:
                keys = change.spec.value_keys(table)
                if any(attr is not None and attr not in change.values for _, attr in keys):
                    by_table[table][change.identity] = change
        for table, incomplete in by_table.items():
            columns = [live for live, _ in table.copied]
            width = len(table.key)
            for chunk in chunks(list(incomplete)):
                query = select(*columns).where(rows_in(self.connection, table.live_key, chunk))
                for record in self.connection.execute(query):
                    change = incomplete[tuple(record[:width])]
                    change.read_back[table] = {
                        hist.key: value
                        for (_, hist), value in zip(table.copied, record, strict=True)
                    }
