"""The history tables as the database holds them, read without the application's models.

The command line must answer with nothing but a database URL, so it reads ``<table>_history``
(and ``chronicle_transaction``, ``chronicle_changelog``) by reflection. :func:`versioned_table`
finds a table's history and tells apart the ways a name can be wrong: no such table, a table that
is not versioned, a history table named instead of its table. A joined-inheritance subclass's
history table holds only its own columns and no interval; its parents are found through the live
table's foreign key on its primary key, and their history tables are joined in on the key and the
version, as the ORM joins the live tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    FromClause,
    MetaData,
    Select,
    Table,
    and_,
    inspect,
    or_,
    select,
)

from ..errors import ChronicleError, NotVersionedError
from ..schema.tables import ChangeLog, Transaction, parse_row_id
from ..types import UTCDateTime

__all__ = [
    "INTERVAL_COLUMNS",
    "CommandError",
    "VersionedTable",
    "require_library_tables",
    "versioned_table",
]

SUFFIX: Final = "_history"
INTERVAL_COLUMNS: Final = (
    "version",
    "valid_from",
    "valid_to",
    "operation",
    "transaction_id",
    "restored_from",
    "retired_values",
)
"""The columns a base history table adds to the copied ones."""


class CommandError(ChronicleError):
    """A command's input does not fit the database: an unknown table, models that cannot be used.

    The command line prints the message as one line on stderr and exits non-zero.
    """


@dataclass(frozen=True)
class VersionedTable:
    """One versioned table's history, as reflected: where to read it and what its columns are."""

    name: str
    """The live table's name, as given."""
    root: str
    """The table whose rows the change log names: the top of a joined-inheritance chain."""
    base: Table
    """The history table that holds the intervals (``<root>_history``)."""
    source: FromClause
    """``base``, or the join of every history table of a joined-inheritance chain."""
    key: tuple[Column[Any], ...]
    """The primary-key columns (without ``version``) of ``<name>_history``, in key order."""
    data: tuple[Column[Any], ...]
    """The copied columns, the key included, each name once (parents' first)."""

    def versions(self, key: Sequence[Any]) -> Select[Any]:
        """Every version of the row with ``key``, oldest first, with who wrote it and why."""
        return self._select().where(*self._match(key)).order_by(self.base.c.version)

    def version_at(self, key: Sequence[Any], when: dt.datetime) -> Select[Any]:
        """The version of the row with ``key`` whose interval holds ``when`` (none or one)."""
        base = self.base.c
        return self._select().where(
            *self._match(key),
            base.valid_from <= when,
            or_(base.valid_to.is_(None), base.valid_to > when),
        )

    def _match(self, key: Sequence[Any]) -> list[ColumnElement[bool]]:
        return [column == value for column, value in zip(self.key, key, strict=True)]

    def _select(self) -> Select[Any]:
        transaction = Transaction.__table__
        interval = [self.base.c[name] for name in INTERVAL_COLUMNS if name in self.base.c]
        return select(
            *interval,
            transaction.c.actor.label("_actor"),
            transaction.c.reason.label("_reason"),
            *(column.label(f"_data_{i}") for i, column in enumerate(self.data)),
        ).select_from(
            self.source.outerjoin(transaction, transaction.c.id == self.base.c.transaction_id)
        )

    def parse_key(self, text: str) -> tuple[Any, ...]:
        """A primary key typed on a command line, each value of its column's type.

        Read by :func:`~sqlalchemy_chronicle.schema.tables.parse_row_id`, so that every
        database gets values of the right type (or the user a clear refusal).

        :raises InvalidKeyError: the wrong number of values, or a value its column cannot take.
        """
        return parse_row_id(text, self.key, table=self.name)

    def describe_key(self) -> str:
        """The key's columns, for messages: ``id`` or ``(owner, code)``."""
        names = [column.name for column in self.key]
        return names[0] if len(names) == 1 else f"({', '.join(names)})"


