"""A versioned table's history as the database holds it, read without the application's models.

The command line answers with nothing but a database URL, and retention, redaction and the
ledger work on a table named by a string whose models the process may not have: both read
``<table>_history`` by reflection, here. :func:`reflect_history` tells apart the ways a name can
be wrong: no such table, a history table named instead of its table, a table that is not
versioned. A joined-inheritance subclass's history table holds only its own columns and no
interval; its parents are found through the live table's foreign key on its primary key, and
their history tables are joined in on the key and the version, as the ORM joins the live tables.
A table that was dropped keeps its history (a class no longer versioned keeps its history
table): a ``<table>_history`` with its interval is read alone, without its live table.

The library's columns are found under their default names (:data:`INTERVAL_COLUMNS`); a history
table named otherwise, or with its columns renamed, is reached through its models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, FromClause, MetaData, Table, and_, inspect

from ..errors import ConfigurationError, NotVersionedError
from ..schema.history import HISTORY_SUFFIX, INTERVAL_COLUMNS
from ..types import UTCDateTime

__all__ = ["HISTORY_SUFFIX", "ReflectedHistory", "reflect_history"]


@dataclass(frozen=True)
class ReflectedHistory:
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

    @property
    def joined(self) -> bool:
        """Whether the table is a joined-inheritance subclass's (its history is not the base)."""
        return self.source is not self.base


def reflect_history(connection: Connection, name: str) -> ReflectedHistory:
    """The history of the live table ``name`` (``schema.table`` or ``table``), reflected.

    :raises NotVersionedError: the table exists but has no history table.
    :raises ConfigurationError: there is no such table (nor history of one dropped), ``name``
        is a history table itself, or its history has no interval and no parent table with one.
    """
    schema, _, table = name.rpartition(".")
    inspector = inspect(connection)
    present = set(inspector.get_table_names(schema=schema or None))
    if table not in present:
        history = table + HISTORY_SUFFIX
        if history in present and "valid_from" in _column_names(inspector, history, schema):
            return _reflected(connection, inspector, name, [table], [])
        raise ConfigurationError(f"the database has no table {name!r}")
    if table.endswith(HISTORY_SUFFIX) and table[: -len(HISTORY_SUFFIX)] in present:
        raise ConfigurationError(
            f"{name!r} is a history table; name the table it keeps: "
            f"{table[: -len(HISTORY_SUFFIX)]!r}"
        )
    if table + HISTORY_SUFFIX not in present:
        raise NotVersionedError(
            f"the table {name!r} is not versioned: the database has no {table + HISTORY_SUFFIX}"
        )
    chain = [table]
    links: list[tuple[list[str], list[str]]] = []
    while "valid_from" not in _column_names(inspector, chain[-1] + HISTORY_SUFFIX, schema):
        parent = _parent(inspector, chain[-1], schema)
        if parent is None or parent[0] in chain or parent[0] + HISTORY_SUFFIX not in present:
            raise ConfigurationError(
                f"{chain[-1] + HISTORY_SUFFIX} has no validity interval and {chain[-1]!r} no "
                "parent table with one: it is not a history table sqlalchemy-chronicle can read"
            )
        chain.append(parent[0])
        links.append((parent[1], parent[2]))
    return _reflected(connection, inspector, name, chain, links)


def _reflected(
    connection: Connection,
    inspector: Any,
    name: str,
    chain: list[str],
    links: list[tuple[list[str], list[str]]],
) -> ReflectedHistory:
    """The history tables of ``chain`` (the table, then its parents), joined by ``links``."""
    schema = name.rpartition(".")[0]
    metadata = MetaData()
    tables = [
        Table(link + HISTORY_SUFFIX, metadata, autoload_with=connection, schema=schema or None)
        for link in chain[:-1]
    ]
    base = Table(
        chain[-1] + HISTORY_SUFFIX,
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
    return ReflectedHistory(
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
