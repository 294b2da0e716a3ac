"""Read: the past as it was, a row's versions, and the change log.

- :mod:`.query`: ``query_as_of()``, the time-travel session ``as_of()``, ``history()`` and diffs;
- :mod:`._asof`: how an as-of statement is built and rewritten, once per class;
- :mod:`.changelog`: the change-log queries.

The layer imports the foundations and ``schema``; it writes nothing.
"""

from __future__ import annotations
