"""How :func:`~sqlalchemy_chronicle.restore_all` restores a table: set-based SQL, in two halves.

**Planning** (:func:`plan_table`) reads, in two statements whatever the number of rows, the
selected rows as they are now (locked) and as they were at the time, joined to the live table:
for each row, whether it existed then and now, and whether it differs from its version then. Rows
there then but not now are to insert, rows there both times and different are to update, rows
there now but not then are to delete, and the rest are left alone. A live row with no version at
the time is only deleted when the history says it did not exist then; one that existed before its
history began stops the restore.

**Execution** (:func:`write_table`) deletes, updates and inserts with one statement per ``CHUNK``
(2,000) keys each, reading the values from the snapshot inside the statement, so no row's values
travel to Python. The history of these changes is written like a flush's (one ``RowChange`` per
row, the version put back as ``restored_from``), and the session's objects of these rows are
forgotten or expired so that they do not show what was there before. In database capture mode
the triggers write that history, and :func:`~._database.mark_restores` marks it as restores.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Connection,
    DefaultClause,
    Table,
    and_,
    bindparam,
    case,
    cast,
    delete,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import visitors
from sqlalchemy.sql.schema import ScalarElementColumnDefault
from sqlalchemy.sql.selectable import Subquery

from ..capture.changes import RowChange
from ..errors import NoVersionAt
from ..schema.history import HistorySpec, TableHistory
from ..schema.tables import Horizon
from ..write import write_history
from ..write.sql import chunks, is_mysql, rows_in
from ._database import mark_restores
from ._family import Family, Key, snap_key, snapshot
from ._session import forget_rows, not_null_unknown

__all__ = ["TablePlan", "plan_table", "write_table"]


@dataclass
class TablePlan:
    """What :func:`write_table` changes: rows by key, with the version each is put back to."""

    spec: HistorySpec
    when: dt.datetime
    family: Family
    inserts: list[tuple[Key, int]] = field(default_factory=list)
    updates: list[tuple[Key, int]] = field(default_factory=list)
    deletes: list[Key] = field(default_factory=list)
    unchanged: int = 0


def plan_table(
    connection: Connection,
    spec: HistorySpec,
    when: dt.datetime,
    criteria: list[ColumnElement[bool]],
    horizon: dt.datetime | None = None,
) -> TablePlan:
    """Classify the rows of ``spec``'s class selected by ``criteria``, now or at ``when``.

    ``horizon`` is the table's pruning horizon, at or before ``when``: the history is complete
    from then on, whatever versions pruning removed before it.
    """
    table = spec.base
    _check_time(connection, table, when, horizon)
    live_rows = _live_rows(connection, spec, when, criteria, pruned=horizon is not None)
    then_rows = _then_rows(connection, spec, when, criteria)
    plan = TablePlan(spec, when, Family(spec.root_spec))
    for key, (version, exists, changed) in then_rows.items():
        if not exists:
            plan.inserts.append((key, version))
        elif changed:
            plan.updates.append((key, version))
        else:
            plan.unchanged += 1
    unknown = [key for key, known in live_rows.items() if key not in then_rows and not known]
    if unknown:
        shown = ", ".join(repr(key) for key in sorted(unknown, key=repr)[:3])
        raise NoVersionAt(
            f"{len(unknown)} selected {table.live.name} rows (such as {shown}) have no "
            f"history that tells their state at {when}: they existed before their "
            "history began. Narrow where= to leave them out"
        )
    plan.deletes = [key for key in live_rows if key not in then_rows]
    family = plan.family
    family.scope = set(live_rows) | set(then_rows)
    family.present = set(then_rows)
    family.written = {key for key, _ in plan.inserts} | {key for key, _ in plan.updates}
    family.deleted = set(plan.deletes)
    return plan


def write_table(session: Session, connection: Connection, plan: TablePlan) -> None:
    """Carry out ``plan``, write its history, and bring the session's objects in line."""
    table, when = plan.spec.base, plan.when
    inserted = [key for key, _ in plan.inserts]
    updated = [key for key, _ in plan.updates]
    for chunk in chunks(plan.deletes):
        connection.execute(
            delete(table.live).where(rows_in(connection, table.live_key, chunk, use="write"))
        )
    values = _tracked_columns(table)
    # MariaDB refuses a trigger that writes the history table a statement reads (error 1442):
    # in database capture mode there the rows are read first, then written.
    read_first = plan.spec.captured_by_database and is_mysql(connection)
    for chunk in chunks(updated):
        snap = snapshot(table, when, chunk)
        on = [k == s for k, s in zip(table.live_key, snap_key(table, snap), strict=True)]
        if values:
            then = {c: _then(c, snap.c[c.name], c if not c.nullable else None) for c in values}
            if read_first:
                _update_read_first(connection, table, snap, on, then)
            else:
                connection.execute(update(table.live).where(*on).values(then))
    columns = [live for live, _ in table.copied]
    for chunk in chunks(inserted):
        snap = snapshot(table, when, chunk)
        _refuse_unknown_not_null(connection, plan.spec, snap, columns)
        source = select(*(_then(c, snap.c[c.name], _default_sql(c)) for c in columns))
        if read_first:
            keys = [c.key for c in columns]
            rows = [dict(zip(keys, row, strict=True)) for row in connection.execute(source)]
            if rows:
                connection.execute(insert(table.live), rows)
        else:
            connection.execute(insert(table.live).from_select(columns, source))
    spec = plan.spec
    changes = [RowChange(spec, key, "delete") for key in plan.deletes]
    changes += [RowChange(spec, key, "insert", restored_from=v) for key, v in plan.inserts]
    changes += [RowChange(spec, key, "update", restored_from=v) for key, v in plan.updates]
    if spec.captured_by_database:
        mark_restores(connection, spec.root_spec, dict(plan.inserts + plan.updates))
    elif changes:
        write_history(session, changes)
    forget_rows(session, spec.root_spec, plan.deletes, inserted + updated)


