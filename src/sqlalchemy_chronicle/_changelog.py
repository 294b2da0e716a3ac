"""Change-log rows for one flush, derived from the history just written.

An entry compares a row's version written by this transaction with the version before it; so the
entry is net per transaction and the same for every way a change arrives (objects, bulk
statements, restores). The writer knows most of those versions already, as the database stored
them: the latest versions it read, and the versions it wrote (returned by their ``INSERT``). The
rest, such as the version before one this transaction rewrites, or all of them where an
executemany cannot return rows, are read with one statement per history table. Entries this
transaction wrote for the same rows in earlier flushes are deleted first.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, cast, column, delete, func, insert, literal, select
from sqlalchemy.dialects.postgresql import JSONB

from ._schema import HistorySpec, TableHistory
from ._versions import Identity, StoredVersions
from .changelog import ChangeLog, format_row_id, json_value

if TYPE_CHECKING:
    from ._capture import RowChange
    from ._writer import Plan, _HierarchyWriter

__all__ = ["write_changelog"]

EVENT_TYPES = {"insert": "INSERT", "update": "UPDATE", "delete": "DELETE", "restore": "RESTORE"}


def write_changelog(writer: _HierarchyWriter, plan: Plan) -> None:
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
        row_ids = [format_row_id(identity) for identity in rewritten]
        connection.execute(
            delete(ChangeLog).where(
                ChangeLog.transaction_id == writer.transaction.id,
                ChangeLog.table_name == table_name,
                ChangeLog.row_id.in_(row_ids),
            )
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
    entries = []
    for identity, version in written.items():
        tables = specs[identity].tables
        after = _record(stored, tables, identity, version)
        if after is None:
            continue
        operation = stored.operations[identity, version]
        old = _record(stored, tables, identity, version - 1)
        if stored.operations.get((identity, version - 1)) == "delete":
            old = None
        entries.append(
            {
                "transaction_id": writer.transaction.id,
                "table_name": table_name,
                "row_id": format_row_id(identity),
                "event_type": EVENT_TYPES[operation],
                "timestamp": writer.transaction.timestamp,
                "changes": _changes(operation, old, after),
            }
        )
    if entries:
        _insert_entries(connection, entries)


def _insert_entries(connection: Connection, entries: list[dict[str, Any]]) -> None:
    """Insert the entries in one statement.

    PostgreSQL gets them as one JSON document that ``jsonb_to_recordset`` turns into rows: the
    entries' ``changes`` are JSON already, and one ``json.dumps`` of the whole list costs far
    less than adapting a thousand JSON values as parameters one by one.
    """
    columns = ChangeLog.__table__.c
    if connection.dialect.name != "postgresql":
        connection.execute(insert(ChangeLog), entries)
        return
    names = list(entries[0])
    document = json.dumps(
        [{**entry, "timestamp": entry["timestamp"].isoformat()} for entry in entries],
        separators=(",", ":"),
    )
    rows = (
        func.jsonb_to_recordset(cast(literal(document), JSONB))
        .table_valued(*(column(name, columns[name].type) for name in names))
        .render_derived(with_types=True)
    )
    connection.execute(insert(ChangeLog).from_select(names, select(*rows.c)))


def _record(
    stored: StoredVersions, tables: list[TableHistory], identity: Identity, version: int
) -> dict[str, Any] | None:
    """One stored version's values across ``tables``, by column name; None if not stored."""
    record: dict[str, Any] = {}
    for table in tables:
        values = stored.get(table, identity, version)
        if values is None:
            return None
        record.update((hist.name, values.get(hist.key)) for _, hist in table.copied)
    return record


def _changes(operation: str, old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    if operation in ("insert", "delete"):
        return {name: json_value(value) for name, value in new.items()}
    before = old or {}
    return {
        name: [json_value(before.get(name)), json_value(value)]
        for name, value in new.items()
        if old is None or before.get(name) != value
    }
