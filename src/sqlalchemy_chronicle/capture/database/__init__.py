"""Database capture mode: the database's own triggers write the history and the change log.

With ``configure(capture="database")``, or ``__versioned__ = {"capture": "database"}`` on one
class, every write to the class's table is versioned by the database, whoever makes it: the ORM,
Core and ``text()`` statements, the legacy ``bulk_*`` methods, another program, ``psql``. The
history tables, ``chronicle_transaction``, the change log and every reading, restoring and
attribution function are those of ORM mode; the session's flush listeners leave such classes to
the triggers.

``metadata.create_all()`` creates the triggers right after the live table (a ``after_create``
listener on it) and ``drop_all()`` drops them with it; a migration builds them from the tables as
the database holds them (:mod:`._reflected`). One module per database writes them:

- :mod:`._postgresql`: one row-level ``plpgsql`` trigger function;
- :mod:`._mysql`: three row triggers (MariaDB, MySQL);
- :mod:`._sqlite`: row triggers, three views whose ``INSTEAD OF`` triggers hold the rare paths,
  and the table ``chronicle_context``.

Every trigger applies, to the row it fires for, the rules that ORM mode applies per flush, with
the transaction's own version of the row (``transaction_id`` = this transaction) as its memory:

- an insert or an update writes a version only when the row differs from its open version; the
  transaction's first version of the row closes the open one (``valid_to`` = the transaction's
  time) and starts at that time, or one microsecond after a version of a concurrent transaction
  that already starts at or after it (strict mode raises
  :class:`~sqlalchemy_chronicle.ConcurrentVersionError` instead);
- a later statement on the same row rewrites that version; when the row is back to the values of
  the version before it, the transaction's version is dropped and the earlier one reopened;
- a delete turns the transaction's version into the delete marker (an insert of this same
  transaction is simply dropped), or writes the marker after closing the open version;
- the change-log entry of the row in this transaction is rewritten after each of those, from the
  transaction's version and the one before it, with the database's JSON functions.

Rolled-back work and rolled-back savepoints take their versions with them, as the triggers write
in the same transaction. What the library tells the triggers (attribution, clock, strict mode,
change log on or off) is sent by :mod:`._context`; :mod:`._shared` keeps one
``chronicle_transaction`` row per transaction for both capture modes, and removes it at the
commit when every change was taken back.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from sqlalchemy import DDL, Connection, Table, event

from ...errors import ConfigurationError
from ...schema.history import HistorySpec
from . import _mysql, _postgresql, _sqlite
from ._common import CapturedTable
from ._context import SUPPORTED, capture_table, mark_created
from ._reflected import (
    captured_options,
    captured_table_names,
    named_captured,
    reflect_captured,
)
from ._shared import (
    TriggerTransaction,
    adopt_trigger_transaction,
    share_transaction,
    trigger_transaction,
    triggers_active,
    unshare_transaction,
    written_histories,
)

__all__ = [
    "SUPPORTED",
    "CapturedTable",
    "TriggerTransaction",
    "adopt_trigger_transaction",
    "attach",
    "captured_options",
    "captured_table_names",
    "create_triggers",
    "drop_triggers",
    "named_captured",
    "reflect_captured",
    "share_transaction",
    "trigger_transaction",
    "triggers_active",
    "unshare_transaction",
    "written_histories",
]


def attach(spec: HistorySpec) -> None:
    """Let ``create_all()`` create, and ``drop_all()`` drop, the triggers of ``spec``'s table.

    Called for every versioned class when it is declared; does nothing for a class in ORM mode
    or a subclass (its parent's table, and so its triggers, hold its rows).

    :raises ConfigurationError: a class in database mode whose rows span several tables (joined
        inheritance), or whose history renames the library's columns (option ``columns``), which
        the triggers do not version.
    """
    if not spec.captured_by_database:
        return
    if len(spec.tables) > 1:
        raise _joined(spec)
    renamed = {d: n for d, n in spec.columns.names.items() if d != n}
    if renamed:
        raise ConfigurationError(
            f"{spec.mapper.class_.__name__} renames the library's history columns {renamed}, "
            "which database capture mode does not support; keep the default names or give it "
            "__versioned__ = {'capture': 'orm'}"
        )
    if spec.root is not None:
        return
    live = spec.base.live
    event.listen(live, "after_create", _created(spec))
    event.listen(live, "after_drop", _dropped(spec))
    capture_table(live, spec.base.history)


def create_triggers(connection: Connection, table: CapturedTable) -> None:
    """Create (or re-create) the triggers of ``table`` on ``connection``."""
    captured = table.on(connection)
    for statement in _module(connection).create_statements(captured, connection.dialect):
        connection.execute(_ddl(statement))
    mark_created(connection)


def drop_triggers(connection: Connection, table: CapturedTable) -> None:
    """Drop the triggers of ``table`` on ``connection``."""
    for statement in _module(connection).drop_statements(table, connection.dialect):
        connection.execute(_ddl(statement))


def _ddl(statement: str) -> DDL:
    """``statement`` as a DDL element (whose text SQLAlchemy %-formats, hence the escape)."""
    return DDL(statement.replace("%", "%%"))  # type: ignore[no-untyped-call]


def _created(spec: HistorySpec) -> Any:
    def create(table: Table, connection: Connection, **kw: Any) -> None:
        create_triggers(connection, CapturedTable.of(spec))

    return create


def _dropped(spec: HistorySpec) -> Any:
    def drop(table: Table, connection: Connection, **kw: Any) -> None:
        drop_triggers(connection, CapturedTable.of(spec))

    return drop


def _module(connection: Connection) -> ModuleType:
    name = connection.dialect.name
    if name not in SUPPORTED:
        raise ConfigurationError(
            f"database capture mode has no triggers for {name}; use capture='orm' there"
        )
    if name == "postgresql":
        return _postgresql
    if name == "sqlite":
        return _sqlite
    return _mysql


def _joined(spec: HistorySpec) -> ConfigurationError:
    return ConfigurationError(
        f"{spec.mapper.class_.__name__} keeps its rows in several tables (joined inheritance), "
        "which database capture mode does not version; give it __versioned__ = "
        "{'capture': 'orm'}"
    )
