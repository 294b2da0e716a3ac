"""SQLite: row triggers per versioned table, their path views, and the table ``chronicle_context``.

SQLite's triggers have no variables and no ``IF``: each trigger is a sequence of set-based
statements whose conditions are the rules of :mod:`sqlalchemy_chronicle.capture.database`, each
statement seeing what the ones before it wrote. The ``AFTER INSERT`` and ``AFTER UPDATE`` (key
kept) triggers run only when the row differs from its open version (their ``WHEN`` clause), so
that a change to nothing writes nothing; an ``UPDATE`` that changes the key runs the delete of
the old key and the insert of the new one; ``AFTER DELETE`` writes the delete marker. A ``BEFORE``
trigger per event creates the transaction's row at its first versioned row. Since every trigger
costs, at every row, in proportion to its size, the rare paths live in views' ``INSTEAD OF``
triggers that the row triggers call (see :func:`create_statements`).

**Which transaction.** SQLite has no transaction id and no transaction-local variable, but it has
one writer at a time. ``chronicle_context`` holds the transaction being written:

- row 0, the library's: the library writes it before the first statement of a transaction that
  writes a table in database mode (with the attribution and its clock's time, see
  :mod:`._context`) and deletes it before the commit; a rollback removes it anyway. The
  ``BEFORE`` trigger of the transaction's first versioned row inserts the
  ``chronicle_transaction`` row and records its id there.
- row 1, another client's (a raw ``sqlite3`` connection, the ``sqlite3`` shell): when row 0 is
  absent, the first trigger writes row 1, keyed by the statement's time in milliseconds (SQLite's
  ``'now'`` is the same for every row of one statement, and has no finer precision). So a write
  from another client gets one transaction row per statement, at millisecond precision, with no
  actor; a later statement of the same client transaction is a new ``chronicle_transaction`` row.
  Nothing a trigger can read tells one client transaction from the next: SQLite has no
  transaction id, a commit runs nothing, and a trigger of the main schema cannot read a ``TEMP``
  table (where a connection could keep a marker of its own).

The view ``chronicle_context_now`` shows the row that applies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    Integer,
    Numeric,
    Uuid,
)

from ...errors import ConfigurationError
from ._common import CONCURRENT_MESSAGE, CapturedTable, Names, TriggerText, options_comment

__all__ = ["CONTEXT_STATEMENTS", "create_statements", "drop_statements"]

_NOW_MS = "strftime('%Y-%m-%d %H:%M:%f', 'now')"

CONTEXT_STATEMENTS = (
    "CREATE TABLE IF NOT EXISTS chronicle_context (id INTEGER PRIMARY KEY, origin TEXT NOT NULL, "
    "stamp TEXT, ts TEXT NOT NULL, actor TEXT, reason TEXT, meta TEXT, strict INTEGER NOT NULL, "
    "changelog INTEGER NOT NULL, transaction_id INTEGER, tx_ts TEXT)",
    "CREATE VIEW IF NOT EXISTS chronicle_context_now AS "
    "SELECT * FROM chronicle_context WHERE id = 0 UNION ALL "
    f"SELECT * FROM chronicle_context WHERE id = 1 AND stamp = {_NOW_MS} "
    "AND NOT EXISTS (SELECT 1 FROM chronicle_context WHERE id = 0)",
)
"""The context table and its view, created with the first table in database mode."""

_TX = "(SELECT transaction_id FROM chronicle_context_now)"
_TS = "(SELECT tx_ts FROM chronicle_context_now)"
# Every test of ``transaction_id`` is written ``+transaction_id``, which keeps SQLite's planner
# from answering "this row's version of this transaction" from the index on ``transaction_id``
# (all the transaction's versions, so a cost that grows with the transaction) instead of the
# primary key.
_ENABLED = "(SELECT changelog FROM chronicle_context_now)"
_EDGE = "max(ch_base.valid_from, coalesce(ch_base.valid_to, ch_base.valid_from))"
"""The instant a new version must follow: the latest version's start, or its end if closed."""


