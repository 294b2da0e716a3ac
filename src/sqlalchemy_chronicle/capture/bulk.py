"""Bulk ORM statements, versioned like the same changes made through objects.

``session.execute(update(Article).where(...).values(...))``, ``delete(Article).where(...)``, ORM
bulk inserts (``session.execute(insert(Article), [...])``), bulk updates by primary key
(``session.execute(update(Article), [...])``) and upserts (``on_conflict_do_update``,
``on_duplicate_key_update``) go through the session's ``do_orm_execute`` hook. The hook finds the
rows a statement touches and hands them to the same writer a flush uses:

- ``UPDATE``: ``RETURNING`` the primary key where the database has it (PostgreSQL, SQLite);
  on MariaDB/MySQL a ``SELECT .. FOR UPDATE`` of the matching keys first, in the same transaction,
  whose locks keep the set of rows the same until the ``UPDATE`` has run;
- ``DELETE``: ``RETURNING`` the row (all three databases), whose values a row without history
  needs for its delete marker;
- ``INSERT`` and upserts: ``RETURNING`` the primary key.

The new values are then read back from the live table and compared with each row's current
version, so a bulk update that changes nothing writes nothing. The caller gets the statement's
result as usual: its own ``RETURNING`` rows if it asked for some, and ``rowcount``.

Core statements on a versioned association table (``insert(association_table)``) run through the
session are versioned alike. Statements executed outside the session (``connection.execute()``,
raw SQL) and Core statements on a versioned class's table are not seen here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Result, Table, event, select
from sqlalchemy.engine import IteratorResult
from sqlalchemy.engine.result import SimpleResultMetaData
from sqlalchemy.orm import ORMExecuteState, Session

from ..errors import UnsupportedStatementError
from ..schema.history import HistorySpec, link_spec, spec_for
from .changes import Kind, RowChange, hand_over

__all__ = ["install"]

_INTERNAL = "_chronicle_internal"
"""Execution option that marks the library's own statements, which the hook lets pass."""


def install() -> None:
    """Watch every session's ORM statements (once per process)."""
    if not event.contains(Session, "do_orm_execute", _on_execute):
        event.listen(Session, "do_orm_execute", _on_execute)


def _on_execute(state: ORMExecuteState) -> Result[Any] | None:
    """Version the rows an ORM bulk statement writes; any other statement returns at once."""
    if not state.statement.is_dml or state.execution_options.get(_INTERNAL):
        return None
    spec = spec_for(state.bind_mapper) if state.bind_mapper is not None else _table_spec(state)
    if spec is None or spec.captured_by_database:
        return None
    if _has_joined_tables(spec):
        raise UnsupportedStatementError(
            f"bulk statements on {spec.mapper.class_.__name__}, whose rows span the tables of a "
            "joined-inheritance hierarchy, are not versioned; change the objects through the "
            "session instead"
        )
    if state.is_delete:
        return _delete(state, spec)
    if state.is_update:
        return _update(state, spec)
    return _insert(state, spec)


def _table_spec(state: ORMExecuteState) -> HistorySpec | None:
    """The spec of the versioned association table a Core statement writes, if it writes one.

    Such a table (see :func:`~sqlalchemy_chronicle.versioned_table`) has no class of the
    application's to write it through, so ``insert(association_table)`` is versioned as a
    statement on its link class; a Core statement on a versioned class's table is not (write
    ``update(Model)`` instead).
    """
    table = getattr(state.statement, "table", None)
    return link_spec(table) if isinstance(table, Table) else None


