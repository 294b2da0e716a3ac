"""The writer's short path: versions the database copies from the live rows.

The commonest flushes insert rows, or update or delete rows that this transaction has not
versioned yet, with every old value known. For such rows the full path of :mod:`._full_path` (read
the latest versions, decide per row, write) is more than needed: the database can close the open
versions and copy the new ones from the live rows the flush has just written, in set-based
statements keyed by the rows' keys, with no value passing through Python::

    UPDATE h SET valid_to = :now                                -- updated and deleted rows
     WHERE (key) IN (:keys) AND valid_to IS NULL AND valid_from < :now
    INSERT INTO h (columns..., version, valid_from, operation, transaction_id)
    SELECT live.columns..., coalesce((SELECT max(version) FROM h WHERE h.key = live.key), 0) + 1,
           :now, :operation, :transaction
      FROM live WHERE (key) IN (:keys)
       AND NOT EXISTS (SELECT 1 FROM h WHERE h.key = live.key   -- inserted rows only
                        AND (valid_to IS NULL OR valid_from >= :now))

and, for deleted rows, the full path's ``INSERT .. SELECT`` of delete markers from the versions
just closed. On PostgreSQL the ``UPDATE`` names each row's newest version by its full primary
key instead of ``(key) IN (:keys) AND valid_to IS NULL`` (see :func:`_close`).

The ``UPDATE`` and the copies return the rows they wrote, with the values the change log
compares (the closed versions and the new ones, as stored; a marker holds its closed version's
values), so the change log needs no read either, except of the marker before a row inserted
again. The versions hold the live rows as stored, as on the full path. An update closes only a
version that differs from its live row; an update the database stored as the values it had takes
the full path, which finds it unchanged and writes nothing.

The conditions keep the rules of the full path: an update or a delete must find its row's open
version begun before this transaction's time, and an inserted row must have no open version and
none at or after that time. A row without history, a version written by a concurrent
transaction at or after this one's time (which the full path starts after, or refuses in strict
mode) and a version of this transaction itself fail them; such rows take the full path, to which
a version closed here reads as closed at this transaction's time, which is what it would have
made of it.

Only PostgreSQL and SQLite take this path: MySQL and MariaDB cannot return the rows an
``UPDATE`` changes, and an ``INSERT .. SELECT`` there takes shared locks on the rows it reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Update,
    and_,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from ..capture.changes import RowChange
from ..schema.history import TableHistory
from ..types import UTCDateTime
from ._plan import HierarchyWrite
from ._transaction import current_transaction
from ._versions import Identity
from .sql import chunks, rows_in, same_as_live, unnest_keys

__all__ = ["Copied", "copy_versions"]

_DIALECTS = frozenset({"postgresql", "sqlite"})
_STAMPS = ("version", "valid_from", "operation", "transaction_id")
"""The history columns a copied version gets from the writer, after the live row's columns."""

Copied = tuple["RowChange", int, str]
"""A change written on the short path, with the number and operation of its new version."""


def copy_versions(
    session: Session, writer: HierarchyWrite, changes: Sequence[RowChange]
) -> tuple[list[Copied], list[RowChange]]:
    """Write what history it can of ``changes`` on the short path.

    Returns the changes written, and the changes left for the full path. With the change log on,
    the versions closed and written are recorded in ``writer.stored``.
    """
    dialect = writer.connection.dialect
    if dialect.name not in _DIALECTS or not (dialect.update_returning and dialect.insert_returning):
        return [], list(changes)
    own = current_transaction(session)
    versioned = own.versioned_rows if own is not None else set()
    root = id(writer.root)
    by_kind: dict[str, dict[Identity, RowChange]] = {"insert": {}, "update": {}, "delete": {}}
    rest: list[RowChange] = []
    fitting = {spec for spec in {change.spec for change in changes} if spec.copies_whole_rows}
    for change in changes:
        if (
            change.spec not in fitting
            or not _eligible(change)
            or (root, change.identity) in versioned
        ):
            rest.append(change)
        else:
            by_kind[change.kind][change.identity] = change
    inserts, updates, deletes = by_kind["insert"], by_kind["update"], by_kind["delete"]
    if not (inserts or updates or deletes):
        return [], rest
    writer.open(session)
    path = _ShortPath(writer)
    closed = path.close(list(deletes))
    closed.update(path.close(list(updates), changed_only=True))
    copied = path.copy({i: c for i, c in updates.items() if i in closed}, "update")
    marked = path.mark_deleted({i: (c, closed[i]) for i, c in deletes.items() if i in closed})
    inserted = path.copy(inserts, "insert")
    # An update closed but not copied (its live row gone) is left to the full path too, to which
    # its version reads as closed by this transaction.
    done = {*copied, *(change.identity for change, _, _ in marked), *inserted}
    rest += [c for i, c in (*updates.items(), *deletes.items(), *inserts.items()) if i not in done]
    return [*copied.values(), *marked, *inserted.values()], rest