_TRIGGERS = (
    "begin_insert",
    "begin_update",
    "begin_delete",
    "insert",
    "insert_own",
    "update",
    "update_own",
    "move",
    "delete",
)
"""The suffixes of a table's triggers (:meth:`.Names.trigger_named`)."""

_PATHS = ("first", "own", "gone")
"""The suffixes of a table's path views, each with its ``INSTEAD OF INSERT`` trigger."""

_KIND = "chronicle_kind"
"""The column of a path view that holds the operation of a first version with no base."""


def drop_statements(spec: CapturedTable, dialect: Dialect) -> list[str]:
    """Drop the table's triggers (they also go with the table) and path views."""
    names = Names(spec, dialect)
    return [
        *(f"DROP TRIGGER IF EXISTS {names.qualified(name)}" for name in _TRIGGERS),
        *(f"DROP VIEW IF EXISTS {names.qualified(name)}" for name in _PATHS),
    ]


def create_statements(spec: CapturedTable, dialect: Dialect) -> list[str]:
    """The context table, the path views and the triggers that version ``spec``'s table.

    A trigger program costs SQLite, at every row it fires for, in proportion to its size, even
    when its ``WHEN`` clause is false. So the statements of the common case (a row with no
    version in this transaction yet) are in the row triggers ``insert`` and ``update``, and
    those of the rare ones in the ``INSTEAD OF INSERT`` triggers of the path views ``own`` (the
    row has a version in this transaction, which the statement rewrites or drops), ``gone`` (the
    old key of an ``UPDATE`` that changes the key, and a deleted row that has a version in this
    transaction) and ``first`` (its new key), which small row triggers call only for the rows
    that take them. A ``BEFORE`` trigger creates the
    ``chronicle_transaction`` row at the transaction's first versioned row.

    ``insert`` and ``insert_own`` (``update`` and ``update_own``) exclude each other whatever
    the order SQLite runs them in: after either, the row no longer differs from its open
    version, which both require. The ``_own`` triggers test first whether the row has a version
    in this transaction, which the common case has not: SQLite's ``AND`` stops there, before
    the comparison with the open version.

    :raises ConfigurationError: the table is in an attached database (a schema).
    """
    names = Names(spec, dialect)
    if names.schema:
        raise ConfigurationError(
            f"database capture mode cannot version {spec.base.live.fullname} on SQLite: the "
            "triggers of a table of an attached database can write no table of another, and "
            "chronicle_transaction is in the main one; use ORM capture mode for it"
        )
    body = _Body(spec, dialect, names)
    quote = dialect.identifier_preparer.quote
    live = names.live
    kept = " AND ".join(f"OLD.{quote(c.name)} IS NEW.{quote(c.name)}" for c, _ in body.key)
    view_columns = [quote(live_column.name) for live_column, _ in body.columns]
    differs, own = body.differs("NEW"), body.own("NEW")

    def trigger(
        name: str, on: str, when: str | None, statements: list[str], moment: str = "AFTER"
    ) -> str:
        condition = f" WHEN {when}" if when else ""
        steps = "\n".join(f"  {statement};" for statement in statements)
        return (
            f"CREATE TRIGGER {quote(names.trigger_named(name))} {moment} {on} ON {live} "
            f"FOR EACH ROW{condition}\nBEGIN\n{steps}\nEND"
        )

    def path(name: str, statements: list[str]) -> list[str]:
        view = quote(names.trigger_named(name))
        columns = ", ".join(f"NULL AS {c}" for c in [*view_columns, _KIND])
        steps = "\n".join(f"  {statement};" for statement in statements)
        return [
            f"CREATE VIEW {view} AS SELECT {columns} WHERE 0",
            f"CREATE TRIGGER {view} INSTEAD OF INSERT ON {view} FOR EACH ROW\nBEGIN\n{steps}\nEND",
        ]

    def take(name: str, record: str, kind: str, condition: str = "1") -> str:
        values = ", ".join(f"{record}.{c}" for c in view_columns)
        return (
            f"INSERT INTO {quote(names.trigger_named(name))} ({', '.join(view_columns)}, {_KIND}) "
            f"SELECT {values}, {kind} WHERE {condition}"
        )

    begin = body.ensure_transaction()
    deleted, *rest = body.delete_first("OLD")
    untold = f"{_TX} IS NULL"
    return [
        *CONTEXT_STATEMENTS,
        *drop_statements(spec, dialect),
        *path("first", body.first("NEW", f"NEW.{_KIND}")),
        *path("own", body.present("NEW", f"NEW.{_KIND}")),
        *path("gone", body.delete("NEW")),
        trigger("begin_insert", "INSERT", f"{untold} AND {differs}", begin, "BEFORE"),
        trigger(
            "begin_update", "UPDATE", f"{untold} AND (NOT ({kept}) OR {differs})", begin, "BEFORE"
        ),
        trigger("begin_delete", "DELETE", untold, begin, "BEFORE"),
        trigger("insert", "INSERT", f"{differs} AND NOT {own}", body.first("NEW", "'insert'")),
        trigger("insert_own", "INSERT", f"{own} AND {differs}", [take("own", "NEW", "'insert'")]),
        trigger(
            "update", "UPDATE", f"{kept} AND {differs} AND NOT {own}", body.first("NEW", "'update'")
        ),
        trigger(
            "update_own",
            "UPDATE",
            f"{kept} AND {own} AND {differs}",
            [take("own", "NEW", "'update'")],
        ),
        trigger(
            "move",
            "UPDATE",
            f"NOT ({kept})",
            [
                take("gone", "OLD", "NULL"),
                take("first", "NEW", "'insert'", f"NOT {own}"),
                take("own", "NEW", "'insert'", f"{differs} AND {own}"),
            ],
        ),
        trigger(
            "delete",
            "DELETE",
            None,
            [
                options_comment(spec) + "\n" + deleted,
                *rest,
                take("gone", "OLD", "NULL", body.own("OLD", live=True)),
            ],
        ),
    ]


