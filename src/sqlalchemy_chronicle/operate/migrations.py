"""Alembic integration: migrations that autogenerate renders, runs and checks as they are.

Alembic loads this module by itself, through the package's ``alembic.plugins`` entry point, named
``alembic.autogenerate.sqlalchemy_chronicle`` so that autogenerate's default plugin list
(``alembic.autogenerate.*``) takes it: an ``env.py`` needs nothing but ``target_metadata``. (An
``env.py`` that lists ``autogenerate_plugins`` itself must list this one too.)

It renders the library's column types (:mod:`sqlalchemy_chronicle.types`) with the import they
need, so that a generated migration runs as it is, and it keeps recorded history through schema
change:

- a column dropped from a versioned model is dropped from its live table, but in its history
  table it is *retired*: ``op.retire_history_column()`` moves every version's value into the
  history table's ``retired_values`` JSON column, under the column's name, then drops the column.
  ``history()`` versions keep them (``version.retired_values["price"]``), and the downgrade puts
  them back;
- a history table that is no longer in the models (the class is no longer versioned), or a
  column of a joined-inheritance subclass's history table, is kept, with a warning;
- ``op.drop_history_column()`` and ``op.drop_history_table()`` throw recorded history away, on
  purpose, and say so in the log and in ``chronicle_transaction``;
- the triggers of a table in database capture mode are created, re-created and dropped with it
  (``op.create_history_triggers()``, ``op.drop_history_triggers()``, see
  :mod:`._migration_triggers`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from alembic.operations import MigrateOperation, Operations, ops
from alembic.util import DispatchPriority, PriorityDispatchResult
from sqlalchemy import Column, Connection, MetaData, Table, insert, text
from sqlalchemy.types import TypeEngine

from .. import types
from ..config import clock_time, library_column_names
from ..instants import to_utc
from ..schema.history import (
    HISTORY_SUFFIX,
    INTERVAL_INDEX,
    RETIRED_COLUMN,
    START_INDEX,
    interval_index_wanted,
    settle_types,
)
from ..schema.tables import Transaction
from ._migration_triggers import (
    CreateHistoryTriggersOp,
    DropHistoryTriggersOp,
    render_triggers_op,
    with_triggers,
)

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext
    from alembic.runtime.plugins import Plugin

__all__ = [
    "CreateHistoryTriggersOp",
    "DropHistoryColumnOp",
    "DropHistoryTableOp",
    "DropHistoryTriggersOp",
    "RetireHistoryColumnOp",
    "UnretireHistoryColumnOp",
    "setup",
]

log = logging.getLogger("alembic.sqlalchemy_chronicle")
"""Under ``alembic`` so that the logging set up by ``alembic.ini`` shows it with Alembic's own."""


def setup(plugin: Plugin) -> None:
    """Register the autogenerate hooks with Alembic (called by Alembic for the entry point)."""
    plugin.add_autogenerate_comparator(_settle_types, "schema", priority=DispatchPriority.FIRST)
    plugin.add_autogenerate_comparator(_hook_rendering, "schema", priority=DispatchPriority.LAST)


def _settle_types(
    autogen_context: AutogenContext, upgrade_ops: ops.UpgradeOps, schemas: Any
) -> PriorityDispatchResult:
    """Give history columns copied from untyped foreign-key columns their type before comparing."""
    settle_types()
    return PriorityDispatchResult.CONTINUE


_rendered = False


def _register_renderers() -> None:
    """Teach autogenerate to render the operations below (once; Alembic is imported by then)."""
    global _rendered
    if not _rendered:
        from alembic.autogenerate import renderers

        for op_class, name in (
            (RetireHistoryColumnOp, "retire_history_column"),
            (UnretireHistoryColumnOp, "unretire_history_column"),
        ):
            renderers.dispatch_for(op_class)(_render_as(name))
        for triggers_op in (CreateHistoryTriggersOp, DropHistoryTriggersOp):
            renderers.dispatch_for(triggers_op)(render_triggers_op)
        _rendered = True


def _hook_rendering(
    autogen_context: AutogenContext, upgrade_ops: ops.UpgradeOps, schemas: Any
) -> PriorityDispatchResult:
    """Keep recorded history in the operations compared, and render the library's types.

    A comparison function is the one hook autogenerate calls without configuration; the
    rendering that follows uses the same options, so the types' renderer is installed in them.
    """
    _register_renderers()
    upgrade_ops.ops[:] = list(_keeping_history(autogen_context, upgrade_ops.ops))
    dialect = autogen_context.dialect
    if dialect is not None:
        upgrade_ops.ops[:] = list(_without_interval_indexes(autogen_context, upgrade_ops.ops))
    upgrade_ops.ops[:] = with_triggers(autogen_context, upgrade_ops.ops, schemas)
    opts = autogen_context.opts
    user_render = opts.get("render_item")
    if not getattr(user_render, "_chronicle", False):
        opts["render_item"] = _renderer(user_render)
    return PriorityDispatchResult.CONTINUE


