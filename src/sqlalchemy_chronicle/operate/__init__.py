"""Operate: what is done to history as a whole, over its years.

- :mod:`.backfill`: a first version for rows of a table that becomes versioned with rows in it.

The layer may import every layer before it.
"""

from __future__ import annotations