class _Body(TriggerText):
    """The statements of one table's triggers."""

    def __init__(self, spec: CapturedTable, dialect: Dialect, names: Names) -> None:
        super().__init__(spec, dialect, names.history)

    def same(self, version: str | None, record: str) -> str:
        prefix = f"{version}." if version else ""
        return " AND ".join(
            f"{prefix}{self.quote(hist.name)} IS {self.field(record, live)}"
            for live, hist in self.columns
        )

    def differs(self, record: str) -> str:
        """The row differs from its open version, or has none."""
        return (
            f"NOT EXISTS (SELECT 1 FROM {self.history} WHERE {self.where_key(record)} "
            f"AND valid_to IS NULL AND {self.same(None, record)})"
        )

    def own(self, record: str, alias: str = "ch_own", live: bool = False) -> str:
        """This transaction's version of the row exists (``live``: and is no delete marker)."""
        marker = f" AND {alias}.operation <> 'delete'" if live else ""
        return (
            f"EXISTS (SELECT 1 FROM {self.history} AS {alias} WHERE "
            f"{self.where_key(record, alias)} AND +{alias}.transaction_id = {_TX}{marker})"
        )

    def latest(self, record: str) -> str:
        """``FROM`` the row's latest version as ``ch_base`` (all NULL when it has none).

        The number is found with ``max()``, which SQLite answers from the primary key; an
        ``ORDER BY version DESC LIMIT 1`` subquery here made every row's trigger slow.
        """
        return (
            f"(SELECT max(version) AS top FROM {self.history} WHERE {self.where_key(record)}) "
            f"AS ch_top LEFT JOIN {self.history} AS ch_base ON "
            f"{self.where_key(record, 'ch_base')} AND ch_base.version = ch_top.top"
        )

    def ensure_transaction(self) -> list[str]:
        return [
            "INSERT OR REPLACE INTO chronicle_context "
            "(id, origin, stamp, ts, strict, changelog) "
            f"SELECT 1, 'client', {_NOW_MS}, {_NOW_MS} || '000', 0, 1 "
            "WHERE NOT EXISTS (SELECT 1 FROM chronicle_context_now)",
            f'INSERT INTO {self.transaction} ("timestamp", actor, reason, meta) '
            "SELECT ts, actor, reason, meta FROM chronicle_context_now "
            "WHERE transaction_id IS NULL",
            f"UPDATE chronicle_context SET transaction_id = (SELECT max(id) FROM "
            f"{self.transaction}), tx_ts = ts WHERE transaction_id IS NULL "
            "AND id = (SELECT id FROM chronicle_context_now)",
        ]

    def start(self) -> str:
        """The new version's start after ``ch_base`` (the concurrency policy).

        When ``ch_base`` starts or ends at or after the transaction's time, the start is one
        microsecond after it; in strict mode the statement raises instead. The check is part of
        the expression rather than a statement of its own: a trigger's statement costs, at
        every row, about as much as a small write.
        """
        total = (
            f"(CAST(strftime('%s', substr({_EDGE}, 1, 19)) AS INTEGER) * 1000000 "
            f"+ CAST(substr({_EDGE}, 21, 6) AS INTEGER) + 1)"
        )
        after = (
            f"strftime('%Y-%m-%d %H:%M:%S', {total} / 1000000, 'unixepoch') || '.' || "
            f"printf('%06d', {total} % 1000000)"
        )
        message = (
            f"{CONCURRENT_MESSAGE}: a version of this row starts at or after this "
            "transaction's time"
        ).replace("'", "''")
        return (
            f"CASE WHEN ch_base.version IS NULL OR {_EDGE} < {_TS} THEN {_TS} "
            f"WHEN (SELECT strict FROM chronicle_context_now) THEN RAISE(ABORT, '{message}') "
            f"ELSE {after} END"
        )

    def insert_from_base(self, record: str, end: str, operation: str, owned: bool = True) -> str:
        """Insert the version after the row's latest.

        ``owned``: unless this transaction has one already.
        """
        columns = ", ".join(self.quote(hist.name) for _, hist in self.columns)
        values = ", ".join(self.field(record, live) for live, _ in self.columns)
        return (
            f"INSERT INTO {self.history} ({columns}, version, valid_from, valid_to, operation, "
            f"transaction_id) SELECT {values}, coalesce(ch_base.version, 0) + 1, {self.start()}, "
            f"{end}, {operation}, {_TX} FROM {self.latest(record)} WHERE "
            + (f"NOT {self.own(record)}" if owned else "1")
        )

    def close_base(self, record: str) -> str:
        own_version = (
            f"(SELECT version FROM {self.history} AS ch_own WHERE "
            f"{self.where_key(record, 'ch_own')} AND +ch_own.transaction_id = {_TX})"
        )
        own_start = own_version.replace("SELECT version", "SELECT valid_from", 1)
        return (
            f"UPDATE {self.history} SET valid_to = {own_start} WHERE {self.where_key(record)} "
            f"AND valid_to IS NULL AND +transaction_id <> {_TX} AND version < {own_version}"
        )

    def present(self, record: str, kind: str) -> list[str]:
        h, key = self.history, self.where_key(record)
        own_version = (
            f"(SELECT version FROM {h} AS ch_own WHERE {self.where_key(record, 'ch_own')} "
            f"AND +ch_own.transaction_id = {_TX})"
        )
        own_start = own_version.replace("SELECT version", "SELECT valid_from", 1)
        operation = (
            f"CASE WHEN ch_base.version IS NULL THEN {kind} WHEN ch_base.operation <> 'delete' "
            "AND ch_base.valid_to IS NULL THEN 'update' ELSE 'insert' END"
        )
        return [
            # Back to the version before this transaction's: reopen it, drop this one.
            f"UPDATE {h} SET valid_to = NULL WHERE {key} AND version = {own_version} - 1 "
            f"AND operation <> 'delete' AND valid_to = {own_start} AND {self.same(None, record)}",
            f"DELETE FROM {h} WHERE {key} AND +transaction_id = {_TX} AND EXISTS (SELECT 1 FROM "
            f"{h} AS ch_prior WHERE {self.where_key(record, 'ch_prior')} AND ch_prior.version = "
            f"{h}.version - 1 AND ch_prior.valid_to IS NULL)",
            # A second statement on the row: its version of this transaction takes the values.
            f"UPDATE {h} SET {self.assign(record)}, valid_to = NULL, operation = CASE WHEN "
            f"operation = 'delete' THEN 'update' ELSE operation END WHERE {key} "
            f"AND +transaction_id = {_TX}",
            f"{self.insert_from_base(record, 'NULL', operation)} AND {self.differs(record)}",
            self.close_base(record),
            *self.log(record),
        ]

    def first(self, record: str, kind: str) -> list[str]:
        """:meth:`present` for a row with no version in this transaction yet (the common case).

        It needs neither the rewrite of that version nor the removal of its change-log entry,
        and builds the entry from ``record`` and the row's latest version, before the insert.
        """
        operation = (
            f"CASE WHEN ch_base.version IS NULL THEN {kind} WHEN ch_base.operation <> 'delete' "
            "AND ch_base.valid_to IS NULL THEN 'update' ELSE 'insert' END"
        )
        return [
            *self.log_first(record, operation),
            self.insert_from_base(record, "NULL", operation, owned=False),
            self.close_base(record),
        ]

    def delete_first(self, record: str) -> list[str]:
        """:meth:`delete` for a row with no version in this transaction yet (the common case).

        The delete marker follows the row's latest version, which it closes; the entry is
        written from ``record``, before the marker. Each statement but the closing (which
        finds nothing to close then) is skipped for a row that has a version in this
        transaction; the delete trigger hands that row to the view ``gone`` after them, when
        its version is not the delete marker these statements wrote. So the rare path is
        taken, or not, whatever the common one did, in one trigger.
        """
        return [
            *self.log_first(record, "'delete'", f" AND NOT {self.own(record)}"),
            self.insert_from_base(record, self.start(), "'delete'"),
            self.close_base(record),
        ]

    def delete(self, record: str) -> list[str]:
        h, key = self.history, self.where_key(record)
        return [
            self.insert_from_base(record, self.start(), "'delete'"),
            self.close_base(record),
            f"DELETE FROM {h} WHERE {key} AND +transaction_id = {_TX} AND operation = 'insert'",
            f"UPDATE {h} SET {self.assign(record)}, operation = 'delete', valid_to = valid_from "
            f"WHERE {key} AND +transaction_id = {_TX} AND operation <> 'delete'",
            *self.log(record),
        ]

    def row_id(self, record: str) -> str:
        if len(self.key) == 1:
            live, _ = self.key[0]
            return f"CAST({_json(self.field(record, live), live.type)} AS TEXT)"
        parts = ", ".join(_json(self.field(record, live), live.type) for live, _ in self.key)
        return f"json_array({parts})"

    def changes(self, operation: str, current: Callable[[Any, Any], str], prior: str) -> str:
        """The change-log document of a version, after the version ``prior``.

        The version's operation is ``operation`` and its value of each column
        ``current(live, hist)``; ``prior``'s columns are all NULL when there is none. An
        update's document holds the changed columns only: the ``json_patch()`` of an empty
        object with every column, the unchanged ones ``null``, which the patch removes (one
        expression, where a ``json_group_object()`` over the changed columns cost a subquery).
        """

        def now(live: Any, hist: Any) -> str:
            return _json(current(live, hist), hist.type)

        def old(hist: Any) -> str:
            return _json(self.field(prior, hist), hist.type)

        every = ", ".join(
            f"{self.literal(hist.name)}, {now(live, hist)}" for live, hist in self.columns
        )
        unknown = ", ".join(
            f"{self.literal(hist.name)}, json_array(NULL, {now(live, hist)})"
            for live, hist in self.columns
        )
        pairs = ", ".join(
            f"{self.literal(hist.name)}, CASE WHEN {self.field(prior, hist)} IS "
            f"{current(live, hist)} THEN NULL ELSE json_array({old(hist)}, {now(live, hist)}) END"
            for live, hist in self.columns
        )
        return (
            f"CASE WHEN {operation} IN ('insert', 'delete') THEN json_object({every}) "
            f"WHEN {prior}.version IS NULL THEN json_object({unknown}) "
            f"ELSE json_patch('{{}}', json_object({pairs})) END"
        )

    def log_first(self, record: str, operation: str, condition: str = "") -> list[str]:
        """Write the entry of a row with no version in this transaction yet, from ``record``.

        It runs before the new version is written, after the row's latest version: an
        ``'update'`` follows an open version that is no delete marker, or none.
        """
        if not self.spec.changelog:
            return []
        document = self.changes(operation, lambda live, hist: self.field(record, live), "ch_base")
        return [
            f"INSERT INTO {self.changelog} (transaction_id, table_name, row_id, event_type, "
            f'"timestamp", changes) SELECT {_TX}, {self.table_name}, {self.row_id(record)}, '
            f"upper({operation}), {_TS}, {document} FROM {self.latest(record)} "
            f"WHERE {_ENABLED}{condition}"
        ]

    def log(self, record: str) -> list[str]:
        """Rewrite the row's change-log entry of this transaction.

        From this transaction's version of the row and the one before it; no entry when the
        transaction's changes to the row cancelled out.
        """
        if not self.spec.changelog:
            return []
        h = self.history
        on = " AND ".join(
            f"ch_prior.{self.quote(hist.name)} = ch_tv.{self.quote(hist.name)}"
            for _, hist in self.key
        )

        document = self.changes(
            "ch_tv.operation", lambda live, hist: self.field("ch_tv", hist), "ch_prior"
        )
        return [
            f"DELETE FROM {self.changelog} WHERE table_name = {self.table_name} AND row_id = "
            f"{self.row_id(record)} AND +transaction_id = {_TX} AND {_ENABLED}",
            f"INSERT INTO {self.changelog} (transaction_id, table_name, row_id, event_type, "
            f'"timestamp", changes) SELECT {_TX}, {self.table_name}, {self.row_id(record)}, '
            f"upper(ch_tv.operation), {_TS}, {document} "
            f"FROM {h} AS ch_tv LEFT JOIN {h} AS ch_prior ON {on} AND ch_prior.version = "
            f"ch_tv.version - 1 AND ch_prior.operation <> 'delete' "
            f"WHERE {self.where_key(record, 'ch_tv')} AND +ch_tv.transaction_id = {_TX} "
            f"AND {_ENABLED}",
        ]


