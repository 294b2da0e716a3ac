"""The rows as the database stored them: read to compare, copied into new versions.

Every version the full path writes is the live row as stored at the end of the transaction's last
write to it, never the flushed object, which may hold a value the database normalised, miss a
column a concurrent transaction changed, or hold a Python ``onupdate`` value of another row of
the same executemany. :func:`read_live` reads the rows that need comparing with their latest
versions; :func:`insert_versions` copies the new versions from the live rows with one
``INSERT .. SELECT`` per table, joined to the list of keys and version numbers.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, insert, literal, select

from ..capture.changes import RowChange
from ..errors import InvalidKeyError
from ..schema.history import TableHistory
from ..types import UTCDateTime
from ._plan import HierarchyWrite, NewVersion
from .sql import insert_rows, is_mysql, keyed_chunks, keyed_join, keyed_rows

__all__ = ["insert_versions", "read_live"]

_Stamp = tuple[dt.datetime, str, "int | None"]
"""What the base-table rows of one ``INSERT .. SELECT`` share: valid_from, operation and the
version restored."""


def insert_versions(write: HierarchyWrite, versions: Sequence[NewVersion]) -> None:
    """Insert the new versions: copied from the live rows, delete markers from the objects.

    A version is the row as the database stored it, whatever the flushed object holds (a
    column a concurrent transaction changed, a value the database normalised, a Python-side
    ``onupdate`` of an executemany). Only the marker of a row deleted without any earlier
    version (its live row is gone) takes the deleted object's values.
    """
    for version in versions:
        write.stored.operations[version.change.identity, version.version] = version.operation
    markers = [version for version in versions if version.is_marker]
    if markers:
        _insert_markers(write, markers)
    copies: dict[TableHistory, dict[_Stamp | None, list[tuple[Any, ...]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for version in versions:
        if version.is_marker:
            continue
        shared: _Stamp = (version.valid_from, version.operation, version.restored_from)
        for table in version.change.spec.tables:
            key = (*version.change.identity, version.version)
            copies[table][shared if table is write.base else None].append(key)
    for table, by_stamp in copies.items():
        columns = [*table.live_key, table.history.c.version]
        for stamp, keys in by_stamp.items():
            for chunk in keyed_chunks(write.connection, columns, keys):
                _copy_from_live(write, table, stamp, chunk)


def _copy_from_live(
    write: HierarchyWrite,
    table: TableHistory,
    stamp: _Stamp | None,
    keys: Sequence[tuple[Any, ...]],
) -> None:
    """``INSERT .. SELECT`` of new versions from the live rows of ``table``.

    ``keys`` are (identity..., version number) of the versions; ``stamp`` the interval start,
    operation and restored version shared by the base table's rows.
    """
    history = table.history
    width = len(table.key)
    names = [f"k{n}" for n in range(width)]
    wanted = keyed_rows(
        write.connection, [*table.live_key, history.c.version], keys, [*names, "version"]
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
            literal(write.transaction.id),
        ]
        if restored_from is not None:
            targets.append(history.c.restored_from)
            selected.append(literal(restored_from))
    source = keyed_join(write.connection, select(*selected), wanted, table.live, on)
    statement = insert(history).from_select(targets, source)
    if not write.connection.dialect.insert_returning:
        written = write.connection.execute(statement).rowcount
    else:
        keep = write.keep_written and table.key_returns_as_sent
        returned = [hist for _, hist in table.copied] if keep else []
        keys_of = [hist.key for hist in returned]
        rows = write.connection.execute(statement.returning(history.c.version, *returned)).all()
        for record in rows if keep else ():
            values: dict[str, Any] = dict(zip(keys_of, record[1:], strict=True))
            write.stored.know(table, tuple(record[1 : width + 1]), record[0], values)
        written = len(rows)
    if written != len(keys):
        raise InvalidKeyError(
            f"{table.live.name}: {len(keys) - written} of the rows flushed are not in the "
            "table afterwards: the database stored them under other keys (MySQL and "
            "MariaDB, for one, number a row anew when its AUTO_INCREMENT key is set to 0)"
        )


def _insert_markers(write: HierarchyWrite, markers: Sequence[NewVersion]) -> None:
    """Insert the delete markers of rows deleted without an earlier version."""
    rows: dict[TableHistory, list[dict[str, Any]]] = defaultdict(list)
    for version in markers:
        change = version.change
        for table in change.spec.tables:
            row = {
                key: change.value(table, key, attr) for key, attr in change.spec.value_keys(table)
            }
            row["version"] = version.version
            if table is write.base:
                row["valid_from"] = row["valid_to"] = version.valid_from
                row["operation"] = version.operation
                row["transaction_id"] = write.transaction.id
                row["restored_from"] = None
            rows[table].append(row)
    for table, table_rows in rows.items():
        insert_rows(write.connection, table.history, table_rows)


def read_live(write: HierarchyWrite, changes: Sequence[RowChange]) -> None:
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
    locking = is_mysql(write.connection)
    for table, wanted in by_table.items():
        columns = [live for live, _ in table.copied]
        identities = list(wanted)
        typed = [*table.live_key, table.history.c.version]
        numbered = [(*identity, n) for n, identity in enumerate(identities)]
        names = [*(f"k{n}" for n in range(len(table.key))), "n"]
        for chunk in keyed_chunks(write.connection, typed, numbered):
            asked = keyed_rows(write.connection, typed, chunk, names)
            on = and_(*(c == asked.c[f"k{n}"] for n, c in enumerate(table.live_key)))
            query = keyed_join(write.connection, select(asked.c.n, *columns), asked, table.live, on)
            if locking:
                query = query.with_for_update(of=table.live)
            for n, *record in write.connection.execute(query):
                change = wanted[identities[n]]
                change.read_back[table] = {
                    hist.key: value for (_, hist), value in zip(table.copied, record, strict=True)
                }
