"""Alembic operations for the triggers of database capture mode, and where autogenerate puts them.

``op.create_history_triggers("invoice")`` creates (or re-creates) the triggers of a table in
database capture mode, and ``op.drop_history_triggers("invoice")`` drops them. The triggers are
built from the live and history tables as the database holds them when the operation runs
(:func:`~sqlalchemy_chronicle.capture.database.reflect_captured`), never from the models: a
migration runs the same months later, when the models have changed again.

Autogenerate puts them where a table's triggers would be missing or out of date:

- after the creation of a table in database mode, or of its history table, and for a class
  switched to database mode: a creation, at the end of the migration;
- around a change to the columns of such a table or of its history table (on SQLite, or where
  the migration renders as batch, to anything but its indexes, since batch mode rebuilds the
  table and so drops its triggers): a drop before the first change and a creation at the end,
  so that the downgrade, which runs them the other way round, also builds the triggers of the
  tables as they then are (and SQLite, which refuses to drop a column that a trigger names,
  drops no column under a trigger);
- before the triggers' table is dropped, or its class leaves database mode: a drop (on
  PostgreSQL the trigger's function would outlive its table).

Whether a table has triggers, autogenerate asks the database (``pg_trigger``,
``information_schema.TRIGGERS``, ``sqlite_master``). It cannot tell triggers that are out of date
with no change to the tables' columns in the migration (written by hand, or by an older release):
``op.create_history_triggers()`` in a migration of your own rebuilds them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from alembic.operations import MigrateOperation, Operations, ops
from sqlalchemy import Connection, MetaData, Table

from ..capture.database import (
    SUPPORTED,
    captured_options,
    captured_table_names,
    create_triggers,
    drop_triggers,
    named_captured,
    reflect_captured,
)
from ..errors import ConfigurationError
from ..schema.history import history_table_name, versioned_specs
from ..schema.tables import Transaction

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext

__all__ = [
    "CreateHistoryTriggersOp",
    "DropHistoryTriggersOp",
    "render_triggers_op",
    "with_triggers",
]

_Key = tuple[str | None, str]
"""A table by (schema, name)."""

_INDEXES = (ops.CreateIndexOp, ops.DropIndexOp)
"""Operations within a table that leave it, and so its triggers, as they are, even in batch mode."""

_NOT_COLUMNS = (
    *_INDEXES,
    ops.AddConstraintOp,
    ops.DropConstraintOp,
    ops.CreateTableCommentOp,
    ops.DropTableCommentOp,
)
"""Operations within a table that leave the columns, and so the triggers, as they are, where the
table is altered in place."""

_CONTEXT_TABLE = "chronicle_context"
"""The table SQLite's triggers keep (see :mod:`sqlalchemy_chronicle.capture.database._sqlite`),
which no model declares: autogenerate would drop it."""


class _TriggersOp(MigrateOperation):
    """The triggers of one live table; what both operations know, so that each reverses."""

    name = "history_triggers"

    def __init__(
        self,
        table_name: str,
        *,
        schema: str | None = None,
        history_table: str | None = None,
        changelog: bool = True,
        library_schema: str | None = None,
    ) -> None:
        self.table_name = table_name
        self.schema = schema
        self.history_table = history_table
        """The history table's name, when it is not ``<table_name>_history``."""
        self.changelog = changelog
        """Whether the triggers write change-log entries (option ``changelog``)."""
        self.library_schema = library_schema
        """The schema of ``chronicle_transaction`` and the change log."""

    def options(self) -> dict[str, Any]:
        """The keyword arguments that are not the defaults."""
        given = {
            "schema": self.schema,
            "history_table": self.history_table,
            "library_schema": self.library_schema,
        }
        found = {name: value for name, value in given.items() if value is not None}
        return {**found, **({} if self.changelog else {"changelog": False})}

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """What ``alembic check`` and ``compare_metadata()`` report of the operation."""
        return (self.name, self.schema, self.table_name)


