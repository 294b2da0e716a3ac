"""The triggers of a table as the database holds it: for migrations, which know no models.

A migration runs months after it was written, against the schema of its own revision, when the
models have changed again. The triggers it creates are therefore built from the live and history
tables reflected on its connection (:func:`reflect_captured`): the history copies the columns the
two tables share (an excluded column is only in the live table, and a retired column, whose
values ``retired_values`` keeps, only in the history table: neither is copied), the key is the
live table's primary key, and the library's tables are found in the ``MetaData`` of the schema
they were given.

Reflection loses a few of the types that the triggers write change-log values by. What MariaDB
stores for them is read back as the declared type: ``TINYINT(1)``, which MariaDB stores for a
``BOOLEAN``, as :class:`~sqlalchemy.Boolean`, and a ``LONGTEXT`` checked by ``json_valid()``, which
it stores for a ``JSON`` column, as :class:`~sqlalchemy.JSON`. SQLite stores a ``Uuid`` as
``CHAR(32)``, which reads back as text: there the change log of such triggers holds a UUID as its
32 hexadecimal digits.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import (
    BLANK_SCHEMA,
    JSON,
    Boolean,
    Column,
    Connection,
    MetaData,
    Table,
    text,
)
from sqlalchemy.exc import NoSuchTableError

from ...config import LIBRARY_COLUMNS
from ...errors import ConfigurationError
from ...schema._base import install_library_tables
from ...schema.history import TableHistory, history_table_name
from ._common import TRIGGER_PREFIX, CapturedTable, current_database, read_options_comment

__all__ = ["captured_options", "captured_table_names", "named_captured", "reflect_captured"]

_MYSQL: Final = ("mysql", "mariadb")

_PREFIX_PATTERN: Final = TRIGGER_PREFIX.replace("!", "!!").replace("_", "!_") + "%"
"""``LIKE`` pattern (escape ``!``) of the names of the library's triggers."""


def reflect_captured(
    connection: Connection,
    table_name: str,
    *,
    schema: str | None = None,
    history_table: str | None = None,
    changelog: bool = True,
    library_schema: str | None = None,
) -> CapturedTable:
    """The table ``table_name`` and its history as ``connection``'s database holds them now.

    :param history_table: the history table's name, when it is not ``<table_name>_history``.
    :param changelog: whether the triggers write change-log entries.
    :param library_schema: the schema of ``chronicle_transaction`` and the change log; for a
        table of another ``schema`` on MariaDB, the connection's current database, named
        (MariaDB reads a name in a trigger in the trigger's database).
    :raises ConfigurationError: a table is missing, the live table has no primary key, or the
        history table lacks a column of it.
    """
    if library_schema is None and schema is not None and connection.dialect.name in _MYSQL:
        library_schema = current_database(connection)
    metadata = MetaData(schema=library_schema)
    install_library_tables(metadata)
    live = _reflect(connection, metadata, table_name, schema)
    history = _reflect(connection, metadata, history_table_name(table_name, history_table), schema)
    key = list(live.primary_key.columns)
    if not key:
        raise ConfigurationError(
            f"{live.fullname} has no primary key, which the history triggers identify rows by"
        )
    missing = [column.name for column in key if column.name not in history.c]
    if missing:
        raise ConfigurationError(
            f"{history.fullname} has no column {', '.join(missing)} of the primary key of "
            f"{live.fullname}: it is not that table's history"
        )
    library = set(LIBRARY_COLUMNS)
    copied = [(column, history.c[column.name]) for column in key]
    copied += [
        (column, history.c[column.name])
        for column in live.c
        if column.name in history.c and column.name not in library and column not in key
    ]
    keys = [hist for _, hist in copied[: len(key)]]
    return CapturedTable(TableHistory(live, history, keys, copied=copied), changelog)


def named_captured(
    table_name: str, *, schema: str | None = None, history_table: str | None = None
) -> CapturedTable:
    """The triggers of ``table_name`` by name only, to drop them (the tables are not read)."""
    metadata = MetaData()
    live = Table(table_name, metadata, schema=schema)
    history = Table(history_table_name(table_name, history_table), metadata, schema=schema)
    return CapturedTable(TableHistory(live=live, history=history, key=[]))