def _update_read_first(
    connection: Connection,
    table: TableHistory,
    snap: Subquery,
    on: list[ColumnElement[bool]],
    then: dict[Column[Any], Any],
) -> None:
    """Read the values to put back, then update the rows by key, in an executemany."""
    found = connection.execute(
        select(*table.live_key, *then.values()).join_from(table.live, snap, and_(*on))
    ).all()
    if not found:
        return
    width = len(table.live_key)
    statement = (
        update(table.live)
        .where(*(k == bindparam(f"chronicle_k{n}") for n, k in enumerate(table.live_key)))
        .values({c: bindparam(f"chronicle_v{n}") for n, c in enumerate(then)})
    )
    rows = [
        {
            **{f"chronicle_k{n}": row[n] for n in range(width)},
            **{f"chronicle_v{n}": row[width + n] for n in range(len(then))},
        }
        for row in found
    ]
    connection.execute(statement, rows)


def _then(column: Column[Any], then: Any, otherwise: Any) -> Any:
    """``then``, or ``otherwise`` where it is NULL in a NOT NULL ``column``.

    A version written before a column existed (or became NOT NULL) holds no value for it: an
    updated row keeps its current value, a row inserted again takes the column's default.
    """
    if column.nullable or otherwise is None:
        return then
    return func.coalesce(then, otherwise)


def _default_sql(column: Column[Any]) -> Any:
    """The SQL of ``column``'s default value, or None when it has none that SQL can give."""
    if isinstance(column.default, ScalarElementColumnDefault):
        return literal(column.default.arg, column.type)
    server_default = column.server_default
    if isinstance(server_default, DefaultClause):
        arg = server_default.arg
        return cast(literal(arg), column.type) if isinstance(arg, str) else arg
    return None


def _refuse_unknown_not_null(
    connection: Connection, spec: HistorySpec, snap: Any, columns: list[Column[Any]]
) -> None:
    """Refuse to insert again rows that hold no value for a NOT NULL column without a default.

    The error names the column; the restore's savepoint undoes what was written before.
    """
    for column in columns:
        if column.nullable or column.primary_key or _default_sql(column) is not None:
            continue
        empty = select(literal(1)).select_from(snap).where(snap.c[column.name].is_(None))
        if connection.scalar(empty.limit(1)):
            raise not_null_unknown(column, None, spec.attribute_key(column) or column.key)


def _check_time(
    connection: Connection, table: TableHistory, when: dt.datetime, horizon: dt.datetime | None
) -> None:
    """Refuse a time before the table's history begins: nothing is known of the table then.

    A pruned table's history began when its pruning horizon says, whatever pruning removed.
    """
    start = connection.scalar(select(func.min(table.history.c.valid_from)))
    if horizon is not None:
        began = connection.scalar(
            select(Horizon.history_began).where(Horizon.table_name == table.live.fullname)
        )
        start = began if start is None or (began is not None and began < start) else start
    name = table.live.name
    if start is None:
        raise NoVersionAt(f"{name} has no history yet: there is nothing to restore")
    if when < start:
        raise NoVersionAt(
            f"{when} is before the history of {name} begins (at {start}): "
            "nothing is known of the table then"
        )


