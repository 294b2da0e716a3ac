"""The constraint checks a restore makes before it writes anything.

A restore could leave the database to refuse a broken constraint, but the database's error names
neither the row nor, on every database, the constraint. :func:`check_conflicts` looks first for
the rows whose restore would break a unique constraint or a foreign key of the live schema, so
that the error names both:

- a unique value that a row outside the restore's scope holds now;
- a reference to a row that will not exist afterwards (neither now and left alone, nor brought
  back by the same restore), whether the foreign key refers to the primary key or to another
  unique key: a row the restore puts back satisfies a reference to any unique key it held then;
- for :func:`~sqlalchemy_chronicle.restore_all`, which does not cascade, a row to delete that
  rows outside the scope still refer to.

The checks read the snapshot at the time (:func:`~._restore.snapshot`) with the keys in hand,
``CHUNK`` keys per statement, like the writer; a restore that breaks nothing costs a few reads
that find nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    ForeignKeyConstraint,
    Index,
    Select,
    Table,
    UniqueConstraint,
    and_,
    select,
)

from ..errors import RestoreConflictError
from ..schema.history import HistorySpec, TableHistory, spec_for
from ..write.sql import chunks, key_in
from ._family import Family, Key, describe, snap_key, snapshot

__all__ = ["check_conflicts"]

_Tables = dict[Table, tuple[TableHistory, Family]]
"""The restore's families by live table, each with its table's history."""


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
        table.live: (table, family) for family in families for table in _family_tables(family.root)
    }
    for family in families:
        written = sorted(family.written, key=repr)
        if not written:
            continue
        for table in _family_tables(family.root):
            copied = {live.name for live, _ in table.copied}
            for name, columns in _unique_sets(table.live):
                if all(column.name in copied for column in columns):
                    _check_unique(connection, when, family, table, name, columns, written)
            for fk in table.live.foreign_key_constraints:
                if all(column.name in copied for column in fk.columns):
                    _check_reference(connection, when, family, table, fk, by_table, written)
    if incoming:
        for family in families:
            if family.deleted:
                _check_referrers(connection, family, by_table)


def _family_tables(root: HistorySpec) -> list[TableHistory]:
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


def _key_order(fk: ForeignKeyConstraint, key: Sequence[Column[Any]]) -> list[int] | None:
    """Where each column of ``key`` is among the columns ``fk`` refers to.

    None when ``fk`` refers to other columns than exactly ``key``'s.
    """
    referred = [element.column.name for element in fk.elements]
    names = [column.name for column in key]
    if sorted(referred) != sorted(names):
        return None
    return [referred.index(name) for name in names]


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
        ).select_from(snap.join(live, and_(*(c == snap.c[c.name] for c in columns))))
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
    fk: ForeignKeyConstraint,
    by_table: _Tables,
    written: list[Key],
) -> None:
    live = table.live
    referred: Table = fk.referred_table
    pairs = [(element.parent, element.column) for element in fk.elements]
    name = _constraint_name(fk, live, [own for own, _ in pairs])
    target = by_table.get(referred)
    order = _key_order(fk, target[0].live_key) if target is not None else None
    if order is None and target is not None and _copies(target[0], [o for _, o in pairs]):
        _check_unique_reference(connection, when, family, table, fk, target, written)
        return
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
        if order is None:
            query = query.where(~parent_exists)
        for row in connection.execute(query):
            restored = tuple(row[:width])
            value = tuple(row[width:-1])
            exists_now = bool(row[-1])
            if order is not None and target is not None:
                parent_key = tuple(value[i] for i in order)
                if target[1].exists_after(parent_key, exists_now):
                    continue
            elif exists_now:
                continue
            _refuse_reference(family, restored, fk, name, value)


def _check_unique_reference(
    connection: Connection,
    when: dt.datetime,
    family: Family,
    table: TableHistory,
    fk: ForeignKeyConstraint,
    target: tuple[TableHistory, Family],
    written: list[Key],
) -> None:
    """Check a foreign key to another unique key than the primary key of a table restored too.

    After the restore, the row holding the value is a row put back that held it then, or a row
    the restore leaves alone that holds it now; a row in the restore's scope that holds it now
    is put back to its values then, or deleted.
    """
    referred_history, referred_family = target
    pairs = [(element.parent, element.column) for element in fk.elements]
    name = _constraint_name(fk, table.live, [own for own, _ in pairs])
    held_then = _values_then(connection, when, referred_history, referred_family, pairs)
    holder = fk.referred_table.alias("chronicle_holder")
    holder_key = [holder.c[column.key] for column in referred_history.live_key]
    width, count = len(table.key), len(pairs)
    satisfied: dict[tuple[Key, Key], bool] = {}
    for chunk in chunks(written):
        snap = snapshot(table, when, chunk)
        references = [snap.c[own.name] for own, _ in pairs]
        joined = snap.outerjoin(
            holder,
            and_(
                *(
                    holder.c[other.key] == ref
                    for (_, other), ref in zip(pairs, references, strict=True)
                )
            ),
        )
        query = (
            select(*snap_key(table, snap), *references, *holder_key)
            .select_from(joined)
            .where(*(ref.is_not(None) for ref in references))
        )
        for row in connection.execute(query):
            restored, value = tuple(row[:width]), tuple(row[width : width + count])
            now = tuple(row[width + count :])
            left_alone = None not in now and now not in referred_family.scope
            key = (restored, value)
            satisfied[key] = satisfied.get(key, False) or value in held_then or left_alone
    for (restored, value), ok in satisfied.items():
        if not ok:
            _refuse_reference(family, restored, fk, name, value)


def _refuse_reference(
    family: Family, restored: Key, fk: ForeignKeyConstraint, name: str, value: Key
) -> None:
    referred = fk.referred_table.name
    references_text = ", ".join(
        f"{element.parent.name}={v!r}" for element, v in zip(fk.elements, value, strict=True)
    )
    raise RestoreConflictError(
        f"cannot restore {describe(family.root, restored)}: its {references_text} refers "
        f"to a {referred} row that will not exist (foreign key {name} -> "
        f"{referred}); restore that row too, or first. Nothing was restored.",
        model=family.root.mapper.class_,
        key=restored,
        constraint=name,
    )


def _copies(table: TableHistory, columns: Iterable[Column[Any]]) -> bool:
    """Whether ``table``'s history keeps every one of ``columns`` (so a restore puts them back)."""
    copied = {live.name for live, _ in table.copied}
    return all(column.name in copied for column in columns)


