"""What the triggers of every database share: what they are built from, and the names they use."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from typing import Any, Final

from sqlalchemy import Connection, Dialect, Table, text

from ...schema.history import HistorySpec, TableHistory
from ...schema.tables import ChangeLog, Transaction

__all__ = [
    "CONCURRENT_MESSAGE",
    "TRIGGER_PREFIX",
    "CapturedTable",
    "Names",
    "TriggerText",
    "changelog_table",
    "current_database",
    "options_comment",
    "read_options_comment",
    "short_name",
    "sql_literal",
    "transaction_table",
]

CONCURRENT_MESSAGE: Final = "chronicle: concurrent version"
"""How a trigger's error in strict mode starts; the library raises
:class:`~sqlalchemy_chronicle.ConcurrentVersionError` for it (see :mod:`._context`)."""


@dataclass(frozen=True)
class CapturedTable:
    """What the triggers of one table are built from: the table, its history, and the change log.

    Built from a mapped class (:meth:`of`), for ``create_all()`` and
    :func:`~sqlalchemy_chronicle.create_triggers`, or from the tables as a database holds them
    (:func:`~sqlalchemy_chronicle.capture.database.reflect_captured`), for a migration, which
    must build the triggers of the schema it migrates to, not of today's models.
    """

    base: TableHistory
    """The live table, its history table, and the columns the history copies (the key's first);
    named as :attr:`HistorySpec.base <sqlalchemy_chronicle.schema.history.HistorySpec.base>`.
    The live table's ``MetaData`` holds the library's tables the triggers write."""
    changelog: bool = True
    """Whether the triggers write change-log entries (option ``changelog``)."""
    library_schema: str | None = None
    """The schema the triggers name for the library's tables that their ``MetaData`` leaves
    unqualified; None: as the ``MetaData`` says (see :meth:`on`)."""

    @classmethod
    def of(cls, spec: HistorySpec) -> CapturedTable:
        """The table of ``spec``'s hierarchy, as its classes declare it."""
        return cls(spec.base, spec.changelog)

    def on(self, connection: Connection) -> CapturedTable:
        """This table as its triggers must name the library's tables on ``connection``.

        MariaDB reads a table name in a trigger in the trigger's database, which for a table of
        another schema is that schema, not where the unqualified library tables were created:
        the triggers then name the connection's current database.
        """
        if (
            self.library_schema is None
            and self.base.live.schema is not None
            and connection.dialect.name in ("mysql", "mariadb")
            and _library_table(self, Transaction.__tablename__).schema is None
        ):
            return replace(self, library_schema=current_database(connection))
        return self


def current_database(connection: Connection) -> str | None:
    """The database (MariaDB's schema) an unqualified name outside a trigger is found in."""
    name: str | None = connection.scalar(text("SELECT DATABASE()"))
    return name


TRIGGER_PREFIX: Final = "chronicle_capture_"
"""How the name of every trigger (and PostgreSQL trigger function) of the library starts."""

_MAX_NAME = 63
"""The longest identifier PostgreSQL keeps (MariaDB keeps 64)."""


def short_name(name: str) -> str:
    """``name``, shortened with a hash to fit every database's identifier limit."""
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: _MAX_NAME - 9]}_{digest}"


class Names:
    """The quoted names of one versioned table's database objects."""

    def __init__(self, spec: CapturedTable, dialect: Dialect) -> None:
        preparer = dialect.identifier_preparer
        live = spec.base.live
        self.live = preparer.format_table(live)
        self.history = preparer.format_table(spec.base.history)
        self.schema = f"{preparer.quote_schema(live.schema)}." if live.schema else ""
        """The live table's quoted schema and a dot, or nothing; what qualifies its objects."""
        self.base_name = short_name(f"{TRIGGER_PREFIX}{live.name}")
        self.function = self.schema + preparer.quote(self.base_name)
        self.trigger = preparer.quote(self.base_name)
        self._quote = preparer.quote

    def trigger_named(self, suffix: str) -> str:
        """The name of one of the table's several triggers (MariaDB, SQLite), unquoted."""
        return short_name(f"{self.base_name}_{suffix}")

    def qualified(self, suffix: str) -> str:
        """:meth:`trigger_named`, quoted and in the live table's schema.

        MariaDB creates a trigger in the current database unless its name says another (and
        refuses one on a table of another), and drops the one of the current database.
        """
        return self.schema + self._quote(self.trigger_named(suffix))


_OPTIONS_COMMENT: Final = re.compile(r"/\* chronicle options: (\{.*?\}) \*/")
"""The comment :func:`options_comment` writes in a trigger's text."""


