"""What the library tells the triggers about the transaction: who, why, when, and in which mode.

The triggers need, for the transaction they version, the attribution (``changes_by()``,
``attribute_session()``), the time when the library's clock gives it, strict mode and the
change-log switch. Before the first statement of a transaction that may write (an ``INSERT``,
``UPDATE`` or ``DELETE``, or any textual SQL), a connection-level listener sends them, once, as
one JSON document: on PostgreSQL a transaction-local setting (``set_config('chronicle.context',
.., true)``), on MariaDB a user variable (``@chronicle_context``), on SQLite the row of the
library in the table ``chronicle_context``; the last two are cleared again before the commit.
It is sent again when the attribution changes within the transaction (the transaction's row is
updated then, as in ORM mode) and after a savepoint rolls back (which may have taken it away).

**One transaction row for both modes.** A transaction that writes classes of both modes has one
``chronicle_transaction`` row. When the ORM writer has inserted it first, it hands it over
(:func:`share_transaction`) and the context carries its id and time, which the triggers take as
their own (PostgreSQL's ``chronicle.tx`` and ``chronicle.ts`` settings, MariaDB's
``@chronicle_tx_id`` and ``@chronicle_ts``, the ``transaction_id`` and ``tx_ts`` of SQLite's
``chronicle_context`` row). When the triggers have inserted it first, the ORM writer adopts it
(:func:`adopt_trigger_transaction`).

Writes from other clients send nothing: the triggers then record no actor and take the
database's own clock.
"""

from __future__ import annotations

import datetime as dt
import json
import weakref
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Engine, Table, event, select
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.orm import Session, SessionTransaction

from ...config import (
    changelog_enabled,
    clock_time,
    current_clock,
    database_clock,
    default_clock,
    is_strict,
)
from ...errors import ConcurrentVersionError
from ...instants import to_utc
from ...schema.tables import Transaction
from ..attribution import Attribution, current_attribution
from ._common import CONCURRENT_MESSAGE

__all__ = [
    "SUPPORTED",
    "TriggerTransaction",
    "adopt_trigger_transaction",
    "capture_table",
    "mark_created",
    "share_transaction",
    "trigger_transaction",
    "triggers_active",
    "unshare_transaction",
]

SUPPORTED: Final = frozenset({"postgresql", "sqlite", "mysql", "mariadb"})
"""The dialects whose triggers the library writes."""

_STATE: Final = "_chronicle.database_context"
_SESSION: Final = "_chronicle.session"
_HAS_CONTEXT_TABLE: Final = "_chronicle.context_table"
_SHARED: Final = "_chronicle.shared_transaction"
_INTERNAL: Final = "_chronicle_context"
"""Execution option of the library's own statements here, which the listener lets pass."""

_enabled = False
_tables: set[Any] = set()
_table_names: set[str] = set()


@dataclass(frozen=True)
class TriggerTransaction:
    """The ``chronicle_transaction`` row of a connection's transaction, shared by both modes."""

    id: int
    timestamp: dt.datetime
    attribution: Attribution


@dataclass
class _Sent:
    """What was sent on a connection in its current transaction."""

    attribution: Attribution
    clock: str | None
    valid: bool = True
    shared: TriggerTransaction | None = None
    """The ORM writer's transaction row the triggers were told to use."""


def capture_table(table: Table) -> None:
    """Send the context before statements that write ``table``, whose triggers version it."""
    _tables.add(table)
    _table_names.add(table.name.lower())
    _enable()


def _enable() -> None:
    """Listen to every engine's statements, from the first class in database mode on."""
    global _enabled
    if _enabled:
        return
    event.listen(Engine, "begin", _begin)
    event.listen(Engine, "before_cursor_execute", _before_cursor_execute)
    event.listen(Engine, "rollback_savepoint", _savepoint_rolled_back)
    event.listen(Engine, "commit", _commit)
    event.listen(Engine, "rollback", _rollback)
    event.listen(Engine, "handle_error", _handle_error)
    event.listen(Session, "after_begin", _session_began)
    _enabled = True


def mark_created(connection: Connection) -> None:
    """Note that the triggers' tables exist on ``connection``'s database (SQLite)."""
    connection.info[_HAS_CONTEXT_TABLE] = True


def share_transaction(connection: Connection, shared: TriggerTransaction) -> None:
    """Have the triggers version ``connection``'s next writes in the ORM writer's row ``shared``.

    The context is sent again before the next statement that writes a table in database mode.
    """
    connection.info[_SHARED] = shared


def unshare_transaction(connection: Connection) -> None:
    """Forget the row :func:`share_transaction` gave, which a rolled-back savepoint took away."""
    connection.info.pop(_SHARED, None)


def triggers_active(connection: Connection) -> bool:
    """Whether the library sent the triggers a context in ``connection``'s transaction.

    Their versions may then be in the transaction's row.
    """
    return _STATE in connection.info