def _renderer(user_render: Callable[..., Any] | None) -> Callable[..., Any]:
    def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> Any:
        if user_render is not None:
            rendered = user_render(type_, obj, autogen_context)
            if rendered is not False:
                return rendered
        if type_ == "type" and type(obj).__module__ == types.__name__:
            autogen_context.imports.add(f"import {types.__name__}")
            return f"{types.__name__}.{obj!r}"
        return False

    render_item._chronicle = True  # type: ignore[attr-defined]
    return render_item


# -- keeping history through schema change -----------------------------------------------------


def _history_tables(autogen_context: AutogenContext) -> dict[str, Table]:
    metadata = autogen_context.metadata
    metadatas: Iterable[MetaData] = (
        [metadata] if isinstance(metadata, MetaData) else metadata if metadata else []
    )
    return {
        table.name: table
        for each in metadatas
        for table in each.tables.values()
        if table.info.get("chronicle") == "history"
    }


def _keeping_history(
    autogen_context: AutogenContext, operations: list[ops.MigrateOperation]
) -> Iterable[ops.MigrateOperation]:
    """``operations`` with every drop of recorded history replaced by its keeping."""
    histories = _history_tables(autogen_context)
    kept = {
        operation.table_name
        for operation in operations
        if isinstance(operation, ops.DropTableOp) and _looks_like_history(operation)
    }
    for operation in operations:
        if isinstance(operation, ops.ModifyTableOps | ops.DropIndexOp) and (
            operation.table_name in kept
        ):
            continue
        if isinstance(operation, ops.DropTableOp) and operation.table_name in kept:
            log.warning(
                "kept table %s: it holds recorded history (its class is no longer versioned); "
                "drop it with op.drop_history_table(%r, reason=...) to throw that away",
                operation.table_name,
                operation.table_name,
            )
            continue
        if isinstance(operation, ops.ModifyTableOps) and operation.table_name in histories:
            table = histories[operation.table_name]
            operation.ops[:] = list(_keeping_columns(table, operation.ops))
            if not operation.ops:
                continue
        yield operation


def _without_interval_indexes(
    autogen_context: AutogenContext, operations: list[ops.MigrateOperation]
) -> Iterable[ops.MigrateOperation]:
    """``operations`` without the creation of history interval indexes not made here.

    The metadata has both kinds, the interval index and the start index, but each is made on
    some databases only (see :func:`~sqlalchemy_chronicle.schema.history.interval_index_wanted`).
    """
    dialect = autogen_context.dialect
    assert dialect is not None
    unwanted = {
        index.name
        for table in _history_tables(autogen_context).values()
        for index in table.indexes
        if index.info.get("chronicle") in (INTERVAL_INDEX, START_INDEX)
        and not interval_index_wanted(dialect.name, index.info["chronicle"])
    }
    for operation in operations:
        if isinstance(operation, ops.CreateIndexOp) and operation.index_name in unwanted:
            continue
        if isinstance(operation, ops.ModifyTableOps):
            operation.ops[:] = list(_without_interval_indexes(autogen_context, operation.ops))
            if not operation.ops:
                continue
        yield operation


def _keeping_columns(
    table: Table, operations: list[ops.MigrateOperation]
) -> Iterable[ops.MigrateOperation]:
    retired = RETIRED_COLUMN in table.c and table.c[RETIRED_COLUMN].name
    for operation in operations:
        if not isinstance(operation, ops.DropColumnOp) or operation.column_name == retired:
            yield operation
        elif retired:
            reverse = operation.reverse()
            yield RetireHistoryColumnOp(
                operation.table_name,
                operation.column_name,
                type_=reverse.column.type,
                schema=operation.schema,
                retired_column=retired,
            )
        else:
            log.warning(
                "kept column %s.%s: it holds recorded history; drop it with "
                "op.drop_history_column(%r, %r, reason=...) to throw that away",
                operation.table_name,
                operation.column_name,
                operation.table_name,
                operation.column_name,
            )


def _looks_like_history(operation: ops.DropTableOp) -> bool:
    """Whether a table that autogenerate would drop is a history table.

    One with ``version`` (or the name :func:`~sqlalchemy_chronicle.configure` gave it) in its
    primary key, and named ``<name>_history`` or holding ``valid_from`` (a joined subclass's
    history table has no interval columns, so they cannot tell alone).
    """
    table = operation.to_table()
    chosen = library_column_names()
    names = {column.name for column in table.c}
    versions = {"version", chosen.get("version", "version")}
    starts = {"valid_from", chosen.get("valid_from", "valid_from")}
    keyed = any(column.name in versions and column.primary_key for column in table.c)
    return keyed and (operation.table_name.endswith(HISTORY_SUFFIX) or bool(names & starts))


