"""What every restore shares: the rows it is about, and what the history says of them at a time.

A restore puts a set of rows back to their state at one time ``M``. For each versioned hierarchy
involved it deals with a :class:`Family` of identities:

``scope``
    every row the restore is about (found now, or found then);
``present``
    those that existed at ``M``, whose versions are put back (re-inserted or updated, or left
    alone when they are equal already);
``written``
    those of ``present`` that are re-inserted or updated;
``deleted``
    those that exist now but did not at ``M``.

:func:`snapshot` is a table as it was at ``M``, a subquery to join to the live table.
:func:`history_facts` and :func:`known_absent` tell a row that did not exist at ``M`` from one
whose history does not reach back that far.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, func, literal, select
from sqlalchemy.sql.selectable import Subquery

from ..read._asof import PARAM, as_of_select
from ..schema.history import HistorySpec, TableHistory, Version, spec_for
from ..write.sql import chunks, key_in

__all__ = [
    "Facts",
    "Family",
    "Key",
    "describe",
    "history_facts",
    "identity_of",
    "known_absent",
    "snap_key",
    "snapshot",
    "tracked_keys",
]

Key = tuple[Any, ...]


@dataclass
class Family:
    """The rows of one versioned hierarchy that a restore is about; see the module docs."""

    root: HistorySpec
    scope: set[Key] = field(default_factory=set)
    present: set[Key] = field(default_factory=set)
    written: set[Key] = field(default_factory=set)
    deleted: set[Key] = field(default_factory=set)

    def exists_after(self, key: Key, exists_now: bool) -> bool:
        """Whether the row ``key`` exists once the restore is done."""
        if key in self.scope:
            return key in self.present
        return exists_now


def describe(root: HistorySpec, key: Key) -> str:
    """``Article (1,)``: a row for messages."""
    return f"{root.mapper.class_.__name__} {key!r}"


def identity_of(root: HistorySpec, version: Version[Any]) -> Key:
    """The identity of the row ``version`` is a version of."""
    return tuple(getattr(version, name) for name in root.pk_keys)


def tracked_keys(version: Version[Any]) -> frozenset[str]:
    """The attributes that history keeps of ``version``'s class: what a restore puts back."""
    spec = spec_for(version.__versioned_class__)
    assert spec is not None
    return spec.tracked_keys


def snapshot(
    table: TableHistory,
    when: dt.datetime,
    keys: Sequence[Key] | None = None,
    name: str = "chronicle_then",
) -> Subquery:
    """``table``'s rows as they were at ``when`` (optionally only ``keys``), as a subquery.

    Its columns are named like the live table's (excluded columns read as NULL), followed by
    ``version`` and, for a hierarchy's base table, the interval columns. The time is bound in
    the statement itself, not passed as the parameter ``chronicle_as_of``, so the live tables of
    an enclosing statement stay live.
    """
    query = as_of_select(table.live)
    if keys is not None:
        query = query.where(key_in(table.key, keys))
    return query.params({PARAM: when}).subquery(name)


def snap_key(table: TableHistory, snap: Subquery) -> list[ColumnElement[Any]]:
    """The identity columns of a :func:`snapshot`, in identity order."""
    return [snap.c[column.name] for column in table.live_key]


Facts = tuple[dt.datetime, str | None, bool]
"""What the history says of a row: its first version's time and operation (None when version 1
was pruned), and whether any of its versions starts at or before the time asked about."""


def history_facts(
    connection: Connection, root: HistorySpec, keys: Sequence[Key], when: dt.datetime
) -> dict[Key, Facts]:
    """The :data:`Facts` of each key at ``when``; keys without history are missing."""
    base = root.base
    history = base.history
    first_at = func.min(history.c.valid_from)
    first_operation = func.max(_when(history.c.version == 1, history.c.operation))
    before = func.max(_when(history.c.valid_from <= when, 1))
    found: dict[Key, Facts] = {}
    width = len(base.key)
    for chunk in chunks(list(keys)):
        query = (
            select(*base.key, first_at, first_operation, before)
            .where(key_in(base.key, chunk))
            .group_by(*base.key)
        )
        for row in connection.execute(query):
            found[tuple(row[:width])] = (row[width], row[width + 1], bool(row[width + 2]))
    return found


def _when(condition: ColumnElement[bool], value: Any) -> ColumnElement[Any]:
    return case((condition, value if isinstance(value, ColumnElement) else literal(value)))


def known_absent(facts: Facts | None) -> bool:
    """Whether a row without a version at the time is known not to have existed then.

    It is when the history covers the time (some version starts at or before it: the row had
    been deleted) or begins after it with the row's insert. A history that begins later with an
    update or a delete belongs to a row that existed before its history did: its state then is
    unknown. A history whose first version was pruned is complete from the pruning horizon on,
    and restores before the horizon are refused, so there the row is known to be absent.
    """
    if facts is None:
        return False
    _, first_operation, before = facts
    return before or first_operation in ("insert", None)
