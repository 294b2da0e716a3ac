"""The writer's short path: updates whose new versions the database copies from the live table.

The commonest flush updates rows that this transaction has not versioned yet, and knows every old
value it changed. For such rows the full path of :mod:`._writer` (read the latest versions,
decide per row, write) is more than needed: the database can close the open versions and copy
the new ones from the live rows the flush has just written, in two set-based statements keyed by
the rows' keys, with no value passing through Python::

    UPDATE h SET valid_to = :now
     WHERE (key) IN (:keys) AND valid_to IS NULL AND valid_from < :now
    INSERT INTO h (columns..., version, valid_from, operation, transaction_id)
    SELECT live.columns..., (SELECT max(version) + 1 FROM h WHERE h.key = live.key),
           :now, 'update', :transaction
      FROM live WHERE (key) IN (:keys)

Both return what the change log compares (the closed versions and the new ones, as stored), so
the change log needs no read either. The versions hold the live rows as stored, as on the full
path.

The ``UPDATE`` checks the rules of the full path: it must close exactly one version per key.
A row without history, a version written by a concurrent transaction at or after this one's time
(which the full path starts after, or refuses in strict mode) and a version of this transaction
itself all make it close fewer; the group then takes the full path, to which the versions closed
here read as closed at this transaction's time, which is what it would have made of them.

Only PostgreSQL and SQLite take this path: MySQL and MariaDB cannot return the rows an
``UPDATE`` changes, and an ``INSERT .. SELECT`` there takes shared locks on the rows it reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Update,
    and_,
    func,
    insert,
    literal,
    select,
    update,
)

from ._schema import TableHistory
from ._sql import chunks, rows_in, unnest_keys
from ._types import UTCDateTime
from .transaction import current_transaction, open_transaction

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ._capture import RowChange
    from ._versions import Identity
    from ._writer import _HierarchyWriter

__all__ = ["copy_updates"]

_DIALECTS = frozenset({"postgresql", "sqlite"})


def copy_updates(
    session: Session, writer: _HierarchyWriter, changes: Sequence[RowChange]
) -> list[tuple[RowChange, int]] | None:
    """Write the history of ``changes`` on the short path; None if they need the full path.

    Returns each change with the number of the version written for it. With the change log on,
    the versions closed and written are recorded in ``writer.stored``.
    """
    if not _eligible(session, writer, changes):
        return None
    connection = writer.connection
    transaction = writer.transaction = open_transaction(session, connection)
    base = writer.base
    history = base.history
    now = literal(transaction.timestamp, UTCDateTime)
    values = [hist for _, hist in base.copied]
    keys = [hist.key for hist in values]
    width = len(base.key)
    identities = [change.identity for change in changes]
    closed = 0
    for chunk in chunks(identities):
        close = _close(connection, base, chunk, now)
        if not writer.keep_written:
            closed += connection.execute(close).rowcount
            continue
        returning = close.returning(history.c.version, history.c.operation, *values)
        for version, operation, *stored in connection.execute(returning):
            row = dict(zip(keys, stored, strict=True))
            writer.stored.know(base, tuple(stored[:width]), version, row, operation)
            closed += 1
    if closed != len(identities):
        return None

    names = [*keys, "version", "valid_from", "operation", "transaction_id"]
    returned = values if writer.keep_written else values[:width]
    by_identity = {change.identity: change for change in changes}
    written: list[tuple[RowChange, int]] = []
    for chunk in chunks(identities):
        rows = _live_rows(connection, base, chunk).add_columns(
            _newest_version(base, [live for live, _ in base.copied[:width]]) + 1,
            now,
            literal("update"),
            literal(transaction.id),
        )
        statement = insert(history).from_select(names, rows).returning(history.c.version, *returned)
        for version, *stored in connection.execute(statement):
            identity = tuple(stored[:width])
            if writer.keep_written:
                row = dict(zip(keys, stored, strict=True))
                writer.stored.know(base, identity, version, row, "update")
            written.append((by_identity[identity], version))
    return written


def _newest_version(base: TableHistory, identity: Sequence[ColumnElement[Any]]) -> Any:
    """The highest version number stored for the row ``identity`` names.

    PostgreSQL, MariaDB and SQLite answer it with a backward probe of the primary key.
    """
    previous = base.history.alias("previous")
    return (
        select(func.max(previous.c.version))
        .where(*(previous.c[c.name] == v for c, v in zip(base.key, identity, strict=True)))
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


def _eligible(session: Session, writer: _HierarchyWriter, changes: Sequence[RowChange]) -> bool:
    """Whether the short path can take ``changes``.

    It can if every change updates a row of a one-table hierarchy, with its old values known,
    that this transaction has not versioned yet, on a database that returns changed rows.
    """
    dialect = writer.connection.dialect
    if dialect.name not in _DIALECTS or not (dialect.update_returning and dialect.insert_returning):
        return False
    transaction = current_transaction(session)
    own = transaction.versioned_rows if transaction is not None else set()
    root = id(writer.root)
    checked: set[int] = set()
    for change in changes:
        if change.kind != "update" or change.unsure or change.restored_from is not None:
            return False
        if own and (root, change.identity) in own:
            return False
        spec = change.spec
        if id(spec) not in checked:
            if len(spec.tables) != 1 or any(a is None for _, a in spec.value_keys(spec.tables[0])):
                return False
            checked.add(id(spec))
    return True
