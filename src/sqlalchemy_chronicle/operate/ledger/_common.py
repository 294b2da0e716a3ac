"""What sealing and verification share: the ledger's tables and names, and the digests.

Values are digested in a canonical form that does not depend on the database (:func:`canonical`;
the rules are in :mod:`sqlalchemy_chronicle.operate.ledger`).
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
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from sqlalchemy import Connection, func, inspect, select

from ...schema.tables import ChangeLog, LedgerEntry
from .._targets import Family

__all__ = [
    "CHANGELOG",
    "CHANGELOG_PREFIX",
    "CHANGES_PREFIX",
    "HEADER",
    "LEDGER",
    "Progress",
    "canonical",
    "changelog_fields",
    "changelog_ledger_name",
    "column_digest",
    "count_versions",
    "ledger_exists",
    "plain",
    "salts_and_digests",
    "sha",
    "version_digest",
]

CHANGELOG_PREFIX: Final = "chronicle_changelog:"
"""Prefix of the ledger's name for a table's change log: ``chronicle_changelog:<table>``."""
CHANGES_PREFIX: Final = "changes."
"""Prefix of the field name of one change in a change-log entry's ledger entry."""
LEDGER: Final = LedgerEntry.metadata.tables[LedgerEntry.__tablename__]
CHANGELOG: Final = ChangeLog.metadata.tables[ChangeLog.__tablename__]
HEADER: Final = ("valid_from", "operation", "restored_from", "transaction_id")
"""The library's columns of a version that its digest covers (``valid_to`` is checked apart)."""

Progress = Callable[[int, int], None]
"""``progress(done, total)``: versions sealed or checked so far, and the total counted first."""


def plain(value: Any) -> Any:
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
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


def canonical(value: Any) -> str:
    """The canonical text of ``value``: JSON with sorted keys over :func:`plain`."""
    return json.dumps(plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def column_digest(salt: str, name: str, value: Any) -> str:
    """The digest of one column's value in one version, with the column's salt (hex)."""
    data = bytes.fromhex(salt) + b"\x00" + name.encode() + b"\x00" + canonical(value).encode()
    return hashlib.sha256(data).hexdigest()


def sha(document: Any) -> str:
    """SHA-256 (hex) of the canonical text of ``document``."""
    return hashlib.sha256(canonical(document).encode()).hexdigest()


def version_digest(
    table: str,
    row_id: str,
    version: int,
    header: Mapping[Any, Any],
    values: str,
    previous: str | None,
) -> str:
    """The digest of one version: its place, its header, its values digest and the previous one.

    ``header`` holds the version's :data:`HEADER` columns; the digest chains the row's versions.
    """
    return sha(
        {
            "table": table,
            "row": row_id,
            "version": version,
            "header": {name: plain(header.get(name)) for name in HEADER},
            "values": values,
            "previous": previous,
        }
    )


def salts_and_digests(fields: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Per field: a new random salt, and the digest of the field's value with it."""
    salts = {name: secrets.token_hex(16) for name in fields}
    return salts, {name: column_digest(salts[name], name, fields[name]) for name in fields}


def ledger_exists(connection: Connection) -> bool:
    """Whether the database has ``chronicle_ledger`` (the first seal creates it), in its schema."""
    return inspect(connection).has_table(LEDGER.name, schema=LEDGER.schema)


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


def count_versions(connection: Connection, families: Iterable[Family]) -> int:
    """The versions and change-log entries of ``families``' tables."""
    total = 0
    for family in families:
        for table in family.tables:
            total += connection.scalar(select(func.count()).select_from(table.history)) or 0
        query = select(func.count()).where(CHANGELOG.c.table_name == family.name)
        total += connection.scalar(query) or 0
    return total
