"""Restores of classes in database capture mode: the triggers' versions, marked as restores.

The triggers version a restore's statements like any others, with operation ``"insert"`` or
``"update"`` and no ``restored_from``. Once the restore's statements have run,
:func:`mark_restores` makes this transaction's versions of the rows it put back what ORM mode
writes: operation ``"restore"`` and ``restored_from`` the number of the version put back. Their
change-log entries become ``RESTORE`` entries; an ``INSERT`` entry (the row was deleted before,
so there is nothing to compare with) lists each value as the pair ``[None, value]``, as ORM mode's
entry of a restore after a delete does.

No trigger is involved: the rows are found by their key and this transaction's id (the
triggers' :func:`~sqlalchemy_chronicle.capture.database.trigger_transaction`), so the cost is
that of the rows restored, not of the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from ..capture.database import trigger_transaction
from ..schema.history import HistorySpec
from ..schema.tables import ChangeLog, format_row_id
from ..write.sql import chunks
from ._family import Key

__all__ = ["mark_restores"]


def mark_restores(connection: Connection, root: HistorySpec, restored: Mapping[Key, int]) -> None:
    """Mark this transaction's versions of ``restored`` (key to version put back) as restores.

    Does nothing for a class in ORM mode, whose writer wrote them as restores already.
    """
    if not root.captured_by_database or not restored:
        return
    transaction_id = trigger_transaction(connection)
    if transaction_id is None:
        return
    table = root.base
    history = table.history
    statement = (
        update(history)
        .where(
            *(column == bindparam(f"chronicle_k{n}") for n, column in enumerate(table.key)),
            history.c.transaction_id == transaction_id,
            history.c.operation != "delete",
        )
        .values(operation="restore", restored_from=bindparam("chronicle_from"))
    )
    connection.execute(
        statement,
        [
            {**{f"chronicle_k{n}": value for n, value in enumerate(key)}, "chronicle_from": number}
            for key, number in restored.items()
        ],
    )
    if root.changelog:
        _mark_entries(connection, root, transaction_id, [format_row_id(k) for k in restored])


def _mark_entries(
    connection: Connection, root: HistorySpec, transaction_id: int, row_ids: list[str]
) -> None:
    """Turn the restored rows' ``INSERT`` and ``UPDATE`` entries into ``RESTORE`` entries."""
    name = root.base.live.fullname
    for chunk in chunks(row_ids):
        ours = (
            ChangeLog.transaction_id == transaction_id,
            ChangeLog.table_name == name,
            ChangeLog.row_id.in_(chunk),
        )
        connection.execute(
            update(ChangeLog)
            .where(*ours, ChangeLog.event_type == "UPDATE")
            .values(event_type="RESTORE")
        )
        inserted = connection.execute(
            select(ChangeLog.id, ChangeLog.changes).where(*ours, ChangeLog.event_type == "INSERT")
        ).all()
        if inserted:
            connection.execute(
                update(ChangeLog)
                .where(ChangeLog.id == bindparam("chronicle_id"))
                .values(event_type="RESTORE", changes=bindparam("chronicle_changes")),
                [
                    {"chronicle_id": entry_id, "chronicle_changes": _as_pairs(changes)}
                    for entry_id, changes in inserted
                ],
            )


def _as_pairs(values: Mapping[str, Any]) -> dict[str, Any]:
    """An ``INSERT`` entry's values as the ``[old, new]`` pairs of a change from nothing."""
    return {name: [None, value] for name, value in values.items()}
