"""The history tables as the database holds them, read without the application's models.

The command line must answer with nothing but a database URL, so it reads ``<table>_history``
by reflection (``chronicle_transaction`` and ``chronicle_changelog`` are the library's own mapped
tables, whose presence alone is checked: :func:`require_library_tables`):
:func:`versioned_table` is the library's reflection
(:func:`~sqlalchemy_chronicle.operate._reflect.reflect_history`) with the queries the reading
commands run on it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, inspect, or_, select

from ..errors import ChronicleError
from ..operate._reflect import ReflectedHistory, reflect_history
from ..schema.history import INTERVAL_COLUMNS
from ..schema.tables import ChangeLog, Transaction, parse_row_id

__all__ = [
    "CommandError",
    "VersionedTable",
    "require_library_tables",
    "versioned_table",
]


class CommandError(ChronicleError):
    """A command's input does not fit the database: an unknown table, models that cannot be used.

    The command line prints the message as one line on stderr and exits non-zero.
    """


@dataclass(frozen=True)
class VersionedTable(ReflectedHistory):
    """One versioned table's history, as reflected, with the queries of the reading commands."""

    def versions(self, key: Sequence[Any]) -> Select[Any]:
        """Every version of the row with ``key``, oldest first, with who wrote it and why."""
        return self._select().where(*self._match(key)).order_by(self.base.c.version)

    def version_at(self, key: Sequence[Any], when: dt.datetime) -> Select[Any]:
        """The version of the row with ``key`` whose interval holds ``when`` (none or one)."""
        base = self.base.c
        return self._select().where(
            *self._match(key),
            base.valid_from <= when,
            or_(base.valid_to.is_(None), base.valid_to > when),
        )

    def _match(self, key: Sequence[Any]) -> list[ColumnElement[bool]]:
        return [column == value for column, value in zip(self.key, key, strict=True)]

    def _select(self) -> Select[Any]:
        transaction = Transaction.__table__
        interval = [self.base.c[name] for name in INTERVAL_COLUMNS if name in self.base.c]
        return select(
            *interval,
            transaction.c.actor.label("_actor"),
            transaction.c.reason.label("_reason"),
            *(column.label(f"_data_{i}") for i, column in enumerate(self.data)),
        ).select_from(
            self.source.outerjoin(transaction, transaction.c.id == self.base.c.transaction_id)
        )

    def parse_key(self, text: str) -> tuple[Any, ...]:
        """A primary key typed on a command line, each value of its column's type.

        Read by :func:`~sqlalchemy_chronicle.schema.tables.parse_row_id`, so that every
        database gets values of the right type (or the user a clear refusal).

        :raises InvalidKeyError: the wrong number of values, or a value its column cannot take.
        """
        return parse_row_id(text, self.key, table=self.name)

    def describe_key(self) -> str:
        """The key's columns, for messages: ``id`` or ``(owner, code)``."""
        names = [column.name for column in self.key]
        return names[0] if len(names) == 1 else f"({', '.join(names)})"


def require_library_tables(connection: Connection, *names: str) -> None:
    """Refuse a database without the library's own tables (not a chronicle database).

    They are looked for in their schema, the one of the library's mapped tables.
    """
    present = set(inspect(connection).get_table_names(schema=Transaction.__table__.schema))
    for name in names or (Transaction.__tablename__, ChangeLog.__tablename__):
        if name not in present:
            raise CommandError(
                f"the database has no {name} table: it is not versioned by sqlalchemy-chronicle "
                "(or its tables were not created yet)"
            )


def versioned_table(connection: Connection, name: str) -> VersionedTable:
    """The history of the table ``name``, reflected; a name that is not one raises.

    :raises NotVersionedError: the table exists but has no history table.
    :raises ConfigurationError: there is no such table, or ``name`` is a history table itself.
    :raises CommandError: the database has no ``chronicle_transaction``.
    """
    found = reflect_history(connection, name)
    require_library_tables(connection, Transaction.__tablename__)
    return VersionedTable(**vars(found))