@Operations.register_operation("create_history_triggers")
class CreateHistoryTriggersOp(_TriggersOp):
    """Create, or re-create, the triggers of a table in database capture mode."""

    name = "create_history_triggers"

    @classmethod
    def create_history_triggers(
        cls,
        operations: Operations,
        table_name: str,
        *,
        schema: str | None = None,
        history_table: str | None = None,
        changelog: bool = True,
        library_schema: str | None = None,
    ) -> None:
        """``op.create_history_triggers("invoice")``: the triggers, from the tables as they are.

        :param history_table: the history table's name, when it is not ``<table_name>_history``
            (option ``table``).
        :param changelog: False for a class whose option ``changelog`` is False.
        :param library_schema: the schema of ``chronicle_transaction``, when it has one.
        :raises ConfigurationError: a table is missing or is not the other's history, or the
            migration runs offline (``--sql``): the triggers are built from the tables it reads.
        """
        operations.invoke(
            cls(
                table_name,
                schema=schema,
                history_table=history_table,
                changelog=changelog,
                library_schema=library_schema,
            )
        )

    def reverse(self) -> DropHistoryTriggersOp:
        """Drop them."""
        return DropHistoryTriggersOp(self.table_name, **self.options())


@Operations.register_operation("drop_history_triggers")
class DropHistoryTriggersOp(_TriggersOp):
    """Drop the triggers of a table in database capture mode (the history table stays)."""

    name = "drop_history_triggers"

    @classmethod
    def drop_history_triggers(
        cls,
        operations: Operations,
        table_name: str,
        *,
        schema: str | None = None,
        history_table: str | None = None,
        changelog: bool = True,
        library_schema: str | None = None,
    ) -> None:
        """``op.drop_history_triggers("invoice")``; the other arguments serve its reverse.

        :raises ConfigurationError: the migration runs offline (``--sql``), where the triggers
            it drops could not be built again.
        """
        operations.invoke(
            cls(
                table_name,
                schema=schema,
                history_table=history_table,
                changelog=changelog,
                library_schema=library_schema,
            )
        )

    def reverse(self) -> CreateHistoryTriggersOp:
        """Create them again, from the tables as they then are."""
        return CreateHistoryTriggersOp(self.table_name, **self.options())


def _refuse_offline(operations: Operations, operation: _TriggersOp) -> None:
    """Refuse either operation offline, before it writes any SQL (no half script).

    A migration that drops triggers re-creates them, which needs the tables it reads.
    """
    if operations.migration_context.as_sql:
        raise ConfigurationError(
            f"op.{operation.name}({operation.table_name!r}): the triggers of database capture "
            "mode are built from the tables the migration reads, which an offline (--sql) "
            "migration cannot; run it online"
        )


@Operations.implementation_for(CreateHistoryTriggersOp)
def _create(operations: Operations, operation: CreateHistoryTriggersOp) -> None:
    _refuse_offline(operations, operation)
    connection = operations.get_bind()
    captured = reflect_captured(
        connection,
        operation.table_name,
        schema=operation.schema,
        history_table=operation.history_table,
        changelog=operation.changelog,
        library_schema=operation.library_schema,
    )
    create_triggers(connection, captured)


@Operations.implementation_for(DropHistoryTriggersOp)
def _drop(operations: Operations, operation: DropHistoryTriggersOp) -> None:
    _refuse_offline(operations, operation)
    captured = named_captured(
        operation.table_name, schema=operation.schema, history_table=operation.history_table
    )
    drop_triggers(operations.get_bind(), captured)


def render_triggers_op(autogen_context: AutogenContext, operation: _TriggersOp) -> str:
    """The operation as a migration file writes it."""
    arguments = [repr(operation.table_name)]
    arguments += [f"{name}={value!r}" for name, value in operation.options().items()]
    return f"op.{operation.name}({', '.join(arguments)})"


