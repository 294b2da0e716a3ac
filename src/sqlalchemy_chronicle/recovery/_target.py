"""What a :func:`~sqlalchemy_chronicle.restore` call asks for, read and checked.

A call names its row in one of three ways: a version (an ``Article.__history__`` object), which
also says when; a versioned class, a primary key and a time; or a live object and a time.
:func:`resolve_target` turns each into a :class:`Target`: the row's hierarchy and identity, the
time, and the version named, if any. :func:`relationship_paths` reads the ``include=`` paths (an
attribute, a tuple of attributes or names, a dotted string) and checks every step: a
relationship of the class reached so far, not many-to-many, leading to a versioned class.

Everything here fails before the restore reads or writes a row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, Final, NamedTuple

from sqlalchemy import inspect
from sqlalchemy.orm import Mapper, QueryableAttribute, RelationshipProperty

from ..errors import ConfigurationError, InvalidKeyError, NotVersionedError
from ..instants import TimeLike, to_instant
from ..read.query import check_key, normalize_key, spec_of
from ..schema.history import HistorySpec, Version, spec_for
from ._family import Key, identity_of

__all__ = ["MISSING", "Include", "Path", "Target", "relationship_paths", "resolve_target"]

Include = QueryableAttribute[Any] | str | Sequence[QueryableAttribute[Any] | str]
"""One relationship path: an attribute, a tuple of attributes (or names), or a dotted string."""


MISSING: Final[Any] = object()
"""The primary key of a call that gave none."""

Path = tuple[RelationshipProperty[Any], ...]
"""An ``include=`` path, checked: relationships from the restored class on."""


class Target(NamedTuple):
    """The row a :func:`~sqlalchemy_chronicle.restore` call is about, and the time."""

    root: HistorySpec
    identity: Key
    when: dt.datetime
    expected: Version[Any] | None
    """The version the call named, if it named one."""


def resolve_target(target: Any, key: Any, as_of: TimeLike | None) -> Target:
    """The :class:`Target` of ``restore(session, target[, key], as_of=as_of)``."""
    if isinstance(target, type) and not issubclass(target, Version):
        spec = spec_of(target)
        if key is MISSING:
            raise TypeError(
                f"restore(session, {target.__name__}, key, as_of=...) needs the primary key"
            )
        if isinstance(key, Version):
            if not issubclass(key.__versioned_class__, target):
                raise InvalidKeyError(
                    f"{key!r} is a version of {key.__versioned_class__.__name__}, "
                    f"not of {target.__name__}"
                )
            return resolve_target(key, MISSING, as_of)
        if as_of is None:
            raise TypeError(
                f"restore(session, {target.__name__}, key) needs as_of=<time>; or pass a version"
            )
        root = spec.root_spec
        identity = normalize_key(root, key)
        check_key(root, identity)
        return Target(root, identity, to_instant(as_of), None)
    if key is not MISSING:
        raise TypeError("restore(session, version) and restore(session, obj) take no key")
    if isinstance(target, Version):
        if as_of is not None:
            raise TypeError("restore(session, version) takes no as_of: the version says when")
        root = spec_of(target.__versioned_class__).root_spec
        return Target(root, identity_of(root, target), to_instant(target.valid_from), target)
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
    return Target(found.root_spec, tuple(state.identity), to_instant(as_of), None)


def relationship_paths(mapper: Mapper[Any], include: Iterable[Include]) -> list[Path]:
    """The relationship paths of ``include``, each step checked."""
    if isinstance(include, str | QueryableAttribute):
        include = [include]
    paths: list[Path] = []
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
