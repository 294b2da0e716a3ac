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
ledger name ``chronicle_changelog:<table>`` (:data:`._common.CHANGELOG_PREFIX`): the entry's id
is its version number, and its transaction, event type, time and each change
(``changes.<column>``) are its columns.

*Redaction* (:mod:`sqlalchemy_chronicle.operate.redaction`) keeps the chain verifiable: it moves
the column digest of every redacted column into the entry's ``redacted`` map and deletes that
column's salt, so that the digest still verifies while the value is gone and cannot be guessed
back from the digest.

*Verification* recomputes every digest and reports, per table, row and version, what it finds:
a value changed (``"altered value"``), ``valid_from``, the operation or the transaction changed
or intervals that do not follow each other (``"altered interval"``), a version gone
(``"deleted version"``), a version without ledger entry (``"inserted version"``: written behind
the library's back, or not sealed yet), a ledger entry that does not follow the one before
(``"broken chain"``). :func:`anchor_digest` condenses the ledger's chain heads into one string to
keep elsewhere; given back to :func:`verify_history`, it proves that the ledger itself was not
rewritten since.

The package: :mod:`._common` holds the ledger's tables and the digests, :mod:`.seal` sealing (on
demand and at commit), :mod:`.verify` verification and anchors.
"""

from __future__ import annotations

from ._common import CHANGES_PREFIX, changelog_ledger_name, column_digest, ledger_exists
from .seal import install, seal_history
from .verify import (
    ALTERED_INTERVAL,
    ALTERED_VALUE,
    ANCHOR_MISMATCH,
    BROKEN_CHAIN,
    DELETED_VERSION,
    INSERTED_VERSION,
    Finding,
    VerificationReport,
    anchor_digest,
    verify_history,
)

__all__ = [
    "ALTERED_INTERVAL",
    "ALTERED_VALUE",
    "ANCHOR_MISMATCH",
    "BROKEN_CHAIN",
    "CHANGES_PREFIX",
    "DELETED_VERSION",
    "INSERTED_VERSION",
    "Finding",
    "VerificationReport",
    "anchor_digest",
    "changelog_ledger_name",
    "column_digest",
    "install",
    "ledger_exists",
    "seal_history",
    "verify_history",
]
