"""Tamper evidence: a chain of digests over every version, and its verification.

*Sealing* (:func:`seal_history`, or every commit with ``configure(ledger=True)`` or
``__versioned__ = {"ledger": True}``) writes one :class:`~sqlalchemy_chronicle.LedgerEntry`
(``chronicle_ledger``) per version of a row, in version order:

- a *column digest* per copied column, ``SHA-256(salt || name || canonical value)``, each with a
  random 16-byte salt of its own (kept in ``salts``);
- the *values digest*, SHA-256 over the column digests by column name;
- the *digest*, SHA-256 over the table and row, the version number, ``valid_from``,
  ``operation``, ``restored_from``, the transaction, the values digest and the digest of the
  row's previous version (``previous``), which chains the row's versions together.

Values are digested in a canonical form that does not depend on the database: times in UTC as
``YYYY-MM-DDTHH:MM:SS.ffffff``, naive times taken as written, decimals normalised, booleans as
0/1, bytes in hex, JSON documents with sorted keys, enums by name. ``valid_to`` is not digested,
since it is set when the next version is written; :func:`verify_history` checks it by
contiguity instead (it equals the next version's ``valid_from``, is NULL only on a row's newest
version, and equals ``valid_from`` on a delete marker).

Change-log entries are sealed the same way, each row's in the order of their ids, under the
ledger name ``chronicle_changelog:<table>`` (:data:`CHANGELOG_PREFIX`): the entry's id is its
version number, and its transaction, event type, time and each change (``changes.<column>``)
are its columns.

*Redaction* (:mod:`.redaction`) keeps the chain verifiable: it moves the column digest of every
redacted column into the entry's ``redacted`` map and deletes that column's salt, so that the
digest still verifies while the value is gone and cannot be guessed back from the digest.

*Verification* recomputes every digest and reports, per table, row and version, what it finds:
a value changed (``"altered value"``), ``valid_from``, the operation or the transaction changed
or intervals that do not follow each other (``"altered interval"``), a version gone
(``"deleted version"``), a version without ledger entry (``"inserted version"``: written behind
the library's back, or not sealed yet), a ledger entry that does not follow the one before
(``"broken chain"``). :func:`anchor_digest` condenses the ledger's chain heads into one string to
keep elsewhere; given back to :func:`verify_history`, it proves that the ledger itself was not
rewritten since.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import hashlib
import json
import math
import secrets
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pendulum
from sqlalchemy import Connection, event, func, insert, inspect, select
from sqlalchemy.orm import Session

from ..capture.database import trigger_transaction, written_histories
from ..config import ledger_enabled
from ..errors import ConfigurationError
from ..read.horizon import read_horizons
from ..read.query import refuse_async
from ..schema.history import HistorySpec, versioned_specs
from ..schema.tables import ChangeLog, LedgerEntry, Redaction, format_row_id
from ..write._transaction import current_transaction
from ..write.sql import chunks, key_in
from ._targets import Family, HistoryTable, Target, family_of_spec, resolve_targets

__all__ = [
    "ALTERED_INTERVAL",
    "ALTERED_VALUE",
    "ANCHOR_MISMATCH",
    "BROKEN_CHAIN",
    "DELETED_VERSION",
    "INSERTED_VERSION",
    "Finding",
    "VerificationReport",
    "anchor_digest",
    "column_digest",
    "install",
    "ledger_exists",
    "seal_history",
    "verify_history",
]

ALTERED_VALUE: Final = "altered value"
ALTERED_INTERVAL: Final = "altered interval"
DELETED_VERSION: Final = "deleted version"
INSERTED_VERSION: Final = "inserted version"
BROKEN_CHAIN: Final = "broken chain"
ANCHOR_MISMATCH: Final = "anchor mismatch"

ANCHOR_PREFIX: Final = "chronicle-anchor-v1"
CHANGELOG_PREFIX: Final = "chronicle_changelog:"
"""Prefix of the ledger's name for a table's change log: ``chronicle_changelog:<table>``."""
CHANGES_PREFIX: Final = "changes."
"""Prefix of the field name of one change in a change-log entry's ledger entry."""
_LEDGER: Final = LedgerEntry.metadata.tables[LedgerEntry.__tablename__]
_REDACTION: Final = Redaction.metadata.tables[Redaction.__tablename__]
_CHANGELOG: Final = ChangeLog.metadata.tables[ChangeLog.__tablename__]
_HEADER: Final = ("valid_from", "operation", "restored_from", "transaction_id")

