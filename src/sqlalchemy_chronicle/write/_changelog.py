"""Change-log rows for one flush, derived from the history just written.

An entry compares a row's version written by this transaction with the version before it; so the
entry is net per transaction and the same for every way a change arrives (objects, bulk
statements, restores). The writer knows most of those versions already, as the database stored
them: the latest versions it read, the versions the short path closed (returned by its
``UPDATE``), and the versions it wrote (returned by their ``INSERT``). The rest, such as the
version before one this transaction rewrites, the delete marker before a row inserted again, or
all of them where an executemany cannot return rows, are read with one statement per history
table. Entries this transaction wrote for the same rows in earlier flushes are deleted first.

Text is logged exactly, NUL characters included, with one exception: PostgreSQL's ``JSONB`` holds
no NUL, so there a string of ``changes`` (a key or a value) that holds one is written escaped,
:data:`ESCAPE` followed by the text with ``%`` as ``%25`` and NUL as ``%00``; a string that starts
with :data:`ESCAPE` is written escaped on every database, so that the escape is never ambiguous.
:mod:`~sqlalchemy_chronicle.read.changelog` undoes it when a :class:`ChangeLog` entry is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Final

from sqlalchemy import (
    Connection,
    delete,
    insert,
    literal,
    literal_column,
    select,
    text,
)

from ..capture.changes import RowChange
from ..errors import InvalidKeyError
from ..schema.history import HistorySpec, TableHistory
from ..schema.tables import ROW_ID_LENGTH, ChangeLog, format_row_id, json_value
from ._plan import HierarchyWrite, Plan
from ._transaction import OpenTransaction
from ._versions import Identity, StoredVersions

__all__ = ["ESCAPE", "write_changelog"]

EVENT_TYPES = {"insert": "INSERT", "update": "UPDATE", "delete": "DELETE", "restore": "RESTORE"}


def write_changelog(writer: HierarchyWrite, plan: Plan) -> None:
    """Write the change-log entries for the rows in ``plan``."""
    root = writer.root
    own: dict[Identity, int | None] = {}
    specs: dict[Identity, HistorySpec] = {}
    rewritten: set[Identity] = set()

    def note(change: RowChange, version: int | None, rewrite: bool = False) -> None:
        specs[change.identity] = change.spec
        if version is not None or change.identity not in own:
            own[change.identity] = version
        if rewrite:
            rewritten.add(change.identity)

    for change, _ in plan.remove:
        note(change, None, rewrite=True)
    for change, version in plan.to_marker:
        note(change, version, rewrite=True)
    for rows in plan.copy_marker.values():
        for change, version in rows:
            note(change, version + 1)
    for new in plan.new:
        note(new.change, new.version)

    table_name = root.base.live.fullname
    connection = writer.connection
    if rewritten:
        _delete_entries(
            connection, writer.transaction, table_name, [format_row_id(i) for i in rewritten]
        )
    written = {identity: version for identity, version in own.items() if version is not None}
    if not written:
        return
    stored = writer.stored
    stored.load(
        (table, identity, number)
        for identity, version in written.items()
        for table in specs[identity].tables
        for number in (version, version - 1)
        if number > 0
    )
    records = _Records(stored)
    entries: list[tuple[str, str, dict[str, Any]]] = []
    for identity, version in written.items():
        tables = specs[identity].tables
        after = records.get(tables, identity, version)
        if after is None:
            continue
        operation = stored.operations[identity, version]
        old = records.get(tables, identity, version - 1)
        if stored.operations.get((identity, version - 1)) == "delete":
            old = None
        row_id = format_row_id(identity)
        if len(row_id) > ROW_ID_LENGTH:
            raise InvalidKeyError(
                f"the change log holds row ids of up to {ROW_ID_LENGTH} characters, and the key "
                f"{row_id[:40]!r}... of a {table_name!r} row has {len(row_id)}; leave the class "
                "out of the change log with __versioned__ = {'changelog': False}"
            )
        entries.append((row_id, EVENT_TYPES[operation], _changes(operation, old, after)))
    if entries:
        _insert_entries(connection, writer.transaction, table_name, entries)


_DOCUMENT_ROWS: dict[str, tuple[str, str, str, str]] = {
    "postgresql": (
        "jsonb_array_elements(CAST(:entries AS JSONB)) AS entry",
        "entry.value ->> 0",
        "entry.value ->> 1",
        "entry.value -> 2",
    ),
    "sqlite": (
        "json_each(:entries) AS entry",
        "json_extract(entry.value, '$[0]')",
        "json_extract(entry.value, '$[1]')",
        "json_extract(entry.value, '$[2]')",
    ),
    "mysql": (
        "JSON_TABLE(:entries, '$[*]' COLUMNS (row_id VARCHAR(1024) PATH '$[0]', "
        "event_type VARCHAR(8) PATH '$[1]', changes JSON PATH '$[2]')) AS entry",
        "entry.row_id",
        "entry.event_type",
        "entry.changes",
    ),
}
"""Per dialect: the ``FROM`` clause that turns the JSON document of entries into rows, and the
expressions of an entry's ``row_id``, ``event_type`` and ``changes``."""


