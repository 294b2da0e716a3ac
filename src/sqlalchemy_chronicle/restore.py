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
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple, TypeVar, overload

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    case,
    delete,
    func,
    insert,
    inspect,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import (
    Mapper,
    QueryableAttribute,
    RelationshipDirection,
    RelationshipProperty,
    Session,
)

from . import _capture, _restore
from ._capture import RowChange, mark_restored
from ._restore import Family, Key, describe
from ._schema import HistorySpec, Version, spec_for
from ._sql import chunks, key_in
from ._writer import write_history
from .errors import (
    ConfigurationError,
    InvalidKeyError,
    NotVersionedError,
    NoVersionAt,
    RestoreConflictError,
    RestoreError,
    UnsupportedStatementError,
)
from .query import TimeLike, _identity, _spec, query_as_of, to_instant

__all__ = ["Include", "RestoreResult", "restore", "restore_all"]

T = TypeVar("T")

Include = QueryableAttribute[Any] | str | Sequence[QueryableAttribute[Any] | str]
"""One relationship path: an attribute, a tuple of attributes (or names), or a dotted string."""

_MISSING: Final[Any] = object()


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


# -- one row and its relationships -------------------------------------------------------------


@overload
def restore(
    session: Session,
    version: Version,
    /,
    *,
    include: Iterable[Include] = (),
    allow_delete: bool = False,
) -> Any: ...
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
) -> T | None: ...


def restore(
    session: Session,
    target: Any,
    key: Any = _MISSING,
    /,
    *,
    as_of: TimeLike | None = None,
    include: Iterable[Include] = (),
    allow_delete: bool = False,
) -> Any:
    """Make a row's live state equal to an earlier version, as a new ``"restore"`` version.

    Called as ``restore(session, version)`` with a history object, ``restore(session, Model,
    key, as_of=when)`` with a class and a primary key (a tuple for a composite key), or
    ``restore(session, obj, as_of=when)`` with a live object. ``restore(session, Model,
    version)`` also takes a version and checks that it is one of ``Model``'s.

    :param include: relationship paths to restore to the same moment; see the module docs.
    :param allow_delete: delete the row when it did not exist at the time (or when ``version``
        is a delete marker), instead of raising :class:`~sqlalchemy_chronicle.NoVersionAt`.
    :returns: the live object, or None when the row does not exist afterwards.
    :raises NoVersionAt: the row did not exist at the time, never existed, or its state then is
        unknown.
    :raises RestoreConflictError: a unique constraint or a foreign key would be broken.

    The change is flushed in a savepoint and not committed.
    """
    root, identity, when, expected = _resolve(target, key, as_of)
    paths = _paths(root.mapper, include)
    _warn_if_savepoints_commit(session, root.mapper)
    try:
        with session.begin_nested():
            plan = _Plan(session, when)
            result = plan.run(root, identity, expected, paths, allow_delete)
    except IntegrityError as exc:
        session.info.pop(_capture._RESTORING, None)
        raise RestoreConflictError(
            f"the database refused to restore {describe(root, identity)}: {exc.orig}. "
            "Nothing was restored."
        ) from exc
    except BaseException:
        session.info.pop(_capture._RESTORING, None)
        raise
    return result