def require_library_tables(connection: Connection, *names: str) -> None:
    """Refuse a database without the library's own tables (not a chronicle database)."""
    present = set(inspect(connection).get_table_names())
    for name in names or (Transaction.__tablename__, ChangeLog.__tablename__):
        if name not in present:
            raise CommandError(
                f"the database has no {name} table: it is not versioned by sqlalchemy-chronicle "
                "(or its tables were not created yet)"
            )


def versioned_table(connection: Connection, name: str) -> VersionedTable:
    """The history of the table ``name``, reflected; a name that is not one raises.

    :raises NotVersionedError: the table exists but has no history table.
    :raises CommandError: there is no such table, or ``name`` is a history table itself.
    """
    schema, _, table = name.rpartition(".")
    inspector = inspect(connection)
    present = set(inspector.get_table_names(schema=schema or None))
    if table not in present:
        raise CommandError(f"the database has no table {name!r}")
    if table.endswith(SUFFIX) and table[: -len(SUFFIX)] in present:
        raise CommandError(
            f"{name!r} is a history table; name the table it keeps: {table[: -len(SUFFIX)]!r}"
        )
    if table + SUFFIX not in present:
        raise NotVersionedError(
            f"the table {name!r} is not versioned: the database has no {table + SUFFIX}"
        )
    require_library_tables(connection, Transaction.__tablename__)
    chain = [table]
    links: list[tuple[list[str], list[str]]] = []
    metadata = MetaData()
    while "valid_from" not in _column_names(inspector, chain[-1] + SUFFIX, schema):
        parent = _parent(inspector, chain[-1], schema)
        if parent is None or parent[0] in chain or parent[0] + SUFFIX not in present:
            raise CommandError(
                f"{chain[-1] + SUFFIX} has no validity interval and {chain[-1]!r} no parent "
                "table with one: it is not a history table sqlalchemy-chronicle can read"
            )
        chain.append(parent[0])
        links.append((parent[1], parent[2]))
    tables = [
        Table(link + SUFFIX, metadata, autoload_with=connection, schema=schema or None)
        for link in chain[:-1]
    ]
    base = Table(
        chain[-1] + SUFFIX,
        metadata,
        Column("valid_from", UTCDateTime),
        Column("valid_to", UTCDateTime),
        autoload_with=connection,
        schema=schema or None,
    )
    tables.append(base)
    source: FromClause = tables[0]
    for child, parent_table, (mine, theirs) in zip(tables[:-1], tables[1:], links, strict=True):
        source = source.join(
            parent_table,
            and_(
                *(parent_table.c[t] == child.c[m] for m, t in zip(mine, theirs, strict=True)),
                parent_table.c.version == child.c.version,
            ),
        )
    own = tables[0]
    key_names = inspector.get_pk_constraint(own.name, schema=schema or None)["constrained_columns"]
    key = tuple(own.c[n] for n in key_names if n != "version")
    data: dict[str, Column[Any]] = {}
    for history in reversed(tables):
        for column in history.c:
            if column.name not in INTERVAL_COLUMNS and column.name not in data:
                data[column.name] = column
    for column in key:
        data.setdefault(column.name, column)
    return VersionedTable(
        name=name,
        root=(f"{schema}." if schema else "") + chain[-1],
        base=base,
        source=source,
        key=key,
        data=tuple(data.values()),
    )


def _column_names(inspector: Any, table: str, schema: str) -> set[str]:
    return {column["name"] for column in inspector.get_columns(table, schema=schema or None)}


def _parent(inspector: Any, table: str, schema: str) -> tuple[str, list[str], list[str]] | None:
    """The table ``table``'s primary key refers to (joined inheritance), with the columns."""
    key = set(inspector.get_pk_constraint(table, schema=schema or None)["constrained_columns"])
    for foreign in inspector.get_foreign_keys(table, schema=schema or None):
        if key and set(foreign["constrained_columns"]) == key:
            return (
                foreign["referred_table"],
                list(foreign["constrained_columns"]),
                list(foreign["referred_columns"]),
            )
    return None
