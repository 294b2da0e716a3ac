"""What one flush writes to the history of one hierarchy, and the state its steps share.

A flush's history is written per versioned hierarchy (one base table and its subclass tables) by
the short path (:mod:`._short_path`) and the full path (:mod:`._full_path`), in that order, and the
change log (:mod:`._changelog`) is derived from what both wrote. :class:`HierarchyWrite` is what
they share: the connection, the transaction's row once opened, and the stored versions read or
written so far; :class:`Plan` and :class:`NewVersion` say what was written.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, insert, literal, select
from sqlalchemy.orm import Session

from ..capture.changes import RowChange
from ..schema.history import HistorySpec, TableHistory
from ..types import UTCDateTime
from ._transaction import OpenTransaction, open_transaction
from ._versions import StoredVersions
from .sql import by_primary_key, versions_in

__all__ = ["HierarchyWrite", "NewVersion", "Plan"]


@dataclass
class NewVersion:
    """A history row to insert from an object's values, or one the short path has inserted."""

    change: RowChange
    version: int
    valid_from: dt.datetime
    operation: str
    is_marker: bool = False
    restored_from: int | None = None


@dataclass
class Plan:
    """What one flush writes to the history of one versioned hierarchy."""

    remove: list[tuple[RowChange, int]] = field(default_factory=list)
    to_marker: list[tuple[RowChange, int]] = field(default_factory=list)
    close: dict[dt.datetime, list[tuple[RowChange, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    copy_marker: dict[dt.datetime, list[tuple[RowChange, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    new: list[NewVersion] = field(default_factory=list)
    reopen: list[tuple[RowChange, int]] = field(default_factory=list)
    """Versions made current again because this transaction's change to the row was undone."""


class HierarchyWrite:
    """The state of one flush's history write of one versioned hierarchy (one base table)."""

    transaction: OpenTransaction
    """Set once the writer knows there is something to write."""

    keep_written: bool
    """Whether to keep the versions written, as stored (the change log compares them)."""

    def __init__(self, connection: Connection, root: HistorySpec, keep_written: bool):
        self.connection = connection
        self.keep_written = keep_written
        self.root = root
        self.base = root.base
        self.stored = StoredVersions(connection)

    @property
    def opened(self) -> bool:
        """Whether the flush had history to write, so that :attr:`transaction` is set."""
        return hasattr(self, "transaction")

    def open(self, session: Session) -> None:
        """Set :attr:`transaction`, inserting the transaction's row on its first write."""
        self.transaction = open_transaction(session, self.connection)

    def copy_marker(
        self, table: TableHistory, keys: Sequence[tuple[Any, ...]], at: dt.datetime
    ) -> Any:
        """``INSERT .. SELECT`` of delete markers from the versions they follow."""
        history = table.history
        values = [hist for _, hist in table.copied]
        targets: list[ColumnElement[Any]] = [*values, history.c.version]
        selected: list[ColumnElement[Any]] = [*values, (history.c.version + 1).label("version")]
        if table is self.base:
            selected += [
                literal(at, UTCDateTime).label("valid_from"),
                literal(at, UTCDateTime).label("valid_to"),
                literal("delete").label("operation"),
                literal(self.transaction.id).label("transaction_id"),
            ]
            targets += [history.c[name] for name in ("valid_from", "valid_to")]
            targets += [history.c.operation, history.c.transaction_id]
        source = by_primary_key(
            self.connection,
            select(*selected).where(versions_in(self.connection, table, keys, use="lock")),
            table,
        )
        return insert(history).from_select(targets, source)