class _ShortPath:
    """The statements of the short path for one hierarchy's base table, in one flush."""

    def __init__(self, writer: HierarchyWrite) -> None:
        self.writer = writer
        self.base = writer.base
        self.history = writer.base.history
        self.now = literal(writer.transaction.timestamp, UTCDateTime)
        self.values = [hist for _, hist in self.base.copied]
        self.keys = [hist.key for hist in self.values]
        self.width = len(self.base.key)
        self.returned = self.values if writer.keep_written else self.values[: self.width]
        """What the statements return after the version number: the values the change log
        compares, or only the key."""

    def close(self, identities: list[Identity], changed_only: bool = False) -> dict[Identity, int]:
        """Close the open versions of ``identities`` begun before this transaction's time.

        With ``changed_only``, only the versions that differ from their live rows: an update the
        database stored as the values it had (a ``Numeric`` rounded back, a value a concurrent
        transaction wrote first) closes nothing, and the full path finds it unchanged.
        Returns the number of the version closed of each identity closed.
        """
        closed: dict[Identity, int] = {}
        for chunk in chunks(identities):
            close = _close(self.writer.connection, self.base, chunk, self.now)
            if changed_only:
                close = close.where(~same_as_live(self.base))
            close = close.returning(
                self.history.c.version, self.history.c.operation, *self.returned
            )
            for version, operation, *stored in self.writer.connection.execute(close).all():
                closed[self._remember(version, stored, operation)] = version
        return closed

    def mark_deleted(self, closed: dict[Identity, tuple[RowChange, int]]) -> list[Copied]:
        """Insert the delete markers of deleted rows whose versions were just closed.

        A marker copies the closed version's values, as on the full path.
        """
        if not closed:
            return []
        writer = self.writer
        at = writer.transaction.timestamp
        versions = [(*identity, version) for identity, (_, version) in closed.items()]
        for chunk in chunks(versions):
            writer.connection.execute(writer.copy_marker(self.base, chunk, at))
        marked: list[Copied] = []
        for identity, (change, version) in closed.items():
            values = writer.stored.get(self.base, identity, version)
            if values is not None:
                writer.stored.know(self.base, identity, version + 1, values, "delete")
            marked.append((change, version + 1, "delete"))
        return marked

    def copy(self, changes: dict[Identity, RowChange], operation: str) -> dict[Identity, Copied]:
        """Insert new versions of ``changes`` copied from the live rows.

        For inserted rows, only those without an open version or one at or after this
        transaction's time; the others are left out of the answer.
        """
        if not changes:
            return {}
        base, history = self.base, self.history
        live_key = [live for live, _ in base.copied[: self.width]]
        targets = [*self.values, *(history.c[name] for name in _STAMPS)]
        copied: dict[Identity, Copied] = {}
        for chunk in chunks(list(changes)):
            rows = _live_rows(self.writer.connection, base, chunk).add_columns(
                func.coalesce(_newest_version(base, live_key), 0) + 1,
                self.now,
                literal(operation),
                literal(self.writer.transaction.id),
            )
            if operation == "insert":
                blocking = history.alias("blocking")
                rows = rows.where(
                    ~exists().where(
                        *(blocking.c[c.key] == v for c, v in zip(base.key, live_key, strict=True)),
                        or_(blocking.c.valid_to.is_(None), blocking.c.valid_from >= self.now),
                    )
                )
            statement = insert(history).from_select(targets, rows)
            statement = statement.returning(history.c.version, *self.returned)
            for version, *stored in self.writer.connection.execute(statement).all():
                identity = self._remember(version, stored, operation)
                copied[identity] = (changes[identity], version, operation)
        return copied

    def _remember(self, version: int, stored: Sequence[Any], operation: str) -> Identity:
        """The identity of a returned row; with the change log on, its values are recorded."""
        identity = tuple(stored[: self.width])
        if self.writer.keep_written:
            row = dict(zip(self.keys, stored, strict=True))
            self.writer.stored.know(self.base, identity, version, row, operation)
        return identity


def _newest_version(base: TableHistory, identity: Sequence[ColumnElement[Any]]) -> Any:
    """The highest version number stored for the row ``identity`` names.

    PostgreSQL and SQLite answer it with a backward probe of the primary key.
    """
    previous = base.history.alias("previous")
    return (
        select(func.max(previous.c.version))
        .where(*(previous.c[c.key] == v for c, v in zip(base.key, identity, strict=True)))
        .scalar_subquery()
    )


def _close(
    connection: Connection, base: TableHistory, identities: Sequence[Identity], now: Any
) -> Update:
    """The ``UPDATE`` that closes the open versions of ``identities`` begun before ``now``.

    On PostgreSQL it names each row's newest version by its full primary key. psycopg prepares
    a statement it has run five times, and the generic plan of ``key IN (unnest(...))`` there
    scanned the whole history.
    """
    history = base.history
    still_open = (history.c.valid_to.is_(None), history.c.valid_from < now)
    if connection.dialect.name != "postgresql":
        condition = rows_in(connection, base.key, identities, use="write")
        return update(history).where(condition, *still_open).values(valid_to=now)
    wanted = unnest_keys(base.key, identities)
    named = [wanted.c[f"k{n}"] for n in range(len(base.key))]
    newest = select(*named, _newest_version(base, named).label("version")).subquery()
    same_row = [c == newest.c[f"k{n}"] for n, c in enumerate(base.key)]
    same_row.append(history.c.version == newest.c.version)
    return update(history).where(*same_row, *still_open).values(valid_to=now)


def _live_rows(
    connection: Connection, base: TableHistory, identities: Sequence[Identity]
) -> Select[Any]:
    """``SELECT`` of the live columns of ``identities``.

    On PostgreSQL the key list drives a join, which keeps a generic plan on the live table's
    primary key.
    """
    columns = [live for live, _ in base.copied]
    if connection.dialect.name != "postgresql":
        return select(*columns).where(rows_in(connection, base.live_key, identities))
    wanted = unnest_keys(base.live_key, identities)
    on = and_(*(c == wanted.c[f"k{n}"] for n, c in enumerate(base.live_key)))
    return select(*columns).select_from(wanted).join(base.copied[0][0].table, on)


def _eligible(change: RowChange) -> bool:
    """Whether ``change`` restores nothing, and inserts, deletes, or updates knowing old values."""
    if change.kind not in ("insert", "update", "delete"):
        return False
    return not change.unsure and change.restored_from is None
