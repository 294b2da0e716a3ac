"""The application's models, imported from ``--models module[:attribute]``.

Restoring and backfilling write through the ORM, so they need the versioned classes themselves.
``module`` is imported as ``python -m`` would import it (the current directory comes first on the
path); ``attribute``, when given, names the declarative base, the registry or one mapped class
whose registry holds the models; without it, every mapped class found in the module counts, with
their registries. :func:`versioned_class` then finds the class of a table by the table's name.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Mapper, registry

from .. import Versioned
from ._reflect import CommandError

__all__ = ["Models", "load_models"]


@dataclass(frozen=True)
class Models:
    """The versioned classes of an application, by the name of the table each one is mapped to."""

    source: str
    classes: dict[str, type[Any]]

    def versioned_class(self, table: str) -> type[Any]:
        """The class mapped to ``table`` (the topmost one when several share it)."""
        try:
            return self.classes[table]
        except KeyError:
            raise CommandError(
                f"{self.source} has no versioned class on the table {table!r}; its versioned "
                f"tables are {', '.join(sorted(self.classes)) or 'none'}"
            ) from None

    def roots(self) -> list[type[Any]]:
        """The classes at the top of each versioned hierarchy, by table name."""
        return [cls for _, cls in sorted(self.classes.items()) if inspect(cls).inherits is None]


def load_models(spec: str) -> Models:
    """Import ``module[:attribute]`` and collect the versioned classes it declares.

    :raises CommandError: the module cannot be imported, has no such attribute, or declares no
        versioned class.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name:
        raise CommandError(f"--models {spec!r}: give a module, as package.models[:Base]")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandError(f"--models {spec!r}: cannot import {module_name}: {exc}") from None
    except Exception as exc:
        raise CommandError(
            f"--models {spec!r}: importing {module_name} failed: {type(exc).__name__}: {exc}"
        ) from None
    target: Any = module
    for part in filter(None, attribute.split(".")):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise CommandError(f"--models {spec!r}: {module_name} has no {attribute!r}") from None
    registries = _registries(target)
    classes: dict[str, type[Any]] = {}
    for found in registries:
        for mapper in sorted(found.mappers, key=_depth):
            cls = mapper.class_
            if isinstance(cls, type) and issubclass(cls, Versioned):
                classes.setdefault(mapper.local_table.fullname, cls)  # type: ignore[attr-defined]
    if not classes:
        raise CommandError(f"--models {spec!r} declares no versioned class")
    return Models(spec, classes)


def _depth(mapper: Mapper[Any]) -> int:
    return len(list(mapper.iterate_to_root()))


def _registries(target: Any) -> list[registry]:
    """The registries that ``target`` (a module, a base, a registry or a class) points to."""
    if isinstance(target, registry):
        return [target]
    if isinstance(target, ModuleType):
        found: list[registry] = []
        for value in vars(target).values():
            for candidate in _registries(value) if not isinstance(value, ModuleType) else []:
                if candidate not in found:
                    found.append(candidate)
        return found
    owned = getattr(target, "registry", None) if isinstance(target, type) else None
    return [owned] if isinstance(owned, registry) else []
