"""The machinery behind :mod:`sqlalchemy_chronicle.restore`: snapshots, scopes, checks, SQL.

A restore puts a set of rows back to their state at one time ``M``. For each versioned hierarchy
involved it deals with a :class:`Family` of identities:

``scope``
    every row the restore is about (found now, or found then);
``present``
    those that existed at ``M``, whose versions are put back (re-inserted or updated, or left
    alone when they are equal already);
``written``
    those of ``present`` that are re-inserted or updated;
``deleted``
    those that exist now but did not at ``M``.

Before anything is written, :func:`check_conflicts` looks for the rows whose restore would break
a unique constraint or a foreign key of the live schema, so that the error names the row and the
constraint: a unique value now held by a row outside the scope, a reference to a row that will
not exist afterwards, and (for :func:`~sqlalchemy_chronicle.restore_all`, which does not cascade)
a row to delete that rows outside the scope still refer to. The checks read the snapshot at ``M``
with the keys in hand, ``CHUNK`` keys per statement, like the writer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Connection,
    Index,
    Select,
    Table,
    UniqueConstraint,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import visitors
from sqlalchemy.sql.selectable import Subquery

from ._asof import PARAM, as_of_select
from ._schema import HistorySpec, TableHistory, spec_for
from ._sql import chunks, key_in
from .errors import RestoreConflictError

__all__ = [
    "Family",
    "Key",
    "adapt_to",
    "check_conflicts",
    "describe",
    "differs",
    "family_tables",
    "history_facts",
    "known_absent",
    "snap_key",
    "snapshot",
    "tracked_columns",
]

Key = tuple[Any, ...]


def snapshot(
    table: TableHistory,
    when: dt.datetime,
    keys: Sequence[Key] | None = None,
    name: str = "chronicle_then",
) -> Subquery:
    """``table``'s rows as they were at ``when`` (optionally only ``keys``), as a subquery.

    Its columns are named like the live table's (excluded columns read as NULL), followed by
    ``version`` and, for a hierarchy's base table, the interval columns. The time is bound in
    the statement itself, not passed as the parameter ``chronicle_as_of``, so the live tables of
    an enclosing statement stay live.
    """
    query = as_of_select(table.live)
    if keys is not None:
        query = query.where(key_in(table.key, keys))
    return query.params({PARAM: when}).subquery(name)


def snap_key(table: TableHistory, snap: Subquery) -> list[ColumnElement[Any]]:
    """The identity columns of a :func:`snapshot`, in identity order."""
    return [snap.c[column.name] for column in table.live_key]


def tracked_columns(table: TableHistory) -> list[Column[Any]]:
    """The live columns of ``table`` that history keeps, the identity left out."""
    return [live for live, _ in table.copied[len(table.key) :]]


def differs(table: TableHistory, live: Table, snap: Subquery, dialect: str) -> ColumnElement[bool]:
    """True where a live row and its snapshot differ in a column that history keeps."""
    terms = []
    for column in tracked_columns(table):
        now: ColumnElement[Any] = live.c[column.name]
        then: ColumnElement[Any] = snap.c[column.name]
        if dialect == "postgresql" and isinstance(column.type, JSON):
            # ``json`` has no equality operator; ``jsonb`` compares by value.
            now, then = cast(now, postgresql.JSONB), cast(then, postgresql.JSONB)
        terms.append(now.is_distinct_from(then))
    return or_(*terms) if terms else false()


def adapt_to(criteria: ColumnElement[bool], live: Table, target: Subquery) -> ColumnElement[bool]:
    """``criteria`` written against ``live``'s columns, moved onto ``target``'s same-named ones."""

    def replace(element: Any, **kw: Any) -> Any:
        if isinstance(element, Column) and element.table is live:
            return target.c[element.name]
        return None

    adapted: ColumnElement[bool] = visitors.replacement_traverse(criteria, {}, replace)
    return adapted


def family_tables(root: HistorySpec) -> list[TableHistory]:
    """Every history table of a hierarchy, its base table first."""
    found: list[TableHistory] = []
    for mapper in root.mapper.self_and_descendants:
        spec = spec_for(mapper)
        if spec is None:
            continue
        for table in spec.tables:
            if table not in found:
                found.append(table)
    return found


def history_facts(
    connection: Connection, root: HistorySpec, keys: Sequence[Key], when: dt.datetime
) -> dict[Key, tuple[dt.datetime, str, bool]]:
    """What the history says of each key at ``when``; keys without history are missing.

    For each key: its first version's time and operation, and whether any of its versions starts
    at or before ``when``.
    """
    base = root.base
    history = base.history
    first_at = func.min(history.c.valid_from)
    first_operation = func.max(_when(history.c.version == 1, history.c.operation))
    before = func.max(_when(history.c.valid_from <= when, 1))
    found: dict[Key, tuple[dt.datetime, str, bool]] = {}
    width = len(base.key)
    for chunk in chunks(list(keys)):
        query = (
            select(*base.key, first_at, first_operation, before)
            .where(key_in(base.key, chunk))
            .group_by(*base.key)
        )
        for row in connection.execute(query):
            found[tuple(row[:width])] = (row[width], row[width + 1], bool(row[width + 2]))
    return found


def _when(condition: ColumnElement[bool], value: Any) -> ColumnElement[Any]:
    return case((condition, value if isinstance(value, ColumnElement) else literal(value)))


def known_absent(facts: tuple[dt.datetime, str, bool] | None) -> bool:
    """Whether a row without a version at the time is known not to have existed then.

    It is when the history covers the time (some version starts at or before it: the row had
    been deleted) or begins after it with the row's insert. A history that begins later with an
    update or a delete belongs to a row that existed before its history did: its state then is
    unknown.
    """
    if facts is None:
        return False
    _, first_operation, before = facts
    return before or first_operation == "insert"


def describe(root: HistorySpec, key: Key) -> str:
    """``Article (1,)``: a row for messages."""
    return f"{root.mapper.class_.__name__} {key!r}"


@dataclass
class Family:
    """The rows of one versioned hierarchy that a restore is about; see the module docs."""

    root: HistorySpec
    scope: set[Key] = field(default_factory=set)
    present: set[Key] = field(default_factory=set)
    written: set[Key] = field(default_factory=set)
    deleted: set[Key] = field(default_factory=set)

    def exists_after(self, key: Key, exists_now: bool) -> bool:
        """Whether the row ``key`` exists once the restore is done."""
        if key in self.scope:
            return key in self.present
        return exists_now


def _constraint_name(constraint: Any, table: Table, columns: Iterable[Column[Any]]) -> str:
    names = ", ".join(column.name for column in columns)
    name = constraint.name if isinstance(constraint.name, str) else None
    described = f"{table.name}({names})"
    return f"{name} on {described}" if name else described


def _unique_sets(table: Table) -> list[tuple[str, list[Column[Any]]]]:
    sets: list[tuple[str, list[Column[Any]]]] = []
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            columns = list(constraint.columns)
            sets.append((_constraint_name(constraint, table, columns), columns))
    for index in table.indexes:
        if (
            isinstance(index, Index)
            and index.unique
            and len(index.columns) == len(index.expressions)
        ):
            columns = list(index.columns)
            sets.append((_constraint_name(index, table, columns), columns))
    return sets


def check_conflicts(
    connection: Connection,
    when: dt.datetime,
    families: Sequence[Family],
    *,
    incoming: bool,
) -> None:
    """Raise :class:`RestoreConflictError` for the first row whose restore breaks a constraint.

    ``incoming`` also checks the rows to delete against the live rows that refer to them.
    """
    by_table = {
        table.live: (table, family) for family in families for table in family_tables(family.root)
    }
    for family in families:
        written = sorted(family.written, key=repr)
        if not written:
            continue
        for table in family_tables(family.root):
            copied = {live.name for live, _ in table.copied}
            for name, columns in _unique_sets(table.live):
                if all(column.name in copied for column in columns):
                    _check_unique(connection, when, family, table, name, columns, written)
            for fk in table.live.foreign_key_constraints:
                columns = list(fk.columns)
                if all(column.name in copied for column in columns):
                    _check_reference(connection, when, family, table, fk, by_table, written)
    if incoming:
        for family in families:
            if family.deleted:
                _check_referrers(connection, family, by_table)


def _check_unique(
    connection: Connection,
    when: dt.datetime,
    family: Family,
    table: TableHistory,
    name: str,
    columns: list[Column[Any]],
    written: list[Key],
) -> None:
    live = table.live
    width = len(table.key)
    key_names = {column.name for column in table.live_key}
    if key_names <= {column.name for column in columns}:
        return  # holds the whole key: only the row itself can have the same values
    for chunk in chunks(written):
        snap = snapshot(table, when, chunk)
        query = select(
            *snap_key(table, snap),
            *table.live_key,
            *(snap.c[column.name] for column in columns),
        ).select_from(snap.join(live, and_(*(live.c[c.name] == snap.c[c.name] for c in columns))))
        for row in connection.execute(query):
            restored, holder = tuple(row[:width]), tuple(row[width : 2 * width])
            if holder == restored or holder in family.scope:
                continue
            values = ", ".join(
                f"{column.name}={value!r}"
                for column, value in zip(columns, row[2 * width :], strict=True)
            )
            raise RestoreConflictError(
                f"cannot restore {describe(family.root, restored)}: its {values} would break the "
                f"unique constraint {name}, because {describe(family.root, holder)}, which this "
                "restore leaves alone, holds that value now. Nothing was restored.",
                model=family.root.mapper.class_,
                key=restored,
                constraint=name,
            )


def _check_reference(
    connection: Connection,
    when: dt.datetime,
    family: Family,
    table: TableHistory,
    fk: Any,
    by_table: dict[Table, tuple[TableHistory, Family]],
    written: list[Key],
) -> None:
    live = table.live
    referred: Table = fk.referred_table
    pairs = [(element.parent, element.column) for element in fk.elements]
    name = _constraint_name(fk, live, [own for own, _ in pairs])
    target = by_table.get(referred)
    identity_order: list[int] | None = None
    if target is not None:
        target_key = [column.name for column in target[0].live_key]
        referred_names = [other.name for _, other in pairs]
        if sorted(referred_names) == sorted(target_key):
            identity_order = [referred_names.index(column) for column in target_key]
    width = len(table.key)
    for chunk in chunks(written):
        snap = snapshot(table, when, chunk)
        references = [snap.c[own.name] for own, _ in pairs]
        parent_exists = (
            select(1)
            .select_from(referred)
            .where(*(other == ref for (_, other), ref in zip(pairs, references, strict=True)))
            .exists()
        )
        query: Select[Any] = select(*snap_key(table, snap), *references, parent_exists).where(
            *(ref.is_not(None) for ref in references)
        )
        if identity_order is None:
            query = query.where(~parent_exists)
        for row in connection.execute(query):
            restored = tuple(row[:width])
            value = tuple(row[width:-1])
            exists_now = bool(row[-1])
            if identity_order is not None and target is not None:
                parent_key = tuple(value[i] for i in identity_order)
                if target[1].exists_after(parent_key, exists_now):
                    continue
            elif exists_now:
                continue
            references_text = ", ".join(
                f"{own.name}={v!r}" for (own, _), v in zip(pairs, value, strict=True)
            )
            raise RestoreConflictError(
                f"cannot restore {describe(family.root, restored)}: its {references_text} refers "
                f"to a {referred.name} row that will not exist (foreign key {name} -> "
                f"{referred.name}); restore that row too, or first. Nothing was restored.",
                model=family.root.mapper.class_,
                key=restored,
                constraint=name,
            )


def _check_referrers(
    connection: Connection, family: Family, by_table: dict[Table, tuple[TableHistory, Family]]
) -> None:
    deleted = sorted(family.deleted, key=repr)
    for table in family_tables(family.root):
        live = table.live
        key_names = [column.name for column in table.live_key]
        metadata = live.metadata
        for child in metadata.tables.values():
            for fk in child.foreign_key_constraints:
                if fk.referred_table is not live:
                    continue
                pairs = [(element.parent, element.column) for element in fk.elements]
                referred = [other.name for _, other in pairs]
                if sorted(referred) != sorted(key_names):
                    continue
                order = [referred.index(column) for column in key_names]
                own = [pairs[i][0] for i in order]
                child_family = by_table.get(child)
                child_key: list[Column[Any]] = (
                    list(child_family[0].live_key) if child_family else list(child.primary_key)
                )
                name = _constraint_name(fk, child, [column for column, _ in pairs])
                for chunk in chunks(deleted):
                    query = select(*own, *child_key).where(key_in(own, chunk))
                    for row in connection.execute(query):
                        parent = tuple(row[: len(own)])
                        referrer = tuple(row[len(own) :])
                        if child_family is not None and referrer in child_family[1].scope:
                            continue
                        raise RestoreConflictError(
                            f"cannot delete {describe(family.root, parent)}, which did not "
                            f"exist at that time: the {child.name} row {referrer!r} still refers "
                            f"to it (foreign key {name}), and restore_all() does not cascade. "
                            "Restore or delete the referring rows first. Nothing was restored.",
                            model=family.root.mapper.class_,
                            key=parent,
                            constraint=name,
                        )