def adopt_trigger_transaction(connection: Connection) -> TriggerTransaction | None:
    """The row the triggers inserted for ``connection``'s transaction, now shared with the ORM.

    None when they inserted none (then the ORM writer inserts it and calls
    :func:`share_transaction`).
    """
    sent: _Sent | None = connection.info.get(_STATE)
    if sent is None:
        return None
    transaction_id = trigger_transaction(connection)
    if transaction_id is None:
        return None
    timestamp = connection.execute(
        select(Transaction.timestamp).where(Transaction.id == transaction_id),
        execution_options={_INTERNAL: True},
    ).scalar_one()
    adopted = TriggerTransaction(transaction_id, timestamp, sent.attribution)
    connection.info[_SHARED] = sent.shared = adopted
    return adopted


def _begin(connection: Connection) -> None:
    connection.info.pop(_STATE, None)
    connection.info.pop(_SESSION, None)
    connection.info.pop(_SHARED, None)


def _session_began(
    session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    connection.info[_SESSION] = weakref.ref(session)


def _rollback(connection: Connection) -> None:
    connection.info.pop(_STATE, None)
    connection.info.pop(_SHARED, None)


def _savepoint_rolled_back(connection: Connection, name: str, context: Any) -> None:
    sent: _Sent | None = connection.info.get(_STATE)
    if sent is not None:
        sent.valid = False


def _commit(connection: Connection) -> None:
    sent: _Sent | None = connection.info.pop(_STATE, None)
    if sent is None:
        return
    name = connection.dialect.name
    if name == "sqlite":
        connection.exec_driver_sql(
            "DELETE FROM chronicle_context WHERE id = 0", execution_options={_INTERNAL: True}
        )
    elif name != "postgresql":
        connection.exec_driver_sql(
            "SET @chronicle_context = NULL, @chronicle_tx_id = NULL",
            execution_options={_INTERNAL: True},
        )


def _handle_error(context: ExceptionContext) -> None:
    if CONCURRENT_MESSAGE in str(context.original_exception):
        raise ConcurrentVersionError(
            f"{context.original_exception}; roll the transaction back and retry it"
        ) from context.original_exception


def _before_cursor_execute(
    connection: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    if context is None or not _may_write_captured(context, statement):
        return
    if context.execution_options.get(_INTERNAL) or connection.dialect.name not in SUPPORTED:
        return
    owner = connection.info.get(_SESSION)
    session = owner() if owner is not None else None
    attribution = current_attribution(session)
    sent: _Sent | None = connection.info.get(_STATE)
    shared: TriggerTransaction | None = connection.info.get(_SHARED)
    if (
        sent is not None
        and sent.valid
        and sent.attribution == attribution
        and sent.shared is shared
    ):
        return
    _send(connection, attribution, sent, shared)


def _may_write_captured(context: Any, statement: str) -> bool:
    """Whether the statement may write a table in database mode.

    A compiled ``INSERT``, ``UPDATE`` or ``DELETE`` of such a table, or textual SQL that names
    one (a plain substring test, case-insensitive).
    """
    if context.is_text or context.compiled is None:
        lowered = statement.lower()
        return any(name in lowered for name in _table_names)
    if context.isinsert or context.isupdate or context.isdelete:
        return getattr(context.compiled.statement, "table", None) in _tables
    return False


def _send(
    connection: Connection,
    attribution: Attribution,
    sent: _Sent | None,
    shared: TriggerTransaction | None,
) -> None:
    name = connection.dialect.name
    if connection._is_autocommit_isolation():
        return  # each statement commits by itself: nothing would stay for the next one
    if name == "sqlite" and not _has_context_table(connection):
        return
    clock: str | None
    if shared is not None:
        clock = _clock_text(name, shared.timestamp)
    elif sent is None or not sent.valid:
        clock = _clock(connection)
    else:
        clock = sent.clock
    resent = sent is None or not sent.valid or sent.shared is not shared
    share = shared if resent else None
    document = json.dumps(
        {
            "actor": attribution.actor,
            "reason": attribution.reason,
            "meta": attribution.meta,
            "clock": clock,
            "strict": is_strict(),
            "changelog": changelog_enabled(),
        }
    )
    first = sent is None
    renamed = sent is not None and sent.attribution != attribution
    options = {_INTERNAL: True}
    if name == "postgresql":
        connection.exec_driver_sql(
            "SELECT set_config('chronicle.context', %(document)s, true)"
            + (
                ", set_config('chronicle.tx', %(tx)s, true), set_config('chronicle.ts', %(ts)s, "
                "true)"
                if share
                else ""
            ),
            {"document": document, "tx": str(share.id), "ts": clock}
            if share
            else {"document": document},
            execution_options=options,
        )
        if renamed:
            connection.exec_driver_sql(
                "UPDATE chronicle_transaction SET actor = %(actor)s, reason = %(reason)s, "
                "meta = CAST(%(meta)s AS JSON) "
                "WHERE id = CAST(NULLIF(current_setting('chronicle.tx', true), '') AS BIGINT)",
                _attribution_parameters(attribution),
                execution_options=options,
            )
    elif name == "sqlite":
        values = {
            "tx": share.id if share else None,
            "ts": clock,
            "actor": attribution.actor,
            "reason": attribution.reason,
            "meta": json.dumps(attribution.meta),
            "strict": is_strict(),
            "changelog": changelog_enabled(),
        }
        if first:
            connection.exec_driver_sql(
                "INSERT OR REPLACE INTO chronicle_context (id, origin, stamp, ts, actor, reason, "
                "meta, strict, changelog, transaction_id, tx_ts) VALUES (0, 'library', NULL, :ts, "
                ":actor, :reason, :meta, :strict, :changelog, :tx, CASE WHEN :tx IS NULL THEN "
                "NULL ELSE :ts END)",
                values,
                execution_options=options,
            )
        else:
            connection.exec_driver_sql(
                "INSERT INTO chronicle_context (id, origin, stamp, ts, actor, reason, meta, "
                "strict, changelog, transaction_id, tx_ts) VALUES (0, 'library', NULL, :ts, "
                ":actor, :reason, :meta, :strict, :changelog, :tx, CASE WHEN :tx IS NULL THEN "
                "NULL ELSE :ts END) "
                "ON CONFLICT (id) DO UPDATE SET ts = excluded.ts, actor = excluded.actor, "
                "reason = excluded.reason, meta = excluded.meta, strict = excluded.strict, "
                "changelog = excluded.changelog, "
                "transaction_id = coalesce(excluded.transaction_id, transaction_id), "
                "tx_ts = coalesce(excluded.tx_ts, tx_ts)",
                values,
                execution_options=options,
            )
        if renamed:
            connection.exec_driver_sql(
                "UPDATE chronicle_transaction SET actor = :actor, reason = :reason, meta = :meta "
                "WHERE id = (SELECT transaction_id FROM chronicle_context WHERE id = 0)",
                _attribution_parameters(attribution),
                execution_options=options,
            )
    else:
        if share:
            variables = ", @chronicle_tx_id = %(tx)s, @chronicle_ts = %(ts)s"
        else:
            variables = ", @chronicle_tx_id = NULL" if first else ""
        connection.exec_driver_sql(
            "SET @chronicle_context = %(document)s" + variables,
            {"document": document, "tx": share.id if share else None, "ts": clock},
            execution_options=options,
        )
        if renamed:
            connection.exec_driver_sql(
                "UPDATE chronicle_transaction SET actor = %(actor)s, reason = %(reason)s, "
                "meta = %(meta)s WHERE id = @chronicle_tx_id",
                _attribution_parameters(attribution),
                execution_options=options,
            )
    connection.info[_STATE] = _Sent(attribution, clock, shared=shared)


def _attribution_parameters(attribution: Attribution) -> dict[str, Any]:
    return {
        "actor": attribution.actor,
        "reason": attribution.reason,
        "meta": json.dumps(attribution.meta),
    }


def _clock(connection: Connection) -> str | None:
    """The transaction's time from the library's clock, or None to let the database take its own.

    On SQLite the library's clock is always read (the database's own has milliseconds only); on
    the servers only when a clock other than the default was installed.
    """
    name = connection.dialect.name
    if name != "sqlite" and current_clock() in (default_clock, database_clock):
        return None
    return _clock_text(name, clock_time(connection))


def _clock_text(name: str, time: dt.datetime) -> str:
    """``time`` as the triggers of database ``name`` read it."""
    now = to_utc(time)
    if name == "sqlite":
        return now.strftime("%Y-%m-%d %H:%M:%S.%f")
    if name == "postgresql":
        return now.isoformat()
    return now.strftime("%Y-%m-%d %H:%M:%S.%f")


def trigger_transaction(connection: Connection) -> int | None:
    """The id of the ``chronicle_transaction`` row the triggers write ``connection``'s versions in.

    None when no statement of the library sent the triggers the context in the current
    transaction, or when no trigger has written a version in it yet.
    """
    if _STATE not in connection.info:
        return None
    name = connection.dialect.name
    options = {_INTERNAL: True}
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


def _has_context_table(connection: Connection) -> bool:
    if connection.info.get(_HAS_CONTEXT_TABLE):
        return True
    found = connection.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE name = 'chronicle_context'",
        execution_options={_INTERNAL: True},
    ).first()
    if found is not None:
        connection.info[_HAS_CONTEXT_TABLE] = True
    return found is not None
