"""Which history tables an operation on history as a whole works on: from models, or reflected.

Retention, redaction and the ledger work on tables, not on mapped classes, so that the command
line can run them on a database whose models it does not have. A *target* is given as a
versioned class, a live or history :class:`~sqlalchemy.Table`, or a live table's name; a name is
first looked up among the versioned models declared in the process (when one of them matches the
table in the database column for column) and else reflected from the database. Each resolves to a
:class:`Family`: the history table of a hierarchy's base, which holds the validity intervals, and
the history tables of its joined-inheritance subclasses, which share its ``(key, version)``.
A reflected table whose history has no interval columns is a joined subclass's, which cannot be
told from the database alone: such tables are reached through their models.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Table, inspect
from sqlalchemy.orm import Mapper, Session

from ..errors import ConfigurationError, NotVersionedError
from ..schema.history import (
    INTERVAL_COLUMNS,
    HistorySpec,
    TableHistory,
    history_table_of,
    registered_specs,
    spec_for,
    table_history,
)
from ..schema.tables import format_row_id

__all__ = ["Family", "HistoryTable", "Target", "resolve_targets"]

Target = type[Any] | Table | str
"""A versioned class, a live or history table, or a live table's name."""

HISTORY_SUFFIX = "_history"


@dataclass(eq=False)
class HistoryTable:
    """One history table: its row identity and the value columns it keeps."""

    name: str
    """The live table's name, as the change log, the ledger and the horizons name it."""
    history: Table
    key: list[Column[Any]]
    """The row identity's columns (the primary key without ``version``), in key order."""
    values: list[Column[Any]]
    """Every copied column, the key's included, in table order."""

    def row_id(self, row: Any) -> str:
        """The ``row_id`` text of ``row``'s key (a row with the key columns by name)."""
        mapping = row._mapping
        return format_row_id(tuple(mapping[column.name] for column in self.key))


@dataclass(eq=False)
class Family:
    """A versioned hierarchy's history tables: the base's and its joined subclasses'."""

    base: HistoryTable
    joined: list[HistoryTable] = field(default_factory=list)
    spec: HistorySpec | None = None
    """The base's spec when the family comes from models; None when reflected."""

    @property
    def name(self) -> str:
        """The name of the base's live table, which horizons and the change log use."""
        return self.base.name

    @property
    def tables(self) -> list[HistoryTable]:
        """The base's table first, then the joined subclasses'."""
        return [self.base, *self.joined]


def _from_table_history(table: TableHistory) -> HistoryTable:
    values = [hist for _, hist in table.copied]
    return HistoryTable(table.live.fullname, table.history, list(table.key), values)


def family_of_spec(spec: HistorySpec) -> Family:
    """The family of a versioned class's hierarchy, from its models."""
    root = spec.root_spec
    base = root.base
    joined: dict[int, TableHistory] = {}
    for mapper in root.mapper.self_and_descendants:
        descendant = spec_for(mapper)
        if descendant is None:
            continue
        for table in descendant.tables[1:]:
            joined.setdefault(id(table), table)
    return Family(
        _from_table_history(base), [_from_table_history(t) for t in joined.values()], root
    )


def _reflected(connection: Connection, name: str) -> Family:
    """The family of live table ``name``, reflected from the database."""
    schema, _, bare = name.rpartition(".")
    metadata = MetaData()
    history_name = bare + HISTORY_SUFFIX
    if not inspect(connection).has_table(history_name, schema=schema or None):
        if inspect(connection).has_table(bare, schema=schema or None):
            raise NotVersionedError(f"table {name!r} has no history table {history_name!r}")
        raise ConfigurationError(f"there is no table {name!r} in the database")
    history = Table(history_name, metadata, schema=schema or None, autoload_with=connection)
    if "valid_from" not in history.c or "version" not in history.c:
        raise ConfigurationError(
            f"{history.fullname!r} has no validity intervals: it is the history of a "
            "joined-inheritance subclass, reached through its base table with the models"
        )
    key = [c for c in history.primary_key.columns if c.name != "version"]
    values = [c for c in history.columns if c.name not in INTERVAL_COLUMNS]
    return Family(HistoryTable(name, history, key, values))


def _registered(connection: Connection, name: str) -> Family | None:
    """The family of a model declared in this process for live table ``name``, if one fits.

    Several processes' worth of models may share a table name (test suites, documentation);
    the one whose history table has the database's columns is taken.
    """
    candidates = [
        spec for spec in registered_specs() if spec.root is None and spec.base.live.fullname == name
    ]
    if not candidates:
        return None
    inspector = inspect(connection)
    history = candidates[0].base.history
    if not inspector.has_table(history.name, schema=history.schema):
        return None
    present = {c["name"] for c in inspector.get_columns(history.name, schema=history.schema)}
    for spec in candidates:
        if {c.name for c in spec.base.history.columns} == present:
            return family_of_spec(spec)
    return None


def resolve_target(connection: Connection, target: Target) -> Family:
    """The :class:`Family` ``target`` names; see the module documentation."""
    if isinstance(target, Table):
        found = table_history(target) or history_table_of(target)
        if found is not None:
            spec = _spec_of_table(found[1])
            if spec is not None:
                return family_of_spec(spec)
        name = target.fullname
        if name.endswith(HISTORY_SUFFIX) and target.info.get("chronicle") != "history":
            name = name[: -len(HISTORY_SUFFIX)]
        return _registered(connection, name) or _reflected(connection, name)
    if isinstance(target, str):
        return _registered(connection, target) or _reflected(connection, target)
    if isinstance(target, type | Mapper):
        spec = spec_for(target)
        if spec is None:
            name = getattr(target, "__name__", repr(target))
            raise NotVersionedError(
                f"{name} is not a versioned class (it does not inherit Versioned)"
            )
        return family_of_spec(spec)
    raise ConfigurationError(f"{target!r} is neither a versioned class, a table nor a table name")


def _spec_of_table(base: TableHistory) -> HistorySpec | None:
    for spec in registered_specs():
        if spec.root is None and spec.base is base:
            return spec
    return None


def resolve_targets(session: Session, targets: Iterable[Target] | Target | None) -> list[Family]:
    """The families ``targets`` name, each once; None means every history table in the database.

    A single class, table or name may be given instead of a list.
    """
    connection = session.connection()
    if targets is None:
        return _every_family(connection)
    items: Sequence[Target] = (
        [targets] if isinstance(targets, type | Table | str) else list(targets)
    )
    families: dict[str, Family] = {}
    for item in items:
        family = resolve_target(connection, item)
        families.setdefault(family.name, family)
    return list(families.values())


def _every_family(connection: Connection) -> list[Family]:
    inspector = inspect(connection)
    names = set(inspector.get_table_names())
    families: list[Family] = []
    for name in sorted(names):
        live = name[: -len(HISTORY_SUFFIX)]
        if not name.endswith(HISTORY_SUFFIX) or live not in names:
            continue
        columns = {c["name"] for c in inspector.get_columns(name)}
        if "valid_from" not in columns:
            continue
        families.append(_registered(connection, live) or _reflected(connection, live))
    return families
