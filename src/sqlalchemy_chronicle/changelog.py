"""The change log: one audit feed across every versioned table.

Next to the per-table history, every transaction that changes versioned rows writes one
:class:`ChangeLog` row per changed row: which table and row, what happened (``INSERT``,
``UPDATE``, ``DELETE`` or ``RESTORE``), when (the transaction's timestamp) and what changed. Who
and why are on the :class:`~sqlalchemy_chronicle.Transaction` the entry points to.

The entries are written in the flush, in the same database transaction as the change, with a fixed
number of statements whatever the number of rows; a rollback takes them away with the change. Like
the history, they are net per transaction: a row changed by several flushes of one transaction has
one entry, comparing its state before the transaction with its state after.

``row_id`` is the primary key as text: the value itself for a one-column key (``"42"``), a JSON
array for a composite key (``'["acme",7]'``); :func:`format_row_id` builds it.

``changes`` is JSON keyed by column name: for an insert the new values, for a delete the last
values, for an update or restore ``{"column": [old, new]}`` for each column that differs. Values
that JSON cannot hold are written as text (dates and times in ISO 8601, decimals as strings,
NaN and infinities by name).

Every helper here returns a :class:`~sqlalchemy.Select` (one SQL statement) to run with
``session.scalars(...)`` and to refine with ``.where()``, ``.order_by()`` or ``.limit()``.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import json
import math
import uuid
from collections.abc import Mapping
from typing import Any, Final

import pendulum
from sqlalchemy import JSON, BigInteger, Index, Integer, Select, String, inspect, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, foreign, mapped_column, relationship

from ._base import LibraryBase
from ._schema import spec_for
from ._types import UTCDateTime
from .errors import NotVersionedError
from .query import _identity, to_instant
from .transaction import Transaction

__all__ = [
    "ROW_ID_LENGTH",
    "ChangeLog",
    "changelog_between",
    "changelog_by",
    "changelog_for",
    "changelog_of_transaction",
    "format_row_id",
    "json_value",
]


ROW_ID_LENGTH: Final = 255
"""The longest ``row_id`` the change log holds; a longer key raises
:class:`~sqlalchemy_chronicle.InvalidKeyError` when its change is flushed."""


class ChangeLog(LibraryBase):
    """One row changed by one transaction."""

    __tablename__ = "chronicle_changelog"
    __table_args__ = (Index("ix_chronicle_changelog_row", "table_name", "row_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    transaction_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), index=True
    )
    table_name: Mapped[str] = mapped_column(String(255))
    row_id: Mapped[str] = mapped_column(String(ROW_ID_LENGTH))
    event_type: Mapped[str] = mapped_column(String(8))
    timestamp: Mapped[pendulum.DateTime] = mapped_column(UTCDateTime, index=True)
    changes: Mapped[dict[str, Any]] = mapped_column(
        JSON().with_variant(postgresql.JSONB(), "postgresql")
    )

    transaction: Mapped[Transaction] = relationship(
        Transaction,
        primaryjoin=lambda: foreign(ChangeLog.transaction_id) == Transaction.id,
        viewonly=True,
    )

    def __repr__(self) -> str:
        return (
            f"<ChangeLog {self.event_type} {self.table_name} {self.row_id} "
            f"in transaction {self.transaction_id}>"
        )


def format_row_id(identity: tuple[Any, ...]) -> str:
    """The ``row_id`` text of a primary key given as a tuple of its values."""
    if len(identity) == 1:
        return str(json_value(identity[0]))
    return json.dumps([json_value(v) for v in identity], separators=(",", ":"))


_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
_AS_IS: frozenset[type] = frozenset({type(None), bool, int, str})
"""Types JSON holds as they are; subclasses (enums among them) are checked one by one."""


def json_value(value: Any) -> Any:
    """``value`` as JSON can hold it: text for dates, times, decimals, UUIDs and bytes.

    Floats that JSON has no number for become the text ``"NaN"``, ``"Infinity"`` or
    ``"-Infinity"``.
    """
    if type(value) in _AS_IS:
        return value
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _NON_FINITE[str(value)]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return json_value(value.value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_value(v) for v in value]
    return str(value)


def _ordered() -> Select[ChangeLog]:
    return select(ChangeLog).order_by(ChangeLog.id)


def changelog_for(target: object, pk: Any = None) -> Select[ChangeLog]:
    """The entries of one row: ``changelog_for(article)`` or ``changelog_for(Article, 42)``.

    A composite primary key is given as a tuple, in the order of the mapper's primary key.
    """
    if isinstance(target, type):
        spec = spec_for(target)
        if spec is None:
            raise NotVersionedError(f"{target.__name__} is not a versioned class")
        identity = _identity(spec, pk)
    else:
        spec = spec_for(type(target))
        if spec is None:
            raise NotVersionedError(f"{type(target).__name__} is not a versioned class")
        state = inspect(target)
        identity = state.key[1] if state.key else tuple(state.dict.get(k) for k in spec.pk_keys)
    table = spec.root_spec.base.live.fullname
    return _ordered().where(
        ChangeLog.table_name == table, ChangeLog.row_id == format_row_id(tuple(identity))
    )


def changelog_of_transaction(transaction_id: int) -> Select[ChangeLog]:
    """The entries written by one transaction."""
    return _ordered().where(ChangeLog.transaction_id == transaction_id)


def changelog_between(target: type[Any] | str, start: Any, end: Any) -> Select[ChangeLog]:
    """The entries of one table (a versioned class or a table name) in ``[start, end)``.

    ``start`` and ``end`` take what :func:`~sqlalchemy_chronicle.query_as_of` takes.
    """
    if isinstance(target, str):
        table = target
    else:
        spec = spec_for(target)
        if spec is None:
            raise NotVersionedError(f"{target.__name__} is not a versioned class")
        table = spec.root_spec.base.live.fullname
    return _ordered().where(
        ChangeLog.table_name == table,
        ChangeLog.timestamp >= to_instant(start),
        ChangeLog.timestamp < to_instant(end),
    )


def changelog_by(actor: str) -> Select[ChangeLog]:
    """The entries of the transactions attributed to ``actor``."""
    return (
        _ordered()
        .join(Transaction, Transaction.id == ChangeLog.transaction_id)
        .where(Transaction.actor == actor)
    )
