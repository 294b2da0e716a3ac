"""The stored history a flush reads: each touched row's latest version, and version values.

The writer decides what to write from the latest version of every row a flush touched, read in
one statement per hierarchy. That read also brings the latest version's values, and the writer
knows the values of the versions it writes itself; :class:`StoredVersions` keeps both, so that
the comparisons of the writer and the change-log entries read only what is not known already.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select, true

from ..schema.history import TableHistory
from .sql import by_primary_key, chunks, is_mysql, rows_in, unnest_keys, versions_in

__all__ = ["Identity", "Latest", "StoredVersions", "read_latest"]

Identity = tuple[Any, ...]


class Latest(NamedTuple):
    """The newest history row of one identity, as read at the start of the write."""

    version: int
    valid_from: dt.datetime
    valid_to: dt.datetime | None
    transaction_id: int
    operation: str
    restored_from: int | None


_NONE_SEEN = Latest(0, dt.datetime.min, None, 0, "delete", None)
"""Stands for "no version in the snapshot": every stored version is newer."""


class StoredVersions:
    """Values of history rows by (table, identity, version), by history column key.

    Filled with what the flush knows (the latest versions it read, the versions it writes) and
    completed on demand with one read per history table.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._values: dict[tuple[TableHistory, Identity, int], dict[str, Any]] = {}
        self.operations: dict[tuple[Identity, int], str] = {}
        """The operation of base-table versions, by (identity, version)."""

    def know(
        self,
        table: TableHistory,
        identity: Identity,
        version: int,
        values: dict[str, Any],
        operation: str | None = None,
    ) -> None:
        """Record the values (and, for the base table, the operation) of one version."""
        self._values[table, identity, version] = values
        if operation is not None:
            self.operations[identity, version] = operation

    def forget(self, table: TableHistory, identity: Identity, version: int) -> None:
        """Drop a version that was deleted from the history."""
        self._values.pop((table, identity, version), None)
        self.operations.pop((identity, version), None)

    def get(self, table: TableHistory, identity: Identity, version: int) -> dict[str, Any] | None:
        """The values of one version, if known (after :meth:`load`: if stored)."""
        return self._values.get((table, identity, version))

    def load(self, wanted: Iterable[tuple[TableHistory, Identity, int]]) -> None:
        """Read the ``wanted`` versions not known yet, one statement per table."""
        missing: dict[TableHistory, list[tuple[Any, ...]]] = defaultdict(list)
        for table, identity, version in wanted:
            if (table, identity, version) not in self._values:
                missing[table].append((*identity, version))
        for table, keys in missing.items():
            history = table.history
            width = len(table.key)
            columns = [hist for _, hist in table.copied]
            is_base = "operation" in history.c
            extra = [history.c.operation] if is_base else []
            for chunk in chunks(list(dict.fromkeys(keys))):
                query = by_primary_key(
                    self.connection,
                    select(history.c.version, *columns, *extra).where(
                        versions_in(self.connection, table, chunk)
                    ),
                    table,
                )
                for row in self.connection.execute(query):
                    identity = tuple(row[1 : width + 1])
                    values = {c.key: v for c, v in zip(columns, row[1:], strict=False)}
                    self.know(table, identity, row[0], values, row[-1] if is_base else None)


def read_latest(
    connection: Connection,
    base: TableHistory,
    identities: Sequence[Identity],
    stored: StoredVersions,
    exist: set[Identity] | frozenset[Identity] = frozenset(),
) -> dict[Identity, Latest]:
    """The newest history row of each identity, its values recorded in ``stored``.

    ``exist`` names the identities of rows that existed before this flush (updated or deleted
    ones), whose history may have been committed after a MySQL/MariaDB snapshot.

    The read runs after the flush has written, and so locked, the live rows: a concurrent writer
    of the same row has committed or waits for us. On PostgreSQL (read committed) and SQLite each
    statement sees the newest committed history, so a plain read is enough. A MySQL/MariaDB
    repeatable-read transaction reads an older snapshot; a locking read would see the newest rows
    but takes gap locks that make writers of neighbouring rows wait for each other. So there the
    open versions found are re-read by their exact key with ``FOR UPDATE`` (record locks only),
    and only rows closed meanwhile by another transaction are read again with a locking range
    read.
    """
    reader = _LatestReader(connection, base, stored)
    found: dict[Identity, Latest] = {}
    for chunk in chunks(identities):
        found.update(reader.newest(chunk))
    if is_mysql(connection):
        stale = {key: found[key] for key in reader.closed_since_snapshot(found)}
        stale.update((key, _NONE_SEEN) for key in exist if key not in found)
        if stale:
            found.update(reader.newer(stale))
    return found


