"""The library's own tables: transactions, the change log, and what operating history records.

:class:`Transaction` (``chronicle_transaction``) is the one row, and the one time, behind every
version a database transaction writes: its ``timestamp`` is their ``valid_from``, and ``actor``,
``reason`` and ``meta`` say who changed what and why. :class:`ChangeLog` (``chronicle_changelog``)
is the audit feed across every versioned table: one entry per row a transaction changed, net per
transaction. Both are mapped on the library's own declarative base and join an application's
``MetaData`` when its first versioned class is declared (see :mod:`._base`).

``row_id`` is the primary key as text: the value itself for a one-column key (``"42"``), a JSON
array for a composite key (``'["acme",7]'``); :func:`format_row_id` builds it, and
:func:`parse_row_id` reads it back (or a key typed by a person) as the key's typed values.
``changes`` is JSON keyed by column name; :func:`json_value` says how values that JSON cannot
hold are written.

Three more tables record what is done to history over the years (see :doc:`/operations`):
:class:`Horizon` (``chronicle_horizon``) the pruning horizon of each table, :class:`Redaction`
(``chronicle_redaction``) who redacted which columns of which row, when and why, and
:class:`LedgerEntry` (``chronicle_ledger``) the digest chain that makes tampering evident.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

import pendulum
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, foreign, mapped_column, relationship
from sqlalchemy.types import TypeEngine

from ..errors import InvalidKeyError
from ..types import JSONDocument, UTCDateTime
from ._base import LibraryBase

__all__ = [
    "ACTOR_LENGTH",
    "INTEGER_TEXT",
    "ROW_ID_LENGTH",
    "ChangeLog",
    "Horizon",
    "LedgerEntry",
    "Redaction",
    "Transaction",
    "format_row_id",
    "json_value",
    "parse_row_id",
    "typed_key",
]


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
    changes: Mapped[dict[str, Any]] = mapped_column(JSONDocument)

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


class Horizon(LibraryBase):
    """The pruning horizon of one versioned table: its history before ``horizon`` is gone.

    Written by :func:`~sqlalchemy_chronicle.prune_history` before it deletes anything, so that a
    pruning interrupted half-way already refuses the reads it may have made incomplete.
    """

    __tablename__ = "chronicle_horizon"

    table_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    horizon: Mapped[pendulum.DateTime] = mapped_column(UTCDateTime)
    history_began: Mapped[pendulum.DateTime] = mapped_column(UTCDateTime)
    """When the table's history began, before pruning took its first versions."""
    pruned_at: Mapped[pendulum.DateTime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<Horizon {self.table_name} at {self.horizon}>"


class Redaction(LibraryBase):
    """One redaction: which columns of which row were scrubbed from history, by whom, and why."""

    __tablename__ = "chronicle_redaction"
    __table_args__ = (Index("ix_chronicle_redaction_row", "table_name", "row_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    table_name: Mapped[str] = mapped_column(String(255))
    row_id: Mapped[str] = mapped_column(String(ROW_ID_LENGTH))
    columns: Mapped[list[str]] = mapped_column(JSON)
    marker: Mapped[str | None] = mapped_column(Text)
    """The text that replaced the values of string columns; NULL when every value became NULL."""
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH))
    redacted_at: Mapped[pendulum.DateTime] = mapped_column(UTCDateTime)
    versions: Mapped[int] = mapped_column(Integer)
    """How many versions held the row; every one of them was redacted."""

    def __repr__(self) -> str:
        return f"<Redaction {self.table_name} {self.row_id} {self.columns} by {self.actor!r}>"


class LedgerEntry(LibraryBase):
    """The digest of one sealed version of one row, chained to the digest of the one before.

    A change-log entry is sealed as a version of its row in ``chronicle_changelog:<table>``,
    numbered by its id, its fields (``transaction_id``, ``event_type``, ``timestamp``, and
    ``changes.<column>`` per change) standing for the columns.

    ``digest`` covers ``values_digest``, the version's number, interval start, operation,
    ``restored_from`` and transaction, and ``previous``, the digest of the row's version before.
    ``values_digest`` covers the column digests, each made with a random salt of its own kept in
    ``salts`` (hex, by column name); ``redacted`` keeps the column digests of redacted columns,
    whose salts are then gone. See :mod:`sqlalchemy_chronicle.operate.ledger`.
    """

    __tablename__ = "chronicle_ledger"
    __table_args__ = (
        UniqueConstraint("table_name", "row_id", "version", name="uq_chronicle_ledger_version"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    table_name: Mapped[str] = mapped_column(String(255))
    row_id: Mapped[str] = mapped_column(String(ROW_ID_LENGTH))
    version: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    """The version's number; for a change-log entry, the entry's id."""
    digest: Mapped[str] = mapped_column(String(64))
    values_digest: Mapped[str] = mapped_column(String(64))
    previous: Mapped[str | None] = mapped_column(String(64))
    salts: Mapped[dict[str, str]] = mapped_column(JSON)
    redacted: Mapped[dict[str, str] | None] = mapped_column(JSON)
    sealed_at: Mapped[pendulum.DateTime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<LedgerEntry {self.table_name} {self.row_id} v{self.version}>"


def format_row_id(identity: tuple[Any, ...]) -> str:
    """The ``row_id`` text of a primary key given as a tuple of its values.

    A composite key is a JSON array, with non-ASCII characters as they are: the text the
    database capture mode's triggers write too, so that both modes' entries of a row match.
    """
    if len(identity) == 1:
        return str(json_value(identity[0]))
    return json.dumps([json_value(v) for v in identity], separators=(",", ":"), ensure_ascii=False)


def parse_row_id(text: str, columns: Sequence[Column[Any]], *, table: str) -> tuple[Any, ...]:
    """The primary key whose ``row_id`` text is ``text``, each value of its column's type.

    The inverse of :func:`format_row_id`, for keys typed by people (the command line, the
    viewer's URLs, :func:`~sqlalchemy_chronicle.redact`): a one-column key is the value itself
    (``42``, ``acme``); a composite key is a JSON array (``'["acme",7]'``) or the values
    separated by commas when none holds a comma (``acme,7``). ``columns`` are the key's columns
    in key order; ``table`` names the table in messages.

    >>> from sqlalchemy import Column, Integer, String
    >>> key = [Column("owner", String(20)), Column("code", Integer)]
    >>> parse_row_id('["acme",7]', key, table="tag")
    ('acme', 7)
    >>> parse_row_id("acme,7", key, table="tag")
    ('acme', 7)
    >>> parse_row_id(format_row_id(("acme", 7)), key, table="tag")
    ('acme', 7)

    :raises InvalidKeyError: the wrong number of values, or a value its column cannot take.
    """
    if len(columns) == 1:
        raw: list[Any] = [text]
    elif text.lstrip().startswith("["):
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise InvalidKeyError(
                f"{text!r} is not a JSON array: {exc}; write the key of {table} as "
                f"{_key_example(columns)}"
            ) from None
        raw = loaded if isinstance(loaded, list) else [loaded]
    else:
        raw = text.split(",")
    if len(raw) != len(columns):
        names = [column.name for column in columns]
        described = names[0] if len(names) == 1 else f"({', '.join(names)})"
        raise InvalidKeyError(
            f"{table} has the primary key {described}, {len(columns)} "
            f"value{'s' if len(columns) > 1 else ''}; got {len(raw)} in {text!r}"
            + (f"; write it as {_key_example(columns)}" if len(columns) > 1 else "")
        )
    return typed_key(raw, columns, table=table)


def typed_key(
    values: Sequence[Any], columns: Sequence[Column[Any]], *, table: str
) -> tuple[Any, ...]:
    """``values`` of a primary key, each as its column's type: text (or JSON) is converted.

    A value already of its column's Python type is kept as it is.

    :raises InvalidKeyError: a value its column cannot take (None among them).
    """
    return tuple(_key_value(table, c, v) for c, v in zip(columns, values, strict=True))


def _key_example(columns: Sequence[Column[Any]]) -> str:
    values = ["7" if _python_type(c.type) is int else '"x"' for c in columns]
    return f"'[{','.join(values)}]' or {','.join(v.strip(chr(34)) for v in values)}"


def _python_type(type_: TypeEngine[Any]) -> type | None:
    try:
        found: type = type_.python_type
    except NotImplementedError:
        return None
    return found


def _key_value(table: str, column: Column[Any], value: Any) -> Any:
    """One key value, typed like ``column``."""
    wanted = _python_type(column.type)
    if value is None:
        problem = "null"
    elif wanted is None or wanted is object:
        return value if isinstance(value, str) else json.dumps(value)
    elif isinstance(value, wanted) and not (isinstance(value, bool) and wanted is not bool):
        return value
    else:
        text = value if isinstance(value, str) else json.dumps(value)
        try:
            return _from_text(wanted, text.strip() if wanted is not str else text)
        except (ValueError, decimal.InvalidOperation):
            problem = repr(text)
    kind = _KIND.get(wanted, wanted.__name__ if wanted else "value")
    raise InvalidKeyError(f"{table}.{column.name} takes {kind}; got {problem}")


_KIND: Final[dict[type | None, str]] = {
    int: "an integer",
    str: "text",
    decimal.Decimal: "a number",
    float: "a number",
    uuid.UUID: "a UUID",
    dt.date: "a date (YYYY-MM-DD)",
    dt.datetime: "a date and time (ISO 8601)",
    bool: "true or false",
}
INTEGER_TEXT: Final = re.compile(r"[+-]?[0-9]+")
"""A whole number as text, for :meth:`~re.Pattern.fullmatch`: ASCII digits only (``int`` takes
``"1_000"`` and non-ASCII digits such as ``"١٢"``, and ``str.isdigit`` takes ``"²"``, which ``int``
refuses)."""


def _from_text(wanted: type, text: str) -> Any:
    if wanted is int:
        if not INTEGER_TEXT.fullmatch(text):
            raise ValueError(text)
        return int(text)
    if wanted is bool:
        if text.lower() not in {"true", "false", "1", "0"}:
            raise ValueError(text)
        return text.lower() in {"true", "1"}
    if wanted is dt.datetime:
        return dt.datetime.fromisoformat(text)
    if wanted is dt.date:
        return dt.date.fromisoformat(text)
    return wanted(text)


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
