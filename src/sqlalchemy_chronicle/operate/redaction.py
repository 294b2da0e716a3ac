"""Redaction: scrubbing some columns of one row from its whole history, the right to erasure.

:func:`redact` replaces the values of the given columns in every version of one row, and in the
row's change-log entries, with NULL (or, for string columns, a marker text of the caller's
choosing), and records in ``chronicle_redaction`` who redacted which columns of which row, when
and why. Every other value, every interval and every version number stays as it was, so as-of
reads, :func:`~sqlalchemy_chronicle.history` and restores go on working, and show the redacted
value. Where the row's versions are sealed (:mod:`.ledger`), each entry keeps the redacted
column's digest and loses its salt: the chain still verifies, and the value cannot be guessed
back from the digest.

The live row is the application's business: it is neither read nor changed. An application that
erases a person's data changes the live row as usual, which writes one last version holding the
new values, and redacts the row's history of the old ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Column, Connection, String, func, insert, select, update
from sqlalchemy.orm import Mapper, Session

from ..capture.attribution import current_attribution
from ..config import clock_time
from ..errors import InvalidKeyError, RedactionError
from ..instants import to_utc
from ..read.query import check_key, normalize_key, refuse_async
from ..schema.history import spec_for
from ..schema.tables import (
    ChangeLog,
    LedgerEntry,
    Redaction,
    format_row_id,
    parse_row_id,
    typed_key,
)
from ..write.sql import key_in
from ._targets import Family, HistoryTable, Target, resolve_target
from .ledger import CHANGES_PREFIX, changelog_ledger_name, column_digest, ledger_exists

__all__ = ["RedactionResult", "redact"]

_LEDGER: Final = LedgerEntry.metadata.tables[LedgerEntry.__tablename__]
_CHANGELOG: Final = ChangeLog.metadata.tables[ChangeLog.__tablename__]
_REDACTION: Final = Redaction.metadata.tables[Redaction.__tablename__]


@dataclass(frozen=True)
class RedactionResult:
    """What :func:`redact` changed."""

    table: str
    """The live table's name."""
    row_id: str
    """The row's key as the change log writes it."""
    columns: tuple[str, ...]
    """The history columns redacted."""
    versions: int
    """Versions of the row whose values were replaced (every one it has)."""
    changelog: int
    """Change-log entries of the row that held a redacted column."""
    ledger: int
    """Ledger entries of the row that now keep the redacted columns' digests."""
    redaction_id: int
    """The ``chronicle_redaction`` row recording it."""


def redact(
    session: Session,
    target: Target,
    key: Any,
    columns: Sequence[str],
    *,
    reason: str,
    marker: str | None = None,
) -> RedactionResult:
    """Replace ``columns``' values in every version of one row and in its change-log entries.

    :param target: a versioned class, a live table, or a live table's name (reflected from the
        database when no model declares it).
    :param key: the row's primary key: a value, a tuple for a composite key (in the key's column
        order), or a mapping by attribute name (with a class) or column name. Given a table or a
        name, the value of an integer column may be given as text (``"42"``).
    :param columns: attribute names (with a class) or column names of the history table.
    :param reason: why; recorded with the redaction, required.
    :param marker: a text that replaces the values of string columns instead of NULL (other
        columns become NULL); it must fit the columns.

    The actor recorded is the current attribution's (:func:`~sqlalchemy_chronicle.changes_by`,
    :func:`~sqlalchemy_chronicle.attribute_session`). The changes are made in the session's
    transaction and not committed; the live row is not touched (see the module documentation).

    :raises NotVersionedError: ``target`` is not versioned.
    :raises InvalidKeyError: ``key`` does not fit the primary key.
    :raises RedactionError: a column is unknown, is part of the primary key or does not take
        the marker; no column, or no reason, was given; the row has no history. Nothing is
        changed then.
    """
    refuse_async(session, "redact")
    if not isinstance(reason, str) or not reason.strip():
        raise RedactionError("redact() needs a reason, recorded with the redaction")
    if isinstance(columns, str) or not columns:
        raise RedactionError(f"columns={columns!r}: give a list of column names to redact")
    if marker is not None and not isinstance(marker, str):
        raise RedactionError(f"marker={marker!r}: give a text, or None for NULL")
    connection = session.connection()
    family = resolve_target(connection, target)
    identity = _identity(target, family, key)
    chosen = _columns(target, family, list(columns), marker)
    row_id = format_row_id(identity)
    versions = _count(connection, family.base, identity)
    if not versions:
        raise RedactionError(f"{family.name!r} has no history for the row {row_id}")
    _REDACTION.create(connection, checkfirst=True)

    ledger = (
        _seal_redacted(connection, identity, row_id, chosen) if ledger_exists(connection) else 0
    )
    for table, table_columns in chosen.items():
        connection.execute(
            update(table.history)
            .where(key_in(table.key, [identity]))
            .values({column: _replacement(column, marker) for column in table_columns})
        )
    names = {column.name for cols in chosen.values() for column in cols}
    keys = names | {column.key for cols in chosen.values() for column in cols}
    replacements = {
        name: _replacement(column, marker)
        for cols in chosen.values()
        for column in cols
        for name in (column.name, column.key)
    }
    changelog = _redact_changelog(connection, family, row_id, keys, replacements)
    now = to_utc(clock_time(connection))
    inserted = connection.execute(
        insert(_REDACTION).values(
            table_name=family.name,
            row_id=row_id,
            columns=sorted(names),
            marker=marker,
            reason=reason,
            actor=current_attribution(session).actor,
            redacted_at=now,
            versions=versions,
        )
    )
    (redaction_id,) = inserted.inserted_primary_key or (0,)
    return RedactionResult(
        family.name, row_id, tuple(sorted(names)), versions, changelog, ledger, redaction_id
    )


