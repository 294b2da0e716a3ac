"""Set-based history writes for one flush.

The rows that the short path of :mod:`._short_path` can take are versioned there, by the database
from the live rows. For the others (the full path), for every versioned base table touched by a
flush the writer reads, in one statement, the latest version of each touched row with its values
(:mod:`._versions`) and, in one more, the rows as stored (:mod:`._live_rows`),
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
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ColumnElement, delete, select, update
from sqlalchemy.orm import Session

from ..capture.changes import RowChange
from ..config import is_strict
from ..errors import ConcurrentVersionError
from ..schema.history import TableHistory
from ._live_rows import insert_versions, read_live
from ._plan import HierarchyWrite, NewVersion, Plan
from ._transaction import OpenTransaction, current_transaction
from ._versions import Identity, Latest, read_latest
from .sql import chunks, is_mysql, same_as_live, update_by_primary_key, versions_in

__all__ = ["FullPath"]

_TICK = dt.timedelta(microseconds=1)

_HOLDS_MORE_THAN_READ = frozenset({"sqlite"})
"""Dialects where a column may hold more than its type reads back (SQLite keeps a ``Numeric``'s
digits beyond its scale, and a time's text as written): two rows that read back equal are
compared again in the database before an update counts as unchanged."""


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


class FullPath(HierarchyWrite):
    """The full path of one hierarchy's history write: read, decide per row, write."""

    def plan_and_write(self, session: Session, changes: Sequence[RowChange]) -> Plan:
        """The full path: read the latest versions and the rows as stored, decide per row, write."""
        latest = self.latest_versions(changes)
        read_live(self, [c for c in changes if c.kind != "insert" or c.identity in latest])
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
        equal = {
            identity
            for identity, (change, version) in candidates.items()
            if self.stored.operations.get((identity, version), "delete") != "delete"
            and all(self._table_equal(table, change, version) for table in change.spec.tables)
        }
        unsure = {
            identity: candidates[identity]
            for identity in equal
            if self._reads_less_than_stored(candidates[identity][0])
        }
        if unsure:
            equal -= set(unsure) - self._equal_in_database(unsure)
        return equal

    def _reads_less_than_stored(self, change: RowChange) -> bool:
        """Whether rows of ``change`` that read back equal may differ as stored.

        On SQLite (:data:`_HOLDS_MORE_THAN_READ`), and where a table has a JSON column: SQL NULL
        and JSON ``null`` both read back as None.
        """
        return self.connection.dialect.name in _HOLDS_MORE_THAN_READ or any(
            isinstance(hist.type, JSON) for table in change.spec.tables for _, hist in table.copied
        )

    def _equal_in_database(
        self, candidates: dict[Identity, tuple[RowChange, int]]
    ) -> set[Identity]:
        """Identities whose live rows equal the given versions in the database, column for column.

        One statement per history table of the candidates; on MySQL and MariaDB a locking read,
        which sees the newest committed versions, as :func:`read_latest` did.
        """
        by_table: dict[TableHistory, list[tuple[Any, ...]]] = {}
        for identity, (change, version) in candidates.items():
            for table in change.spec.tables:
                by_table.setdefault(table, []).append((*identity, version))
        equal = set(candidates)
        for table, keys in by_table.items():
            history = table.history
            key_columns = [history.c[hist.name] for _, hist in table.copied[: len(table.key)]]
            found: set[Identity] = set()
            for chunk in chunks(keys):
                statement = select(*key_columns).where(
                    versions_in(self.connection, table, chunk, use="lock"), same_as_live(table)
                )
                if is_mysql(self.connection):
                    statement = statement.with_for_update()
                found.update(tuple(row) for row in self.connection.execute(statement))
            equal &= found
        return equal

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
        plan.new.append(FullPath._new_version(change, latest.version, latest.valid_from, operation))

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
                    delete(table.history).where(
                        versions_in(self.connection, table, chunk, use="write")
                    )
                )
        for chunk in chunks(self._keys(plan.to_marker)):
            self.connection.execute(
                update_by_primary_key(
                    self.connection,
                    update(base)
                    .where(versions_in(self.connection, self.base, chunk, use="write"))
                    .values(operation="delete", valid_to=base.c.valid_from, restored_from=None),
                )
            )
        for at, rows in plan.close.items():
            for chunk in chunks(self._keys(rows)):
                self.connection.execute(
                    update_by_primary_key(
                        self.connection,
                        update(base)
                        .where(versions_in(self.connection, self.base, chunk, use="write"))
                        .values(valid_to=at),
                    )
                )
        for at, rows in plan.copy_marker.items():
            for table, keys in self._by_table(rows).items():
                for chunk in chunks(keys):
                    self.connection.execute(self.copy_marker(table, chunk, at))
        for chunk in chunks(self._keys(plan.reopen)):
            self.connection.execute(
                update_by_primary_key(
                    self.connection,
                    update(base)
                    .where(versions_in(self.connection, self.base, chunk, use="write"))
                    .values(valid_to=None),
                )
            )
        self._note_written_markers(plan)
        if plan.new:
            insert_versions(self, plan.new)

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
