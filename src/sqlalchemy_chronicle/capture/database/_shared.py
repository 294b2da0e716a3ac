"""The transaction's ``chronicle_transaction`` row, as the triggers and the ORM writer share it.

On a connection of the library, the triggers insert the row at the first version they write, or
take the one the ORM writer inserted (:func:`share_transaction`); the writer adopts theirs
(:func:`adopt_trigger_transaction`). :func:`trigger_transaction` reads which row it is, for
restores that mark the triggers' versions. At the commit, :func:`drop_if_unreferenced` deletes the
row when every change of the transaction was taken back, as ORM mode does.

What the library sent the triggers in a connection's transaction is kept in ``connection.info``
(:class:`Sent`, under :data:`STATE`) by :mod:`._context`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Table,
    delete,
    exists,
    literal,
    literal_column,
    select,
)

from ...schema.tables import Transaction
from ..attribution import Attribution

__all__ = [
    "HOLDS",
    "INTERNAL",
    "SHARED",
    "STATE",
    "Sent",
    "TriggerTransaction",
    "adopt_trigger_transaction",
    "drop_if_unreferenced",
    "share_transaction",
    "trigger_transaction",
    "triggers_active",
    "unshare_transaction",
    "written_histories",
]

STATE: Final = "_chronicle.database_context"
"""Key of :class:`Sent` in ``connection.info``."""
SHARED: Final = "_chronicle.shared_transaction"
"""Key of the shared :class:`TriggerTransaction` in ``connection.info``."""
HOLDS: Final = "_chronicle.orm_holds_versions"
"""Key of the ORM writer's "do I hold versions in the row" in ``connection.info``."""
INTERNAL: Final = "_chronicle_context"
"""Execution option of the library's own statements here, which the listener lets pass."""


@dataclass(frozen=True)
class TriggerTransaction:
    """The ``chronicle_transaction`` row of a connection's transaction, shared by both modes."""

    id: int
    timestamp: dt.datetime
    attribution: Attribution


@dataclass
class Sent:
    """What was sent on a connection in its current transaction."""

    attribution: Attribution
    clock: str | None
    valid: bool = True
    shared: TriggerTransaction | None = None
    """The ORM writer's transaction row the triggers were told to use."""
    written: set[Table] = field(default_factory=set)
    """The history tables of the tables in database mode the transaction's statements wrote."""


def share_transaction(
    connection: Connection, shared: TriggerTransaction, holds_versions: Callable[[], bool]
) -> None:
    """Have the triggers version ``connection``'s next writes in the ORM writer's row ``shared``.

    The context is sent again before the next statement that writes a table in database mode.
    ``holds_versions`` says whether the ORM writer's versions are in the row: if not, the row is
    deleted at the commit when the triggers left none either.
    """
    connection.info[SHARED] = shared
    connection.info[HOLDS] = holds_versions


def unshare_transaction(connection: Connection) -> None:
    """Forget the row :func:`share_transaction` gave, which a rolled-back savepoint took away."""
    connection.info.pop(SHARED, None)
    connection.info.pop(HOLDS, None)


def triggers_active(connection: Connection) -> bool:
    """Whether the library sent the triggers a context in ``connection``'s transaction.

    Their versions may then be in the transaction's row.
    """
    return STATE in connection.info


def written_histories(connection: Connection) -> set[Table]:
    """The history tables of the tables in database mode written in ``connection``'s transaction.

    As far as the library saw: by its statements that sent the triggers a context.
    """
    sent: Sent | None = connection.info.get(STATE)
    return sent.written if sent is not None else set()


def adopt_trigger_transaction(connection: Connection) -> TriggerTransaction | None:
    """The row the triggers inserted for ``connection``'s transaction, now shared with the ORM.

    None when they inserted none (then the ORM writer inserts it and calls
    :func:`share_transaction`).
    """
    sent: Sent | None = connection.info.get(STATE)
    if sent is None:
        return None
    transaction_id = trigger_transaction(connection)
    if transaction_id is None:
        return None
    timestamp = connection.execute(
        select(Transaction.timestamp).where(Transaction.id == transaction_id),
        execution_options={INTERNAL: True},
    ).scalar_one()
    adopted = TriggerTransaction(transaction_id, timestamp, sent.attribution)
    connection.info[SHARED] = sent.shared = adopted
    return adopted


def trigger_transaction(connection: Connection) -> int | None:
    """The id of the ``chronicle_transaction`` row the triggers write ``connection``'s versions in.

    None when no statement of the library sent the triggers the context in the current
    transaction, or when no trigger has written a version in it yet.
    """
    if STATE not in connection.info:
        return None
    name = connection.dialect.name
    options = {INTERNAL: True}
    if name == "postgresql":
        found = connection.exec_driver_sql(
            "SELECT CAST(NULLIF(current_setting('chronicle.tx', true), '') AS BIGINT)",
            execution_options=options,
        ).scalar()
    elif name == "sqlite":
        found = connection.exec_driver_sql(
            "SELECT transaction_id FROM chronicle_context WHERE id = 0", execution_options=options
        ).scalar()
    else:
        found = connection.exec_driver_sql(
            "SELECT id FROM chronicle_transaction WHERE id = @chronicle_tx_id",
            execution_options=options,
        ).scalar()
    return None if found is None else int(found)


def drop_if_unreferenced(
    connection: Connection, histories: set[Table], shared: TriggerTransaction | None
) -> None:
    """Delete the transaction's row when no version refers to it: every change was taken back.

    Only the history tables of the tables the transaction's statements wrote are read, each by
    its index on ``transaction_id``. On MariaDB the test is a plain read and the row is then
    deleted by its key: a ``DELETE`` whose subquery read the history tables would lock a range
    of that index, where concurrent transactions insert their versions.
    """
    name = connection.dialect.name
    current: ColumnElement[Any]
    if shared is not None:
        current = literal(shared.id, BigInteger())
    elif name == "postgresql":
        current = literal_column(
            "CAST(NULLIF(current_setting('chronicle.tx', true), '') AS BIGINT)"
        )
    elif name == "sqlite":
        current = literal_column("(SELECT transaction_id FROM chronicle_context WHERE id = 0)")
    else:
        current = literal_column("@chronicle_tx_id")
    tables = sorted(histories, key=lambda table: table.fullname)
    used = [exists().where(table.c.transaction_id == current) for table in tables]
    options = {INTERNAL: True}
    if name in ("postgresql", "sqlite"):
        connection.execute(
            delete(Transaction).where(Transaction.id == current, *(~u for u in used)),
            execution_options=options,
        )
        return
    found = connection.execute(select(current, *used), execution_options=options).one()
    if found[0] is not None and not any(found[1:]):
        connection.execute(
            delete(Transaction).where(Transaction.id == int(found[0])), execution_options=options
        )