class _LatestReader:
    def __init__(self, connection: Connection, base: TableHistory, stored: StoredVersions):
        self.connection = connection
        self.base = base
        self.stored = stored
        history = base.history
        self.values = [hist for _, hist in base.copied]
        self.interval = [history.c[name] for name in Latest._fields]

    def _rows(self, query: Any) -> dict[Identity, Latest]:
        width = len(self.base.key)
        count = len(self.values)
        found: dict[Identity, Latest] = {}
        for row in self.connection.execute(query):
            identity = tuple(row[:width])
            latest = found[identity] = Latest(*row[count:])
            values = {c.key: v for c, v in zip(self.values, row, strict=False)}
            self.stored.know(self.base, identity, latest.version, values, latest.operation)
        return found

    def newest(self, identities: Sequence[Identity]) -> dict[Identity, Latest]:
        """The latest versions of ``identities``, in one statement.

        On PostgreSQL a backward primary-key probe per identity (``LATERAL .. LIMIT 1``; a join
        with ``max(version)`` per identity scans the history there), elsewhere a join with each
        identity's highest version number.
        """
        history = self.base.history
        key = self.base.key
        if self.connection.dialect.name == "postgresql":
            wanted = unnest_keys(key, identities)
            newest = (
                select(*self.values, *self.interval)
                .where(*(c == wanted.c[f"k{n}"] for n, c in enumerate(key)))
                .order_by(history.c.version.desc())
                .limit(1)
                .lateral()
            )
            return self._rows(select(*newest.c).select_from(wanted).join(newest, true()))
        highest = (
            select(*key, func.max(history.c.version).label("highest"))
            .where(rows_in(self.connection, key, identities))
            .group_by(*key)
            .subquery()
        )
        on = and_(
            history.c.version == highest.c.highest,
            *(column == highest.c[column.key] for column in key),
        )
        return self._rows(select(*self.values, *self.interval).join_from(history, highest, on))

    def newer(self, seen: dict[Identity, Latest]) -> dict[Identity, Latest]:
        """The newest committed version of rows whose snapshot version ``seen`` is outdated.

        A locking read of the versions after the ones seen; MySQL/MariaDB only, and rare: it
        happens when a concurrent transaction versioned the row after this one's snapshot.
        """
        history = self.base.history
        after: list[ColumnElement[bool]] = [
            and_(
                *(c == v for c, v in zip(self.base.key, identity, strict=True)),
                history.c.version > old.version,
            )
            for identity, old in seen.items()
        ]
        query = (
            select(*self.values, *self.interval)
            .where(or_(*after))
            .order_by(history.c.version)
            .with_for_update()
        )
        return self._rows(by_primary_key(self.connection, query, self.base))

    def closed_since_snapshot(self, found: dict[Identity, Latest]) -> list[Identity]:
        """Identities whose open version in ``found`` is closed in the newest committed data."""
        history = self.base.history
        width = len(self.base.key)
        keys = [(*identity, v.version) for identity, v in found.items() if v.valid_to is None]
        stale: list[Identity] = []
        for chunk in chunks(keys):
            query = by_primary_key(
                self.connection,
                select(*self.base.key, history.c.valid_to)
                .where(versions_in(self.connection, self.base, chunk, use="lock"))
                .with_for_update(),
                self.base,
            )
            stale += [tuple(row[:width]) for row in self.connection.execute(query) if row[-1]]
        return stale