def _render_as(name: str) -> Callable[..., str]:
    def render(autogen_context: AutogenContext, operation: _HistoryColumnOp) -> str:
        arguments = [repr(operation.table_name), repr(operation.column_name)]
        if isinstance(operation, UnretireHistoryColumnOp):
            from alembic.autogenerate.render import _repr_type

            assert operation.type_ is not None
            arguments.append(_repr_type(operation.type_, autogen_context))
        if operation.schema:
            arguments.append(f"schema={operation.schema!r}")
        if operation.retired_column != RETIRED_COLUMN:
            arguments.append(f"retired_column={operation.retired_column!r}")
        return f"op.{name}({', '.join(arguments)})"

    return render


class _HistoryColumnOp(MigrateOperation):
    name = "history_column"

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """What ``alembic check`` and ``compare_metadata()`` report of the operation."""
        return (self.name, self.schema, self.table_name, self.column_name)

    def __init__(
        self,
        table_name: str,
        column_name: str,
        type_: TypeEngine[Any] | None = None,
        *,
        schema: str | None = None,
        retired_column: str = RETIRED_COLUMN,
    ) -> None:
        self.table_name = table_name
        self.column_name = column_name
        self.type_ = type_
        self.schema = schema
        self.retired_column = retired_column
        """The name of the history table's ``retired_values`` column (see ``configure``)."""


@Operations.register_operation("retire_history_column")
class RetireHistoryColumnOp(_HistoryColumnOp):
    """Move a history column's values into ``retired_values``, then drop the column."""

    name = "retire_history_column"

    @classmethod
    def retire_history_column(
        cls,
        operations: Operations,
        table_name: str,
        column_name: str,
        *,
        schema: str | None = None,
        retired_column: str = RETIRED_COLUMN,
    ) -> None:
        """``op.retire_history_column("book_history", "price")``: keep, then drop, a column.

        The values go under the column's name into ``retired_values`` (``retired_column``, when
        the library's columns were given other names), then the column goes.
        """
        operations.invoke(
            cls(table_name, column_name, schema=schema, retired_column=retired_column)
        )

    def reverse(self) -> UnretireHistoryColumnOp:
        """The column back, with its values."""
        if self.type_ is None:
            raise ValueError("retire_history_column cannot be reversed without the column's type")
        return UnretireHistoryColumnOp(
            self.table_name,
            self.column_name,
            self.type_,
            schema=self.schema,
            retired_column=self.retired_column,
        )


@Operations.register_operation("unretire_history_column")
class UnretireHistoryColumnOp(_HistoryColumnOp):
    """Add a retired column back to a history table, with the values ``retired_values`` kept."""

    name = "unretire_history_column"

    @classmethod
    def unretire_history_column(
        cls,
        operations: Operations,
        table_name: str,
        column_name: str,
        type_: TypeEngine[Any],
        *,
        schema: str | None = None,
        retired_column: str = RETIRED_COLUMN,
    ) -> None:
        """``op.unretire_history_column("book_history", "price", sa.Numeric(10, 2))``."""
        operations.invoke(
            cls(table_name, column_name, type_, schema=schema, retired_column=retired_column)
        )

    def reverse(self) -> RetireHistoryColumnOp:
        """Retire the column again."""
        return RetireHistoryColumnOp(
            self.table_name,
            self.column_name,
            self.type_,
            schema=self.schema,
            retired_column=self.retired_column,
        )


@Operations.register_operation("drop_history_column")
class DropHistoryColumnOp(_HistoryColumnOp):
    """Drop a history column and the values it recorded, on purpose; logged."""

    name = "drop_history_column"

    reason: str

    @classmethod
    def drop_history_column(
        cls,
        operations: Operations,
        table_name: str,
        column_name: str,
        *,
        reason: str,
        schema: str | None = None,
    ) -> None:
        """``op.drop_history_column("book_history", "price", reason="...")``."""
        operation = cls(table_name, column_name, schema=schema)
        operation.reason = reason
        operations.invoke(operation)


@Operations.register_operation("drop_history_table")
class DropHistoryTableOp(MigrateOperation):
    """Drop a history table and every version it recorded, on purpose; logged."""

    def __init__(self, table_name: str, *, reason: str, schema: str | None = None) -> None:
        self.table_name = table_name
        self.reason = reason
        self.schema = schema

    @classmethod
    def drop_history_table(
        cls, operations: Operations, table_name: str, *, reason: str, schema: str | None = None
    ) -> None:
        """``op.drop_history_table("page_history", reason="...")``."""
        operations.invoke(cls(table_name, reason=reason, schema=schema))