def _warn_if_savepoints_commit(session: Session, mapper: Mapper[Any]) -> None:
    """Warn when the savepoint would be the SQLite driver's outermost transaction.

    The ``sqlite3`` module begins transactions by itself, only before a write; a savepoint taken
    before any write then starts the transaction, and releasing it commits: the restore would be
    committed at once. SQLAlchemy's recipe (``isolation_level = None`` on connect and ``BEGIN``
    on begin) avoids that; see :doc:`/restore`.
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
            "at once; see the Restore documentation for the recipe",
            RuntimeWarning,
            stacklevel=3,
        )


def _resolve(
    target: Any, key: Any, as_of: TimeLike | None
) -> tuple[HistorySpec, Key, dt.datetime, Version | None]:
    """The hierarchy, identity, time and (for the version form) version of a restore call."""
    if isinstance(target, type) and not issubclass(target, Version):
        spec = _spec(target)
        if key is _MISSING:
            raise TypeError(
                f"restore(session, {target.__name__}, key, as_of=...) needs the primary key"
            )
        if isinstance(key, Version):
            if not issubclass(key.__versioned_class__, target):
                raise InvalidKeyError(
                    f"{key!r} is a version of {key.__versioned_class__.__name__}, "
                    f"not of {target.__name__}"
                )
            return _resolve(key, _MISSING, as_of)
        if as_of is None:
            raise TypeError(
                f"restore(session, {target.__name__}, key) needs as_of=<time>; or pass a version"
            )
        root = spec.root_spec
        return root, _identity(root, key), to_instant(as_of), None
    if key is not _MISSING:
        raise TypeError("restore(session, version) and restore(session, obj) take no key")
    if isinstance(target, Version):
        if as_of is not None:
            raise TypeError("restore(session, version) takes no as_of: the version says when")
        root = _spec(target.__versioned_class__).root_spec
        identity = tuple(getattr(target, name) for name in root.pk_keys)
        return root, identity, to_instant(target.valid_from), target
    found = spec_for(type(target))
    if found is None:
        raise NotVersionedError(
            f"restore() takes a version (Model.__history__ object), a versioned class and a key, "
            f"or a versioned object; got {target!r}"
        )
    if as_of is None:
        raise TypeError("restore(session, obj) needs as_of=<time>")
    state = inspect(target)
    if state.identity is None:
        raise InvalidKeyError(f"{target!r} is not stored yet, so it has no history to restore")
    return found.root_spec, tuple(state.identity), to_instant(as_of), None


def _paths(
    mapper: Mapper[Any], include: Iterable[Include]
) -> list[tuple[RelationshipProperty[Any], ...]]:
    """The relationship paths of ``include``, each step checked."""
    if isinstance(include, str | QueryableAttribute):
        include = [include]
    paths: list[tuple[RelationshipProperty[Any], ...]] = []
    for item in include:
        steps: Sequence[QueryableAttribute[Any] | str]
        if isinstance(item, str):
            steps = item.split(".")
        elif isinstance(item, QueryableAttribute):
            steps = [item]
        else:
            steps = list(item)
        current = mapper
        path: list[RelationshipProperty[Any]] = []
        for step in steps:
            prop = _relationship(current, step)
            path.append(prop)
            current = prop.mapper
        if path:
            paths.append(tuple(path))
    return paths


def _relationship(
    mapper: Mapper[Any], step: QueryableAttribute[Any] | str
) -> RelationshipProperty[Any]:
    name = mapper.class_.__name__
    if isinstance(step, str):
        if step not in mapper.relationships:
            raise ConfigurationError(f"include: {name} has no relationship {step!r}")
        prop = mapper.relationships[step]
    elif isinstance(step, QueryableAttribute):
        prop = step.property  # type: ignore[assignment]
        if not isinstance(prop, RelationshipProperty):
            raise ConfigurationError(f"include: {step} is not a relationship")
        if not mapper.isa(prop.parent):
            raise ConfigurationError(
                f"include: {step} is a relationship of {prop.parent.class_.__name__}, not of {name}"
            )
    else:
        raise TypeError(f"include: expected a relationship attribute or name, got {step!r}")
    if prop.secondary is not None:
        raise ConfigurationError(
            f"include: {prop} is many-to-many; restore follows one-to-many and many-to-one "
            "relationships: map the association table to a versioned class and include the "
            "relationships to it"
        )
    if spec_for(prop.mapper) is None:
        raise NotVersionedError(
            f"include: {prop} leads to {prop.mapper.class_.__name__}, which is not versioned"
        )
    return prop


@dataclass(eq=False)
class _Rows:
    """What a restore knows of the rows of one hierarchy: versions then, objects now."""

    family: Family
    then: dict[Key, Version] = field(default_factory=dict)
    live: dict[Key, Any] = field(default_factory=dict)
    then_known: set[Key] = field(default_factory=set)
    live_known: set[Key] = field(default_factory=set)


class _Plan:
    """One :func:`restore` through the session: find the rows, check, delete, put back."""

    def __init__(self, session: Session, when: dt.datetime) -> None:
        self.session = session
        self.when = when
        self.rows: dict[HistorySpec, _Rows] = {}

    def _of(self, root: HistorySpec) -> _Rows:
        rows = self.rows.get(root)
        if rows is None:
            rows = self.rows[root] = _Rows(Family(root))
        return rows

    def connection(self, root: HistorySpec) -> Connection:
        return self.session.connection(bind_arguments={"mapper": root.mapper})

    def run(
        self,
        root: HistorySpec,
        identity: Key,
        expected: Version | None,
        paths: list[tuple[RelationshipProperty[Any], ...]],
        allow_delete: bool,
    ) -> Any:
        rows = self._of(root)
        rows.family.scope.add(identity)
        self._load(rows, [identity])
        self._check_root(rows, identity, expected, allow_delete)
        reached: dict[tuple[RelationshipProperty[Any], ...], tuple[_Rows, set[Key]]] = {
            (): (rows, {identity})
        }
        prefixes = {path[:length] for path in paths for length in range(1, len(path) + 1)}
        for prefix in sorted(prefixes, key=len):
            parent_rows, parent_keys = reached[prefix[:-1]]
            self._load(parent_rows, parent_keys)
            reached[prefix] = self._related(prefix[-1], parent_rows, parent_keys)
        for each in self.rows.values():
            self._load(each, each.family.scope)
            self._classify(each)
        families = [each.family for each in self.rows.values()]
        _restore.check_conflicts(self.connection(root), self.when, families, incoming=False)
        self._write()
        return rows.live.get(identity) if identity in rows.family.present else None

    def _load(self, rows: _Rows, keys: Iterable[Key]) -> None:
        """Read the versions at the time and the live objects of ``keys`` not read yet."""
        root = rows.family.root
        cls = root.mapper.class_
        attributes = [getattr(cls, name) for name in root.pk_keys]
        wanted = [key for key in keys if key not in rows.then_known]
        for chunk in chunks(wanted):
            query = query_as_of(cls, self.when).where(_key_in(attributes, chunk))
            for version in self.session.scalars(query):
                rows.then[tuple(getattr(version, name) for name in root.pk_keys)] = version
        rows.then_known.update(wanted)
        wanted = [key for key in keys if key not in rows.live_known]
        for chunk in chunks(wanted):
            for obj in self.session.scalars(select(cls).where(_key_in(attributes, chunk))):
                rows.live[tuple(inspect(obj).identity or ())] = obj
        rows.live_known.update(wanted)

    def _check_root(
        self, rows: _Rows, identity: Key, expected: Version | None, allow_delete: bool
    ) -> None:
        root = rows.family.root
        found = rows.then.get(identity)
        row = describe(root, identity)
        if found is not None:
            if expected is not None and found.version != expected.version:
                raise InvalidKeyError(
                    f"{expected!r} is not in the history of {row} as stored: version "
                    f"{found.version} was current at {self.when}"
                )
            return
        facts = _restore.history_facts(self.connection(root), root, [identity], self.when).get(
            identity
        )
        if facts is None:
            if identity in rows.live:
                raise NoVersionAt(
                    f"{row} has no history, so there is no earlier state to restore (it was "
                    "written before versioning or around the library; backfill_history() gives "
                    "such rows a first version)"
                )
            raise NoVersionAt(f"{row} has no history: no such row was ever recorded")
        first_at, first_operation, _ = facts
        if not _restore.known_absent(facts):
            raise NoVersionAt(
                f"the state of {row} at {self.when} is unknown: its history begins at "
                f"{first_at} with an {first_operation}, so the row existed before its history did"
            )
        if allow_delete:
            return
        if expected is not None and expected.operation == "delete":
            raise NoVersionAt(
                f"{expected!r} is a delete marker: {row} did not exist from then on. Restore the "
                "version before it, or pass allow_delete=True to delete the row"
            )
        when_text = "it was created later" if first_at > self.when else "it had been deleted"
        raise NoVersionAt(
            f"{row} did not exist at {self.when} ({when_text}; its first version is from "
            f"{first_at}); pass allow_delete=True to delete it"
        )

    def _related(
        self, prop: RelationshipProperty[Any], parent: _Rows, parent_keys: set[Key]
    ) -> tuple[_Rows, set[Key]]:
        """The rows of the next step of a path: related then, and for one-to-many also now."""
        target = spec_for(prop.mapper)
        assert target is not None
        rows = self._of(target.root_spec)
        local = [
            prop.parent.get_property_by_column(column).key for column, _ in prop.local_remote_pairs
        ]
        remote = [
            prop.mapper.get_property_by_column(column).key for _, column in prop.local_remote_pairs
        ]
        one_to_many = prop.direction is RelationshipDirection.ONETOMANY
        values: set[Key] = set()
        for key in parent_keys:
            sources = [parent.then.get(key)]
            if one_to_many:
                sources.append(parent.live.get(key))
            for source in sources:
                if source is not None:
                    values.add(tuple(getattr(source, name) for name in local))
        wanted = [value for value in values if None not in value]
        cls = prop.mapper.class_
        root = rows.family.root
        attributes = [getattr(cls, name) for name in remote]
        found: set[Key] = set()
        for chunk in chunks(wanted):
            query = query_as_of(cls, self.when).where(_key_in(attributes, chunk))
            for version in self.session.scalars(query):
                key = tuple(getattr(version, name) for name in root.pk_keys)
                rows.then[key] = version
                rows.then_known.add(key)
                found.add(key)
            if one_to_many:
                for obj in self.session.scalars(select(cls).where(_key_in(attributes, chunk))):
                    key = tuple(inspect(obj).identity or ())
                    rows.live[key] = obj
                    rows.live_known.add(key)
                    found.add(key)
        rows.family.scope.update(found)
        return rows, found

    def _classify(self, rows: _Rows) -> None:
        family = rows.family
        root = family.root
        absent = [key for key in family.scope if key not in rows.then and key in rows.live]
        facts = (
            _restore.history_facts(self.connection(root), root, absent, self.when) if absent else {}
        )
        for key in family.scope:
            version = rows.then.get(key)
            obj = rows.live.get(key)
            if version is not None:
                family.present.add(key)
                if obj is None or _differs(obj, version):
                    family.written.add(key)
            elif obj is not None:
                if not _restore.known_absent(facts.get(key)):
                    raise NoVersionAt(
                        f"the state of {describe(root, key)} at {self.when} is unknown: its "
                        "history does not reach back that far"
                    )
                family.deleted.add(key)

    def _write(self) -> None:
        session = self.session
        with session.no_autoflush:
            for rows in self.rows.values():
                for key in rows.family.deleted:
                    session.delete(rows.live[key])
        session.flush()
        _expire_relationships(session, set(self.rows))
        with session.no_autoflush:
            for rows in self.rows.values():
                family = rows.family
                for key in family.present:
                    obj = rows.live.get(key)
                    if obj is not None and _gone(obj):
                        family.written.add(key)  # deleted by a cascade above: insert it again
                for key in family.written:
                    version = rows.then[key]
                    obj = rows.live.get(key)
                    if obj is None or _gone(obj):
                        obj = _new_object(version)
                        session.add(obj)
                        rows.live[key] = obj
                    for name in _tracked(version):
                        setattr(obj, name, getattr(version, name))
                    mark_restored(session, obj, version.version)
        try:
            session.flush()
        finally:
            session.info.pop(_capture._RESTORING, None)
        _expire_relationships(session, set(self.rows))


def _key_in(attributes: Sequence[Any], keys: Sequence[Key]) -> ColumnElement[bool]:
    if len(attributes) == 1:
        result: ColumnElement[bool] = attributes[0].in_([key[0] for key in keys])
        return result
    return tuple_(*attributes).in_(keys)


def _tracked(version: Version) -> frozenset[str]:
    spec = spec_for(version.__versioned_class__)
    assert spec is not None
    return spec.tracked_keys


def _differs(obj: Any, version: Version) -> bool:
    """Whether the live object differs from ``version`` in a kept attribute (or in its class)."""
    if type(obj) is not version.__versioned_class__:
        raise RestoreError(
            f"{obj!r} is a {type(obj).__name__} now but was a "
            f"{version.__versioned_class__.__name__} then; restore() does not change the class "
            "of a row (restore_all() does)"
        )
    mapper = inspect(obj).mapper
    for name in _tracked(version):
        column = mapper.get_property(name).columns[0]
        try:
            same = column.type.compare_values(getattr(obj, name), getattr(version, name))
        except Exception:
            same = False
        if not same:
            return True
    return False


def _gone(obj: Any) -> bool:
    state = inspect(obj)
    return bool(state.deleted or state.was_deleted or state.detached)


def _new_object(version: Version) -> Any:
    """A new, empty instance of the version's class, without calling its ``__init__``."""
    mapper: Mapper[Any] = inspect(version.__versioned_class__)
    return mapper.class_manager.new_instance()


