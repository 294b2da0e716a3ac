"""The legacy bulk methods, refused for classes that ORM mode versions.

``Session.bulk_save_objects()``, ``bulk_insert_mappings()`` and ``bulk_update_mappings()`` write
rows with neither a flush hook nor a ``do_orm_execute`` hook: ORM mode cannot see what they
change, and would leave the history silently behind the live table. So their statements on the
table of a class versioned in ORM mode raise
:class:`~sqlalchemy_chronicle.UnsupportedStatementError` before they run (the session must then
be rolled back); ``session.execute(insert(Model), rows)`` and ``session.execute(update(Model),
rows)`` do the same work and are versioned. Classes in
database capture mode are left to their triggers, which version these writes like any other;
unversioned classes are not concerned.

SQLAlchemy runs these methods, as it runs a flush, in a subtransaction of the session's
transaction, and nothing else does: a subtransaction that no ``before_flush`` announced is one
of them (:func:`_transaction_created`). Its statements are recognised by a
``before_cursor_execute`` listener on the connection the session hands them
(:func:`_before_cursor_execute`), installed on every engine with the first such method called.
"""

from __future__ import annotations

import weakref
from typing import Any, Final

from sqlalchemy import Connection, Engine, Table, event
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction

from ..errors import UnsupportedStatementError
from ..schema.history import versioned_specs

__all__ = ["install"]

_FLUSH: Final = "_chronicle.flush_context"
"""``session.info`` key: the unit of work of the flush that ``before_flush`` announced."""
_BULK: Final = "_chronicle.legacy_bulk"
"""``session.info`` key: the subtransaction of a legacy bulk method running now."""
_SESSION: Final = "_chronicle.legacy_bulk_session"
"""``connection.info`` key: the session whose transaction the connection is in."""

_installed = False
_listening = False
_orm_tables: tuple[int, dict[Table, str]] = (-1, {})


def install() -> None:
    """Watch for the legacy bulk methods, once per process."""
    global _installed
    if not _installed:
        event.listen(Session, "before_flush", _before_flush)
        event.listen(Session, "after_transaction_create", _transaction_created)
        event.listen(Session, "after_transaction_end", _transaction_ended)
        event.listen(Session, "after_begin", _session_began)
        _installed = True


def _before_flush(session: Session, flush_context: UOWTransaction, instances: Any) -> None:
    session.info[_FLUSH] = flush_context


def _transaction_created(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None or transaction.nested:
        return
    flush = session.info.pop(_FLUSH, None)
    if flush is not None and flush.has_work:
        return  # a flush's subtransaction (one whose flush found nothing to do begins none)
    session.info[_BULK] = transaction
    _listen()


def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    if session.info.get(_BULK) is transaction:
        del session.info[_BULK]
    if transaction.parent is None:
        session.info.pop(_FLUSH, None)  # a flush that failed before its subtransaction began


def _session_began(
    session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    connection.info[_SESSION] = weakref.ref(session)


def _listen() -> None:
    global _listening
    if not _listening:
        event.listen(Engine, "before_cursor_execute", _before_cursor_execute)
        _listening = True


def _before_cursor_execute(
    connection: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    owner = connection.info.get(_SESSION)
    session = owner() if owner is not None else None
    if session is None or _BULK not in session.info or context is None:
        return
    compiled = context.compiled
    if compiled is None or not (context.isinsert or context.isupdate or context.isdelete):
        return
    name = _versioned_by_orm().get(getattr(compiled.statement, "table", None))  # type: ignore[arg-type]
    if name is not None:
        raise UnsupportedStatementError(
            f"the legacy Session.bulk_save_objects(), bulk_insert_mappings() and "
            f"bulk_update_mappings() run no hook that ORM capture mode sees, so {name}'s rows "
            f"would change without history; use session.execute(insert({name}), rows) or "
            f"session.execute(update({name}), rows), or version {name} with "
            "__versioned__ = {'capture': 'database'}. The statement did not run; roll the "
            "session back"
        )


def _versioned_by_orm() -> dict[Table, str]:
    """The live tables of the classes ORM mode versions, with their class names.

    Kept until another versioned class is declared.
    """
    global _orm_tables
    specs = versioned_specs()
    if _orm_tables[0] != len(specs):
        tables: dict[Table, str] = {}
        for spec in specs:
            if not spec.captured_by_database:
                for table in spec.tables:
                    tables.setdefault(table.live, spec.root_spec.mapper.class_.__name__)
        _orm_tables = (len(specs), tables)
    return _orm_tables[1]
