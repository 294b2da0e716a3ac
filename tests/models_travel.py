"""Related models for the time-travel tests; they share :class:`tests.models.Base`."""

from __future__ import annotations
