"""Operate: what is done to history as a whole, over its years.

- :mod:`.backfill`: a first version for rows of a table that becomes versioned with rows in it;
- :mod:`.migrations`: history through schema changes;
- :mod:`.retention`: pruning old versions to a horizon that reads refuse to cross;
- :mod:`.redaction`: scrubbing columns of one row from its whole history;
- :mod:`.ledger`: the digest chain that makes tampering evident, and its verification;
- :mod:`._targets`: the history tables these work on, from models or reflected.

The layer may import every layer before it.
"""

from __future__ import annotations