def _expire_relationships(session: Session, roots: set[HistorySpec]) -> None:
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


# -- whole tables ------------------------------------------------------------------------------


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
    :raises UnsupportedStatementError: ``cls``'s rows span a joined-inheritance hierarchy's
        tables; restore them one by one with :func:`restore`.
    """
    spec = _spec(cls)
    when = to_instant(as_of)
    for mapper in spec.mapper.self_and_descendants:
        descendant = spec_for(mapper)
        if descendant is not None and len(descendant.tables) > 1:
            raise UnsupportedStatementError(
                f"restore_all() on {cls.__name__}, whose rows span the tables of a "
                "joined-inheritance hierarchy, is not supported; restore the rows one by one "
                "with restore()"
            )
    if where is None:
        criteria: list[ColumnElement[bool]] = []
    elif isinstance(where, ColumnElement):
        criteria = [where]
    else:
        criteria = list(where)
    _warn_if_savepoints_commit(session, spec.mapper)
    try:
        with session.begin_nested():
            connection = session.connection(bind_arguments={"mapper": spec.mapper})
            return _TableRestore(session, connection, spec, when, criteria).run()
    except IntegrityError as exc:
        raise RestoreConflictError(
            f"the database refused to restore {cls.__name__} rows: {exc.orig}. "
            "Nothing was restored."
        ) from exc


class _TableRestore:
    """One :func:`restore_all`: classify in two reads, check, write in one statement per kind."""

    def __init__(
        self,
        session: Session,
        connection: Connection,
        spec: HistorySpec,
        when: dt.datetime,
        criteria: list[ColumnElement[bool]],
    ) -> None:
        self.session = session
        self.connection = connection
        self.spec = spec
        self.root = spec.root_spec
        self.table = spec.base
        self.live: Table = self.table.live
        self.when = when
        self.criteria = criteria
        self.dialect = connection.dialect.name

    def _discriminator(self, columns: Any) -> list[ColumnElement[bool]]:
        """Criteria that keep a single-table subclass's rows (empty for a hierarchy's root)."""
        mapper = self.spec.mapper
        on = mapper.polymorphic_on
        if mapper.inherits is None or on is None or not hasattr(on, "name"):
            return []
        identities = [
            m.polymorphic_identity
            for m in mapper.self_and_descendants
            if m.polymorphic_identity is not None
        ]
        return [columns[on.name].in_(identities)]

    def run(self) -> RestoreResult:
        self._check_time()
        live_rows = self._live_rows()
        then_rows = self._then_rows()
        family = Family(self.root)
        inserts: list[tuple[Key, int]] = []
        updates: list[tuple[Key, int]] = []
        unchanged = 0
        for key, (version, exists, changed) in then_rows.items():
            family.present.add(key)
            if not exists:
                inserts.append((key, version))
            elif changed:
                updates.append((key, version))
            else:
                unchanged += 1
        unknown = [key for key, known in live_rows.items() if key not in then_rows and not known]
        if unknown:
            shown = ", ".join(repr(key) for key in sorted(unknown, key=repr)[:3])
            raise NoVersionAt(
                f"{len(unknown)} selected {self.live.name} rows (such as {shown}) have no "
                f"history that tells their state at {self.when}: they existed before their "
                "history began. Narrow where= to leave them out"
            )
        deletes = [key for key in live_rows if key not in then_rows]
        family.scope = set(live_rows) | set(then_rows)
        family.written = {key for key, _ in inserts} | {key for key, _ in updates}
        family.deleted = set(deletes)
        _restore.check_conflicts(self.connection, self.when, [family], incoming=True)
        self._delete(deletes)
        self._update([key for key, _ in updates])
        self._insert([key for key, _ in inserts])
        changes = [RowChange(self.spec, key, "delete") for key in deletes]
        changes += [
            RowChange(self.spec, key, "insert", restored_from=version) for key, version in inserts
        ]
        changes += [
            RowChange(self.spec, key, "update", restored_from=version) for key, version in updates
        ]
        if changes:
            write_history(self.session, changes)
        self._synchronize(deletes, [key for key, _ in inserts + updates])
        return RestoreResult(len(inserts), len(updates), len(deletes), unchanged)

    def _check_time(self) -> None:
        history = self.table.history
        start = self.connection.scalar(select(func.min(history.c.valid_from)))
        if start is None:
            raise NoVersionAt(f"{self.live.name} has no history yet: there is nothing to restore")
        if self.when < start:
            raise NoVersionAt(
                f"{self.when} is before the history of {self.live.name} begins (at {start}): "
                "nothing is known of the table then"
            )

    def _live_rows(self) -> dict[Key, bool]:
        """The selected live rows, locked, each with whether its absence then is known."""
        table = self.table
        history = table.history
        live_key = table.live_key
        known = (
            select(1)
            .select_from(history)
            .where(
                *(h == k for h, k in zip(table.key, live_key, strict=True)),
                (history.c.valid_from <= self.when)
                | and_(history.c.version == 1, history.c.operation == "insert"),
            )
            .exists()
        )
        query = select(*live_key, known).where(*self.criteria, *self._discriminator(self.live.c))
        if self.dialect != "sqlite":
            query = query.with_for_update()
        width = len(live_key)
        return {tuple(row[:width]): bool(row[width]) for row in self.connection.execute(query)}

    def _then_rows(self) -> dict[Key, tuple[int, bool, bool]]:
        """The selected rows as they were, by key: (version, exists now, differs now)."""
        table = self.table
        live = self.live
        snap = _restore.snapshot(table, self.when)
        keys = _restore.snap_key(table, snap)
        live_key = table.live_key
        joined = snap.outerjoin(live, and_(*(k == s for k, s in zip(live_key, keys, strict=True))))
        then_scope = [_restore.adapt_to(c, live, snap) for c in self.criteria]
        then_scope += self._discriminator(snap.c)
        now_scope = and_(live_key[0].is_not(None), *self.criteria, *self._discriminator(live.c))
        selected = (and_(*then_scope) if then_scope else true()) | now_scope
        changed = _restore.differs(table, live, snap, self.dialect)
        query = (
            select(
                *keys,
                snap.c.version,
                case((live_key[0].is_(None), 0), else_=1),
                case((changed, 1), else_=0),
            )
            .select_from(joined)
            .where(selected)
        )
        width = len(keys)
        return {
            tuple(row[:width]): (row[width], bool(row[width + 1]), bool(row[width + 2]))
            for row in self.connection.execute(query)
        }

    def _delete(self, keys: list[Key]) -> None:
        for chunk in chunks(keys):
            self.connection.execute(delete(self.live).where(key_in(self.table.live_key, chunk)))

    def _update(self, keys: list[Key]) -> None:
        table = self.table
        for chunk in chunks(keys):
            snap = _restore.snapshot(table, self.when, chunk)
            on = [
                k == s for k, s in zip(table.live_key, _restore.snap_key(table, snap), strict=True)
            ]
            values = {column: snap.c[column.name] for column in _restore.tracked_columns(table)}
            if values:
                self.connection.execute(update(self.live).where(*on).values(values))

    def _insert(self, keys: list[Key]) -> None:
        table = self.table
        columns = [live for live, _ in table.copied]
        for chunk in chunks(keys):
            snap = _restore.snapshot(table, self.when, chunk)
            source = select(*(snap.c[column.name] for column in columns))
            self.connection.execute(insert(self.live).from_select(columns, source))

    def _synchronize(self, deleted: list[Key], written: list[Key]) -> None:
        """Keep the session's objects of these rows from showing what was there before."""
        mapper = self.root.mapper
        identity_map = self.session.identity_map
        for key in deleted:
            obj = identity_map.get(mapper.identity_key_from_primary_key(key))
            if obj is not None:
                self.session.expunge(obj)
        for key in written:
            obj = identity_map.get(mapper.identity_key_from_primary_key(key))
            if obj is not None:
                self.session.expire(obj)
        _expire_relationships(self.session, {self.root})
