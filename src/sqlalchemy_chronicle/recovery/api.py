"""Restore: put rows back as they were, as a new change that the history keeps.

History is never rewritten. Restoring a row makes its live state equal to an earlier version and
flushes that as an ordinary change: the row gets a new version with operation ``"restore"`` and
``restored_from`` set to the number of the version it brought back, the change log gets a
``RESTORE`` entry, and a later restore can undo this one like any other change.

**One row.** :func:`restore` takes a version (an ``Article.__history__`` object, from
:func:`~sqlalchemy_chronicle.history` or :func:`~sqlalchemy_chronicle.query_as_of`), or a class,
a primary key and a time::

    restore(session, old_version)
    restore(session, Article, 7, as_of="2024-03-05T14:30:00+01:00")

A row deleted since comes back with its old primary key. A row that did not exist at the time is
an error (:class:`~sqlalchemy_chronicle.NoVersionAt`) unless ``allow_delete=True`` asks for it to
be deleted. The restore goes through the session like any change (its objects are the live ones,
the unit of work orders the statements, ORM cascades apply to the rows it deletes); it returns
the live object, or None when the row is now deleted.

**Related rows.** ``include=`` restores relationships of the row to the same moment: for a
version, the moment it became current (its ``valid_from``). A path is a relationship attribute, a
tuple of them, or a dotted string of relationship names: ``include=[Order.lines, (Order.lines,
OrderLine.product)]`` or ``include=["lines.product"]``; a path includes its prefixes. At each step
the rows related then are restored, and for a one-to-many relationship also the rows related now:
children created since are deleted, children deleted since come back, changed ones are put back,
children moved to another parent since are moved back. Many-to-one steps restore the rows
referred to then. Many-to-many relationships are not followed; version and include the
association class instead.

**Whole tables.** :func:`restore_all` puts every matching row of a class back to its state at a
time in set-based SQL: rows created since are deleted, rows deleted since are re-inserted,
changed rows are updated, unchanged rows are not touched and get no version. ``where=`` selects
the rows with criteria on the class's attributes; a row is restored when it matches them now or
matched them then (the criteria read the row's values at the time).

Both check the live schema's constraints before writing: a row whose restore would break a
unique constraint or a foreign key raises :class:`~sqlalchemy_chronicle.RestoreConflictError`
naming the row and the constraint. Both work inside a savepoint (``session.begin_nested()``):
whatever fails, nothing is half-restored and the session's transaction is still usable. Neither
commits; commit the session to keep the restore.

Columns left out of history (``__versioned__ = {"exclude": [...]}``) are not restored: they keep
their current values, and a re-inserted row gets their defaults.

**Where the work is done.** This module holds the public names and the steps of each call; the
steps live in private modules, each one concept: :mod:`._target` reads a
:func:`restore` call and its ``include=`` paths, :mod:`._rows` plans which rows it
changes and :mod:`._session` carries the plan out through the session;
:mod:`._table` plans and executes :func:`restore_all` in SQL; :mod:`._checks`
holds the constraint checks both make, and :mod:`._family` what they all share. (The package is
called ``recovery``, not ``restore``: the package's ``restore`` is the function.)
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar, overload

from sqlalchemy import Boolean, ColumnElement, TextClause
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.types import NullType, TypeDecorator, TypeEngine

from ..errors import ConfigurationError, RestoreConflictError, UnsupportedStatementError
from ..instants import TimeLike, to_instant
from ..read.horizon import check_horizon, horizon_name, session_horizons
from ..read.query import refuse_async, spec_of
from ..schema.history import Version, spec_for
from ._checks import check_conflicts
from ._family import describe
from ._rows import plan_rows
from ._session import write_rows
from ._table import plan_table, write_table
from ._target import MISSING, Include, relationship_paths, resolve_target

__all__ = ["Include", "RestoreResult", "restore", "restore_all"]

T = TypeVar("T")


class RestoreResult(NamedTuple):
    """What :func:`restore_all` did, in rows."""

    inserted: int
    """Rows deleted since the time, inserted again."""
    updated: int
    """Rows changed since the time, put back."""
    deleted: int
    """Rows created since the time (or deleted then and back now), deleted."""
    unchanged: int
    """Rows in the selection that were already as they were then, left alone."""


@overload
def restore(
    session: Session,
    version: Version[T],
    /,
    *,
    include: Iterable[Include] = (),
    allow_delete: bool = False,
    values: Mapping[str, Any] | None = None,
) -> T | None: ...
@overload
def restore(
    session: Session,
    cls: type[T],
    key: Any,
    /,
    *,
    as_of: TimeLike | None = None,
    include: Iterable[Include] = (),
    allow_delete: bool = False,
    values: Mapping[str, Any] | None = None,
) -> T | None: ...
@overload
def restore(
    session: Session,
    obj: T,
    /,
    *,
    as_of: TimeLike,
    include: Iterable[Include] = (),
    allow_delete: bool = False,
    values: Mapping[str, Any] | None = None,
) -> T | None: ...


def restore(
    session: Session,
    target: Any,
    key: Any = MISSING,
    /,
    *,
    as_of: TimeLike | None = None,
    include: Iterable[Include] = (),
    allow_delete: bool = False,
    values: Mapping[str, Any] | None = None,
) -> Any:
    """Make a row's live state equal to an earlier version, as a new ``"restore"`` version.

    Called as ``restore(session, version)`` with a history object, ``restore(session, Model,
    key, as_of=when)`` with a class and a primary key (a tuple for a composite key), or
    ``restore(session, obj, as_of=when)`` with a live object. ``restore(session, Model,
    version)`` also takes a version and checks that it is one of ``Model``'s.

    :param include: relationship paths to restore to the same moment; see the module docs.
    :param allow_delete: delete the row when it did not exist at the time (or when ``version``
        is a delete marker), instead of raising :class:`~sqlalchemy_chronicle.NoVersionAt`.
    :param values: attribute values that replace the restored ones of the row (not of the
        rows of ``include``), for example for a column that is NOT NULL now but has no value in
        a version written before it existed. Without one, such a column keeps its current value,
        or, in a row inserted again, takes its default; with no default the restore raises
        :class:`~sqlalchemy_chronicle.RestoreConflictError` naming it.
    :returns: the live object, or None when the row does not exist afterwards.
    :raises NoVersionAt: the row did not exist at the time, never existed, or its state then is
        unknown.
    :raises RestoreConflictError: a unique constraint or a foreign key would be broken.
    :raises HistoryPrunedError: the time is before the pruning horizon of a table it reads.

    The change is flushed in a savepoint and not committed.
    """
    refuse_async(session, "restore")
    resolved = resolve_target(target, key, as_of)
    paths = relationship_paths(resolved.root.mapper, include)
    reached = [resolved.root.mapper, *(prop.mapper for path in paths for prop in path)]
    _refuse_pruned(session, reached, to_instant(resolved.when))
    _warn_if_savepoints_commit(session, resolved.root.mapper)
    with _savepoint(session, describe(resolved.root, resolved.identity)):
        plan = plan_rows(session, resolved, paths, allow_delete)
        connection = session.connection(bind_arguments={"mapper": resolved.root.mapper})
        check_conflicts(connection, resolved.when, plan.families, incoming=False)
        return write_rows(session, plan, values)


def restore_all(
    session: Session,
    cls: type[Any],
    *,
    as_of: TimeLike,
    where: ColumnElement[bool] | Sequence[ColumnElement[bool]] | None = None,
) -> RestoreResult:
    """Put every selected row of ``cls`` back to its state at ``as_of``, in set-based SQL.

    A row is selected when it matches ``where`` now or matched it at ``as_of`` (the criteria,
    written against ``cls``'s attributes, then read the row's values at that time; other tables
    they name are read as they are now); without ``where``, every row of ``cls``. Selected rows
    created since are deleted, rows deleted since are inserted again, changed rows are updated;
    rows already equal to their state then are not touched and get no version. The history and
    the change log are written as for :func:`restore`.

    The number of statements does not depend on the number of rows, apart from the lists of
    keys, which are sent ``CHUNK`` (2,000) at a time like the writer's.

    :raises NoVersionAt: ``as_of`` is before the history of the table begins, or a selected row
        existed then without history telling its state.
    :raises RestoreConflictError: a unique constraint or a foreign key would be broken, also by
        deleting a row that rows outside the selection refer to (nothing cascades).
    :raises HistoryPrunedError: ``as_of`` is before the pruning horizon of ``cls``'s table.
    :raises UnsupportedStatementError: ``cls``'s rows span a joined-inheritance hierarchy's
        tables; restore them one by one with :func:`restore`.
    :raises ConfigurationError: ``where`` is not a SQL expression of a boolean (or NULL) type
        nor a list or tuple of them: ``text()``, a string, ``True`` or ``None`` in a list, for
        example (plain SQL could not be read against the rows as they were then).

    Every argument is checked before anything is read or written.
    """
    refuse_async(session, "restore_all")
    spec = spec_of(cls)
    when = to_instant(as_of)
    for mapper in spec.mapper.self_and_descendants:
        descendant = spec_for(mapper)
        if descendant is not None and len(descendant.tables) > 1:
            raise UnsupportedStatementError(
                f"restore_all() on {cls.__name__}, whose rows span the tables of a "
                "joined-inheritance hierarchy, is not supported; restore the rows one by one "
                "with restore()"
            )
    criteria = _criteria(cls, where)
    horizon = _refuse_pruned(session, [spec.mapper], when)
    _warn_if_savepoints_commit(session, spec.mapper)
    with _savepoint(session, f"{cls.__name__} rows"):
        connection = session.connection(bind_arguments={"mapper": spec.mapper})
        plan = plan_table(connection, spec, when, criteria, horizon)
        check_conflicts(connection, when, [plan.family], incoming=True)
        write_table(session, connection, plan)
        return RestoreResult(
            len(plan.inserts), len(plan.updates), len(plan.deletes), plan.unchanged
        )


def _refuse_pruned(
    session: Session, mappers: Sequence[Mapper[Any]], when: dt.datetime
) -> dt.datetime | None:
    """Raise :class:`HistoryPrunedError` when ``when`` is before a pruning horizon they reach.

    Returns the horizon of the first mapper's table, if it was pruned.
    """
    horizons = session_horizons(session, {"mapper": mappers[0]})
    if not horizons:
        return None
    names = {name for m in mappers for t in m.tables if (name := horizon_name(t)) is not None}
    check_horizon(horizons, names, to_instant(when))
    own = horizon_name(mappers[0].local_table)
    return horizons.get(own) if own is not None else None


def _criteria(cls: type[Any], where: Any) -> list[ColumnElement[bool]]:
    """The criteria of ``restore_all(..., where=where)``, each one checked."""
    if where is None:
        return []
    many = isinstance(where, Sequence) and not isinstance(where, str | bytes)
    items = list(where) if many else [where]
    criteria: list[ColumnElement[bool]] = []
    for item in items:
        element = item.__clause_element__() if hasattr(item, "__clause_element__") else item
        if isinstance(element, ColumnElement) and _is_boolean(element.type):
            criteria.append(element)
            continue
        if isinstance(element, ColumnElement):
            problem = f"a SQL expression of type {element.type!r}, not a condition"
        elif isinstance(element, TextClause):
            problem = "text(), whose SQL cannot be read against the rows as they were then"
        else:
            problem = f"a {type(item).__name__}, not a SQL condition"
        shown = f"{where!r} holds {item!r}" if many else f"{item!r}"
        raise ConfigurationError(
            f"restore_all(where=...): {shown}, {problem}. Give a condition on "
            f"{cls.__name__}'s attributes, such as {cls.__name__}.id == 1, a list of them that "
            "must all hold, or None for every row"
        )
    return criteria


def _is_boolean(type_: TypeEngine[Any]) -> bool:
    """Whether a criterion of type ``type_`` can be a condition (NULL type included)."""
    if isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance
    return isinstance(type_, Boolean | NullType)


@contextmanager
def _savepoint(session: Session, rows: str) -> Iterator[None]:
    """Run a restore of ``rows`` in a savepoint: whatever fails, nothing is half-restored.

    A constraint that only the database enforces (one the checks before writing do not cover)
    becomes a :class:`~sqlalchemy_chronicle.RestoreConflictError`.
    """
    try:
        with session.begin_nested():
            yield
    except IntegrityError as exc:
        raise RestoreConflictError(
            f"the database refused to restore {rows}: {str(exc.orig).rstrip('.')}. Nothing was "
            "restored."
        ) from exc


def _warn_if_savepoints_commit(session: Session, mapper: Mapper[Any]) -> None:
    """Warn when the savepoint would be the SQLite driver's outermost transaction.

    The ``sqlite3`` module begins transactions by itself, only before a write; a savepoint taken
    before any write then starts the transaction, and releasing it commits: the restore would be
    committed at once. SQLAlchemy's recipe, installed by
    :func:`~sqlalchemy_chronicle.use_sqlite_savepoints`, avoids that.
    """
    connection = session.connection(bind_arguments={"mapper": mapper})
    if connection.dialect.name != "sqlite":
        return
    driver = connection.connection.dbapi_connection
    if getattr(driver, "isolation_level", None) is not None and not getattr(
        driver, "in_transaction", True
    ):
        warnings.warn(
            "restore on SQLite without SQLAlchemy's savepoint recipe: the driver lets the "
            "savepoint's release commit the session's transaction, so this restore is committed "
            "at once; call sqlalchemy_chronicle.use_sqlite_savepoints(engine) after creating "
            "the engine",
            RuntimeWarning,
            stacklevel=3,
        )
