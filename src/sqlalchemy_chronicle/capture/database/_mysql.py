"""MariaDB and MySQL: three row triggers per versioned table (not written yet)."""

from __future__ import annotations

from sqlalchemy import Dialect

from ...errors import ConfigurationError
from ...schema.history import HistorySpec

__all__ = ["create_statements", "drop_statements"]


def drop_statements(spec: HistorySpec, dialect: Dialect) -> list[str]:
    """Nothing to drop: no triggers are created."""
    return []


def create_statements(spec: HistorySpec, dialect: Dialect) -> list[str]:
    """Refuse: the MariaDB triggers are not written yet."""
    raise ConfigurationError("database capture mode is not available on MariaDB/MySQL yet")