def _update(state: ORMExecuteState, spec: HistorySpec) -> Result[Any]:
    statement = state.statement
    params = state.parameters
    if isinstance(params, list) and params and statement.whereclause is None:  # type: ignore[attr-defined]
        try:
            identities = [tuple(row[key] for key in spec.pk_keys) for row in params]
        except KeyError as missing:
            raise UnsupportedStatementError(
                f"a bulk update by primary key of {spec.mapper.class_.__name__} needs "
                f"{missing.args[0]!r} in every parameter set"
            ) from missing
        result = state.invoke_statement()
        _write(state, spec, [(identity, {}) for identity in identities], "update")
        return result
    if _dialect(state, spec).update_returning:
        result, rows = _returning(state, _key_attributes(spec))
        identities = [tuple(row) for row in rows]
    else:
        where = statement.whereclause  # type: ignore[attr-defined]
        keys = select(*_key_attributes(spec))
        if where is not None:
            keys = keys.where(where)
        found = state.session.execute(keys.with_for_update(), execution_options={_INTERNAL: True})
        identities = [tuple(row) for row in found]
        result = state.invoke_statement()
    _write(state, spec, [(identity, {}) for identity in identities], "update")
    return result


def _delete(state: ORMExecuteState, spec: HistorySpec) -> Result[Any]:
    if not _dialect(state, spec).delete_returning:
        raise UnsupportedStatementError(
            f"this database cannot return the rows a bulk DELETE removes; delete "
            f"{spec.mapper.class_.__name__} objects through the session instead"
        )
    columns = [live for live, _ in spec.base.copied]
    result, rows = _returning(state, columns)
    width = len(spec.pk_keys)
    changes = []
    for row in rows:
        values = {}
        for column, value in zip(columns, row, strict=True):
            attribute = spec.attribute_key(column)
            if attribute is not None:
                values[attribute] = value
        changes.append((tuple(row[:width]), values))
    _write(state, spec, changes, "delete")
    return result


def _insert(state: ORMExecuteState, spec: HistorySpec) -> Result[Any]:
    upsert = getattr(state.statement, "_post_values_clause", None) is not None
    kind: Kind = "upsert" if upsert else "insert"
    if not _dialect(state, spec).insert_returning:
        raise UnsupportedStatementError(
            f"this database cannot return the keys a bulk INSERT writes; add "
            f"{spec.mapper.class_.__name__} objects through the session instead"
        )
    result, rows = _returning(state, _key_attributes(spec))
    _write(state, spec, [(tuple(row), {}) for row in rows], kind)
    return result


def _write(
    state: ORMExecuteState,
    spec: HistorySpec,
    rows: Sequence[tuple[tuple[Any, ...], dict[str, Any]]],
    kind: Kind,
) -> None:
    unsure = tuple(spec.tracked_keys) if kind in ("update", "upsert") else ()
    changes = [RowChange(spec, identity, kind, values, unsure) for identity, values in rows]
    if changes:
        hand_over(state.session, changes)


def _returning(
    state: ORMExecuteState, columns: Sequence[Any]
) -> tuple[Result[Any], list[tuple[Any, ...]]]:
    """Run the statement with ``columns`` added to its ``RETURNING``.

    Returns the result the caller should see (its own returned columns only, and ``rowcount``)
    and the values of ``columns`` for every row.
    """
    statement = state.statement
    own = len(getattr(statement, "_returning", ()) or ())
    frozen = state.invoke_statement(statement=statement.returning(*columns)).freeze()  # type: ignore[attr-defined]
    rows = [tuple(row[own:]) for row in frozen.data]
    shown: Result[Any]
    if own:
        shown = frozen().columns(*range(own))
    else:
        shown = IteratorResult(SimpleResultMetaData([]), iter([]))
    shown.rowcount = len(rows)  # type: ignore[attr-defined]
    return shown, rows


def _has_joined_tables(spec: HistorySpec) -> bool:
    """Whether the class or a subclass it may match keeps rows in more than one table."""
    for mapper in spec.mapper.self_and_descendants:
        descendant = spec_for(mapper)
        if descendant is not None and len(descendant.tables) > 1:
            return True
    return False


def _key_attributes(spec: HistorySpec) -> list[Any]:
    return [getattr(spec.mapper.class_, key) for key in spec.pk_keys]


def _dialect(state: ORMExecuteState, spec: HistorySpec) -> Any:
    return state.session.get_bind(mapper=spec.mapper).dialect