def _discriminator(spec: HistorySpec, columns: Any) -> list[ColumnElement[bool]]:
    """Criteria that keep a single-table subclass's rows (empty for a hierarchy's root)."""
    mapper = spec.mapper
    on = mapper.polymorphic_on
    if mapper.inherits is None or on is None or not hasattr(on, "name"):
        return []
    identities = [
        m.polymorphic_identity
        for m in mapper.self_and_descendants
        if m.polymorphic_identity is not None
    ]
    return [columns[on.name].in_(identities)]


def _live_rows(
    connection: Connection,
    spec: HistorySpec,
    when: dt.datetime,
    criteria: list[ColumnElement[bool]],
    pruned: bool = False,
) -> dict[Key, bool]:
    """The selected live rows, locked, each with whether its absence then is known.

    In a pruned table, a row whose first version is gone is known too: every version valid at
    or after the horizon was kept, so none valid at ``when`` means the row did not exist then.
    """
    table = spec.base
    history = table.history
    live_key = table.live_key
    same_row = [h == k for h, k in zip(table.key, live_key, strict=True)]
    known: ColumnElement[bool] = (
        select(1)
        .select_from(history)
        .where(
            *same_row,
            (history.c.valid_from <= when)
            | and_(history.c.version == 1, history.c.operation == "insert"),
        )
        .exists()
    )
    if pruned:
        first = select(1).select_from(history).where(*same_row, history.c.version == 1).exists()
        later = select(1).select_from(history).where(*same_row, history.c.version > 1).exists()
        known = known | (later & ~first)
    query = select(*live_key, known).where(*criteria, *_discriminator(spec, table.live.c))
    if connection.dialect.name != "sqlite":
        query = query.with_for_update()
    width = len(live_key)
    return {tuple(row[:width]): bool(row[width]) for row in connection.execute(query)}


def _then_rows(
    connection: Connection,
    spec: HistorySpec,
    when: dt.datetime,
    criteria: list[ColumnElement[bool]],
) -> dict[Key, tuple[int, bool, bool]]:
    """The selected rows as they were, by key: (version, exists now, differs now)."""
    table = spec.base
    live = table.live
    snap = snapshot(table, when)
    keys = snap_key(table, snap)
    live_key = table.live_key
    joined = snap.outerjoin(live, and_(*(k == s for k, s in zip(live_key, keys, strict=True))))
    then_scope = [_adapt_to(c, live, snap) for c in criteria]
    then_scope += _discriminator(spec, snap.c)
    now_scope = and_(live_key[0].is_not(None), *criteria, *_discriminator(spec, live.c))
    selected = (and_(*then_scope) if then_scope else true()) | now_scope
    changed = _differs(table, snap, connection.dialect)
    query = (
        select(
            *keys,
            snap.c[table.history.c.version.name],
            case((live_key[0].is_(None), 0), else_=1),
            case((changed, 1), else_=0),
        )
        .select_from(joined)
        .where(selected)
    )
    width = len(keys)
    return {
        tuple(row[:width]): (row[width], bool(row[width + 1]), bool(row[width + 2]))
        for row in connection.execute(query)
    }


def _tracked_columns(table: TableHistory) -> list[Column[Any]]:
    """The live columns of ``table`` that history keeps, the identity left out."""
    return [live for live, _ in table.copied[len(table.key) :]]


def _differs(table: TableHistory, snap: Subquery, dialect: Dialect) -> ColumnElement[bool]:
    """True where a live row and its snapshot differ in a column that history keeps."""
    terms = []
    for column in _tracked_columns(table):
        now: ColumnElement[Any] = column
        then: ColumnElement[Any] = snap.c[column.name]
        if dialect.name == "postgresql" and isinstance(column.type.dialect_impl(dialect), JSON):
            # ``json`` has no equality operator; ``jsonb`` compares by value.
            from sqlalchemy.dialects import postgresql

            now, then = cast(now, postgresql.JSONB), cast(then, postgresql.JSONB)
        terms.append(now.is_distinct_from(then))
    return or_(*terms) if terms else false()


def _adapt_to(criteria: ColumnElement[bool], live: Table, target: Subquery) -> ColumnElement[bool]:
    """``criteria`` written against ``live``'s columns, moved onto ``target``'s same-named ones."""

    def replace(element: Any, **kw: Any) -> Any:
        if isinstance(element, Column) and element.table is live:
            return target.c[element.name]
        return None

    adapted: ColumnElement[bool] = visitors.replacement_traverse(criteria, {}, replace)
    return adapted