def options_comment(spec: CapturedTable) -> str:
    """A SQL comment with the options the triggers of ``spec`` are built with.

    A migration that drops the triggers of a table no longer in the models reads it back
    (:func:`read_options_comment`) for its downgrade, which must build them as they were: into
    the same history table, with or without change log, in the same library schema.
    """
    options = {
        "changelog": spec.changelog,
        "history_table": spec.base.history.name,
        "library_schema": _library_table(spec, Transaction.__tablename__).schema
        or spec.library_schema,
    }
    text = json.dumps(options, sort_keys=True).replace("*/", "*\\/")
    return f"/* chronicle options: {text} */"


def read_options_comment(text: str) -> dict[str, Any] | None:
    """The options :func:`options_comment` recorded in ``text``; None if it has none."""
    found = _OPTIONS_COMMENT.search(text)
    if found is None:
        return None
    options: dict[str, Any] = json.loads(found.group(1))
    return options


def _library_table(spec: CapturedTable, name: str) -> Table:
    """The library's table ``name`` in ``spec``'s ``MetaData``, whatever its schema.

    The key of a table of a ``MetaData(schema=...)`` names the schema too.
    """
    for table in spec.base.live.metadata.tables.values():
        if table.name == name:
            return table
    raise KeyError(name)


def transaction_table(dialect: Dialect, spec: CapturedTable) -> str:
    """The quoted ``chronicle_transaction`` of ``spec``'s ``MetaData``."""
    return _format_library_table(dialect, spec, Transaction.__tablename__)


def changelog_table(dialect: Dialect, spec: CapturedTable) -> str:
    """The quoted ``chronicle_changelog`` of ``spec``'s ``MetaData``."""
    return _format_library_table(dialect, spec, ChangeLog.__tablename__)


def _format_library_table(dialect: Dialect, spec: CapturedTable, name: str) -> str:
    """The quoted library table ``name``, in :attr:`CapturedTable.library_schema` if it has none."""
    preparer = dialect.identifier_preparer
    table = _library_table(spec, name)
    if table.schema is None and spec.library_schema is not None:
        return f"{preparer.quote_schema(spec.library_schema)}.{preparer.quote(table.name)}"
    return preparer.format_table(table)


def sql_literal(dialect: Dialect, text: str) -> str:
    """``text`` as a string literal in ``dialect``'s DDL.

    Quotes are doubled; where the server reads backslashes as escapes (MySQL and MariaDB unless
    ``NO_BACKSLASH_ESCAPES``), backslashes too.
    """
    escaped = text.replace("'", "''")
    if getattr(dialect, "_backslash_escapes", False):
        escaped = escaped.replace("\\", "\\\\")
    return f"'{escaped}'"


class TriggerText:
    """The SQL text every database's triggers build from one versioned table.

    ``record`` names the row a trigger sees (``NEW``, ``OLD`` or a variable); a history column
    is named as in the history table.
    """

    def __init__(self, spec: CapturedTable, dialect: Dialect, history: str) -> None:
        self.spec = spec
        self.dialect = dialect
        self.quote = dialect.identifier_preparer.quote
        self.history = history
        self.columns = list(spec.base.copied)
        self.key = self.columns[: len(spec.base.key)]
        self.transaction = transaction_table(dialect, spec)
        self.changelog = changelog_table(dialect, spec)
        self.table_name = sql_literal(dialect, spec.base.live.fullname)

    def literal(self, text: str) -> str:
        """``text`` as a string literal; see :func:`sql_literal`."""
        return sql_literal(self.dialect, text)

    def field(self, record: str, column: Any) -> str:
        """``column`` of ``record``."""
        return f"{record}.{self.quote(column.name)}"

    def where_key(self, record: str, alias: str | None = None) -> str:
        """The history rows (of ``alias``) with the primary key of ``record``."""
        prefix = f"{alias}." if alias else ""
        return " AND ".join(
            f"{prefix}{self.quote(hist.name)} = {self.field(record, live)}"
            for live, hist in self.key
        )

    def assign(self, record: str) -> str:
        """``SET`` every copied history column to the value of ``record``."""
        return ", ".join(
            f"{self.quote(hist.name)} = {self.field(record, live)}" for live, hist in self.columns
        )

    def insert(self, record: str, version: str, start: str, end: str, operation: str) -> str:
        """Insert a version holding ``record``, in the transaction of the variable ``ch_tx``."""
        columns = ", ".join(self.quote(hist.name) for _, hist in self.columns)
        values = ", ".join(self.field(record, live) for live, _ in self.columns)
        return (
            f"INSERT INTO {self.history} ({columns}, version, valid_from, valid_to, operation, "
            f"transaction_id) VALUES ({values}, {version}, {start}, {end}, {operation}, ch_tx);"
        )
