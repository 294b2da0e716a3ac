"""Write: the history and change-log rows of one flush, set-based, in the flush's transaction.

The capture layer hands each flush's changes to :func:`write_history`. The modules, in the order a
flush goes through them:

- :mod:`._writer` decides, per versioned hierarchy, which rows take which path;
- :mod:`._short_path` lets the database version the commonest rows by itself;
- :mod:`._full_path` reads the latest versions (:mod:`._versions`), decides per row, and writes;
  :mod:`._live_rows` reads and copies the rows as stored;
- :mod:`._changelog` derives the change-log entries from the versions written;
- :mod:`._transaction` keeps the transaction's row and bookkeeping; :mod:`._plan` holds what the
  steps share; :mod:`.sql` the key lists each database answers best, which restore uses too.

The layer imports the foundations, ``schema`` and ``capture``, never a later layer.
"""

from __future__ import annotations

from ._transaction import install
from ._writer import write_history

__all__ = ["install", "write_history"]
