"""Transactions: the one row, and the one time, behind every version written together.

Each database transaction that changes versioned data gets one :class:`Transaction` row, created
at its first flush that writes history. Its ``timestamp`` is the ``valid_from`` of every version the
transaction writes, so that the transaction appears atomically in any as-of view.

The time comes from a *clock*: a callable that receives the connection and returns an aware
datetime. By default PostgreSQL and MariaDB/MySQL are asked for their own clock, so that several
application processes agree on one time line; SQLite has no shared server, so the default there is
pendulum's clock (which ``pendulum.travel_to`` moves). :func:`configure` installs another clock,
for example a frozen one in tests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final

import pendulum
from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    Engine,
    Integer,
    String,
    Text,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column
from sqlalchemy.sql import functions

from ._base import LibraryBase
from ._types import UTCDateTime, to_utc
from .errors import ConfigurationError

__all__ = [
    "ACTOR_LENGTH",
    "ATTRIBUTION_KEY",
    "Attribution",
    "Clock",
    "Transaction",
    "attribute_session",
    "changes_by",
    "configure",
    "database_clock",
    "default_clock",
    "python_clock",
    "use_sqlite_savepoints",
]

Clock = Callable[[Connection], dt.datetime]
"""A source of time: called with the transaction's connection, returns an aware datetime."""


ACTOR_LENGTH: Final = 255
"""The longest ``actor`` a :class:`Transaction` holds."""