def _json(expression: str, type_: Any) -> str:
    """The value as ``json_value()`` renders what Python reads back, for ``json_object()``.

    Booleans are JSON booleans; decimals are text with the type's scale (as SQLAlchemy reads
    them back on SQLite); naive date-times are ISO text (microseconds only when not zero); UUIDs
    are text with hyphens; JSON is itself. Other values go as stored (bytes as SQLite's text of
    them, which differs from ORM mode's base64: see the docs).
    """
    impl = getattr(type_, "impl", type_)
    if isinstance(impl, Boolean):
        return (
            f"CASE WHEN {expression} IS NULL THEN NULL WHEN {expression} THEN json('true') "
            "ELSE json('false') END"
        )
    if isinstance(impl, Integer):
        return expression
    if isinstance(impl, Numeric) and not isinstance(impl, Float) and impl.asdecimal:
        scale = impl._effective_decimal_return_scale
        return (
            f"CASE WHEN {expression} IS NULL THEN NULL ELSE printf('%.{scale}f', {expression}) END"
        )
    if isinstance(impl, DateTime):
        return (
            f"CASE WHEN {expression} IS NULL THEN NULL WHEN substr({expression}, 21) = '000000' "
            f"THEN replace(substr({expression}, 1, 19), ' ', 'T') "
            f"ELSE replace({expression}, ' ', 'T') END"
        )
    if isinstance(impl, Date):
        return expression
    if isinstance(impl, JSON):
        return f"json({expression})"
    if isinstance(impl, Uuid):
        return (
            f"CASE WHEN length({expression}) = 32 THEN lower(substr({expression}, 1, 8) || '-' || "
            f"substr({expression}, 9, 4) || '-' || substr({expression}, 13, 4) || '-' || "
            f"substr({expression}, 17, 4) || '-' || substr({expression}, 21)) "
            f"ELSE {expression} END"
        )
    return expression
