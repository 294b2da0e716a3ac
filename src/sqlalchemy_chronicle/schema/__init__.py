"""Declare: the history tables and classes of versioned models, and the library's own tables.

- :mod:`.history`: ``<table>_history`` and its mapped class for each versioned mapper, and the
  :class:`~.history.HistorySpec` that tells the other layers what to copy;
- :mod:`.tables`: ``chronicle_transaction`` and ``chronicle_changelog``;
- :mod:`._base`: the declarative base of the library's tables and their copy into an
  application's ``MetaData``.

The layer imports the foundations only (``errors``, ``config``, ``instants``, ``types``).
"""

from __future__ import annotations
