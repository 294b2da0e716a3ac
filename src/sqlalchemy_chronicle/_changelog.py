"""Change-log rows for one flush, derived from the history just written.

An entry compares a row's version written by this transaction with the version before it, both
read from the history in one statement per history table; so the entry is net per transaction and
the same for every way a change arrives (objects, bulk statements, restores). Entries this
transaction wrote for the same rows in earlier flushes are deleted first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select

from ._schema import HistorySpec, TableHistory
from ._sql import chunks
from .changelog import ChangeLog, format_row_id, json_value

if TYPE_CHECKING:
    from ._capture import RowChange
    from ._writer import Plan, _HierarchyWriter

__all__ = ["write_changelog"]

EVENT_TYPES = {"insert": "INSERT", "update": "UPDATE", "delete": "DELETE", "restore": "RESTORE"}

Identity = tuple[Any, ...]


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
    stored = _read_versions(writer, written, specs)
    entries = []
    for identity, version in written.items():
        after = stored.get((identity, version))
        if after is None:
            continue
        old = stored.get((identity, version - 1))
        operation = after.pop("__operation__")
        if old is not None and old.pop("__operation__") == "delete":
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
        connection.execute(insert(ChangeLog), entries)


def _changes(operation: str, old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    if operation in ("insert", "delete"):
        return {name: json_value(value) for name, value in new.items()}
    before = old or {}
    return {
        name: [json_value(before.get(name)), json_value(value)]
        for name, value in new.items()
        if old is None or before.get(name) != value
    }


def _read_versions(
    writer: _HierarchyWriter,
    written: dict[Identity, int],
    specs: dict[Identity, HistorySpec],
) -> dict[tuple[Identity, int], dict[str, Any]]:
    """Column values of each written version and of the version before it, by column name."""
    by_table: dict[TableHistory, list[tuple[Any, ...]]] = {}
    for identity, version in written.items():
        for table in specs[identity].tables:
            keys = by_table.setdefault(table, [])
            keys.append((*identity, version))
            if version > 1:
                keys.append((*identity, version - 1))
    stored: dict[tuple[Identity, int], dict[str, Any]] = {}
    for table, keys in by_table.items():
        history = table.history
        width = len(table.key)
        values = [hist for _, hist in table.copied]
        extra = [history.c.operation] if table is writer.base else []
        for chunk in chunks(keys):
            query = writer._by_primary_key(
                select(*table.key, history.c.version, *values, *extra).where(
                    writer._versions_in(table, chunk)
                ),
                table,
            )
            for row in writer.connection.execute(query):
                identity = tuple(row[:width])
                record = stored.setdefault((identity, row[width]), {})
                record.update(
                    (column.name, value)
                    for column, value in zip(values, row[width + 1 :], strict=False)
                )
                if extra:
                    record["__operation__"] = row[-1]
    return stored