def _identity(target: Target, family: Family, key: Any) -> tuple[Any, ...]:
    spec = spec_for(target) if isinstance(target, type | Mapper) else None
    if spec is not None:
        values = normalize_key(spec, key)
        check_key(spec, values)
        return values
    columns = family.base.key
    if isinstance(key, str):
        return parse_row_id(key, columns, table=family.name)
    names = [column.name for column in columns]
    if isinstance(key, Mapping):
        try:
            values = tuple(key[name] for name in names)
        except KeyError as exc:
            raise InvalidKeyError(f"the key {key!r} lacks {exc.args[0]!r}") from exc
    else:
        values = key if isinstance(key, tuple) else (key,)
    if len(values) != len(names):
        raise InvalidKeyError(
            f"{family.name!r} has the primary key ({', '.join(names)}); got {key!r}"
        )
    return typed_key(values, columns, table=family.name)


def _columns(
    target: Target, family: Family, names: list[str], marker: str | None
) -> dict[HistoryTable, list[Column[Any]]]:
    """The history columns ``names`` stand for, by table; every name checked."""
    spec = spec_for(target) if isinstance(target, type | Mapper) else None
    chosen: dict[HistoryTable, list[Column[Any]]] = {}
    for name in names:
        column_name = name
        if spec is not None and spec.mapper.has_property(name):
            prop = spec.mapper.get_property(name)
            mapped = getattr(prop, "columns", None)
            if mapped:
                column_name = mapped[0].name
        found = [
            (table, column)
            for table in family.tables
            for column in table.values
            if column.name == column_name
        ]
        if not found:
            raise RedactionError(f"{family.name!r} keeps no history of a column {name!r}")
        table, column = found[0]
        if any(column is key for key in table.key):
            raise RedactionError(
                f"{name!r} is part of the primary key of {family.name!r}, which identifies the "
                "row's versions and cannot be redacted"
            )
        if marker is not None and isinstance(column.type, String):
            length = column.type.length
            if length is not None and len(marker) > length:
                raise RedactionError(
                    f"the marker {marker!r} is longer than {name!r} holds ({length})"
                )
        chosen.setdefault(table, [])
        if column not in chosen[table]:
            chosen[table].append(column)
    return chosen


def _replacement(column: Column[Any], marker: str | None) -> str | None:
    return marker if marker is not None and isinstance(column.type, String) else None


def _count(connection: Connection, table: HistoryTable, identity: tuple[Any, ...]) -> int:
    query = select(func.count()).select_from(table.history).where(key_in(table.key, [identity]))
    return connection.scalar(query) or 0


def _seal_redacted(
    connection: Connection,
    identity: tuple[Any, ...],
    row_id: str,
    chosen: Mapping[HistoryTable, Sequence[Column[Any]]],
) -> int:
    """Keep the digests of the redacted columns in the row's ledger entries, and drop the salts."""
    changed = 0
    for table, columns in chosen.items():
        by_name = {column.name: column for column in columns}
        names = list(by_name)
        entries = connection.execute(
            select(_LEDGER.c.id, _LEDGER.c.version, _LEDGER.c.salts, _LEDGER.c.redacted).where(
                _LEDGER.c.table_name == table.name, _LEDGER.c.row_id == row_id
            )
        ).all()
        if not entries:
            continue
        values = {
            row.version: row
            for row in connection.execute(
                select(table.history.c.version, *by_name.values()).where(
                    key_in(table.key, [identity])
                )
            )
        }
        for entry in entries:
            salts = dict(entry.salts or {})
            redacted = dict(entry.redacted or {})
            stored = values.get(entry.version)
            for name in names:
                if name in salts and stored is not None:
                    value = stored._mapping[by_name[name]]
                    redacted[name] = column_digest(salts.pop(name), name, value)
            connection.execute(
                update(_LEDGER)
                .where(_LEDGER.c.id == entry.id)
                .values(salts=salts, redacted=redacted or None)
            )
            changed += 1
    return changed


def _redact_changelog(
    connection: Connection,
    family: Family,
    row_id: str,
    keys: set[str],
    replacements: Mapping[str, Any],
) -> int:
    entries = connection.execute(
        select(_CHANGELOG.c.id, _CHANGELOG.c.changes).where(
            _CHANGELOG.c.table_name == family.name, _CHANGELOG.c.row_id == row_id
        )
    ).all()
    sealed: dict[int, Any] = {}
    if entries and ledger_exists(connection):
        query = select(_LEDGER.c.id, _LEDGER.c.version, _LEDGER.c.salts, _LEDGER.c.redacted).where(
            _LEDGER.c.table_name == changelog_ledger_name(family), _LEDGER.c.row_id == row_id
        )
        sealed = {entry.version: entry for entry in connection.execute(query)}
    changed = 0
    for entry_id, changes in entries:
        if not isinstance(changes, dict) or not keys & set(changes):
            continue
        entry = sealed.get(entry_id)
        if entry is not None:
            salts = dict(entry.salts or {})
            redacted = dict(entry.redacted or {})
            for key in keys & set(changes):
                name = CHANGES_PREFIX + key
                if name in salts:
                    redacted[name] = column_digest(salts.pop(name), name, changes[key])
            connection.execute(
                update(_LEDGER)
                .where(_LEDGER.c.id == entry.id)
                .values(salts=salts, redacted=redacted or None)
            )
        scrubbed = dict(changes)
        for name in keys & set(changes):
            value = replacements[name]
            scrubbed[name] = [value, value] if isinstance(changes[name], list) else value
        connection.execute(
            update(_CHANGELOG).where(_CHANGELOG.c.id == entry_id).values(changes=scrubbed)
        )
        changed += 1
    return changed