_CUTS_TEXT_AT_NUL: Final = frozenset({"sqlite"})
"""Dialects whose JSON functions cut the text they extract at a NUL (SQLite's ``json_extract``
returns ``"a"`` for ``"a\\u0000b"``): a flush with a key holding one takes the executemany."""

_HOLDS_NO_NUL: Final = frozenset({"postgresql"})
"""Dialects whose change-log JSON holds no NUL (``JSONB``): such text is written escaped."""

ESCAPE: Final = "\ufdd0"
"""The first character of an escaped string in ``changes``: a Unicode noncharacter, which no text
is meant to hold. The rest is the string with ``%`` written ``%25`` and NUL ``%00``."""

_MAY_NEED_ESCAPE: Final = ("\\u0000", "\\ufdd0")
"""What ``json.dumps`` (ASCII only) writes for a NUL and for :data:`ESCAPE`: a document without
either has no string to escape, which one scan of the document tells."""


def _escaped_text(text: str, nul: bool) -> str:
    if text.startswith(ESCAPE) or (nul and "\x00" in text):
        return ESCAPE + text.replace("%", "%25").replace("\x00", "%00")
    return text


def _escaped(value: Any, nul: bool) -> Any:
    """``value`` (as :func:`json_value` returns it) with its strings escaped where needed."""
    if isinstance(value, str):
        return _escaped_text(value, nul)
    if isinstance(value, dict):
        return {_escaped_text(k, nul): _escaped(v, nul) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v, nul) for v in value]
    return value


def _reads_documents(connection: Connection) -> bool:
    """Whether the database turns a JSON document into rows (MySQL 8, MariaDB 10.6 and later)."""
    dialect = connection.dialect
    if dialect.name != "mysql":
        return dialect.name in _DOCUMENT_ROWS
    version = dialect.server_version_info or ()
    return version >= ((10, 6) if getattr(dialect, "is_mariadb", False) else (8, 0, 4))


_LOCKS_RANGES: Final = frozenset({"mysql"})
"""Dialects whose ``DELETE`` locks the index range it scans and the gap after it (InnoDB's
next-key locks): the writer deletes its own entries there by primary key."""


def _tracks_entries(connection: Connection, executemany: bool = False) -> bool:
    """Whether the writer keeps the ids of the entries it inserts on ``connection``.

    On :data:`_LOCKS_RANGES` where ``INSERT .. RETURNING`` exists (MariaDB 10.5 and later).
    """
    dialect = connection.dialect
    returning = dialect.insert_executemany_returning if executemany else dialect.insert_returning
    return dialect.name in _LOCKS_RANGES and bool(returning)


def _delete_entries(
    connection: Connection, transaction: OpenTransaction, table_name: str, row_ids: list[str]
) -> None:
    """Delete the entries ``transaction`` wrote earlier for these rows of ``table_name``.

    Tracked ids stay tracked once deleted: a savepoint that rolls back brings their entries back.
    """
    if _tracks_entries(connection):
        tracked = transaction.changelog_entries
        ids = [i for row_id in row_ids for i in tracked.get((table_name, row_id), ())]
        if ids:
            connection.execute(delete(ChangeLog).where(ChangeLog.id.in_(ids)))
        return
    connection.execute(
        delete(ChangeLog).where(
            ChangeLog.transaction_id == transaction.id,
            ChangeLog.table_name == table_name,
            ChangeLog.row_id.in_(row_ids),
        )
    )


