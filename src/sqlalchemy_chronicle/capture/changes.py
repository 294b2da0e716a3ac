"""What a flush or a statement changed: one :class:`RowChange` per row, handed to the writer.

The capture layer turns ORM events into row changes; the writer (``sqlalchemy_chronicle.write``)
turns them into history. The two meet here: this module defines what a change is, and
:data:`Writer`, the callable through which capture hands its changes on, so that capture does not
import the writer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from sqlalchemy import inspect
from sqlalchemy.orm import InstanceState, Session

from ..errors import NotVersionedError
from ..schema.history import HistorySpec, TableHistory, spec_for

__all__ = [
    "Kind",
    "RowChange",
    "Writer",
    "current_identity",
    "forget_restored",
    "hand_over",
    "mark_restored",
    "take_restored",
    "use_writer",
]

Kind = Literal["insert", "update", "delete", "upsert"]


@dataclass
class RowChange:
    """One row of a versioned table that a flush or a bulk statement inserted, updated or deleted.

    ``kind`` ``"upsert"`` (from an ``INSERT .. ON CONFLICT``) is an update when the row has a
    current version and an insert when it has none.
    """

    spec: HistorySpec
    identity: tuple[Any, ...]
    kind: Kind
    values: Mapping[str, Any] = field(default_factory=dict)
    """The row's values by attribute name, as far as known: an object's ``__dict__``, or what a
    bulk statement returned. Versions are copied from the rows as stored, never from these; only
    the delete marker of a row that had no version takes them, its live row being gone."""
    unsure: tuple[str, ...] = ()
    """Attributes whose old value is unknown (set after a commit expired the object, or written by
    a bulk statement); such a change takes the writer's full path, which compares the row as
    stored with its latest version."""
    read_back: dict[TableHistory, dict[str, Any]] = field(default_factory=dict)
    """The row as stored, read by the writer's full path, by history column key; it wins over
    ``values``."""
    restored_from: int | None = None
    """When the change puts back an earlier version: that version's number. The new version is
    then written with operation ``"restore"``."""

    def value(self, table: TableHistory, column_key: str, attribute: str | None) -> Any:
        """The value of a history column of ``table`` for this row (None when unknown)."""
        fetched = self.read_back.get(table)
        if fetched is not None:
            return fetched.get(column_key)
        return self.values.get(attribute) if attribute is not None else None


_RESTORING: Final = "_chronicle.restoring"


def mark_restored(session: Session, obj: object, version: int) -> None:
    """Record that the next flush of ``obj`` puts back its version number ``version``."""
    state = inspect(obj)
    spec = spec_for(state.mapper)
    if spec is None:
        raise NotVersionedError(f"{type(obj).__name__} is not a versioned class")
    identity = state.key[1] if state.key is not None else current_identity(spec, state)
    key = (id(spec.root_spec), identity)
    session.info.setdefault(_RESTORING, {})[key] = version


Writer = Callable[[Session, Sequence[RowChange]], None]
"""Writes the history of the rows a flush or a statement changed (``write.write_history``)."""

_writer: Writer | None = None


def use_writer(writer: Writer) -> None:
    """Hand every change captured from now on to ``writer``."""
    global _writer
    _writer = writer


def hand_over(session: Session, changes: Sequence[RowChange]) -> None:
    """Give ``changes`` to the writer :func:`use_writer` installed.

    Changes of classes in database capture mode are left out: their triggers version them.
    """
    if _writer is None:
        raise RuntimeError("no history writer: declaring a Versioned class installs it")
    changes = [change for change in changes if not change.spec.captured_by_database]
    if changes:
        _writer(session, changes)


def forget_restored(session: Session) -> None:
    """Forget what :func:`mark_restored` recorded, when the flush it was for did not happen."""
    session.info.pop(_RESTORING, None)


def take_restored(session: Session) -> dict[tuple[int, tuple[Any, ...]], int]:
    """The versions that the objects of the next flush put back, forgotten once taken."""
    restoring: dict[tuple[int, tuple[Any, ...]], int] = session.info.pop(_RESTORING, {})
    return restoring


def current_identity(spec: HistorySpec, state: InstanceState[Any]) -> tuple[Any, ...]:
    """The primary key an object has now (after a change of key: the new one)."""
    return tuple(state.dict[key] for key in spec.pk_keys)
