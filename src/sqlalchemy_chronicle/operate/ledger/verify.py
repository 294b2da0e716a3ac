"""Verification: every digest recomputed, and what does not match reported.

:func:`verify_history` checks versions and change-log entries against their ledger entries, the
intervals by contiguity, and the chain heads against an anchor (:func:`anchor_digest`).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pendulum
from sqlalchemy import Connection, func, inspect, select
from sqlalchemy.orm import Session

from ...errors import ConfigurationError
from ...read.horizon import read_horizons
from ...read.query import refuse_async
from ...schema.tables import Redaction
from .._targets import Family, HistoryTable, Target, resolve_targets
from ._common import (
    CHANGELOG,
    CHANGES_PREFIX,
    LEDGER,
    Progress,
    changelog_fields,
    changelog_ledger_name,
    column_digest,
    count_versions,
    ledger_exists,
    plain,
    sha,
    version_digest,
)

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
    "verify_history",
]

ALTERED_VALUE: Final = "altered value"
ALTERED_INTERVAL: Final = "altered interval"
DELETED_VERSION: Final = "deleted version"
INSERTED_VERSION: Final = "inserted version"
BROKEN_CHAIN: Final = "broken chain"
ANCHOR_MISMATCH: Final = "anchor mismatch"

ANCHOR_PREFIX: Final = "chronicle-anchor-v1"
_REDACTION: Final = Redaction.metadata.tables[Redaction.__tablename__]


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
        query = select(LEDGER).where(LEDGER.c.table_name == table.name)
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
        for sealed in connection.execute(select(LEDGER).where(LEDGER.c.table_name == name)):
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
        select(CHANGELOG)
        .where(CHANGELOG.c.table_name == family.name)
        .order_by(CHANGELOG.c.row_id, CHANGELOG.c.id)
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
                if column not in redacted_columns or plain(value) not in [
                    plain(a) for a in allowed
                ]:
                    find(ALTERED_VALUE, row.row_id, row.id, f"{column} changed after its redaction")
            elif field_name in salts:
                digests[field_name] = column_digest(salts[field_name], field_name, value)
            else:
                find(ALTERED_VALUE, row.row_id, row.id, f"{field_name} was added after sealing")
        values = sha(digests)
        if values != entry.values_digest:
            find(ALTERED_VALUE, row.row_id, row.id, "the entry differs from the one sealed")
            continue
        before = sealed_before.get(key)
        if before is not None and entry.previous != before.digest:
            find(BROKEN_CHAIN, row.row_id, row.id, "does not chain to the entry before")
        elif before is None and entry.previous is not None and horizon is None:
            find(DELETED_VERSION, row.row_id, row.id, "the entries before it are gone")
        elif version_digest(name, row.row_id, row.id, {}, values, entry.previous) != entry.digest:
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
        if valid_to is None or plain(valid_to) != plain(valid_from):
            find(ALTERED_INTERVAL, row_id, version, "a delete marker's interval is not empty")
    elif valid_to is not None and plain(valid_to) <= plain(valid_from):
        find(ALTERED_INTERVAL, row_id, version, "the interval ends before it begins")
    if before is None or before["version"] != version - 1:
        return
    end = before["valid_to"]
    if end is None:
        find(ALTERED_INTERVAL, row_id, version - 1, "open, though a later version follows")
    elif before["operation"] == "delete":
        if plain(valid_from) < plain(end):
            find(ALTERED_INTERVAL, row_id, version, "begins before the row was deleted")
    elif plain(end) != plain(valid_from):
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
            plain(row["valid_from"]) <= plain(horizon) or row["operation"] in ("insert", "restore")
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
    values = sha(digests)
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
    digest = version_digest(table.name, row_id, version, row, values, entry.previous)
    if digest != entry.digest:
        find(
            ALTERED_INTERVAL,
            row_id,
            version,
            "valid_from, the operation, restored_from or the transaction differ from those sealed",
        )


def _anchor(connection: Connection, sequence: int) -> str:
    heads: dict[tuple[str, str], tuple[int, str]] = {}
    query = select(LEDGER.c.table_name, LEDGER.c.row_id, LEDGER.c.version, LEDGER.c.digest).where(
        LEDGER.c.id <= sequence
    )
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
        return f"{ANCHOR_PREFIX}:0:{sha([])}"
    sequence = connection.scalar(select(func.max(LEDGER.c.id))) or 0
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
    total = count_versions(connection, families) if progress is not None else 0
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
        found = _anchor(connection, sequence) if has_ledger else sha([])
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
