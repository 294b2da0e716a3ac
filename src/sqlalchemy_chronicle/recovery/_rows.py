"""How :func:`~sqlalchemy_chronicle.restore` decides what to change: a row and its relationships.

:func:`plan_rows` reads, through the session, the version at the time (``query_as_of``) and
the live object of the target row (:mod:`._target`), then, path by path and step by step,
the rows related at the time and, for a one-to-many step, also the rows related now: children
created since are deleted, children deleted or moved away since come back. Each row then lands
in its hierarchy's :class:`~._restore.Family`: present at the time (written when it differs now
or is gone) or absent then (deleted when the history says it did not exist; an error when the
history does not reach back that far). Reads go ``CHUNK`` keys at a time.

This is the plan only; the session carries it out (:func:`~._restore_session.write_rows`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, inspect, select
from sqlalchemy.orm import RelationshipDirection, RelationshipProperty, Session

from ..errors import InvalidKeyError, NoVersionAt, RestoreError
from ..read.query import query_as_of
from ..schema.history import HistorySpec, Version, spec_for
from ..write.sql import chunks, key_in
from ._family import (
    Family,
    Key,
    describe,
    history_facts,
    identity_of,
    known_absent,
    tracked_keys,
)
from ._target import Path, Target

__all__ = ["RowPlan", "RowSet", "plan_rows"]


@dataclass(eq=False)
class RowSet:
    """What a restore knows of the rows of one hierarchy: versions then, objects now."""

    family: Family
    then: dict[Key, Version[Any]] = field(default_factory=dict)
    live: dict[Key, Any] = field(default_factory=dict)
    then_known: set[Key] = field(default_factory=set)
    """Keys whose version then has been read (found or not)."""
    live_known: set[Key] = field(default_factory=set)
    """Keys whose live object has been read (found or not)."""


@dataclass(eq=False)
class RowPlan:
    """What one :func:`~sqlalchemy_chronicle.restore` changes, by hierarchy."""

    target: Target
    rows: dict[HistorySpec, RowSet] = field(default_factory=dict)

    def of(self, root: HistorySpec) -> RowSet:
        """The rows of ``root``'s hierarchy, an empty set at first."""
        rows = self.rows.get(root)
        if rows is None:
            rows = self.rows[root] = RowSet(Family(root))
        return rows

    @property
    def families(self) -> list[Family]:
        """The families of every hierarchy the plan touches."""
        return [rows.family for rows in self.rows.values()]


def plan_rows(session: Session, target: Target, paths: list[Path], allow_delete: bool) -> RowPlan:
    """Read and classify the rows of ``target`` and of its ``paths``; see the module docs."""
    return _Planner(session, target).plan(paths, allow_delete)