Progress = Callable[[int, int], None]
"""``progress(done, total)``: versions sealed or checked so far, and the total counted first."""


# -- canonical values and digests -------------------------------------------------------------


def _plain(value: Any) -> Any:
    """``value`` in the database-independent form that is digested."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value.normalize()) if value.is_finite() else str(value)
    if isinstance(value, dt.datetime):
        if value.utcoffset() is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value // dt.timedelta(microseconds=1))
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def canonical(value: Any) -> str:
    """The canonical text of ``value``: JSON with sorted keys over :func:`_plain`."""
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def column_digest(salt: str, name: str, value: Any) -> str:
    """The digest of one column's value in one version, with the column's salt (hex)."""
    data = bytes.fromhex(salt) + b"\x00" + name.encode() + b"\x00" + canonical(value).encode()
    return hashlib.sha256(data).hexdigest()


def _sha(document: Any) -> str:
    return hashlib.sha256(canonical(document).encode()).hexdigest()


def _version_digest(
    table: str,
    row_id: str,
    version: int,
    header: Mapping[Any, Any],
    values: str,
    previous: str | None,
) -> str:
    return _sha(
        {
            "table": table,
            "row": row_id,
            "version": version,
            "header": {name: _plain(header.get(name)) for name in _HEADER},
            "values": values,
            "previous": previous,
        }
    )


def _salts_and_digests(fields: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Per field: a new random salt, and the digest of the field's value with it."""
    salts = {name: secrets.token_hex(16) for name in fields}
    return salts, {name: column_digest(salts[name], name, fields[name]) for name in fields}


# -- sealing ----------------------------------------------------------------------------------


def ledger_exists(connection: Connection) -> bool:
    """Whether the database has ``chronicle_ledger`` (the first seal creates it), in its schema."""
    return inspect(connection).has_table(_LEDGER.name, schema=_LEDGER.schema)


def _heads(
    connection: Connection, name: str, row_ids: Sequence[str] | None
) -> dict[str, tuple[int, str]]:
    """The newest sealed (version, digest) per row of ledger ``name``, of every row or of some."""
    query = select(_LEDGER.c.row_id, _LEDGER.c.version, _LEDGER.c.digest).where(
        _LEDGER.c.table_name == name
    )
    heads: dict[str, tuple[int, str]] = {}
    parts = [None] if row_ids is None else list(chunks(row_ids))
    for part in parts:
        selected = query if part is None else query.where(_LEDGER.c.row_id.in_(part))
        for row_id, version, digest in connection.execute(selected):
            if row_id not in heads or heads[row_id][0] < version:
                heads[row_id] = (version, digest)
    return heads