def _values_then(
    connection: Connection,
    when: dt.datetime,
    table: TableHistory,
    family: Family,
    pairs: Sequence[tuple[Column[Any], Column[Any]]],
) -> set[Key]:
    """The values of the referred columns of ``pairs`` that the rows put back held at ``when``."""
    found: set[Key] = set()
    for chunk in chunks(sorted(family.present, key=repr)):
        snap = snapshot(table, when, chunk)
        values = [snap.c[other.name] for _, other in pairs]
        query = select(*values).where(*(value.is_not(None) for value in values))
        found.update(tuple(row) for row in connection.execute(query))
    return found


def _check_referrers(connection: Connection, family: Family, by_table: _Tables) -> None:
    deleted = sorted(family.deleted, key=repr)
    for table in _family_tables(family.root):
        live = table.live
        for child in live.metadata.tables.values():
            for fk in child.foreign_key_constraints:
                if fk.referred_table is not live:
                    continue
                order = _key_order(fk, table.live_key)
                if order is None:
                    continue
                own = [fk.elements[i].parent for i in order]
                child_family = by_table.get(child)
                child_key: list[Column[Any]] = (
                    list(child_family[0].live_key) if child_family else list(child.primary_key)
                )
                name = _constraint_name(fk, child, [element.parent for element in fk.elements])
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
