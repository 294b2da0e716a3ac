"""Restore: history turned back into an ordinary change, captured and written like any other.

- :mod:`.api`: ``restore()`` and ``restore_all()``;
- :mod:`._target`: what to restore, to when, with which relationships;
- :mod:`._rows` and :mod:`._session`: a row and its related rows, through the session;
- :mod:`._table`: a whole table or part of it, in set-based SQL;
- :mod:`._database`: the triggers' versions of a restore in database capture mode, marked as
  restores;
- :mod:`._checks`: constraint conflicts, found before anything is written;
- :mod:`._family`: the snapshot of a hierarchy at a time, which the others share.

The layer imports every layer before it: ``schema``, ``capture`` (to mark a restore),
``write`` (set-based restores write their own history) and ``read``.
"""

from __future__ import annotations
