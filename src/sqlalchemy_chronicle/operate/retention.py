"""Retention: removing the history that is older than it needs to be, without lying about it.

:func:`prune_history` takes a time, the *horizon*, and removes every version that ended at or
before it (``valid_to <= horizon``): a version that ended then is valid at no time from the
horizon on, so every as-of read at or after the horizon answers exactly as before. The version
valid at the horizon is kept for every row, whenever it began, and so is everything later. A
row deleted before the horizon goes entirely (its delete marker ended when it began), which is
again what a read after the horizon sees: no row.

The horizon is recorded per table in ``chronicle_horizon`` *before* anything is deleted. From
then on every read that reaches before it raises
:class:`~sqlalchemy_chronicle.HistoryPrunedError` (see
:mod:`sqlalchemy_chronicle.read.horizon`), so that a pruning interrupted half-way never lets a
read answer from the part of the history that is left.

Pruning is set-based and batched: each batch deletes up to ``batch_size`` versions (with their
joined-subclass rows and ledger entries) by primary key and commits, so that millions of versions
are removed without one huge transaction; a batch that fails is rolled back, the batches before it
stay done, and running the pruning again finishes the work. Each row loses its oldest versions
first, so that what an interrupted pruning leaves still verifies (see :mod:`.ledger`). Change-log
entries older than the horizon are deleted the same way, oldest first, unless
``keep_changelog=True``.

:func:`apply_retention` prunes every class that declares ``__versioned__ = {"retain":
datetime.timedelta(...)}`` to ``now - retain``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pendulum
from sqlalchemy import Column, ColumnElement, delete, func, insert, select, update
from sqlalchemy.orm import Session

from ..config import clock_time
from ..errors import ConfigurationError
from ..instants import TimeLike, to_instant, to_utc
from ..read.horizon import forget_horizons, read_horizons
from ..read.query import refuse_async
from ..schema.history import versioned_specs
from ..schema.tables import ChangeLog, Horizon, LedgerEntry, format_row_id
from ..write.sql import chunks, key_in
from ._targets import Family, HistoryTable, Target, family_of_spec, resolve_targets
from .ledger import changelog_ledger_name, ledger_exists

__all__ = ["PruneResult", "apply_retention", "prune_history"]

Progress = Callable[[int, int], None]
"""``progress(done, total)``: rows removed so far (versions and change-log entries) and the total
counted when the pruning began."""


@dataclass
class PruneResult:
    """What a pruning removed (or, with ``dry_run=True``, would remove)."""

    horizons: dict[str, pendulum.DateTime] = field(default_factory=dict)
    """The horizon of each table pruned, by live table name (a table without history has
    none)."""
    versions: int = 0
    """Versions removed, counting a joined-inheritance row's tables once."""
    changelog: int = 0
    """Change-log entries removed."""
    ledger: int = 0
    """Ledger entries removed with their versions and change-log entries."""
    dry_run: bool = False


