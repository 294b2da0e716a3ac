"""The transaction row of the database transaction a session is in, and its bookkeeping.

The writer inserts the :class:`~sqlalchemy_chronicle.Transaction` row at the transaction's first
write of history (:func:`open_transaction`) and remembers it, with the rows it holds versions of,
in ``session.info``. Savepoints that roll back, and transactions that end, are followed by the
session listeners this module installs, so that no later flush trusts a row that is gone; a
transaction whose every version was taken back loses its row (:func:`drop_if_unused`), after the
flush that took the last one back or, when that flush ran inside savepoints, as soon as the
outermost of them is released.

A transaction that also writes classes in database capture mode has one row for both modes: the
writer adopts the row the triggers inserted, or hands its own to them
(:mod:`sqlalchemy_chronicle.capture.database`). The triggers' versions in it are not counted in
``versioned_rows``; such a row is removed, if nothing refers to it, at the commit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

import pendulum
from sqlalchemy import Connection, delete, event, insert, update
from sqlalchemy.orm import Session, SessionTransaction

from ..capture.attribution import Attribution, current_attribution
from ..capture.database import (
    TriggerTransaction,
    adopt_trigger_transaction,
    share_transaction,
    triggers_active,
    unshare_transaction,
)
from ..config import clock_time
from ..instants import to_utc
from ..schema.tables import Transaction

__all__ = [
    "OpenTransaction",
    "current_transaction",
    "drop_if_unused",
    "drop_if_unused_on_release",
    "forget_versioned_rows",
    "install",
    "open_transaction",
]


_SESSION_KEY: Final = "_chronicle.transaction"


@dataclass(frozen=True)
class OpenTransaction:
    """The :class:`Transaction` row of the database transaction a session is in."""

    id: int
    timestamp: pendulum.DateTime
    root: SessionTransaction
    created_in: SessionTransaction
    attribution: Attribution
    connection: Connection
    """The connection the row was inserted on; the row is deleted on it too."""
    versioned_rows: set[tuple[Any, ...]] = dataclasses.field(default_factory=set)
    """The rows this transaction holds a version of (an over-estimate after a savepoint rollback
    that took versions away); when it empties, the transaction changed nothing and its row is
    removed."""
    removed_in_savepoints: dict[SessionTransaction, set[tuple[Any, ...]]] = dataclasses.field(
        default_factory=dict
    )
    """The rows whose versions were removed inside each savepoint: rolling the savepoint back
    brings those versions back."""
    changelog_entries: dict[tuple[str, str], list[int]] = dataclasses.field(default_factory=dict)
    """On databases that lock index ranges (MariaDB, MySQL), the ids of the change-log entries
    this transaction wrote, by table name and row id: a later flush that writes one of those rows
    again deletes its entries by primary key, which locks just them and not the range of the
    ``transaction_id`` index after them, where every other transaction inserts its entries. An
    id that a rolled-back savepoint took away deletes nothing."""


def forget_versioned_rows(
    session: Session, transaction: OpenTransaction, rows: set[tuple[Any, ...]]
) -> None:
    """Note that ``transaction`` no longer holds a version of ``rows``."""
    gone = rows & transaction.versioned_rows
    transaction.versioned_rows.difference_update(gone)
    savepoint = session.get_nested_transaction()
    if gone and savepoint is not None:
        transaction.removed_in_savepoints.setdefault(savepoint, set()).update(gone)


def _root(transaction: SessionTransaction) -> SessionTransaction:
    while transaction.parent is not None:
        transaction = transaction.parent
    return transaction


def current_transaction(session: Session) -> OpenTransaction | None:
    """The session's :class:`Transaction` if its current database transaction has one yet."""
    known: OpenTransaction | None = session.info.get(_SESSION_KEY)
    current = session.get_transaction()
    if known is None or current is None or known.root is not _root(current):
        return None
    return known


def open_transaction(session: Session, connection: Connection) -> OpenTransaction:
    """Return the session's current :class:`Transaction`, inserting its row on first use."""
    current = session.get_nested_transaction() or session.get_transaction()
    if current is None:
        raise RuntimeError("open_transaction() needs a session inside a transaction")
    root = _root(current)
    known: OpenTransaction | None = session.info.get(_SESSION_KEY)
    attribution = current_attribution(session)
    if known is not None and known.root is root:
        if attribution != known.attribution:
            _attribute(connection, known.id, attribution)
            known = dataclasses.replace(known, attribution=attribution)
            session.info[_SESSION_KEY] = known
        return known
    adopted = adopt_trigger_transaction(connection)
    if adopted is not None:
        row_id, timestamp = adopted.id, to_utc(adopted.timestamp)
        if adopted.attribution != attribution:
            _attribute(connection, row_id, attribution)
    else:
        timestamp = to_utc(clock_time(connection))
        row_id = _insert(connection, timestamp, attribution)
    opened = OpenTransaction(row_id, timestamp, root, current, attribution, connection)
    shared = adopted or TriggerTransaction(row_id, timestamp, attribution)
    share_transaction(connection, shared, lambda: bool(opened.versioned_rows))
    session.info[_SESSION_KEY] = opened
    return opened