def _insert_entries(
    connection: Connection,
    transaction: OpenTransaction,
    table_name: str,
    entries: list[tuple[str, str, dict[str, Any]]],
) -> None:
    """Insert the entries of one flush in one statement.

    They go as one JSON document of ``[row_id, event_type, changes]`` arrays, which the database
    turns into rows (:data:`_DOCUMENT_ROWS`), and what all entries share goes as single
    parameters: one ``json.dumps`` of the whole list costs far less than an executemany, which
    binds every entry's values and serializes each ``changes`` on its own. A database without
    such a function takes the executemany, and so does a flush on SQLite with a key that holds a
    NUL, which SQLite's JSON functions would cut short.
    """
    shared = {
        "transaction_id": transaction.id,
        "table_name": table_name,
        "timestamp": transaction.timestamp,
    }
    dialect = connection.dialect.name
    documents = _reads_documents(connection)
    document = json.dumps(entries, separators=(",", ":"))
    if any(code in document for code in _MAY_NEED_ESCAPE):
        nul = dialect in _HOLDS_NO_NUL
        entries = [(r, e, _escaped(changes, nul)) for r, e, changes in entries]
        document = json.dumps(entries, separators=(",", ":"))
        if dialect in _CUTS_TEXT_AT_NUL and any("\x00" in row_id for row_id, _, _ in entries):
            documents = False
    if not documents:
        rows = [
            {**shared, "row_id": row_id, "event_type": event_type, "changes": changes}
            for row_id, event_type, changes in entries
        ]
        statement = insert(ChangeLog)
        if _tracks_entries(connection, executemany=True):
            statement = statement.returning(ChangeLog.id, ChangeLog.row_id)
            _track(transaction, table_name, connection.execute(statement, rows))
        else:
            connection.execute(statement, rows)
        return
    source, row_id, event_type, changes = _DOCUMENT_ROWS[dialect]
    columns = ChangeLog.__table__.c
    document_rows = select(
        *(literal(value, columns[name].type).label(name) for name, value in shared.items()),
        literal_column(row_id).label("row_id"),
        literal_column(event_type).label("event_type"),
        literal_column(changes).label("changes"),
    ).select_from(text(source).bindparams(entries=document))
    names = [*shared, "row_id", "event_type", "changes"]
    statement = insert(ChangeLog).from_select(names, document_rows)
    if _tracks_entries(connection):
        _track(
            transaction,
            table_name,
            connection.execute(statement.returning(ChangeLog.id, ChangeLog.row_id)),
        )
    else:
        connection.execute(statement)


def _track(
    transaction: OpenTransaction, table_name: str, returned: Iterable[Sequence[Any]]
) -> None:
    """Remember the ids of the entries an ``INSERT`` returned with their row ids."""
    tracked = transaction.changelog_entries
    for entry_id, row_id in returned:
        tracked.setdefault((table_name, row_id), []).append(entry_id)


class _Records:
    """Stored versions' values across a row's tables, by column name."""

    def __init__(self, stored: StoredVersions) -> None:
        self.stored = stored
        self._keyed_by_name: dict[TableHistory, bool] = {}

    def get(
        self, tables: list[TableHistory], identity: Identity, version: int
    ) -> dict[str, Any] | None:
        """One version's values by column name; None if it is not stored."""
        if len(tables) == 1 and self.keyed_by_name(tables[0]):
            return self.stored.get(tables[0], identity, version)
        record: dict[str, Any] = {}
        for table in tables:
            values = self.stored.get(table, identity, version)
            if values is None:
                return None
            record.update((hist.name, values.get(hist.key)) for _, hist in table.copied)
        return record

    def keyed_by_name(self, table: TableHistory) -> bool:
        """Whether every history column of ``table`` has its name for key.

        The values the writer keeps by key are then by name already.
        """
        known = self._keyed_by_name.get(table)
        if known is None:
            known = all(hist.name == hist.key for _, hist in table.copied)
            self._keyed_by_name[table] = known
        return known


def _changes(operation: str, old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    if operation in ("insert", "delete"):
        return {name: json_value(value) for name, value in new.items()}
    before = old or {}
    return {
        name: [json_value(before.get(name)), json_value(value)]
        for name, value in new.items()
        if old is None or before.get(name) != value
    }