def captured_table_names(connection: Connection, schema: str | None = None) -> set[str]:
    """The names of the tables of ``schema`` (the default one if None) with history triggers."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        query = text(
            "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal "
            "AND t.tgname LIKE :pattern ESCAPE '!' "
            "AND n.nspname = coalesce(CAST(:schema AS text), current_schema())"
        )
    elif dialect == "sqlite":
        master = f"{connection.dialect.identifier_preparer.quote_schema(schema)}." if schema else ""
        query = text(
            f"SELECT DISTINCT tbl_name FROM {master}sqlite_master WHERE type = 'trigger' "
            "AND name LIKE :pattern ESCAPE '!' "
            f"AND tbl_name IN (SELECT name FROM {master}sqlite_master WHERE type = 'table')"
        )  # not the path views, whose INSTEAD OF triggers the table's triggers call
    else:
        query = text(
            "SELECT DISTINCT EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
            "WHERE TRIGGER_NAME LIKE :pattern ESCAPE '!' "
            "AND TRIGGER_SCHEMA = coalesce(:schema, DATABASE())"
        )
    parameters: dict[str, str | None] = {"pattern": _PREFIX_PATTERN}
    if dialect != "sqlite":
        parameters["schema"] = schema
    rows = connection.execute(query, parameters)
    return {name for (name,) in rows}


def captured_options(
    connection: Connection, table_name: str, schema: str | None = None
) -> dict[str, Any]:
    """The options the triggers of ``table_name`` were built with, for :func:`reflect_captured`.

    ``history_table`` and ``library_schema`` are None where they are the defaults. They are read
    from the comment the triggers' text keeps (see
    :func:`~sqlalchemy_chronicle.capture.database._common.options_comment`); triggers without
    it (created by an older release) give the defaults.
    """
    dialect = connection.dialect.name
    if dialect == "postgresql":
        query = text(
            "SELECT p.prosrc FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE NOT t.tgisinternal AND t.tgname LIKE :pattern ESCAPE '!' AND c.relname = :table "
            "AND n.nspname = coalesce(CAST(:schema AS text), current_schema())"
        )
    elif dialect == "sqlite":
        master = f"{connection.dialect.identifier_preparer.quote_schema(schema)}." if schema else ""
        query = text(
            f"SELECT sql FROM {master}sqlite_master WHERE type = 'trigger' "
            "AND name LIKE :pattern ESCAPE '!' AND tbl_name = :table"
        )
    else:
        query = text(
            "SELECT ACTION_STATEMENT FROM information_schema.TRIGGERS "
            "WHERE TRIGGER_NAME LIKE :pattern ESCAPE '!' AND EVENT_OBJECT_TABLE = :table "
            "AND TRIGGER_SCHEMA = coalesce(:schema, DATABASE())"
        )
    parameters: dict[str, str | None] = {"pattern": _PREFIX_PATTERN, "table": table_name}
    if dialect != "sqlite":
        parameters["schema"] = schema
    for (source,) in connection.execute(query, parameters):
        recorded = read_options_comment(source or "")
        if recorded is not None:
            history = recorded.get("history_table")
            return {
                "history_table": None if history == history_table_name(table_name) else history,
                "changelog": bool(recorded.get("changelog", True)),
                "library_schema": recorded.get("library_schema"),
            }
    return {"history_table": None, "changelog": True, "library_schema": None}


def _reflect(connection: Connection, metadata: MetaData, name: str, schema: str | None) -> Table:
    try:
        table = Table(
            name,
            metadata,
            schema=schema if schema is not None else BLANK_SCHEMA,
            autoload_with=connection,
            resolve_fks=False,
        )
    except NoSuchTableError:
        where = f"{schema}.{name}" if schema else name
        raise ConfigurationError(
            f"cannot build the history triggers: the database has no table {where}"
        ) from None
    if connection.dialect.name in _MYSQL:
        json_columns = _mariadb_json_columns(connection, table)
        for column in table.c:
            column.type = _as_declared(column, json_columns)
    return table


def _as_declared(column: Column[Any], json_columns: set[str]) -> Any:
    """The type MariaDB stores ``column`` for, where reflection reads back another one."""
    from sqlalchemy.dialects import mysql

    if column.name in json_columns:
        return JSON()
    if isinstance(column.type, mysql.TINYINT) and column.type.display_width == 1:
        return Boolean()
    return column.type


def _mariadb_json_columns(connection: Connection, table: Table) -> set[str]:
    """The columns of ``table`` that MariaDB keeps as ``JSON``: text checked by ``json_valid``."""
    if not getattr(connection.dialect, "is_mariadb", False):
        return set()
    rows = connection.execute(
        text(
            "SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
            "WHERE CONSTRAINT_SCHEMA = coalesce(:schema, DATABASE()) AND TABLE_NAME = :table "
            "AND LEVEL = 'Column'"
        ),
        {"schema": table.schema, "table": table.name},
    )
    return {name for name, clause in rows if clause == f"json_valid(`{name.replace('`', '``')}`)"}