def prune_history(
    session: Session,
    before: TimeLike,
    *,
    classes: Iterable[Target] | Target | None = None,
    keep_changelog: bool = False,
    batch_size: int = 5000,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """Remove the history that ended at or before ``before``, keeping every row's version then.

    :param before: the horizon. Every as-of read at or after it answers as before; reads before
        it, :func:`~sqlalchemy_chronicle.history` of a row whose first versions are gone, and
        restores to a time before it raise :class:`~sqlalchemy_chronicle.HistoryPrunedError`.
        A horizon earlier than one already recorded for a table changes nothing there.
    :param classes: what to prune: versioned classes, tables, or live table names (a name is
        reflected from the database when no model declares it); a single one, or None (the
        default) for every history table in the database.
    :param keep_changelog: keep the change-log entries older than the horizon.
    :param batch_size: versions (and change-log entries) deleted per transaction.
    :param progress: called after each committed batch as ``progress(done, total)``, with the
        rows removed so far and the number counted at the start (the command line draws its
        progress bar with it).
    :param dry_run: count what would be removed, and change nothing.

    The session is committed: the horizons first, then after every batch. Call it with a
    session that has nothing else to commit; pending changes refuse it. A table without any
    history gets no horizon (there is nothing to prune, and nothing to refuse).

    :raises ConfigurationError: ``batch_size`` is not a positive integer, ``before`` is later
        than now (by the library's clock), or the session holds pending changes.
    :raises InvalidTimeError: ``before`` is not an aware time.
    """
    refuse_async(session, "prune_history")
    when = to_instant(before)
    now = to_utc(clock_time(session.connection()))
    if when > now:
        raise ConfigurationError(
            f"the horizon {when.isoformat()} is later than now ({now.isoformat()}): pruning to "
            "it would refuse every read of the present"
        )
    families = resolve_targets(session, classes)
    return _prune(
        session,
        [(family, when) for family in families],
        keep_changelog,
        batch_size,
        progress,
        dry_run,
    )


def apply_retention(
    session: Session,
    now: TimeLike | None = None,
    *,
    keep_changelog: bool = False,
    batch_size: int = 5000,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """Prune every class with a ``retain`` option to ``now - retain``.

    ``now`` defaults to the library's clock (see :func:`~sqlalchemy_chronicle.configure`). The
    classes are those declared in this process whose tables exist in the session's database;
    the other arguments are :func:`prune_history`'s.
    """
    refuse_async(session, "apply_retention")
    connection = session.connection()
    instant = to_utc(clock_time(connection)) if now is None else to_instant(now)
    plans: dict[str, tuple[Family, pendulum.DateTime]] = {}
    for spec in versioned_specs():
        if spec.root is not None or spec.retain is None:
            continue
        history = spec.base.history
        if not connection.dialect.has_table(connection, history.name, schema=history.schema):
            continue
        family = family_of_spec(spec)
        plans.setdefault(family.name, (family, instant - spec.retain))
    return _prune(session, list(plans.values()), keep_changelog, batch_size, progress, dry_run)


def _prune(
    session: Session,
    plans: Sequence[tuple[Family, pendulum.DateTime]],
    keep_changelog: bool,
    batch_size: int,
    progress: Progress | None,
    dry_run: bool,
) -> PruneResult:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError(f"batch_size={batch_size!r}: give a positive number of rows")
    if session.new or session.dirty or session.deleted:
        raise ConfigurationError(
            "prune_history() commits the session, which holds pending changes: commit or roll "
            "them back first"
        )
    connection = session.connection()
    Horizon.metadata.tables[Horizon.__tablename__].create(connection, checkfirst=True)
    has_ledger = ledger_exists(connection)
    recorded = read_horizons(connection)
    plans = [
        (family, when)
        for family, when in plans
        if family.name in recorded or _has_history(session, family)
    ]
    horizons = {family.name: max(when, recorded.get(family.name, when)) for family, when in plans}
    counts = [
        (
            _count_versions(session, family, horizons[family.name]),
            0 if keep_changelog else _count_changelog(session, family, horizons[family.name]),
        )
        for family, _ in plans
    ]
    total = sum(v + c for v, c in counts)
    if dry_run:
        session.rollback()
        return PruneResult(
            horizons, sum(v for v, _ in counts), sum(c for _, c in counts), 0, dry_run=True
        )
    now = to_utc(clock_time(connection))
    for family, _ in plans:
        horizon = horizons[family.name]
        if family.name in recorded:
            if recorded[family.name] != horizon:
                connection.execute(
                    update(Horizon)
                    .where(Horizon.table_name == family.name)
                    .values(horizon=horizon, pruned_at=now)
                )
        else:
            began = session.scalar(select(func.min(family.base.history.c.valid_from)))
            if began is not None and began.tzinfo is None:  # a reflected table's type: UTC
                began = began.replace(tzinfo=dt.timezone.utc)
            connection.execute(
                insert(Horizon).values(
                    table_name=family.name, horizon=horizon, history_began=began, pruned_at=now
                )
            )
    session.commit()
    forget_horizons(session)
    result = PruneResult(horizons)
    done = 0
    try:
        for family, _ in plans:
            horizon = horizons[family.name]
            while True:
                removed, ledger = _prune_batch(session, family, horizon, batch_size, has_ledger)
                if not removed:
                    break
                session.commit()
                result.versions += removed
                result.ledger += ledger
                done += removed
                if progress is not None:
                    progress(done, total)
            while not keep_changelog:
                removed, ledger = _prune_changelog_batch(
                    session, family, horizon, batch_size, has_ledger
                )
                if not removed:
                    break
                session.commit()
                result.changelog += removed
                result.ledger += ledger
                done += removed
                if progress is not None:
                    progress(done, total)
    except BaseException:
        session.rollback()
        raise
    finally:
        forget_horizons(session)
    return result


def _has_history(session: Session, family: Family) -> bool:
    """Whether ``family`` has any version: a table without history gets no horizon."""
    history = family.base.history
    return session.scalar(select(history.c.version).limit(1)) is not None


def _ended(family: Family, horizon: pendulum.DateTime) -> Any:
    return family.base.history.c.valid_to <= horizon


def _count_versions(session: Session, family: Family, horizon: pendulum.DateTime) -> int:
    history = family.base.history
    return (
        session.scalar(select(func.count()).select_from(history).where(_ended(family, horizon)))
        or 0
    )


def _count_changelog(session: Session, family: Family, horizon: pendulum.DateTime) -> int:
    query = select(func.count()).where(
        ChangeLog.table_name == family.name, ChangeLog.timestamp < horizon
    )
    return session.scalar(query) or 0


def _prune_batch(
    session: Session, family: Family, horizon: pendulum.DateTime, batch_size: int, ledger: bool
) -> tuple[int, int]:
    """Delete one batch of ended versions; (versions, ledger entries) deleted."""
    base = family.base
    history = base.history
    version = history.c.version
    query = (
        select(*base.key, version)
        .where(_ended(family, horizon))
        .order_by(*base.key, version)
        .limit(batch_size)
    )
    connection = session.connection()
    rows = [tuple(row) for row in connection.execute(query)]
    if not rows:
        return 0, 0
    entries = 0
    for table in reversed(family.tables):
        columns: list[Column[Any]] = [*table.key, table.history.c.version]
        for part in chunks(rows):
            connection.execute(delete(table.history).where(key_in(columns, part)))
        if ledger:
            entries += _delete_ledger(session, table, rows)
    return len(rows), entries


def _delete_ledger(session: Session, table: HistoryTable, rows: list[tuple[Any, ...]]) -> int:
    entries = [(format_row_id(row[:-1]), row[-1]) for row in rows]
    connection = session.connection()
    deleted = 0
    ledger = LedgerEntry.metadata.tables[LedgerEntry.__tablename__]
    columns: list[ColumnElement[Any]] = [ledger.c.row_id, ledger.c.version]
    for part in chunks(entries):
        result = connection.execute(
            delete(LedgerEntry).where(LedgerEntry.table_name == table.name, key_in(columns, part))
        )
        deleted += result.rowcount
    return deleted


def _prune_changelog_batch(
    session: Session, family: Family, horizon: pendulum.DateTime, batch_size: int, ledger: bool
) -> tuple[int, int]:
    """Delete one batch of old change-log entries; (entries, ledger entries) deleted."""
    query = (
        select(ChangeLog.id)
        .where(ChangeLog.table_name == family.name, ChangeLog.timestamp < horizon)
        .order_by(ChangeLog.id)
        .limit(batch_size)
    )
    connection = session.connection()
    ids = list(connection.scalars(query))
    entries = 0
    table = LedgerEntry.metadata.tables[LedgerEntry.__tablename__]
    for part in chunks(ids):
        connection.execute(delete(ChangeLog).where(ChangeLog.id.in_(part)))
        if ledger:
            result = connection.execute(
                delete(table).where(
                    table.c.table_name == changelog_ledger_name(family), table.c.version.in_(part)
                )
            )
            entries += result.rowcount
    return len(ids), entries