class Transaction(LibraryBase):
    """One database transaction that changed versioned data.

    ``timestamp`` is the time every version written by the transaction carries as ``valid_from``;
    ``actor`` and ``reason`` say who made the change and why, ``meta`` holds anything else.
    """

    __tablename__ = "chronicle_transaction"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    timestamp: Mapped[pendulum.DateTime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    def __repr__(self) -> str:
        return f"<Transaction {self.id} at {self.timestamp} by {self.actor!r}>"


def python_clock(connection: Connection) -> dt.datetime:
    """Pendulum's current UTC time; moved by ``pendulum.travel_to``."""
    return pendulum.now("UTC")


def database_clock(connection: Connection) -> dt.datetime:
    """The database server's current UTC time, read with one ``SELECT``.

    PostgreSQL's ``clock_timestamp()`` and MariaDB/MySQL's ``UTC_TIMESTAMP(6)`` are used (not the
    transaction-start time), so that a long transaction does not stamp its versions with a time
    that concurrent transactions have already passed. SQLite has no server; pendulum is asked.
    """
    name = connection.dialect.name
    if name == "postgresql":
        now = connection.scalar(select(functions.func.clock_timestamp()))
    elif name in ("mysql", "mariadb"):
        now = connection.scalar(select(functions.func.utc_timestamp(6)))
        if now is not None:
            now = now.replace(tzinfo=dt.timezone.utc)
    else:
        return python_clock(connection)
    if not isinstance(now, dt.datetime):
        raise TypeError(f"the database clock returned {now!r}")
    return now


def default_clock(connection: Connection) -> dt.datetime:
    """The database's clock where there is a server, pendulum's on SQLite."""
    return database_clock(connection)


@dataclass
class _Settings:
    clock: Clock
    strict: bool
    changelog: bool


_settings = _Settings(clock=default_clock, strict=False, changelog=True)
_UNSET: Final[Any] = object()


def configure(
    *, clock: Clock | None = _UNSET, strict: bool = _UNSET, changelog: bool = _UNSET
) -> None:
    """Change the library-wide settings; arguments not given keep their value.

    :param clock: the source of transaction times; ``None`` restores :func:`default_clock`.
    :param strict: when true, a write that finds a concurrent transaction's newer version of a
        row raises :class:`~sqlalchemy_chronicle.ConcurrentVersionError` instead of starting the
        new version one microsecond after the newer one.
    :param changelog: when false, no :class:`~sqlalchemy_chronicle.ChangeLog` rows are written
        for any class (a class can also opt out with ``__versioned__ = {"changelog": False}``).
    """
    if clock is not _UNSET:
        _settings.clock = default_clock if clock is None else clock
    if strict is not _UNSET:
        _settings.strict = bool(strict)
    if changelog is not _UNSET:
        _settings.changelog = bool(changelog)


def changelog_enabled() -> bool:
    """Whether change-log rows are written at all (each class may still opt out)."""
    return _settings.changelog


def is_strict() -> bool:
    """Whether concurrent newer versions raise instead of being stepped over."""
    return _settings.strict


@dataclass(frozen=True)
class Attribution:
    """Who makes the changes of a transaction, and why.

    An ``actor`` longer than :data:`ACTOR_LENGTH` is refused here, with
    :class:`~sqlalchemy_chronicle.ConfigurationError`, rather than by the database at the flush.
    """

    actor: str | None = None
    reason: str | None = None
    meta: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.actor is not None and len(self.actor) > ACTOR_LENGTH:
            raise ConfigurationError(
                f"the actor {self.actor[:40]!r}... has {len(self.actor)} characters; a "
                f"transaction records up to {ACTOR_LENGTH} (put the rest in reason or meta)"
            )


_NOBODY: Final = Attribution()
_attribution: ContextVar[Attribution] = ContextVar("chronicle_attribution")
ATTRIBUTION_KEY: Final = "chronicle.attribution"
"""``session.info`` key of a per-session :class:`Attribution`, which wins over the context's."""


@contextmanager
def changes_by(
    actor: str | None = None, reason: str | None = None, **meta: Any
) -> Iterator[Attribution]:
    """Attribute the changes flushed inside the block to ``actor``, for ``reason``.

    ::

        with changes_by(actor="alice", reason="fix typo"):
            article.title = "Fixed"
            session.commit()

    The values live in a :class:`contextvars.ContextVar`, so each thread and each asyncio task
    has its own; blocks nest, an inner block's values winning. They are recorded on the
    :class:`Transaction` row when the transaction first writes history, and updated if a later
    flush of the same transaction runs under other values. Keyword arguments other than ``actor``
    and ``reason`` go to ``Transaction.meta``.
    """
    outer = _attribution.get(_NOBODY)
    current = Attribution(
        actor=actor if actor is not None else outer.actor,
        reason=reason if reason is not None else outer.reason,
        meta={**(outer.meta or {}), **meta} or None,
    )
    token = _attribution.set(current)
    try:
        yield current
    finally:
        _attribution.reset(token)


def attribute_session(
    session: Session, actor: str | None = None, reason: str | None = None, **meta: Any
) -> None:
    """Attribute every change ``session`` flushes from now on, whatever the context says.

    Stored in ``session.info`` under :data:`ATTRIBUTION_KEY`; call with no arguments to clear.
    """
    if actor is None and reason is None and not meta:
        session.info.pop(ATTRIBUTION_KEY, None)
    else:
        session.info[ATTRIBUTION_KEY] = Attribution(actor, reason, meta or None)


def current_attribution(session: Session) -> Attribution:
    """The attribution that applies to ``session`` now: its own, else the context's."""
    own: Attribution | None = session.info.get(ATTRIBUTION_KEY)
    return own if own is not None else _attribution.get(_NOBODY)


_SESSION_KEY: Final = "_chronicle.transaction"


@dataclass(frozen=True)
class OpenTransaction:
    """The :class:`Transaction` row of the database transaction a session is in."""

    id: int
    timestamp: pendulum.DateTime
    root: SessionTransaction
    created_in: SessionTransaction
    attribution: Attribution
    versioned_rows: set[tuple[Any, ...]] = dataclasses.field(default_factory=set)
    """The rows this transaction holds a version of (an over-estimate after a savepoint rollback
    that took versions away); when it empties, the transaction changed nothing and its row is
    removed."""
    removed_in_savepoints: dict[SessionTransaction, set[tuple[Any, ...]]] = dataclasses.field(
        default_factory=dict
    )
    """The rows whose versions were removed inside each savepoint: rolling the savepoint back
    brings those versions back."""


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
            connection.execute(
                update(Transaction)
                .where(Transaction.id == known.id)
                .values(actor=attribution.actor, reason=attribution.reason, meta=attribution.meta)
            )
            known = dataclasses.replace(known, attribution=attribution)
            session.info[_SESSION_KEY] = known
        return known
    timestamp = to_utc(_settings.clock(connection))
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
    opened = OpenTransaction(row_id, timestamp, root, current, attribution)
    session.info[_SESSION_KEY] = opened
    return opened


def drop_if_unused(session: Session, connection: Connection, opened: OpenTransaction) -> None:
    """Delete the transaction's row when it no longer holds any version.

    That happens when every row it wrote was taken back within it, for example a row inserted in
    one flush and deleted in a later one: the transaction then changed no versioned data. Inside
    a savepoint the row is kept, since rolling the savepoint back would bring the versions back.
    """
    if (
        not opened.versioned_rows
        and session.info.get(_SESSION_KEY) is opened
        and session.get_nested_transaction() is None
    ):
        connection.execute(delete(Transaction).where(Transaction.id == opened.id))
        del session.info[_SESSION_KEY]


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


def use_sqlite_savepoints(engine: Engine) -> None:
    """Let SQLAlchemy, not SQLite's driver, begin the transactions of ``engine``.

    :func:`~sqlalchemy_chronicle.restore` and :func:`~sqlalchemy_chronicle.restore_all` work in
    a savepoint. Python's ``sqlite3`` begins a transaction by itself, only before a write, so a
    savepoint taken first becomes the outermost transaction and releasing it commits. This
    installs the recipe of SQLAlchemy's SQLite documentation ("Serializable isolation /
    Savepoints"): the driver begins nothing, SQLAlchemy emits ``BEGIN``. Other databases need
    nothing, and for them this does nothing. For an ``AsyncEngine``, pass its ``sync_engine``.
    """
    if engine.dialect.name != "sqlite":
        return
    if not event.contains(engine, "connect", _no_driver_transactions):
        event.listen(engine, "connect", _no_driver_transactions)
        event.listen(engine, "begin", _begin_explicitly)


def _no_driver_transactions(dbapi_connection: Any, connection_record: Any) -> None:
    dbapi_connection.isolation_level = None


def _begin_explicitly(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")