def _seal_table(
    connection: Connection,
    table: HistoryTable,
    keys: Sequence[tuple[Any, ...]] | None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Seal the versions of ``table`` not sealed yet, of every row or of the rows ``keys``."""
    history = table.history
    row_ids = None if keys is None else [format_row_id(key) for key in keys]
    heads = _heads(connection, table.name, row_ids)
    order = [*table.key, history.c.version]
    queries = (
        [select(history).order_by(*order)]
        if keys is None
        else [
            select(history).where(key_in(table.key, part)).order_by(*order) for part in chunks(keys)
        ]
    )
    rows = (
        (table.row_id(row), stamps["version"], table.fields(row), stamps)
        for query in queries
        for row in connection.execute(query)
        for stamps in [table.stamps(row)]
    )
    return _write_entries(connection, table.name, heads, rows, progress)


def _write_entries(
    connection: Connection,
    name: str,
    heads: dict[str, tuple[int, str]],
    rows: Iterable[tuple[str, int, Mapping[str, Any], Any]],
    progress: Callable[[int], None] | None,
) -> int:
    """Write a ledger entry for each (row id, version, fields, header) not sealed yet.

    ``rows`` come in version order per row; ``heads`` holds each row's newest sealed entry and
    is kept up to date.
    """
    now = pendulum.now("UTC")
    sealed = 0
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal sealed, pending
        if pending:
            connection.execute(insert(_LEDGER), pending)
            sealed += len(pending)
            if progress is not None:
                progress(len(pending))
            pending = []

    for row_id, version, fields, header in rows:
        head = heads.get(row_id)
        if head is not None and version <= head[0]:
            continue
        previous = head[1] if head is not None else None
        salts, digests = _salts_and_digests(fields)
        values = _sha(digests)
        digest = _version_digest(name, row_id, version, header, values, previous)
        heads[row_id] = (version, digest)
        pending.append(
            {
                "table_name": name,
                "row_id": row_id,
                "version": version,
                "digest": digest,
                "values_digest": values,
                "previous": previous,
                "salts": salts,
                "redacted": None,
                "sealed_at": now,
            }
        )
        if len(pending) >= 1000:
            flush()
    flush()
    return sealed


def changelog_ledger_name(family: Family) -> str:
    """The ledger's name for the change log of ``family``'s table."""
    return f"{CHANGELOG_PREFIX}{family.name}"


def changelog_fields(entry: Any) -> dict[str, Any]:
    """The digested fields of a change-log entry: its transaction, event, time and each change."""
    fields = {
        "transaction_id": entry.transaction_id,
        "event_type": entry.event_type,
        "timestamp": entry.timestamp,
    }
    changes = entry.changes if isinstance(entry.changes, Mapping) else {}
    fields.update({f"{CHANGES_PREFIX}{key}": value for key, value in changes.items()})
    return fields


def _seal_changelog(
    connection: Connection,
    family: Family,
    row_ids: Sequence[str] | None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Seal the change-log entries of ``family``'s table not sealed yet, per row in id order."""
    name = changelog_ledger_name(family)
    heads = _heads(connection, name, row_ids)
    query = (
        select(_CHANGELOG)
        .where(_CHANGELOG.c.table_name == family.name)
        .order_by(_CHANGELOG.c.row_id, _CHANGELOG.c.id)
    )
    queries = (
        [query]
        if row_ids is None
        else [query.where(_CHANGELOG.c.row_id.in_(part)) for part in chunks(row_ids)]
    )
    empty: dict[str, Any] = {}
    rows = (
        (entry.row_id, entry.id, changelog_fields(entry), empty)
        for selected in queries
        for entry in connection.execute(selected)
    )
    return _write_entries(connection, name, heads, rows, progress)


def _count_versions(connection: Connection, families: Iterable[Family]) -> int:
    """The versions and change-log entries of ``families``' tables."""
    total = 0
    for family in families:
        for table in family.tables:
            total += connection.scalar(select(func.count()).select_from(table.history)) or 0
        query = select(func.count()).where(_CHANGELOG.c.table_name == family.name)
        total += connection.scalar(query) or 0
    return total


def seal_history(
    session: Session,
    classes: Iterable[Target] | Target | None = None,
    *,
    progress: Progress | None = None,
) -> int:
    """Seal every version and change-log entry not sealed yet; the number of entries written.

    Works on history written any way (by the ORM, by bulk statements, before sealing was
    switched on); each row's versions are chained in version order, continuing from its newest
    sealed one, and each row's change-log entries in their order, apart. ``classes`` takes
    versioned classes, tables or live table names, a single one, or None for every history
    table in the database. The entries are written in the session's transaction: commit it.
    ``progress(done, total)`` is called as entries are written, with the number of versions and
    change-log entries in the tables (sealed ones included) as ``total``.
    """
    refuse_async(session, "seal_history")
    families = resolve_targets(session, classes)
    connection = session.connection()
    LedgerEntry.metadata.tables[LedgerEntry.__tablename__].create(connection, checkfirst=True)
    total = _count_versions(connection, families) if progress is not None else 0
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    sealed = 0
    for family in families:
        for table in family.tables:
            sealed += _seal_table(connection, table, None, advance)
        sealed += _seal_changelog(connection, family, None, advance)
    return sealed


_roots: tuple[int, dict[int, HistorySpec], dict[int, HistorySpec]] = (-1, {}, {})


def _ledger_roots() -> dict[int, HistorySpec]:
    """The root specs that seal at commit (all of them with ``configure(ledger=True)``), by id.

    Kept until another versioned class is declared.
    """
    global _roots
    specs = versioned_specs()
    if _roots[0] != len(specs):
        every = {id(spec): spec for spec in specs if spec.root is None}
        _roots = (len(specs), every, {k: s for k, s in every.items() if s.ledger})
    return _roots[1] if ledger_enabled() else _roots[2]


def _seal_on_commit(session: Session) -> None:
    """Seal the versions the session's transaction wrote, for the classes that ask for it.

    Only at the commit of the database transaction: a version written inside a savepoint may
    still be rewritten by a later flush of the same transaction.
    """
    if session.in_nested_transaction():
        return
    roots = _ledger_roots()
    if not roots:
        return
    session.flush()
    _seal_trigger_versions(session, roots)
    transaction = current_transaction(session)
    if transaction is None or not transaction.versioned_rows:
        return
    keys: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for root_id, identity in transaction.versioned_rows:
        keys[root_id].append(identity)
    for root_id, identities in keys.items():
        spec = roots.get(root_id)
        if spec is None:
            continue
        family = family_of_spec(spec)
        ordered = sorted(identities, key=repr)
        for table in family.tables:
            _seal_table(transaction.connection, table, ordered)
        row_ids = [format_row_id(identity) for identity in ordered]
        _seal_changelog(transaction.connection, family, row_ids)


def _seal_trigger_versions(session: Session, roots: dict[int, HistorySpec]) -> None:
    """Seal the versions the triggers wrote in the session's transaction (database capture mode).

    The session's writer does not know those rows: they are read, by this transaction's id (the
    index on ``transaction_id``), from the history tables the library saw the transaction's
    statements write.
    """
    transaction_ids: dict[Connection, int | None] = {}
    for spec in roots.values():
        if not spec.captured_by_database:
            continue
        connection = session.connection(bind_arguments={"mapper": spec.mapper})
        if spec.base.history not in written_histories(connection):
            continue
        if connection not in transaction_ids:
            transaction_ids[connection] = trigger_transaction(connection)
        transaction_id = transaction_ids[connection]
        if transaction_id is None:
            continue
        family = family_of_spec(spec)
        table = family.tables[0]
        written = select(*table.key).where(table.history.c.transaction_id == transaction_id)
        keys = sorted({tuple(row) for row in connection.execute(written)}, key=repr)
        if keys:
            _seal_table(connection, table, keys)
            _seal_changelog(connection, family, [format_row_id(key) for key in keys])


_installed = False


def install() -> None:
    """Seal at commit (see :func:`_seal_on_commit`); registered once per process."""
    global _installed
    if not _installed:
        event.listen(Session, "before_commit", _seal_on_commit)
        _installed = True


# -- verification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One thing verification found wrong."""

    kind: str
    """:data:`ALTERED_VALUE`, :data:`ALTERED_INTERVAL`, :data:`DELETED_VERSION`,
    :data:`INSERTED_VERSION`, :data:`BROKEN_CHAIN` or :data:`ANCHOR_MISMATCH`."""
    table: str
    """The live table's name."""
    row_id: str | None
    """The row's key as the change log writes it (see
    :func:`~sqlalchemy_chronicle.format_row_id`); None for an anchor mismatch."""
    version: int | None
    detail: str

    def __str__(self) -> str:
        where = self.table if self.row_id is None else f"{self.table} row {self.row_id}"
        if self.version is not None:
            where += f" version {self.version}"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass
class VerificationReport:
    """What :func:`verify_history` checked and found."""

    findings: list[Finding] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    """The live tables checked."""
    versions: int = 0
    """Versions checked."""
    changelog: int = 0
    """Change-log entries checked."""

    @property
    def ok(self) -> bool:
        """Whether nothing was found wrong."""
        return not self.findings

    def __bool__(self) -> bool:
        return self.ok


def _redactions(connection: Connection, family: Family) -> dict[str, tuple[set[str], set[Any]]]:
    """Per row: the columns redacted and the markers used."""
    found: dict[str, tuple[set[str], set[Any]]] = {}
    if not inspect(connection).has_table(Redaction.__tablename__):
        return found
    query = select(_REDACTION.c.row_id, _REDACTION.c.columns, _REDACTION.c.marker).where(
        _REDACTION.c.table_name == family.name
    )
    for row_id, columns, marker in connection.execute(query):
        columns_of, markers = found.setdefault(row_id, (set(), {None}))
        columns_of.update(columns)
        markers.add(marker)
    return found


def _verify_table(
    connection: Connection,
    family: Family,
    table: HistoryTable,
    horizon: pendulum.DateTime | None,
    report: VerificationReport,
    advance: Callable[[int], None],
    has_ledger: bool,
) -> None:
    history = table.history
    has_interval = "valid_from" in history.c
    entries: dict[tuple[str, int], Any] = {}
    if has_ledger:
        query = select(_LEDGER).where(_LEDGER.c.table_name == table.name)
        for sealed in connection.execute(query):
            entries[sealed.row_id, sealed.version] = sealed
    matched: set[tuple[str, int]] = set()
    redactions = _redactions(connection, family)
    order = [*table.key, history.c.version]
    previous_row: tuple[str, Any] | None = None

    reported: set[tuple[str, str, int | None]] = set()

    def find(kind: str, row_id: str, version: int | None, detail: str) -> None:
        if (kind, row_id, version) not in reported:
            reported.add((kind, row_id, version))
            report.findings.append(Finding(kind, table.name, row_id, version, detail))

    checked = 0
    for row in connection.execute(select(history).order_by(*order)):
        mapping = table.stamps(row)
        row_id = table.row_id(row)
        version = mapping["version"]
        before = previous_row[1] if previous_row is not None and previous_row[0] == row_id else None
        if has_interval and previous_row is not None and before is None:
            _check_last(find, previous_row)
        if has_interval:
            _check_interval(find, row_id, before, mapping)
        entry = entries.get((row_id, version))
        matched.add((row_id, version))
        if entry is None:
            find(
                INSERTED_VERSION,
                row_id,
                version,
                "not in the ledger: written behind the library's back, or not sealed yet",
            )
        else:
            _check_entry(
                find, table, row_id, mapping, table.fields(row), entry, entries, redactions
            )
        previous_row = (row_id, mapping)
        if has_interval and (before is None or before["version"] != version - 1):
            _check_start(find, row_id, mapping, before, entries, horizon)
        checked += 1
        if checked % 1000 == 0:
            advance(1000)
    advance(checked % 1000)
    if has_interval and previous_row is not None:
        _check_last(find, previous_row)
    report.versions += checked
    for row_id, version in sorted(entries.keys() - matched):
        find(DELETED_VERSION, row_id, version, "sealed in the ledger, but gone from the history")


def _verify_changelog(
    connection: Connection,
    family: Family,
    horizon: pendulum.DateTime | None,
    report: VerificationReport,
    advance: Callable[[int], None],
    has_ledger: bool,
) -> None:
    """Check the change log of ``family``'s table against its ledger entries.

    Findings name the table ``chronicle_changelog:<table>`` and, as the version, the entry's id.
    """
    name = changelog_ledger_name(family)
    entries: dict[tuple[str, int], Any] = {}
    if has_ledger:
        for sealed in connection.execute(select(_LEDGER).where(_LEDGER.c.table_name == name)):
            entries[sealed.row_id, sealed.version] = sealed
    sealed_before: dict[tuple[str, int], Any] = {}
    by_row: dict[str, list[int]] = defaultdict(list)
    for row_id, version in sorted(entries):
        if by_row[row_id]:
            sealed_before[row_id, version] = entries[row_id, by_row[row_id][-1]]
        by_row[row_id].append(version)
    redactions = _redactions(connection, family)
    matched: set[tuple[str, int]] = set()

    def find(kind: str, row_id: str, version: int | None, detail: str) -> None:
        report.findings.append(Finding(kind, name, row_id, version, detail))

    query = (
        select(_CHANGELOG)
        .where(_CHANGELOG.c.table_name == family.name)
        .order_by(_CHANGELOG.c.row_id, _CHANGELOG.c.id)
    )
    checked = 0
    for row in connection.execute(query):
        key = (row.row_id, row.id)
        matched.add(key)
        checked += 1
        entry = entries.get(key)
        if entry is None:
            find(
                INSERTED_VERSION, row.row_id, row.id, "not in the ledger: not sealed yet, or forged"
            )
            continue
        fields = changelog_fields(row)
        redacted_columns, markers = redactions.get(row.row_id, (set(), {None}))
        salts: Mapping[str, str] = entry.salts or {}
        redacted: Mapping[str, str] = entry.redacted or {}
        digests: dict[str, str] = {}
        for field_name in sorted(set(fields) | set(salts) | set(redacted)):
            value = fields.get(field_name)
            if field_name in redacted:
                digests[field_name] = redacted[field_name]
                column = field_name.removeprefix(CHANGES_PREFIX)
                allowed = markers | {_pair(marker) for marker in markers}
                if column not in redacted_columns or _plain(value) not in [
                    _plain(a) for a in allowed
                ]:
                    find(ALTERED_VALUE, row.row_id, row.id, f"{column} changed after its redaction")
            elif field_name in salts:
                digests[field_name] = column_digest(salts[field_name], field_name, value)
            else:
                find(ALTERED_VALUE, row.row_id, row.id, f"{field_name} was added after sealing")
        values = _sha(digests)
        if values != entry.values_digest:
            find(ALTERED_VALUE, row.row_id, row.id, "the entry differs from the one sealed")
            continue
        before = sealed_before.get(key)
        if before is not None and entry.previous != before.digest:
            find(BROKEN_CHAIN, row.row_id, row.id, "does not chain to the entry before")
        elif before is None and entry.previous is not None and horizon is None:
            find(DELETED_VERSION, row.row_id, row.id, "the entries before it are gone")
        elif _version_digest(name, row.row_id, row.id, {}, values, entry.previous) != entry.digest:
            find(BROKEN_CHAIN, row.row_id, row.id, "the ledger entry does not match its digest")
    advance(checked)
    report.changelog += checked
    for row_id, version in sorted(entries.keys() - matched):
        find(DELETED_VERSION, row_id, version, "sealed in the ledger, but gone from the change log")


def _pair(marker: Any) -> tuple[Any, Any]:
    return (marker, marker)


def _check_interval(
    find: Callable[[str, str, int | None, str], None],
    row_id: str,
    before: Mapping[Any, Any] | None,
    row: Mapping[Any, Any],
) -> None:
    """Contiguity of ``row`` with the row's version ``before`` it (if any)."""
    version = row["version"]
    valid_from, valid_to = row["valid_from"], row["valid_to"]
    if row["operation"] == "delete":
        if valid_to is None or _plain(valid_to) != _plain(valid_from):
            find(ALTERED_INTERVAL, row_id, version, "a delete marker's interval is not empty")
    elif valid_to is not None and _plain(valid_to) <= _plain(valid_from):
        find(ALTERED_INTERVAL, row_id, version, "the interval ends before it begins")
    if before is None or before["version"] != version - 1:
        return
    end = before["valid_to"]
    if end is None:
        find(ALTERED_INTERVAL, row_id, version - 1, "open, though a later version follows")
    elif before["operation"] == "delete":
        if _plain(valid_from) < _plain(end):
            find(ALTERED_INTERVAL, row_id, version, "begins before the row was deleted")
    elif _plain(end) != _plain(valid_from):
        find(
            ALTERED_INTERVAL,
            row_id,
            version - 1,
            "does not end where the next version begins",
        )


def _check_last(
    find: Callable[[str, str, int | None, str], None], last: tuple[str, Mapping[Any, Any]]
) -> None:
    row_id, row = last
    if row["operation"] != "delete" and row["valid_to"] is not None:
        find(ALTERED_INTERVAL, row_id, row["version"], "the newest version is closed")


def _check_start(
    find: Callable[[str, str, int | None, str], None],
    row_id: str,
    row: Mapping[Any, Any],
    before: Mapping[Any, Any] | None,
    entries: Mapping[tuple[str, int], Any],
    horizon: pendulum.DateTime | None,
) -> None:
    """A version whose predecessor is missing: pruned, or deleted behind the library's back."""
    version = row["version"]
    if before is not None:
        missing = range(before["version"] + 1, version)
    elif version > 1:
        missing = range(1, version)
    else:
        return
    if (row_id, version - 1) in entries:
        return  # reported as a deleted version once the ledger's leftovers are listed
    pruned = (
        horizon is not None
        and before is None
        and (
            _plain(row["valid_from"]) <= _plain(horizon)
            or row["operation"] in ("insert", "restore")
        )
    )
    if not pruned:
        find(
            DELETED_VERSION,
            row_id,
            missing[-1],
            f"versions {missing.start} to {missing[-1]} are gone, and no pruning explains it",
        )


def _check_entry(
    find: Callable[[str, str, int | None, str], None],
    table: HistoryTable,
    row_id: str,
    row: Mapping[Any, Any],
    fields: Mapping[str, Any],
    entry: Any,
    entries: Mapping[tuple[str, int], Any],
    redactions: Mapping[str, tuple[set[str], set[Any]]],
) -> None:
    """Compare one version with its ledger entry: values, chain link, then the digest.

    ``row`` holds the version's library columns by default name, ``fields`` its copied columns.
    """
    version = row["version"]
    salts: Mapping[str, str] = entry.salts or {}
    redacted: Mapping[str, str] = entry.redacted or {}
    redacted_columns, markers = redactions.get(row_id, (set(), {None}))
    digests: dict[str, str] = {}
    for column in table.values:
        name = column.name
        value = fields[name]
        if name in redacted:
            digests[name] = redacted[name]
            if name not in redacted_columns:
                find(ALTERED_VALUE, row_id, version, f"{name} redacted without a redaction record")
            elif value not in markers:
                find(ALTERED_VALUE, row_id, version, f"{name} changed after its redaction")
        elif name in salts:
            digests[name] = column_digest(salts[name], name, value)
        elif value is not None:
            find(ALTERED_VALUE, row_id, version, f"{name} holds a value it did not when sealed")
    for name in set(salts) | set(redacted):
        if name not in digests and name not in {c.name for c in table.values}:
            digests[name] = redacted.get(name) or column_digest(salts[name], name, None)
    values = _sha(digests)
    if values != entry.values_digest:
        find(ALTERED_VALUE, row_id, version, "the values differ from those sealed")
        return
    before = entries.get((row_id, version - 1))
    if before is not None and entry.previous != before.digest:
        find(BROKEN_CHAIN, row_id, version, "does not chain to the version before")
        return
    if version == 1 and entry.previous is not None:
        find(BROKEN_CHAIN, row_id, version, "the first version chains to an earlier one")
        return
    digest = _version_digest(table.name, row_id, version, row, values, entry.previous)
    if digest != entry.digest:
        find(
            ALTERED_INTERVAL,
            row_id,
            version,
            "valid_from, the operation, restored_from or the transaction differ from those sealed",
        )


def _anchor(connection: Connection, sequence: int) -> str:
    heads: dict[tuple[str, str], tuple[int, str]] = {}
    query = select(
        _LEDGER.c.table_name, _LEDGER.c.row_id, _LEDGER.c.version, _LEDGER.c.digest
    ).where(_LEDGER.c.id <= sequence)
    for table, row_id, version, digest in connection.execute(query):
        known = heads.get((table, row_id))
        if known is None or known[0] < version:
            heads[table, row_id] = (version, digest)
    lines = sorted(f"{t}\x1f{r}\x1f{v}\x1f{d}" for (t, r), (v, d) in heads.items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def anchor_digest(session: Session) -> str:
    """A digest of the ledger's chain heads, to keep somewhere the database's users cannot write.

    ``chronicle-anchor-v1:<sequence>:<sha256>``: the newest ledger entry's id, and SHA-256 over
    every row's newest entry up to it. Given to :func:`verify_history` later, it proves that no
    entry up to that sequence was rewritten or removed since, however much was sealed after it.
    Pruning removes entries, so an anchor taken before a pruning no longer verifies: take a new
    one after each pruning.
    """
    refuse_async(session, "anchor_digest")
    connection = session.connection()
    if not ledger_exists(connection):
        return f"{ANCHOR_PREFIX}:0:{_sha([])}"
    sequence = connection.scalar(select(func.max(_LEDGER.c.id))) or 0
    return f"{ANCHOR_PREFIX}:{sequence}:{_anchor(connection, sequence)}"


def _parse_anchor(anchor: str) -> tuple[int, str]:
    parts = anchor.strip().split(":") if isinstance(anchor, str) else []
    if len(parts) != 3 or parts[0] != ANCHOR_PREFIX or not parts[1].isdigit():
        raise ConfigurationError(
            f"{anchor!r} is not an anchor digest: anchor_digest() returns "
            f"'{ANCHOR_PREFIX}:<sequence>:<sha256>'"
        )
    return int(parts[1]), parts[2]


def verify_history(
    session: Session,
    classes: Iterable[Target] | Target | None = None,
    *,
    anchor: str | None = None,
    progress: Progress | None = None,
) -> VerificationReport:
    """Check every version against the ledger; a report of what was found wrong.

    ``classes`` takes versioned classes, tables or live table names, a single one, or None for
    every history table in the database. With ``anchor`` (from :func:`anchor_digest`), the
    ledger's chain heads up to the anchor's sequence are checked against it too.
    ``progress(done, total)`` is called as versions are checked. Nothing is written.

    :raises ConfigurationError: ``anchor`` is not an anchor digest.
    """
    refuse_async(session, "verify_history")
    expected = _parse_anchor(anchor) if anchor is not None else None
    families = resolve_targets(session, classes)
    connection = session.connection()
    report = VerificationReport(tables=[t.name for f in families for t in f.tables])
    has_ledger = ledger_exists(connection)
    horizons = read_horizons(connection)
    total = _count_versions(connection, families) if progress is not None else 0
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None and count:
            progress(done, total)

    for family in families:
        for table in family.tables:
            horizon = horizons.get(family.name)
            _verify_table(connection, family, table, horizon, report, advance, has_ledger)
        _verify_changelog(
            connection, family, horizons.get(family.name), report, advance, has_ledger
        )
    if expected is not None:
        sequence, digest = expected
        found = _anchor(connection, sequence) if has_ledger else _sha([])
        if found != digest:
            report.findings.append(
                Finding(
                    ANCHOR_MISMATCH,
                    "chronicle_ledger",
                    None,
                    None,
                    f"the ledger's chain heads up to entry {sequence} do not match the anchor: "
                    "entries were rewritten or removed (pruning removes some: take a new anchor "
                    "after each pruning)",
                )
            )
    return report
