"""Sealing: a ledger entry for every version and change-log entry not sealed yet.

:func:`seal_history` seals on demand; with ``configure(ledger=True)`` or ``__versioned__ =
{"ledger": True}``, :func:`install`'s commit hook seals what each transaction wrote.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, event, insert, select
from sqlalchemy.orm import Session

from ...capture.database import trigger_transaction, written_histories
from ...config import clock_time, ledger_enabled
from ...instants import to_instant
from ...read.query import refuse_async
from ...schema.history import HistorySpec, versioned_specs
from ...schema.tables import LedgerEntry, format_row_id
from ...write._transaction import current_transaction
from ...write.sql import chunks, key_in
from .._targets import Family, HistoryTable, Target, family_of_spec, resolve_targets
from ._common import (
    CHANGELOG,
    LEDGER,
    Progress,
    changelog_fields,
    changelog_ledger_name,
    count_versions,
    salts_and_digests,
    sha,
    version_digest,
)

__all__ = ["install", "seal_history"]


def _heads(
    connection: Connection, name: str, row_ids: Sequence[str] | None
) -> dict[str, tuple[int, str]]:
    """The newest sealed (version, digest) per row of ledger ``name``, of every row or of some."""
    query = select(LEDGER.c.row_id, LEDGER.c.version, LEDGER.c.digest).where(
        LEDGER.c.table_name == name
    )
    heads: dict[str, tuple[int, str]] = {}
    parts = [None] if row_ids is None else list(chunks(row_ids))
    for part in parts:
        selected = query if part is None else query.where(LEDGER.c.row_id.in_(part))
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
    is kept up to date. ``sealed_at`` is the library's clock, which stamps the versions too.
    """
    now = to_instant(clock_time(connection))
    sealed = 0
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal sealed, pending
        if pending:
            connection.execute(insert(LEDGER), pending)
            sealed += len(pending)
            if progress is not None:
                progress(len(pending))
            pending = []

    for row_id, version, fields, header in rows:
        head = heads.get(row_id)
        if head is not None and version <= head[0]:
            continue
        previous = head[1] if head is not None else None
        salts, digests = salts_and_digests(fields)
        values = sha(digests)
        digest = version_digest(name, row_id, version, header, values, previous)
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
        select(CHANGELOG)
        .where(CHANGELOG.c.table_name == family.name)
        .order_by(CHANGELOG.c.row_id, CHANGELOG.c.id)
    )
    queries = (
        [query]
        if row_ids is None
        else [query.where(CHANGELOG.c.row_id.in_(part)) for part in chunks(row_ids)]
    )
    empty: dict[str, Any] = {}
    rows = (
        (entry.row_id, entry.id, changelog_fields(entry), empty)
        for selected in queries
        for entry in connection.execute(selected)
    )
    return _write_entries(connection, name, heads, rows, progress)


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
    total = count_versions(connection, families) if progress is not None else 0
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
