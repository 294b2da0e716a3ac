"""The ``chronicle`` commands as plain functions, which the command line only wraps.

As Alembic's ``command.py`` does, each command is a function that takes an engine and plain
values and returns plain data: :func:`log`, :func:`history`, :func:`show`, :func:`diff`,
:func:`restore`, :func:`backfill`, :func:`verify`, :func:`seal`, :func:`anchor`, :func:`prune`
and :func:`redact`. A script can call them as the command line does::

    from sqlalchemy_chronicle.cli import commands

    engine = commands.connect("postgresql+psycopg://app@db/app")
    for entry in commands.log(engine, table="article", limit=10):
        print(entry.time, entry.operation, entry.row_id, entry.actor)

The reading commands (``log``, ``history``, ``show``, ``diff``) need nothing but the database:
they reflect ``<table>_history`` and the library's tables (see :mod:`._reflect`), and refuse to
answer from before a table's pruning horizon, as the Python API does. ``restore`` and
``backfill`` change rows through the ORM, exactly as the Python API does, so they take the
application's versioned classes (:class:`~._models.Models`, from ``--models``); the functions
that work on history as a whole (``verify``, ``seal``, ``prune``, ``redact``) take them when given,
and otherwise name the tables.

Every result has ``to_json()``, the document ``--json`` prints. Times are UTC instants in ISO
8601; other values are written as the change log writes them (dates as ISO text, decimals and
UUIDs as strings, bytes as base64).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pendulum
from sqlalchemy import Column, Connection, Engine, create_engine, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session

from .. import (
    ChangeLog,
    NoVersionAt,
    PruneResult,
    RedactionResult,
    Transaction,
    VerificationReport,
    anchor_digest,
    apply_retention,
    attribute_session,
    backfill_history,
    prune_history,
    restore_all,
    seal_history,
    use_sqlite_savepoints,
    verify_history,
)
from .. import redact as redact_row
from .. import restore as restore_row
from ..config import clock_time
from ..instants import parse_time as read_time
from ..instants import to_instant
from ..operate._targets import Target
from ..read.horizon import check_first_versions, check_horizon, read_horizons
from ..read.query import normalize_key, spec_of
from ..schema.columns import stamp
from ..schema.tables import json_value, parse_row_id
from ._models import Models
from ._reflect import (
    CommandError,
    VersionedTable,
    require_library_tables,
    versioned_table,
)
from ._where import parse_where

__all__ = [
    "Backfilled",
    "Difference",
    "LogEntry",
    "NoSuchRowError",
    "Progress",
    "Pruned",
    "Redacted",
    "Restored",
    "RowVersion",
    "anchor",
    "backfill",
    "connect",
    "diff",
    "history",
    "horizons",
    "is_now",
    "log",
    "now",
    "parse_time",
    "prune",
    "redact",
    "restore",
    "seal",
    "show",
    "verification_json",
    "verify",
]

Progress = Callable[[int, int], None]
"""Called with the work done so far and the work there is (rows, versions)."""


class NoSuchRowError(CommandError, LookupError):
    """The row asked for has no history, or no version at the time asked for."""


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else pendulum.instance(value).in_tz("UTC").isoformat()


# -- connecting and reading times ------------------------------------------------------------


def connect(url: str) -> Engine:
    """An engine on ``url``, checked to answer; a URL that does not raises :class:`CommandError`.

    A SQLite file that does not exist is refused rather than created.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise CommandError(
            f"{url!r} is not a database URL; write one like "
            "postgresql+psycopg://user@host/dbname or sqlite:///path/to/file.db"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    database = parsed.database or ""
    if (
        parsed.get_backend_name() == "sqlite"
        and database not in ("", ":memory:")
        and not database.startswith("file:")
        and not Path(database).exists()
    ):
        raise CommandError(f"cannot connect to {shown}: there is no SQLite file {database!r}")
    try:
        engine = create_engine(parsed)
    except (NoSuchModuleError, ImportError) as exc:
        raise CommandError(f"cannot connect to {shown}: {exc}") from None
    use_sqlite_savepoints(engine)
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else exc
        raise CommandError(f"cannot connect to {shown}: {reason}") from None
    return engine


def parse_time(
    text: str, timezone: str | None = None, engine: Engine | None = None
) -> pendulum.DateTime:
    """A time typed on a command line, as a UTC instant.

    ``now`` (see :func:`now`; this machine's clock when no ``engine`` is given), or what
    :func:`sqlalchemy_chronicle.instants.parse_time` reads: a time without an offset (or a date
    alone) is read in ``timezone`` (an IANA name), else in the default timezone
    (:func:`~sqlalchemy_chronicle.set_default_timezone`), and refused without one.

    :raises InvalidTimeError: the text is not a time, or is naive and no timezone was given.
    :raises ConfigurationError: ``timezone`` is not a timezone's name.
    """
    if is_now(text):
        return now(engine) if engine is not None else pendulum.now("UTC")
    return read_time(text, timezone, zone_fix="say where it is with --timezone Europe/Paris")


def is_now(text: str) -> bool:
    """Whether ``text`` is the time ``now``."""
    return text.strip().lower() == "now"


def now(engine: Engine) -> pendulum.DateTime:
    """The present by the library's clock on ``engine``: the clock that stamps the versions.

    By default that is the database's own on PostgreSQL and MariaDB (see
    :func:`~sqlalchemy_chronicle.configure`), not this machine's, which may run ahead of the
    server or behind it: ``show --as-of now`` then still shows the newest version, and
    ``prune --before now`` is not taken for a time in the future.
    """
    with _reading(engine) as connection:
        return to_instant(clock_time(connection))


def _instant(engine: Engine, value: dt.datetime | str) -> pendulum.DateTime:
    """``value`` as a UTC instant; a text as :func:`parse_time` reads it, ``now`` on ``engine``."""
    return parse_time(value, engine=engine) if isinstance(value, str) else to_instant(value)


@contextmanager
def _reading(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        try:
            yield connection
        finally:
            connection.rollback()


# -- the change log ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LogEntry:
    """One change-log entry: one row changed by one transaction."""

    id: int
    table: str
    row_id: str
    operation: str
    time: dt.datetime
    transaction_id: int
    actor: str | None
    reason: str | None
    changes: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The entry as ``--json`` prints it."""
        return {
            "id": self.id,
            "table": self.table,
            "row": self.row_id,
            "operation": self.operation,
            "time": _iso(self.time),
            "transaction": self.transaction_id,
            "actor": self.actor,
            "reason": self.reason,
            "changes": json_value(dict(self.changes)),
        }


def log(
    engine: Engine,
    *,
    table: str | None = None,
    actor: str | None = None,
    since: dt.datetime | str | None = None,
    until: dt.datetime | str | None = None,
    limit: int | None = 50,
) -> list[LogEntry]:
    """The change log, newest first: entries at or after ``since`` and before ``until``.

    ``table`` is a versioned table's name (a joined-inheritance subclass's table stands for its
    hierarchy, whose entries are logged under the base table); ``actor`` keeps the entries of
    the transactions attributed to that actor. ``limit`` None lists them all.
    """
    if limit is not None and limit < 0:
        raise CommandError(f"--limit {limit}: give a number of entries, 0 or more")
    start = None if since is None else _instant(engine, since)
    end = None if until is None else _instant(engine, until)
    with _reading(engine) as connection:
        require_library_tables(connection)
        query = (
            select(ChangeLog, Transaction.actor, Transaction.reason)
            .outerjoin(Transaction, Transaction.id == ChangeLog.transaction_id)
            .order_by(ChangeLog.timestamp.desc(), ChangeLog.id.desc())
        )
        if table is not None:
            query = query.where(ChangeLog.table_name == versioned_table(connection, table).root)
        if actor is not None:
            query = query.where(Transaction.actor == actor)
        if start is not None:
            query = query.where(ChangeLog.timestamp >= start)
        if end is not None:
            query = query.where(ChangeLog.timestamp < end)
        if limit is not None:
            query = query.limit(limit)
        with Session(connection) as session:
            return [
                LogEntry(
                    id=entry.id,
                    table=entry.table_name,
                    row_id=entry.row_id,
                    operation=entry.event_type,
                    time=entry.timestamp,
                    transaction_id=entry.transaction_id,
                    actor=who,
                    reason=why,
                    changes=entry.changes or {},
                )
                for entry, who, why in session.execute(query)
            ]


# -- one row's versions ------------------------------------------------------------------------


@dataclass(frozen=True)
class RowVersion:
    """One version of one row, read from its history table."""

    table: str
    key: tuple[Any, ...]
    version: int
    operation: str
    valid_from: dt.datetime
    valid_to: dt.datetime | None
    transaction_id: int
    actor: str | None
    reason: str | None
    restored_from: int | None
    values: dict[str, Any]
    """The row's columns as they were, by column name."""
    retired: dict[str, Any] = field(default_factory=dict)
    """Values of columns dropped from the table since the version was written."""

    def to_json(self) -> dict[str, Any]:
        """The version as ``--json`` prints it."""
        return {
            "table": self.table,
            "key": json_value(list(self.key)),
            "version": self.version,
            "operation": self.operation,
            "valid_from": _iso(self.valid_from),
            "valid_to": _iso(self.valid_to),
            "transaction": self.transaction_id,
            "actor": self.actor,
            "reason": self.reason,
            "restored_from": self.restored_from,
            "values": json_value(self.values),
            **({"retired_values": json_value(self.retired)} if self.retired else {}),
        }

    def all_values(self) -> dict[str, Any]:
        """The values, retired columns included, by column name."""
        return {**self.values, **{k: v for k, v in self.retired.items() if k not in self.values}}


def _versions(
    connection: Connection, history_table: VersionedTable, key: tuple[Any, ...], query: Any
) -> list[RowVersion]:
    found = []
    for row in connection.execute(query).mappings():
        found.append(
            RowVersion(
                table=history_table.name,
                key=key,
                version=row["version"],
                operation=row["operation"],
                valid_from=row["valid_from"],
                valid_to=row["valid_to"],
                transaction_id=row["transaction_id"],
                actor=row["_actor"],
                reason=row["_reason"],
                restored_from=row.get("restored_from"),
                values={
                    column.name: row[f"_data_{i}"] for i, column in enumerate(history_table.data)
                },
                retired=_retired(row.get("retired_values")),
            )
        )
    return found


def _retired(value: Any) -> dict[str, Any]:
    if isinstance(value, str):  # a JSON column MariaDB reflects as text
        value = json.loads(value)
    return dict(value) if isinstance(value, Mapping) else {}


def _row(connection: Connection, table: str, key: str) -> tuple[VersionedTable, tuple[Any, ...]]:
    history_table = versioned_table(connection, table)
    return history_table, history_table.parse_key(key)


def history(engine: Engine, table: str, key: str) -> list[RowVersion]:
    """Every version of the row of ``table`` whose primary key is ``key``, oldest first.

    ``key`` is the key as typed (see :meth:`~._reflect.VersionedTable.parse_key`).

    :raises NoSuchRowError: the row has no history.
    """
    with _reading(engine) as connection:
        history_table, values = _row(connection, table, key)
        found = _versions(connection, history_table, values, history_table.versions(values))
        if not found or found[0].version != 1:
            oldest = found[0].version if found else None
            check_first_versions(read_horizons(connection), history_table.root, oldest, key)
    if not found:
        raise NoSuchRowError(f"{table} has no history for the key {key}")
    return found


def show(engine: Engine, table: str, key: str, as_of: dt.datetime | str) -> RowVersion:
    """The version of the row that was current at ``as_of``.

    :raises NoSuchRowError: the row did not exist then.
    """
    when = _instant(engine, as_of)
    with _reading(engine) as connection:
        history_table, values = _row(connection, table, key)
        check_horizon(read_horizons(connection), [history_table.root], when)
        query = history_table.version_at(values, when)
        found = _versions(connection, history_table, values, query)
    if not found:
        raise NoSuchRowError(f"{table} had no row with the key {key} at {_iso(when)}")
    return found[0]


@dataclass(frozen=True)
class Difference:
    """What changed in a row from one version to another."""

    first: RowVersion
    second: RowVersion
    changes: dict[str, tuple[Any, Any]]
    """``{column: (value in first, value in second)}`` for each column that differs."""

    def to_json(self) -> dict[str, Any]:
        """The difference as ``--json`` prints it."""
        return {
            "table": self.first.table,
            "key": json_value(list(self.first.key)),
            "from": self.first.to_json(),
            "to": self.second.to_json(),
            "changes": {name: json_value(list(pair)) for name, pair in self.changes.items()},
        }


def diff(engine: Engine, table: str, key: str, first: int, second: int) -> Difference:
    """What differs between versions ``first`` and ``second`` of one row.

    :raises NoSuchRowError: the row has no such version.
    """
    versions = {found.version: found for found in history(engine, table, key)}
    for number in (first, second):
        if number not in versions:
            raise NoSuchRowError(
                f"{table} {key} has no version {number}; its versions are 1 to {max(versions)}"
            )
    old, new = versions[first].all_values(), versions[second].all_values()
    changes = {
        name: (old.get(name), new.get(name))
        for name in [*old, *(n for n in new if n not in old)]
        if old.get(name) != new.get(name)
    }
    return Difference(versions[first], versions[second], changes)


# -- writing: restore and backfill -------------------------------------------------------------


@dataclass(frozen=True)
class Restored:
    """What a restore did (or, with ``dry_run``, would do)."""

    table: str
    as_of: dt.datetime
    dry_run: bool
    key: tuple[Any, ...] | None = None
    """The row restored, for one row; None for ``--all``."""
    outcome: str = ""
    """For one row: ``"restored"``, ``"deleted"`` or ``"unchanged"``."""
    restored_from: int | None = None
    """For one row: the number of the version brought back."""
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0

    def to_json(self) -> dict[str, Any]:
        """The outcome as ``--json`` prints it."""
        common = {"table": self.table, "as_of": _iso(self.as_of), "dry_run": self.dry_run}
        if self.key is not None:
            return {
                **common,
                "key": json_value(list(self.key)),
                "outcome": self.outcome,
                "restored_from": self.restored_from,
            }
        return {
            **common,
            "inserted": self.inserted,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
        }


@contextmanager
def _writing(
    engine: Engine, actor: str | None, reason: str | None, dry_run: bool
) -> Iterator[Session]:
    with Session(engine) as session:
        attribute_session(session, actor=actor, reason=reason)
        yield session
        if dry_run:
            session.rollback()
        else:
            session.commit()


def restore(
    engine: Engine,
    models: Models,
    table: str,
    key: str | None = None,
    *,
    as_of: dt.datetime | str,
    all_rows: bool = False,
    where: str | None = None,
    allow_delete: bool = False,
    dry_run: bool = False,
    actor: str | None = None,
    reason: str | None = None,
) -> Restored:
    """Put one row (``key``) or every row (``all_rows``, optionally ``where``) back as at ``as_of``.

    Calls :func:`~sqlalchemy_chronicle.restore` or :func:`~sqlalchemy_chronicle.restore_all`
    with the class of ``table`` from ``models`` and commits, or with ``dry_run`` rolls back and
    reports what it would have done. ``where`` is a condition in the small SQL of
    :mod:`._where`. ``actor`` and ``reason`` attribute the restore's transaction.
    """
    if (key is None) == (not all_rows):
        raise CommandError("give the row's primary key, or --all for every row (not both)")
    if where is not None and not all_rows:
        raise CommandError("--where selects rows for --all; with a primary key, leave it out")
    when = _instant(engine, as_of)
    cls = models.versioned_class(table)
    values = _model_key(cls, table, key) if key is not None else None
    criteria = parse_where(cls, where) if where is not None else None
    with _writing(engine, actor, reason, dry_run) as session:
        if values is None:
            result = restore_all(session, cls, as_of=when, where=criteria)
            return Restored(
                table,
                when,
                dry_run,
                inserted=result.inserted,
                updated=result.updated,
                deleted=result.deleted,
                unchanged=result.unchanged,
            )
        identity = values if len(values) > 1 else values[0]
        before = _latest(session, cls, identity)
        try:
            live = restore_row(session, cls, identity, as_of=when, allow_delete=allow_delete)
        except NoVersionAt as exc:
            message = str(exc).replace("pass allow_delete=True", "give --allow-delete")
            raise NoVersionAt(message) from None
        after = _latest(session, cls, identity)
        if after is None or before is None or stamp(after, "version") == stamp(before, "version"):
            outcome, source = "unchanged", None
        elif live is None:
            outcome, source = "deleted", None
        else:
            outcome, source = "restored", stamp(after, "restored_from")
        return Restored(table, when, dry_run, values, outcome, source)


def _latest(session: Session, cls: type[Any], identity: Any) -> Any:
    """The newest version of one row, or None; read past any pruning horizon.

    A horizon keeps each row's version valid at it, which is what a restore after it may bring
    back, so the newest version is known even where :func:`history` refuses the row.
    """
    spec = spec_of(cls)
    key = dict(zip(spec.pk_keys, normalize_key(spec, identity), strict=True))
    found = session.scalars(select(cls.__history__).filter_by(**key)).all()
    return max(found, key=lambda version: stamp(version, "version")) if found else None


@dataclass(frozen=True)
class Backfilled:
    """The rows of one table that a backfill gave a first version."""

    table: str
    rows: int

    def to_json(self) -> dict[str, Any]:
        """The count as ``--json`` prints it."""
        return {"table": self.table, "rows": self.rows}


def backfill(
    engine: Engine,
    models: Models,
    *,
    tables: Sequence[str] = (),
    batch_size: int = 5000,
    actor: str | None = None,
    reason: str | None = None,
    progress: Callable[[str], Progress] | None = None,
) -> list[Backfilled]:
    """Give every row without history a first version, table by table, committing each batch.

    Calls :func:`~sqlalchemy_chronicle.backfill_history` for each versioned hierarchy of
    ``models`` (only those of ``tables``, when given). ``progress(table)`` returns the callback
    that hears of that table's batches.
    """
    classes = [models.versioned_class(t) for t in tables] if tables else models.roots()
    done = []
    for cls in classes:
        name = cls.__table__.name
        with Session(engine) as session:
            attribute_session(session, actor=actor, reason=reason)
            rows = backfill_history(
                session,
                cls,
                batch_size=batch_size,
                commit=True,
                progress=progress(name) if progress is not None else None,
            )
            session.commit()
        done.append(Backfilled(name, rows))
    return done


# -- operating history: retention, redaction, tamper evidence ---------------------------------


def horizons(engine: Engine) -> dict[str, dt.datetime]:
    """The pruning horizon of each pruned table, by the name the change log uses."""
    with _reading(engine) as connection:
        return dict(read_horizons(connection))


def _targets(
    connection: Connection, models: Models | None, tables: Sequence[str]
) -> list[Target] | None:
    """What ``tables`` name, for the functions that work on whole hierarchies.

    A table with a class in ``models`` is given as the class, and nothing is reflected (a joined
    subclass's class stands for its hierarchy). Any other name is checked as the reading
    commands check it, by reflection, and given as the name of its hierarchy's base table.
    """
    if not tables:
        return None
    return [_model(models, name) or versioned_table(connection, name).root for name in tables]


def _model_key(cls: type[Any], table: str, key: str) -> tuple[Any, ...]:
    """``key`` as typed, read against the primary key of the versioned class ``cls``."""
    columns = [column for column in sa_inspect(cls).primary_key if isinstance(column, Column)]
    return parse_row_id(key, columns, table=table)


def _model(models: Models | None, table: str) -> type[Any] | None:
    """The class of ``models`` mapped to ``table``, if any."""
    return models.classes.get(table) if models is not None else None


@dataclass(frozen=True)
class Pruned:
    """What a pruning removed (or, with ``dry_run``, would remove)."""

    result: PruneResult

    def to_json(self) -> dict[str, Any]:
        """The outcome as ``--json`` prints it."""
        result = self.result
        return {
            "horizons": {name: _iso(when) for name, when in sorted(result.horizons.items())},
            "versions": result.versions,
            "changelog": result.changelog,
            "ledger": result.ledger,
            "dry_run": result.dry_run,
        }


def prune(
    engine: Engine,
    models: Models | None = None,
    *,
    before: dt.datetime | str | None = None,
    tables: Sequence[str] = (),
    by_policy: bool = False,
    keep_changelog: bool = False,
    batch_size: int = 5000,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> Pruned:
    """Remove the history that ended before ``before``, or each class's ``retain`` (``by_policy``).

    Calls :func:`~sqlalchemy_chronicle.prune_history` on ``tables`` (every versioned table when
    none is named), or :func:`~sqlalchemy_chronicle.apply_retention` with ``by_policy``, which
    needs ``models``. A horizon later than now (by the library's clock, see
    :func:`~sqlalchemy_chronicle.configure`) is refused: it would make every read of the past an
    error.
    """
    if by_policy == (before is not None):
        raise CommandError("give --before TIME, or --by-policy for each class's retain option")
    if by_policy and (models is None or tables):
        raise CommandError(
            "--by-policy applies the retain option of every class of --models; give --models, "
            "and no --table"
        )
    with Session(engine) as session:
        if by_policy:
            result = apply_retention(
                session,
                keep_changelog=keep_changelog,
                batch_size=batch_size,
                progress=progress,
                dry_run=dry_run,
            )
            return Pruned(result)
        assert before is not None
        horizon = _instant(engine, before)
        if horizon > to_instant(clock_time(session.connection())):
            raise CommandError(
                f"--before {_iso(horizon)} is in the future: pruning to it would refuse every "
                "read of the time before it, the present included"
            )
        result = prune_history(
            session,
            horizon,
            classes=_targets(session.connection(), models, tables),
            keep_changelog=keep_changelog,
            batch_size=batch_size,
            progress=progress,
            dry_run=dry_run,
        )
        return Pruned(result)


@dataclass(frozen=True)
class Redacted:
    """What a redaction changed."""

    result: RedactionResult

    def to_json(self) -> dict[str, Any]:
        """The outcome as ``--json`` prints it."""
        result = self.result
        return {
            "table": result.table,
            "row": result.row_id,
            "columns": list(result.columns),
            "versions": result.versions,
            "changelog": result.changelog,
            "ledger": result.ledger,
            "redaction": result.redaction_id,
        }


def redact(
    engine: Engine,
    models: Models | None,
    table: str,
    key: str,
    *,
    columns: Sequence[str],
    reason: str,
    marker: str | None = None,
    actor: str | None = None,
) -> Redacted:
    """Replace ``columns`` in every version and change-log entry of one row, and commit.

    Calls :func:`~sqlalchemy_chronicle.redact` with the class of ``table`` from ``models`` when
    there is one (a joined subclass's own columns need it; nothing is reflected then), else with
    the table's name; the redaction is recorded with ``actor`` and ``reason``. The live row is
    not touched.
    """
    names = [name.strip() for name in columns if name.strip()]
    with Session(engine) as session:
        cls = _model(models, table)
        target: Target
        if cls is not None:
            values, target = _model_key(cls, table, key), cls
        else:
            history_table = versioned_table(session.connection(), table)
            values, target = history_table.parse_key(key), history_table.root
        attribute_session(session, actor=actor)
        identity = values if len(values) > 1 else values[0]
        result = redact_row(session, target, identity, names, reason=reason, marker=marker)
        session.commit()
    return Redacted(result)


def verification_json(report: VerificationReport) -> dict[str, Any]:
    """A verification report as ``--json`` prints it."""
    return {
        "ok": report.ok,
        "tables": report.tables,
        "versions": report.versions,
        "findings": [
            {
                "kind": finding.kind,
                "table": finding.table,
                "row": finding.row_id,
                "version": finding.version,
                "detail": finding.detail,
            }
            for finding in report.findings
        ],
    }


def verify(
    engine: Engine,
    models: Models | None = None,
    *,
    tables: Sequence[str] = (),
    anchor: str | None = None,
    progress: Progress | None = None,
) -> VerificationReport:
    """Check every version of ``tables`` (all when none is named) against the ledger.

    Calls :func:`~sqlalchemy_chronicle.verify_history`; nothing is written.
    """
    with Session(engine) as session:
        targets = _targets(session.connection(), models, tables)
        report = verify_history(session, targets, anchor=anchor, progress=progress)
        session.rollback()
    return report


def seal(
    engine: Engine,
    models: Models | None = None,
    *,
    tables: Sequence[str] = (),
    progress: Progress | None = None,
) -> int:
    """Seal the versions not sealed yet into the ledger, and commit; the number sealed.

    Calls :func:`~sqlalchemy_chronicle.seal_history`.
    """
    with Session(engine) as session:
        targets = _targets(session.connection(), models, tables)
        sealed = seal_history(session, targets, progress=progress)
        session.commit()
    return sealed


def anchor(engine: Engine) -> str:
    """The ledger's anchor digest, to keep where the database's users cannot write.

    Calls :func:`~sqlalchemy_chronicle.anchor_digest`.
    """
    with Session(engine) as session:
        digest = anchor_digest(session)
        session.rollback()
    return digest
