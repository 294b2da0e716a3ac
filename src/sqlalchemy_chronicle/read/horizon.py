"""Pruning horizons: refusing to read history from before the time it was pruned to.

:func:`~sqlalchemy_chronicle.prune_history` removes the versions of a table that ended before a
time, its *horizon*, and records the horizon in ``chronicle_horizon`` (one row per versioned
hierarchy, keyed by the live table of the hierarchy's base, as the change log names tables).
What is left answers every as-of read at or after the horizon exactly as before; a read before
it would see only the rows whose versions happened to survive. Such reads raise
:class:`~sqlalchemy_chronicle.HistoryPrunedError` instead: the as-of reads here (through the
session's ``do_orm_execute`` hook, see :mod:`.query`), :func:`~sqlalchemy_chronicle.history` of
a row whose first versions are gone, :func:`~sqlalchemy_chronicle.changelog_between` from an
earlier time (see :mod:`.changelog`), and the restore functions.

The horizons are read once per database transaction of a session (a small table, one row per
pruned table) and kept in ``session.info`` until the transaction ends; a database where the
table was never created has no horizons.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from typing import Any, Final

import pendulum
from sqlalchemy import Connection, Engine, FromClause, Table, inspect, select
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.sql import visitors

from ..errors import HistoryPrunedError
from ..schema.history import history_table_of, table_history
from ..schema.tables import Horizon

__all__ = [
    "check_first_versions",
    "check_horizon",
    "forget_horizons",
    "horizon_name",
    "read_horizons",
    "session_horizons",
    "tables_reached",
]

_SESSION_KEY: Final = "_chronicle.horizons"

_has_table: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()
"""Engines known to have ``chronicle_horizon``; a table once seen is taken to stay."""


def read_horizons(connection: Connection) -> dict[str, pendulum.DateTime]:
    """Every recorded horizon, by live table name; empty where the table does not exist."""
    engine = connection.engine
    if not _has_table.get(engine):
        if not inspect(connection).has_table(Horizon.__tablename__):
            return {}
        _has_table[engine] = True
    rows = connection.execute(select(Horizon.table_name, Horizon.horizon))
    return {name: horizon for name, horizon in rows}


def session_horizons(
    session: Session, bind_arguments: Mapping[str, Any] | None = None
) -> dict[str, pendulum.DateTime]:
    """The horizons as read in the session's current transaction (read on first use)."""
    transaction = session.get_transaction()
    known: tuple[SessionTransaction, dict[str, pendulum.DateTime]] | None = session.info.get(
        _SESSION_KEY
    )
    if known is not None and transaction is not None and known[0] is transaction:
        return known[1]
    connection = session.connection(bind_arguments=dict(bind_arguments or {}))
    horizons = read_horizons(connection)
    root = session.get_transaction()
    if root is not None:
        session.info[_SESSION_KEY] = (root, horizons)
    return horizons


def forget_horizons(session: Session) -> None:
    """Drop the horizons the session keeps, so that the next read sees new ones."""
    session.info.pop(_SESSION_KEY, None)


def horizon_name(table: FromClause) -> str | None:
    """The name ``table``'s horizon is recorded under, for a live or a history table."""
    if not isinstance(table, Table):
        return None
    found = table_history(table) or history_table_of(table)
    return None if found is None else found[1].live.fullname


def tables_reached(statement: Any) -> set[str]:
    """The horizon names of the versioned tables (live or history) that ``statement`` reads."""
    names: set[str] = set()
    for element in visitors.iterate(statement):
        if isinstance(element, Table):
            name = horizon_name(element)
            if name is not None:
                names.add(name)
    return names


def check_horizon(
    horizons: Mapping[str, pendulum.DateTime], names: Iterable[str], when: pendulum.DateTime
) -> None:
    """Raise :class:`HistoryPrunedError` when ``when`` is before the horizon of a table named."""
    for name in sorted(names):
        horizon = horizons.get(name)
        if horizon is not None and when < horizon:
            raise HistoryPrunedError(
                f"the history of {name!r} was pruned before {horizon.isoformat()}; it cannot "
                f"answer as of {when.isoformat()}",
                table=name,
                horizon=horizon,
            )


def check_first_versions(
    horizons: Mapping[str, pendulum.DateTime], name: str, oldest: int | None, row: str
) -> None:
    """Raise :class:`HistoryPrunedError` when a row's history of table ``name`` lacks its start.

    ``oldest`` is the number of the oldest version left of the row (None: none is left) and
    ``row`` names the row in the message. A history that does not start at version 1 is
    incomplete only where a horizon explains it; elsewhere it is left to the caller.
    """
    horizon = horizons.get(name)
    if horizon is not None and oldest != 1:
        raise HistoryPrunedError(
            f"the history of {name!r} was pruned before {horizon.isoformat()}, and with it "
            f"{'the first versions' if oldest is not None else 'every version'} of the row {row}",
            table=name,
            horizon=horizon,
        )