@Operations.implementation_for(RetireHistoryColumnOp)
def _retire(operations: Operations, operation: RetireHistoryColumnOp) -> None:
    connection = operations.get_bind()
    table, column = _quoted(connection, operation)
    retired = _quoted_retired(connection, operation)
    merged = _json_set(connection, column, retired)
    connection.execute(
        text(f"UPDATE {table} SET {retired} = {merged} WHERE {column} IS NOT NULL").bindparams(
            key=operation.column_name
        )
    )
    operations.drop_column(operation.table_name, operation.column_name, schema=operation.schema)


@Operations.implementation_for(UnretireHistoryColumnOp)
def _unretire(operations: Operations, operation: UnretireHistoryColumnOp) -> None:
    assert operation.type_ is not None
    operations.add_column(
        operation.table_name,
        Column(operation.column_name, operation.type_, nullable=True),
        schema=operation.schema,
    )
    connection = operations.get_bind()
    table, column = _quoted(connection, operation)
    retired = _quoted_retired(connection, operation)
    value, rest = _json_take(connection, operation.type_, retired)
    connection.execute(
        text(
            f"UPDATE {table} SET {column} = {value}, {retired} = {rest} WHERE {retired} IS NOT NULL"
        ).bindparams(key=operation.column_name)
    )


@Operations.implementation_for(DropHistoryColumnOp)
def _drop_column(operations: Operations, operation: DropHistoryColumnOp) -> None:
    _record(
        operations.get_bind(),
        "drop_history_column",
        operation.reason,
        operation.table_name,
        operation.column_name,
    )
    operations.drop_column(operation.table_name, operation.column_name, schema=operation.schema)


@Operations.implementation_for(DropHistoryTableOp)
def _drop_table(operations: Operations, operation: DropHistoryTableOp) -> None:
    _record(operations.get_bind(), "drop_history_table", operation.reason, operation.table_name)
    operations.drop_table(operation.table_name, schema=operation.schema)


def _record(connection: Connection, what: str, reason: str, table: str, column: str = "") -> None:
    """Log a deliberate loss of history, and record it as a transaction of its own."""
    target = f"{table}.{column}" if column else table
    log.warning("%s %s: %s", what, target, reason)
    connection.execute(
        insert(Transaction).values(
            timestamp=to_utc(clock_time(connection)),
            actor=None,
            reason=reason,
            meta={"migration": what, "table": table, **({"column": column} if column else {})},
        )
    )


def _quoted(connection: Connection, operation: _HistoryColumnOp) -> tuple[str, str]:
    preparer = connection.dialect.identifier_preparer
    table = preparer.quote(operation.table_name)
    if operation.schema:
        table = f"{preparer.quote_schema(operation.schema)}.{table}"
    return table, preparer.quote(operation.column_name)


def _quoted_retired(connection: Connection, operation: _HistoryColumnOp) -> str:
    return connection.dialect.identifier_preparer.quote(operation.retired_column)


def _json_set(connection: Connection, column: str, retired: str) -> str:
    """SQL: ``retired_values`` with the key ``:key`` set to ``column``'s value.

    The key is a bound parameter, never SQL text: a column's name may hold any character.
    """
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return (
            f"COALESCE({retired}, '{{}}'::jsonb) "
            f"|| jsonb_build_object(CAST(:key AS TEXT), {column})"
        )
    if dialect == "sqlite":
        return f"json_patch(COALESCE({retired}, '{{}}'), json_object(:key, {column}))"
    return f"JSON_MERGE_PATCH(COALESCE({retired}, JSON_OBJECT()), JSON_OBJECT(:key, {column}))"


def _json_take(connection: Connection, type_: TypeEngine[Any], retired: str) -> tuple[str, str]:
    """SQL: the value kept under ``:key`` in ``retired_values``, and the rest without it."""
    dialect = connection.dialect
    if dialect.name == "postgresql":
        sql_type = type_.compile(dialect=dialect)
        return (
            f"CAST({retired} ->> CAST(:key AS TEXT) AS {sql_type})",
            f"NULLIF({retired} - CAST(:key AS TEXT), '{{}}'::jsonb)",
        )
    if dialect.name == "sqlite":
        return (
            f"(SELECT value FROM json_each({retired}) WHERE key = :key)",
            f"NULLIF(json_patch({retired}, json_object(:key, NULL)), '{{}}')",
        )
    return (
        f"JSON_UNQUOTE(JSON_EXTRACT({retired}, CONCAT('$.', JSON_QUOTE(:key))))",
        f"NULLIF(JSON_MERGE_PATCH({retired}, JSON_OBJECT(:key, NULL)), JSON_OBJECT())",
    )
