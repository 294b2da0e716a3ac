"""What the library tells the triggers about the transaction: who, why, when, and in which mode.

The triggers need, for the transaction they version, the attribution (``changes_by()``,
``attribute_session()``), the time when the library's clock gives it, strict mode and the
change-log switch. Before the first statement of a transaction that may write (an ``INSERT``,
``UPDATE`` or ``DELETE`` of a table in database mode, or textual SQL that names one and is not a
read such as ``PRAGMA``, ``SHOW``, ``DESCRIBE``), a connection-level listener sends them, once, as
one JSON document: on PostgreSQL a transaction-local setting (``set_config('chronicle.context',
.., true)``), on MariaDB a user variable (``@chronicle_context``), on SQLite the row of the
library in the table ``chronicle_context``; the last two are cleared again before the commit.
It is sent again when the attribution changes within the transaction (the transaction's row is
updated then, as in ORM mode) and after what may have taken it away: a savepoint rolled back,
a failed statement, textual SQL such as ``ROLLBACK TO SAVEPOINT`` or ``CALL`` (see
:func:`_doubt`).

**One transaction row for both modes.** A transaction that writes classes of both modes has one
``chronicle_transaction`` row. When the ORM writer has inserted it first, it hands it over
(:func:`~._shared.share_transaction`) and the context carries its id and time, which the
triggers take as their own (PostgreSQL's ``chronicle.tx`` and ``chronicle.ts`` settings,
MariaDB's ``@chronicle_tx_id`` and ``@chronicle_ts``, the ``transaction_id`` and ``tx_ts`` of
SQLite's ``chronicle_context`` row). When the triggers have inserted it first, the ORM writer
adopts it (:func:`~._shared.adopt_trigger_transaction`).

**A transaction that took back every change.** The listener also notes the history tables of the
tables the transaction's statements wrote; at the commit, the row is deleted when none of them
holds a version of it (:func:`~._shared.drop_if_unreferenced`). A transaction that ran DDL, or
textual SQL other than ``INSERT``, ``UPDATE``, ``DELETE`` and ``REPLACE`` (which may write tables
it does not name: a ``SELECT`` of a function, a ``CALL``), keeps its row.

Writes from other clients send nothing: the triggers then record no actor and take the
database's own clock.
"""

from __future__ import annotations

import datetime as dt
import json
import weakref
from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import Connection, Engine, Table, event, literal_column, select
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
from ._shared import (
    HOLDS,
    INTERNAL,
    SHARED,
    STATE,
    Sent,
    TriggerTransaction,
    drop_if_unreferenced,
    unshare_transaction,
)

__all__ = ["SUPPORTED", "capture_table", "mark_created"]

SUPPORTED: Final = frozenset({"postgresql", "sqlite", "mysql", "mariadb"})
"""The dialects whose triggers the library writes."""

_SESSION: Final = "_chronicle.session"
_HAS_CONTEXT_TABLE: Final = "_chronicle.context_table"
_UNSURE: Final = "_chronicle.unsure_writes"
"""Set when the transaction ran DDL (a table it wrote may be gone by its commit) or textual SQL
that may write tables it does not name (a ``SELECT`` of a function, a ``CALL``): its
``chronicle_transaction`` row is then kept, even when nothing refers to it."""
_PLAIN_WRITES: Final = frozenset({"insert", "update", "delete", "replace"})
"""The first word of textual SQL that writes only the tables it names."""
_NO_WRITES: Final = frozenset(
    {"pragma", "show", "describe", "begin", "start", "savepoint", "release", "rollback", "commit"}
)
"""The first word of textual SQL that writes no table."""
_KEEP_ROWS: Final = _PLAIN_WRITES | frozenset(
    {"select", "show", "describe", "explain", "set", "savepoint", "release", "begin", "start"}
)
"""The first word of textual SQL that takes back no write of the transaction (a plain write
does not either, unless it fails: see :func:`_doubt`)."""

_enabled = False
_histories: dict[Any, Table] = {}
"""The history table of each live table in database mode."""
_histories_by_name: dict[str, list[Table]] = {}
"""The same, by the live table's name in lower case, for textual SQL."""


def capture_table(table: Table, history: Table) -> None:
    """Send the context before statements that write ``table``, whose triggers version it.

    ``history`` is its history table, where the triggers write.
    """
    _histories[table] = history
    _histories_by_name.setdefault(table.name.lower(), []).append(history)
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
    connection.info.pop(STATE, None)
    connection.info.pop(_UNSURE, None)
    connection.info.pop(_SESSION, None)
    unshare_transaction(connection)


