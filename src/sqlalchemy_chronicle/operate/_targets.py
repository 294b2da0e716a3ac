"""Which history tables an operation on history as a whole works on: from models, or reflected.

Retention, redaction and the ledger work on tables, not on mapped classes, so that the command
line can run them on a database whose models it does not have. A *target* is given as a
versioned class, a live or history :class:`~sqlalchemy.Table`, or a live table's name; a name is
first looked up among the versioned models declared in the process (when one of them matches the
table in the database column for column) and else reflected from the database. Each resolves to a
:class:`Family`: the history table of a hierarchy's base, which holds the validity intervals, and
the history tables of its joined-inheritance subclasses, which share its ``(key, version)``.
A joined-inheritance subclass's table is named through its base table or its class: its
hierarchy's other tables cannot be told from the database alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Connection, Table, inspect
from sqlalchemy.orm import Mapper, Session

from ..errors import ConfigurationError, NotVersionedError
from ..schema.history import (
    INTERVAL_COLUMNS,
    HistorySpec,
    TableHistory,
    history_table_of,
    spec_for,
    table_history,
    versioned_specs,
)
from ..schema.tables import format_row_id
from ._reflect import HISTORY_SUFFIX, reflect_history

__all__ = ["Family", "HistoryTable", "Target", "resolve_targets"]

Target = type[Any] | Table | str
"""A versioned class, a live or history table, or a live table's name."""


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
        """The ``row_id`` text of ``row``'s key (a row read from :attr:`history`)."""
        mapping = row._mapping
        return format_row_id(tuple(mapping[column] for column in self.key))

    def stamps(self, row: Any) -> dict[str, Any]:
        """The library columns of ``row`` (read from :attr:`history`), by their default names.

        The history table keys them by their default names whatever names they were given
        (see :mod:`sqlalchemy_chronicle.schema.columns`); a joined subclass's table has
        ``version`` only.
        """
        mapping = row._mapping
        columns = self.history.c
        return {key: mapping[columns[key]] for key in INTERVAL_COLUMNS if key in columns}

    def fields(self, row: Any) -> dict[str, Any]:
        """The copied columns of ``row`` (read from :attr:`history`), by column name."""
        mapping = row._mapping
        return {column.name: mapping[column] for column in self.values}


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
    """The family of live table ``name``, reflected from the database (see :mod:`._reflect`)."""
    found = reflect_history(connection, name)
    if found.joined:
        raise ConfigurationError(
            f"{name!r} is a joined-inheritance subclass's table, whose history has no validity "
            f"intervals: name its base table {found.root!r}, or give its class"
        )
    values = [c for c in found.base.columns if c.name not in INTERVAL_COLUMNS]
    return Family(HistoryTable(name, found.base, list(found.key), values))


def _registered(connection: Connection, name: str) -> Family | None:
    """The family of a model declared in this process for live table ``name``, if one fits.

    Several processes' worth of models may share a table name (test suites, documentation);
    the one whose history table has the database's columns is taken.
    """
    inspector = inspect(connection)
    for spec in versioned_specs():
        if spec.root is not None or spec.base.live.fullname != name:
            continue
        history = spec.base.history
        if not inspector.has_table(history.name, schema=history.schema):
            continue
        present = {c["name"] for c in inspector.get_columns(history.name, schema=history.schema)}
        if {c.name for c in history.columns} == present:
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
    for spec in versioned_specs():
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
    """Every versioned hierarchy in the database: from the models declared, else reflected.

    A reflected table is ``<live>_history``, with the library's columns under their default names,
    whether ``<live>`` is still there or was dropped (its history is kept, and operations by name
    take it); a history table named otherwise, or with library columns renamed, is
    found through its models.
    """
    inspector = inspect(connection)
    names = set(inspector.get_table_names())
    families: dict[str, Family] = {}
    for spec in versioned_specs():
        live = spec.base.live
        if spec.root is not None or live.schema is not None or live.name in families:
            continue
        if spec.base.history.name in names:
            family = _registered(connection, live.fullname)
            if family is not None:
                families[live.name] = family
    covered = {t.history.name for family in families.values() for t in family.tables}
    for name in sorted(names - covered):
        live_name = name[: -len(HISTORY_SUFFIX)]
        if not name.endswith(HISTORY_SUFFIX) or live_name in families:
            continue
        columns = {c["name"] for c in inspector.get_columns(name)}
        if {"valid_from", "version"} <= columns:
            families[live_name] = _reflected(connection, live_name)
    return [families[name] for name in sorted(families)]
