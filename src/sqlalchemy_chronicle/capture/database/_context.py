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

Writes from other clients send nothing: the triggers then record no actor and take the
database's own clock.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Engine, Table, event
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
from ..attribution import Attribution, current_attribution
from ._common import CONCURRENT_MESSAGE

__all__ = ["SUPPORTED", "capture_table", "mark_created", "trigger_transaction"]

SUPPORTED: Final = frozenset({"postgresql", "sqlite", "mysql", "mariadb"})
"""The dialects whose triggers the library writes."""

_STATE: Final = "_chronicle.database_context"
_SESSION: Final = "_chronicle.session"
_HAS_CONTEXT_TABLE: Final = "_chronicle.context_table"
_INTERNAL: Final = "_chronicle_context"
"""Execution option of the library's own statements here, which the listener lets pass."""

_enabled = False
_tables: set[Any] = set()
_table_names: set[str] = set()


@dataclass
class _Sent:
    """What was sent on a connection in its current transaction."""

    attribution: Attribution
    clock: str | None
    valid: bool = True


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


def _begin(connection: Connection) -> None:
    connection.info.pop(_STATE, None)
    connection.info.pop(_SESSION, None)


def _session_began(
    session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    connection.info[_SESSION] = weakref.ref(session)


def _rollback(connection: Connection) -> None:
    connection.info.pop(_STATE, None)


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
    if sent is not None and sent.valid and sent.attribution == attribution:
        return
    _send(connection, attribution, sent)


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


def _send(connection: Connection, attribution: Attribution, sent: _Sent | None) -> None:
    name = connection.dialect.name
    if connection._is_autocommit_isolation():
        return  # each statement commits by itself: nothing would stay for the next one
    if name == "sqlite" and not _has_context_table(connection):
        return
    clock = _clock(connection) if sent is None or not sent.valid else sent.clock
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
            "SELECT set_config('chronicle.context', %(document)s, true)",
            {"document": document},
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
            "ts": clock,
            "actor": attribution.actor,
            "reason": attribution.reason,
            "meta": json.dumps(attribution.meta),
            "strict": is_strict(),
            "changelog": changelog_enabled(),
        }
        if first:
            connection.exec_driver_sql(
                "INSERT OR REPLACE INTO chronicle_context "
                "(id, origin, stamp, ts, actor, reason, meta, strict, changelog, transaction_id) "
                "VALUES (0, 'library', NULL, :ts, :actor, :reason, :meta, :strict, :changelog, "
                "NULL)",
                values,
                execution_options=options,
            )
        else:
            connection.exec_driver_sql(
                "INSERT INTO chronicle_context "
                "(id, origin, stamp, ts, actor, reason, meta, strict, changelog) "
                "VALUES (0, 'library', NULL, :ts, :actor, :reason, :meta, :strict, :changelog) "
                "ON CONFLICT (id) DO UPDATE SET ts = excluded.ts, actor = excluded.actor, "
                "reason = excluded.reason, meta = excluded.meta, strict = excluded.strict, "
                "changelog = excluded.changelog",
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
        connection.exec_driver_sql(
            "SET @chronicle_context = %(document)s"
            + (", @chronicle_tx_id = NULL" if first else ""),
            {"document": document},
            execution_options=options,
        )
        if renamed:
            connection.exec_driver_sql(
                "UPDATE chronicle_transaction SET actor = %(actor)s, reason = %(reason)s, "
                "meta = %(meta)s WHERE id = @chronicle_tx_id",
                _attribution_parameters(attribution),
                execution_options=options,
            )
    connection.info[_STATE] = _Sent(attribution, clock)


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
    now = to_utc(clock_time(connection))
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
