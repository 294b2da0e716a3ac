"""Set-based history writes for one flush.

The rows that the short path of :mod:`._copy` can take are versioned there, by the database
from the live rows. For the others (the full path), for every versioned base table touched by a
flush the writer reads, in one statement, the latest version of each touched row with its values
(:mod:`._versions`) and, in one more, the rows as stored (:meth:`_HierarchyWriter.read_live`),
decides in Python what each row needs, and then writes with a small, fixed number of statements
whatever the number of rows:

1. delete this transaction's own earlier version of a row that is written again (rule: one
   version per row per transaction), or turn it into the delete marker;
2. close the open versions of other transactions (``valid_to`` = this transaction's time);
3. copy delete markers from the history itself;
4. copy the new versions from the live rows, one ``INSERT .. SELECT`` per table.

A version is the row as the database stored it, never the flushed object: the object may hold a
value the database normalised, miss a column a concurrent transaction changed, or hold a Python
``onupdate`` value of another row of the same executemany. Whether an update changed anything is
decided by comparing the row as stored with its latest version, and the change-log entries
against the versions the writer has read or written, so they rarely need a read of their own.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, and_, delete, insert, literal, select, update
from sqlalchemy.orm import Session

from ._changelog import write_changelog
from ._copy import copy_versions
from ._schema import HistorySpec, TableHistory
from ._sql import (
    Use,
    by_primary_key,
    chunks,
    insert_rows,
    is_mysql,
    keyed_chunks,
    keyed_join,
    keyed_rows,
    versions_in,
)
from ._types import UTCDateTime
from ._versions import Identity, Latest, StoredVersions, read_latest
from .errors import ConcurrentVersionError, InvalidKeyError
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

_Stamp = tuple[dt.datetime, str, "int | None"]
"""What the base-table rows of one ``INSERT .. SELECT`` share: valid_from, operation and the
version restored."""


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
    """Whether two values of ``column`` as the database returned them are equal; NaN is NaN."""
    try:
        if column.type.compare_values(stored, current):
            return True
    except Exception:
        return False
    return _is_nan(stored) and _is_nan(current)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float | Decimal) and value != value


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
        """The full path: read the latest versions and the rows as stored, decide per row, write."""
        latest = self.latest_versions(changes)
        self.read_live([c for c in changes if c.kind != "insert" or c.identity in latest])
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
            self.connection,
            self.base,
            [change.identity for change in changes],
            self.stored,
            exist={change.identity for change in changes if change.kind != "insert"},
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
            {i: (c, latest[i].version - 1) for i, c in candidates.items()}
        )
        return {i: candidates[i] for i in equal}

    def without_unchanged(
        self, changes: Sequence[RowChange], latest: dict[tuple[Any, ...], Latest]
    ) -> list[RowChange]:
        """``changes`` less the updates whose rows as stored equal their latest version.

        The rows as stored, not the flushed objects, are compared: a value the database
        normalised (a ``Numeric`` rounded, a value equal to what a concurrent transaction wrote)
        makes no version. One statement per history table reads the versions not known yet.
        """
        candidates = {
            c.identity: c
            for c in changes
            if c.kind in ("update", "upsert")
            and c.identity in latest
            and latest[c.identity].operation != "delete"
        }
        equal = self._equal_to_stored({i: (c, latest[i].version) for i, c in candidates.items()})
        return [c for c in changes if c.identity not in equal]

    def _equal_to_stored(self, candidates: dict[Identity, tuple[RowChange, int]]) -> set[Identity]:
        """Identities whose rows as stored equal the stored version given for each.

        A delete marker, or a value that cannot be compared, counts as different.
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
            and all(self._table_equal(table, change, version) for table in change.spec.tables)
        }

    def _table_equal(self, table: TableHistory, change: RowChange, version: int) -> bool:
        stored = self.stored.get(table, change.identity, version)
        live = change.read_back.get(table)
        if stored is None or live is None:
            return False
        return all(
            _same(hist, stored.get(hist.key), live.get(hist.key))
            for _, hist in table.copied[len(table.key) :]
        )

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
        """Insert the new versions: copied from the live rows, delete markers from the objects.

        A version is the row as the database stored it, whatever the flushed object holds (a
        column a concurrent transaction changed, a value the database normalised, a Python-side
        ``onupdate`` of an executemany). Only the marker of a row deleted without any earlier
        version (its live row is gone) takes the deleted object's values.
        """
        for version in versions:
            self.stored.operations[version.change.identity, version.version] = version.operation
        markers = [version for version in versions if version.is_marker]
        if markers:
            self._insert_markers(markers)
        copies: dict[TableHistory, dict[_Stamp | None, list[tuple[Any, ...]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for version in versions:
            if version.is_marker:
                continue
            shared: _Stamp = (version.valid_from, version.operation, version.restored_from)
            for table in version.change.spec.tables:
                key = (*version.change.identity, version.version)
                copies[table][shared if table is self.base else None].append(key)
        for table, by_stamp in copies.items():
            columns = [*table.live_key, table.history.c.version]
            for stamp, keys in by_stamp.items():
                for chunk in keyed_chunks(self.connection, columns, keys):
                    self._copy_from_live(table, stamp, chunk)

    def _copy_from_live(
        self, table: TableHistory, stamp: _Stamp | None, keys: Sequence[tuple[Any, ...]]
    ) -> None:
        """``INSERT .. SELECT`` of new versions from the live rows of ``table``.

        ``keys`` are (identity..., version number) of the versions; ``stamp`` the interval start,
        operation and restored version shared by the base table's rows.
        """
        history = table.history
        width = len(table.key)
        names = [f"k{n}" for n in range(width)]
        wanted = keyed_rows(
            self.connection, [*table.live_key, history.c.version], keys, [*names, "version"]
        )
        on = and_(*(c == wanted.c[name] for c, name in zip(table.live_key, names, strict=True)))
        targets: list[ColumnElement[Any]] = [hist for _, hist in table.copied]
        selected: list[ColumnElement[Any]] = [live for live, _ in table.copied]
        targets.append(history.c.version)
        selected.append(wanted.c.version)
        if stamp is not None:
            valid_from, operation, restored_from = stamp
            targets += [history.c.valid_from, history.c.operation, history.c.transaction_id]
            selected += [
                literal(valid_from, UTCDateTime),
                literal(operation),
                literal(self.transaction.id),
            ]
            if restored_from is not None:
                targets.append(history.c.restored_from)
                selected.append(literal(restored_from))
        source = keyed_join(self.connection, select(*selected), wanted, table.live, on)
        statement = insert(history).from_select(targets, source)
        if not self.connection.dialect.insert_returning:
            written = self.connection.execute(statement).rowcount
        else:
            keep = self.keep_written and table.key_returns_as_sent
            returned = [hist for _, hist in table.copied] if keep else []
            keys_of = [hist.key for hist in returned]
            rows = self.connection.execute(statement.returning(history.c.version, *returned)).all()
            for record in rows if keep else ():
                values: dict[str, Any] = dict(zip(keys_of, record[1:], strict=True))
                self.stored.know(table, tuple(record[1 : width + 1]), record[0], values)
            written = len(rows)
        if written != len(keys):
            raise InvalidKeyError(
                f"{table.live.name}: {len(keys) - written} of the rows flushed are not in the "
                "table afterwards: the database stored them under other keys (MySQL and "
                "MariaDB, for one, number a row anew when its AUTO_INCREMENT key is set to 0)"
            )

    def _insert_markers(self, markers: Sequence[NewVersion]) -> None:
        """Insert the delete markers of rows deleted without an earlier version."""
        rows: dict[TableHistory, list[dict[str, Any]]] = defaultdict(list)
        for version in markers:
            change = version.change
            for table in change.spec.tables:
                row = {
                    key: change.value(table, key, attr)
                    for key, attr in change.spec.value_keys(table)
                }
                row["version"] = version.version
                if table is self.base:
                    row["valid_from"] = row["valid_to"] = version.valid_from
                    row["operation"] = version.operation
                    row["transaction_id"] = self.transaction.id
                    row["restored_from"] = None
                rows[table].append(row)
        for table, table_rows in rows.items():
            insert_rows(self.connection, table.history, table_rows)

    def read_live(self, changes: Sequence[RowChange]) -> None:
        """Read the rows as stored that the flush inserted or updated, to compare them.

        One statement per table and chunk fills each change's :attr:`RowChange.read_back`; the
        live rows are joined to the identities asked for, numbered, so that a key the database
        gives back in another form (a time in another zone, a padded ``CHAR``) still finds its
        change. On MySQL/MariaDB the read locks (the rows are the flush's, locked already), so
        that it sees the newest committed row and not this transaction's snapshot.
        """
        by_table: dict[TableHistory, dict[tuple[Any, ...], RowChange]] = defaultdict(dict)
        for change in changes:
            if change.kind != "delete":
                change.read_back.clear()
                for table in change.spec.tables:
                    by_table[table][change.identity] = change
        locking = is_mysql(self.connection)
        for table, wanted in by_table.items():
            columns = [live for live, _ in table.copied]
            identities = list(wanted)
            typed = [*table.live_key, table.history.c.version]
            numbered = [(*identity, n) for n, identity in enumerate(identities)]
            names = [*(f"k{n}" for n in range(len(table.key))), "n"]
            for chunk in keyed_chunks(self.connection, typed, numbered):
                asked = keyed_rows(self.connection, typed, chunk, names)
                on = and_(*(c == asked.c[f"k{n}"] for n, c in enumerate(table.live_key)))
                query = keyed_join(
                    self.connection, select(asked.c.n, *columns), asked, table.live, on
                )
                if locking:
                    query = query.with_for_update(of=table.live)
                for n, *record in self.connection.execute(query):
                    change = wanted[identities[n]]
                    change.read_back[table] = {
                        hist.key: value
                        for (_, hist), value in zip(table.copied, record, strict=True)
                    }