def with_triggers(
    autogen_context: AutogenContext,
    operations: list[ops.MigrateOperation],
    schemas: Iterable[str | None],
) -> list[ops.MigrateOperation]:
    """``operations`` with the creations and drops of triggers they need (see the module).

    Only tables of the ``schemas`` compared, and that the environment's ``include_name`` and
    ``include_object`` let in, are looked at, as autogenerate does.
    """
    connection = autogen_context.connection
    if connection is None or connection.dialect.name not in SUPPORTED:
        return operations
    operations = [
        operation
        for operation in operations
        if not (isinstance(operation, ops.DropTableOp) and operation.table_name == _CONTEXT_TABLE)
    ]
    compared = set(schemas)
    models = _versioned_tables(autogen_context, compared)
    wanted = {key for key, (_, database) in models.items() if database}
    live_of = {
        (key[0], history_table_name(key[1], op.history_table)): key
        for key, (op, _) in models.items()
    }
    existing = {
        (schema, name)
        for schema in compared
        for name in captured_table_names(connection, schema)
        if _included(autogen_context, connection, schema, name)
    }
    rebuilt = connection.dialect.name == "sqlite" or bool(
        autogen_context.opts.get("render_as_batch")
    )
    first: dict[_Key, int] = {}
    created: set[_Key] = set()
    for index, operation in enumerate(operations):
        target = _columns_changed(operation, _INDEXES if rebuilt else _NOT_COLUMNS)
        if target is None:
            continue
        key = live_of.get(target, target)
        first.setdefault(key, index)
        if isinstance(operation, ops.CreateTableOp):
            created.add(key)
    drops: dict[int, list[ops.MigrateOperation]] = {}
    creations: list[ops.MigrateOperation] = []
    for key in sorted(wanted | existing, key=lambda key: (key[0] or "", key[1])):
        template = (
            models[key][0]
            if key in models
            else CreateHistoryTriggersOp(
                key[1], schema=key[0], **captured_options(connection, key[1], key[0])
            )
        )
        if key in existing and (key not in wanted or key in first):
            drops.setdefault(first.get(key, 0), []).append(template.reverse())
        if key in wanted and (key not in existing or key in first or key in created):
            creations.append(template)
    result: list[ops.MigrateOperation] = []
    for index, operation in enumerate(operations):
        result += [*drops.get(index, []), operation]
    if not operations:
        result += drops.get(0, [])
    return result + creations


def _included(
    autogen_context: AutogenContext, connection: Connection, schema: str | None, name: str
) -> bool:
    """Whether the environment's ``include_name`` and ``include_object`` let the table in.

    ``include_object`` is given the table of the models if they have it, else the table
    reflected, as autogenerate gives it.
    """
    if not autogen_context.run_name_filters(name, "table", {"schema_name": schema}):
        return False
    declared = _metadata_table(autogen_context, schema, name)
    if declared is not None:
        return autogen_context.run_object_filters(declared, name, "table", False, None)
    reflected = Table(name, MetaData(), schema=schema, autoload_with=connection)
    return autogen_context.run_object_filters(reflected, name, "table", True, None)


def _metadata_table(autogen_context: AutogenContext, schema: str | None, name: str) -> Table | None:
    """The table ``schema.name`` of the models compared, if they have it."""
    for metadata in _metadatas(autogen_context):
        for table in metadata.tables.values():
            if table.schema == schema and table.name == name:
                return table
    return None


def _metadatas(autogen_context: AutogenContext) -> list[MetaData]:
    """The ``MetaData`` (one or several) that autogenerate compares."""
    metadata = autogen_context.metadata
    return [metadata] if isinstance(metadata, MetaData) else list(metadata) if metadata else []


def _versioned_tables(
    autogen_context: AutogenContext, schemas: set[str | None]
) -> dict[_Key, tuple[CreateHistoryTriggersOp, bool]]:
    """The versioned live tables compared: how to create their triggers, and whether to."""
    known = {id(each) for each in _metadatas(autogen_context)}
    found: dict[_Key, tuple[CreateHistoryTriggersOp, bool]] = {}
    for spec in versioned_specs():
        live, history = spec.base.live, spec.base.history
        if spec.root is not None or id(live.metadata) not in known or live.schema not in schemas:
            continue
        if not (
            autogen_context.run_name_filters(live.name, "table", {"schema_name": live.schema})
            and autogen_context.run_object_filters(live, live.name, "table", False, None)
        ):
            continue
        library = next(
            (t for t in live.metadata.tables.values() if t.name == Transaction.__tablename__), None
        )
        operation = CreateHistoryTriggersOp(
            live.name,
            schema=live.schema,
            history_table=None if history.name == history_table_name(live.name) else history.name,
            changelog=spec.changelog,
            library_schema=library.schema if library is not None else None,
        )
        found[(live.schema, live.name)] = (operation, spec.captured_by_database)
    return found


def _columns_changed(
    operation: ops.MigrateOperation, harmless: tuple[type[ops.MigrateOperation], ...]
) -> _Key | None:
    """The table whose columns ``operation`` creates, drops or changes, if any.

    :param harmless: the operations within a table that keep its triggers. In batch mode
        (``render_as_batch``, SQLite's usual setup, and always on SQLite, which alters little in
        place) a constraint or comment change rebuilds the table (copy, drop, rename), which
        drops its triggers: there only index changes keep them.
    """
    if isinstance(operation, ops.CreateTableOp | ops.DropTableOp):
        return (operation.schema, operation.table_name)
    if isinstance(operation, ops.ModifyTableOps) and any(
        not isinstance(each, harmless) for each in operation.ops
    ):
        return (operation.schema, operation.table_name)
    return None