def _session_began(
    session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    connection.info[_SESSION] = weakref.ref(session)


def _rollback(connection: Connection) -> None:
    connection.info.pop(STATE, None)
    unshare_transaction(connection)


def _savepoint_rolled_back(connection: Connection, name: str, context: Any) -> None:
    sent: Sent | None = connection.info.get(STATE)
    if sent is not None:
        sent.valid = False


def _commit(connection: Connection) -> None:
    sent: Sent | None = connection.info.pop(STATE, None)
    shared: TriggerTransaction | None = connection.info.get(SHARED)
    holds: Callable[[], bool] | None = connection.info.get(HOLDS)
    unshare_transaction(connection)
    unsure = connection.info.pop(_UNSURE, False)
    if sent is None:
        return
    if not (unsure or (holds is not None and holds())):
        drop_if_unreferenced(connection, sent.written, shared)
    name = connection.dialect.name
    if name == "sqlite":
        connection.exec_driver_sql(
            "DELETE FROM chronicle_context WHERE id = 0", execution_options={INTERNAL: True}
        )
    elif name != "postgresql":
        connection.exec_driver_sql(
            "SET @chronicle_context = NULL, @chronicle_tx_id = NULL",
            execution_options={INTERNAL: True},
        )


def _handle_error(context: ExceptionContext) -> None:
    if context.connection is not None:
        _doubt(context.connection)
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
    if context is None:
        return
    if context.isddl:
        connection.info[_UNSURE] = True
        return
    if (context.is_text or context.compiled is None) and not context.execution_options.get(
        INTERNAL
    ):
        words = statement.lstrip()[:10].lower().split(None, 1)
        first = words[0] if words else ""
        if first not in _KEEP_ROWS:
            _doubt(connection)  # a ROLLBACK TO SAVEPOINT, a CALL that may run one
        if first in _NO_WRITES:
            return
        if first not in _PLAIN_WRITES:
            connection.info[_UNSURE] = True
    written = _captured_histories(context, statement)
    if not written:
        return
    if context.execution_options.get(INTERNAL) or connection.dialect.name not in SUPPORTED:
        return
    owner = connection.info.get(_SESSION)
    session = owner() if owner is not None else None
    attribution = current_attribution(session)
    sent: Sent | None = connection.info.get(STATE)
    shared: TriggerTransaction | None = connection.info.get(SHARED)
    if (
        sent is None
        or not sent.valid
        or sent.attribution != attribution
        or sent.shared is not shared
    ):
        _send(connection, attribution, sent, shared)
        sent = connection.info.get(STATE)
    if sent is not None:
        sent.written.update(written)


def _doubt(connection: Connection) -> None:
    """Send the context again before the next statement that writes a table in database mode.

    After what may have taken back part of the transaction, and with it the context or the
    transaction's row: textual SQL such as ``ROLLBACK TO SAVEPOINT`` or a ``CALL`` (a savepoint
    rolled back through SQLAlchemy is seen by :func:`_savepoint_rolled_back`), or a failed
    statement, which MariaDB and SQLite roll back alone. On MariaDB the triggers of the
    library's connections trust ``@chronicle_tx_id`` without reading ``chronicle_transaction``
    (one statement less per row): the library then checks, once, that the row still exists.
    """
    sent: Sent | None = connection.info.get(STATE)
    if sent is not None:
        sent.valid = False


def _captured_histories(context: Any, statement: str) -> list[Table]:
    """The history tables of the tables in database mode that the statement may write.

    Those of a compiled ``INSERT``, ``UPDATE`` or ``DELETE`` of such a table, or of the tables
    that textual SQL names (a plain substring test, case-insensitive). DDL writes no rows.
    """
    if context.isddl:
        return []
    if context.is_text or context.compiled is None:
        lowered = statement.lower()
        return [h for name, hs in _histories_by_name.items() if name in lowered for h in hs]
    if context.isinsert or context.isupdate or context.isdelete:
        history = _histories.get(getattr(context.compiled.statement, "table", None))
        return [history] if history is not None else []
    return []


def _send(
    connection: Connection,
    attribution: Attribution,
    sent: Sent | None,
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
    options = {INTERNAL: True}
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
        if not (share or first or sent is None or sent.valid):
            _check_transaction_row(connection)
        if renamed:
            connection.exec_driver_sql(
                "UPDATE chronicle_transaction SET actor = %(actor)s, reason = %(reason)s, "
                "meta = %(meta)s WHERE id = @chronicle_tx_id",
                _attribution_parameters(attribution),
                execution_options=options,
            )
    written = sent.written if sent is not None else set()
    connection.info[STATE] = Sent(attribution, clock, shared=shared, written=written)


def _check_transaction_row(connection: Connection) -> None:
    """Forget ``@chronicle_tx_id`` (MariaDB) when its ``chronicle_transaction`` row is gone."""
    options = {INTERNAL: True}
    found = connection.execute(
        select(Transaction.id).where(Transaction.id == literal_column("@chronicle_tx_id")),
        execution_options=options,
    ).first()
    if found is None:
        connection.exec_driver_sql("SET @chronicle_tx_id = NULL", execution_options=options)


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


def _has_context_table(connection: Connection) -> bool:
    if connection.info.get(_HAS_CONTEXT_TABLE):
        return True
    found = connection.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE name = 'chronicle_context'",
        execution_options={INTERNAL: True},
    ).first()
    if found is not None:
        connection.info[_HAS_CONTEXT_TABLE] = True
    return found is not None