def _insert(connection: Connection, timestamp: pendulum.DateTime, attribution: Attribution) -> int:
    result = connection.execute(
        insert(Transaction).values(
            timestamp=timestamp,
            actor=attribution.actor,
            reason=attribution.reason,
            meta=attribution.meta,
        )
    )
    (row_id,) = result.inserted_primary_key or (None,)
    if row_id is None:
        raise RuntimeError("the database returned no id for the new transaction row")
    return int(row_id)


def _attribute(connection: Connection, row_id: int, attribution: Attribution) -> None:
    connection.execute(
        update(Transaction)
        .where(Transaction.id == row_id)
        .values(actor=attribution.actor, reason=attribution.reason, meta=attribution.meta)
    )


def drop_if_unused(session: Session, connection: Connection, opened: OpenTransaction) -> None:
    """Delete the transaction's row when it no longer holds any version.

    That happens when every row it wrote was taken back within it, for example a row inserted in
    one flush and deleted in a later one: the transaction then changed no versioned data. Inside
    a savepoint the row is kept, since rolling the savepoint back would bring the versions back;
    releasing the outermost savepoint drops it then (:func:`drop_if_unused_on_release`), so that a
    commit that needs no further flush leaves no row without versions.
    """
    if session.get_nested_transaction() is None:
        _drop_if_empty(session, connection, opened)


def drop_if_unused_on_release(session: Session, released: SessionTransaction) -> None:
    """Delete the transaction's row if it holds no version once savepoint ``released`` is.

    Called while the savepoint is released (``after_commit`` of a nested transaction). Within an
    outer savepoint the row is still kept: that savepoint may roll back yet.
    """
    known: OpenTransaction | None = session.info.get(_SESSION_KEY)
    if known is None or known.root is not _root(released):
        return
    enclosing = released.parent
    while enclosing is not None:
        if enclosing.nested:
            return
        enclosing = enclosing.parent
    _drop_if_empty(session, known.connection, known)


def _drop_if_empty(session: Session, connection: Connection, opened: OpenTransaction) -> None:
    """Delete the row, unless the triggers may have versions in it (they check at the commit)."""
    if (
        not opened.versioned_rows
        and session.info.get(_SESSION_KEY) is opened
        and not triggers_active(connection)
    ):
        connection.execute(delete(Transaction).where(Transaction.id == opened.id))
        del session.info[_SESSION_KEY]
        unshare_transaction(connection)


def forget_transaction(session: Session) -> None:
    """Forget the session's :class:`Transaction` once its database transaction has ended."""
    session.info.pop(_SESSION_KEY, None)


def forget_rolled_back(session: Session, rolled_back: SessionTransaction) -> None:
    """Drop the session's :class:`Transaction` if ``rolled_back`` took its row away.

    A rolled-back savepoint that began after the row leaves it, and gives it back the versioned
    rows whose versions were removed inside the savepoint.
    """
    known: OpenTransaction | None = session.info.get(_SESSION_KEY)
    if known is None:
        return
    transaction: SessionTransaction | None = known.created_in
    while transaction is not None:
        if transaction is rolled_back:
            del session.info[_SESSION_KEY]
            unshare_transaction(known.connection)
            return
        transaction = transaction.parent
    for savepoint in list(known.removed_in_savepoints):
        if _is_within(savepoint, rolled_back):
            known.versioned_rows.update(known.removed_in_savepoints.pop(savepoint))


def _is_within(transaction: SessionTransaction, outer: SessionTransaction) -> bool:
    """Whether ``transaction`` is ``outer`` or began inside it (ended or not)."""
    current: SessionTransaction | None = transaction
    while current is not None:
        if current is outer:
            return True
        current = current.parent
    return False


_installed = False


def install() -> None:
    """Register the listeners that forget rolled-back and ended transactions, once."""
    global _installed
    if not _installed:
        event.listen(Session, "after_soft_rollback", _after_soft_rollback)
        event.listen(Session, "after_transaction_end", _after_transaction_end)
        event.listen(Session, "after_commit", _after_commit)
        _installed = True


def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    forget_rolled_back(session, previous_transaction)


def _after_commit(session: Session) -> None:
    # A nested transaction's after_commit runs once its savepoint is released, before the session
    # leaves it; the root's runs after the database commit, when nothing can be executed any more.
    released = session.get_nested_transaction()
    if released is not None:
        drop_if_unused_on_release(session, released)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        forget_transaction(session)
