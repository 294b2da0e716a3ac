"""A restore and the session's objects.

:func:`~sqlalchemy_chronicle.restore` writes through the session (:func:`write_rows`): it deletes
the live objects of the rows that did not exist at the time, then sets the kept attributes of
the others from their versions, creating objects for rows that are gone, and flushes. The unit of
work orders the statements and ORM cascades apply; the flush is captured like any other, and
:func:`~sqlalchemy_chronicle.capture.changes.mark_restored` makes its versions ``"restore"``
versions (in database capture mode, :func:`~._database.mark_restores` marks the triggers'
versions after the flush).

:func:`~sqlalchemy_chronicle.restore_all` writes around the session, in SQL; :func:`forget_rows`
then expunges the session's objects of the rows it deleted and expires those of the rows it
wrote.

Either way, the relationship collections loaded before may list rows as they were: they are
expired (:func:`expire_relationships`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Column, inspect
from sqlalchemy.orm import ColumnProperty, Mapper, Session

from ..capture.changes import forget_restored, mark_restored
from ..errors import RestoreConflictError
from ..schema.columns import stamp
from ..schema.history import HistorySpec, Version, spec_for
from ._database import mark_restores
from ._family import Key, tracked_keys
from ._rows import RowPlan

__all__ = ["expire_relationships", "forget_rows", "not_null_unknown", "write_rows"]


def write_rows(session: Session, plan: RowPlan, values: Mapping[str, Any] | None = None) -> Any:
    """Carry out ``plan`` through the session; the target's live object, or None if deleted.

    ``values`` (attribute name to value) replace the target row's restored values.
    """
    roots = set(plan.rows)
    with session.no_autoflush:
        for rows in plan.rows.values():
            for key in rows.family.deleted:
                session.delete(rows.live[key])
    session.flush()
    expire_relationships(session, roots)
    try:
        with session.no_autoflush:
            for rows in plan.rows.values():
                family = rows.family
                for key in family.present:
                    obj = rows.live.get(key)
                    if obj is not None and _gone(obj):
                        family.written.add(key)  # deleted by a cascade above: insert it again
                for key in family.written:
                    version = rows.then[key]
                    obj = rows.live.get(key)
                    is_new = obj is None or _gone(obj)
                    if is_new:
                        obj = _new_object(version)
                        session.add(obj)
                        rows.live[key] = obj
                    given = values if key == plan.target.identity and values else {}
                    _set_restored(obj, version, given, is_new)
                    mark_restored(session, obj, stamp(version, "version"))
        session.flush()
    finally:
        forget_restored(session)
    for rows in plan.rows.values():
        root = rows.family.root
        mark_restores(
            session.connection(bind_arguments={"mapper": root.mapper}),
            root,
            {key: stamp(rows.then[key], "version") for key in rows.family.written},
        )
    expire_relationships(session, roots)
    target = plan.rows[plan.target.root]
    identity = plan.target.identity
    return target.live.get(identity) if identity in target.family.present else None


def _set_restored(obj: Any, version: Version[Any], given: Mapping[str, Any], is_new: bool) -> None:
    """Set ``obj``'s tracked attributes from ``version``, or from ``given`` where it names them.

    A column that is NOT NULL now but empty in the version (written before the column was added,
    or made NOT NULL) keeps its current value in a row that exists, and takes its default (the
    database's or the model's) in a row inserted again; without a default, the restore is
    refused, naming the column and the fix (see :func:`not_null_unknown`).
    """
    mapper = inspect(obj).mapper
    for name in tracked_keys(version):
        value = given[name] if name in given else getattr(version, name)
        if value is None:
            prop = mapper.get_property(name)
            column = prop.columns[0] if isinstance(prop, ColumnProperty) else None
            if isinstance(column, Column) and not column.nullable:
                if not is_new:
                    continue
                if column.server_default is None and column.default is None:
                    raise not_null_unknown(column, stamp(version, "version"), name)
                continue
        setattr(obj, name, value)


def not_null_unknown(column: Column[Any], version: int | None, name: str) -> RestoreConflictError:
    """The error of a restore that has no value for a NOT NULL column, and no default."""
    which = f"version {version} of the row holds" if version is not None else "the versions hold"
    return RestoreConflictError(
        f"{column.table.name}.{column.name} is NOT NULL now, but {which} no value for it (written "
        f"before the column had one): give one with restore(..., values={{{name!r}: ...}}), or "
        "give the column a default"
    )


def forget_rows(
    session: Session, root: HistorySpec, deleted: Iterable[Key], written: Iterable[Key]
) -> None:
    """Keep the session's objects of rows written behind its back from showing the old state."""
    mapper = root.mapper
    identity_map = session.identity_map
    for key in deleted:
        obj = identity_map.get(mapper.identity_key_from_primary_key(key))
        if obj is not None:
            session.expunge(obj)
    for key in written:
        obj = identity_map.get(mapper.identity_key_from_primary_key(key))
        if obj is not None:
            session.expire(obj)
    expire_relationships(session, {root})


def expire_relationships(session: Session, roots: set[HistorySpec]) -> None:
    """Expire the relationship attributes that may show rows of ``roots`` as they were."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Version):
            continue
        mapper = inspect(obj).mapper
        names = [
            rel.key
            for rel in mapper.relationships
            if (spec := spec_for(rel.mapper)) is not None and spec.root_spec in roots
        ]
        if names:
            session.expire(obj, names)


def _gone(obj: Any) -> bool:
    state = inspect(obj)
    return bool(state.deleted or state.was_deleted or state.detached)


def _new_object(version: Version[Any]) -> Any:
    """A new, empty instance of the version's class, without calling its ``__init__``."""
    mapper: Mapper[Any] = inspect(version.__versioned_class__)
    return mapper.class_manager.new_instance()