class _Planner:
    """The reads of one :func:`plan_rows`, through the session."""

    def __init__(self, session: Session, target: Target) -> None:
        self.session = session
        self.when = target.when
        self.result = RowPlan(target)

    def connection(self, root: HistorySpec) -> Connection:
        return self.session.connection(bind_arguments={"mapper": root.mapper})

    def plan(self, paths: list[Path], allow_delete: bool) -> RowPlan:
        target = self.result.target
        rows = self.result.of(target.root)
        rows.family.scope.add(target.identity)
        self._load(rows, [target.identity])
        self._check_target(rows, allow_delete)
        reached: dict[Path, tuple[RowSet, set[Key]]] = {(): (rows, {target.identity})}
        prefixes = {path[:length] for path in paths for length in range(1, len(path) + 1)}
        for prefix in sorted(prefixes, key=len):
            parent_rows, parent_keys = reached[prefix[:-1]]
            self._load(parent_rows, parent_keys)
            reached[prefix] = self._related(prefix[-1], parent_rows, parent_keys)
        for each in self.result.rows.values():
            self._load(each, each.family.scope)
            self._classify(each)
        return self.result

    def _load(self, rows: RowSet, keys: Iterable[Key]) -> None:
        """Read the versions at the time and the live objects of ``keys`` not read yet."""
        cls = rows.family.root.mapper.class_
        attributes = [getattr(cls, name) for name in rows.family.root.pk_keys]
        wanted = [key for key in keys if key not in rows.then_known]
        self._read_then(rows, cls, attributes, wanted)
        rows.then_known.update(wanted)
        wanted = [key for key in keys if key not in rows.live_known]
        self._read_now(rows, cls, attributes, wanted)
        rows.live_known.update(wanted)

    def _read_then(
        self, rows: RowSet, cls: type[Any], attributes: list[Any], values: Sequence[Key]
    ) -> set[Key]:
        """The versions at the time of the rows whose ``attributes`` are among ``values``."""
        found: set[Key] = set()
        for chunk in chunks(values):
            query = query_as_of(cls, self.when).where(key_in(attributes, chunk))
            for version in self.session.scalars(query):
                key = identity_of(rows.family.root, version)
                rows.then[key] = version
                found.add(key)
        rows.then_known.update(found)
        return found

    def _read_now(
        self, rows: RowSet, cls: type[Any], attributes: list[Any], values: Sequence[Key]
    ) -> set[Key]:
        """The live objects of the rows whose ``attributes`` are among ``values``."""
        found: set[Key] = set()
        for chunk in chunks(values):
            for obj in self.session.scalars(select(cls).where(key_in(attributes, chunk))):
                key = tuple(inspect(obj).identity or ())
                rows.live[key] = obj
                found.add(key)
        rows.live_known.update(found)
        return found

    def _check_target(self, rows: RowSet, allow_delete: bool) -> None:
        """Refuse a target row without a known state at the time, unless it may be deleted."""
        root, identity, when, expected = self.result.target
        found = rows.then.get(identity)
        row = describe(root, identity)
        if found is not None:
            if expected is not None and found.version != expected.version:
                raise InvalidKeyError(
                    f"{expected!r} is not in the history of {row} as stored: version "
                    f"{found.version} was current at {when}"
                )
            return
        facts = history_facts(self.connection(root), root, [identity], when).get(identity)
        if facts is None:
            if identity in rows.live:
                raise NoVersionAt(
                    f"{row} has no history, so there is no earlier state to restore (it was "
                    "written before versioning or around the library; backfill_history() gives "
                    "such rows a first version)"
                )
            raise NoVersionAt(f"{row} has no history: no such row was ever recorded")
        first_at, first_operation, _ = facts
        if not known_absent(facts):
            raise NoVersionAt(
                f"the state of {row} at {when} is unknown: its history begins at "
                f"{first_at} with an {first_operation}, so the row existed before its history did"
            )
        if allow_delete:
            return
        if expected is not None and expected.operation == "delete":
            raise NoVersionAt(
                f"{expected!r} is a delete marker: {row} did not exist from then on. Restore the "
                "version before it, or pass allow_delete=True to delete the row"
            )
        when_text = "it was created later" if first_at > when else "it had been deleted"
        raise NoVersionAt(
            f"{row} did not exist at {when} ({when_text}; its first version is from "
            f"{first_at}); pass allow_delete=True to delete it"
        )

    def _related(
        self, prop: RelationshipProperty[Any], parent: RowSet, parent_keys: set[Key]
    ) -> tuple[RowSet, set[Key]]:
        """The rows of the next step of a path: related then, and for one-to-many also now."""
        target = spec_for(prop.mapper)
        assert target is not None
        rows = self.result.of(target.root_spec)
        pairs = prop.local_remote_pairs
        local = [prop.parent.get_property_by_column(column).key for column, _ in pairs]
        remote = [prop.mapper.get_property_by_column(column).key for _, column in pairs]
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
        attributes = [getattr(cls, name) for name in remote]
        found = self._read_then(rows, cls, attributes, wanted)
        if one_to_many:
            found |= self._read_now(rows, cls, attributes, wanted)
        rows.family.scope.update(found)
        return rows, found

    def _classify(self, rows: RowSet) -> None:
        family = rows.family
        root = family.root
        absent = [key for key in family.scope if key not in rows.then and key in rows.live]
        facts = history_facts(self.connection(root), root, absent, self.when) if absent else {}
        for key in family.scope:
            version = rows.then.get(key)
            obj = rows.live.get(key)
            if version is not None:
                family.present.add(key)
                if obj is None or _differs(obj, version):
                    family.written.add(key)
            elif obj is not None:
                if not known_absent(facts.get(key)):
                    raise NoVersionAt(
                        f"the state of {describe(root, key)} at {self.when} is unknown: its "
                        "history does not reach back that far"
                    )
                family.deleted.add(key)


def _differs(obj: Any, version: Version[Any]) -> bool:
    """Whether the live object differs from ``version`` in a kept attribute (or in its class)."""
    if type(obj) is not version.__versioned_class__:
        raise RestoreError(
            f"{obj!r} is a {type(obj).__name__} now but was a "
            f"{version.__versioned_class__.__name__} then; restore() does not change the class "
            "of a row (restore_all() does)"
        )
    mapper = inspect(obj).mapper
    for name in tracked_keys(version):
        column = mapper.get_property(name).columns[0]
        try:
            same = column.type.compare_values(getattr(obj, name), getattr(version, name))
        except Exception:
            same = False
        if not same:
            return True
    return False
