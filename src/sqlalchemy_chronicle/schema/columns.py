"""The names of the columns a history table adds, as configured, and reading them from versions.

A history table adds ``version``, ``valid_from``, ``valid_to``, ``operation``,
``transaction_id``, ``restored_from`` and ``retired_values`` to the columns it copies. An
application whose table already has a column of one of these names (a ``version`` counter, say)
gives the library's column another name, for every class with
``configure(columns={"version": "chronicle_version"})`` or for one class with
``__versioned__ = {"columns": {"version": "chronicle_version"}}``.

The choice changes the column's *name* in the database and the *attribute* of the history class
(``BookHistory.chronicle_version``); the library's own code addresses a library column by its
default name, which stays the column's ``key`` in the history :class:`~sqlalchemy.Table`
(``history.c.version``), and reads it from a version object through :func:`stamp`. A copied
column whose key is a library column's default name gets the key ``chronicle_copied_<key>`` in
the history table instead (its name, and the history class's attribute, stay the model's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..config import LIBRARY_COLUMNS, check_column_names, library_column_names

__all__ = ["COPIED_PREFIX", "LibraryColumns", "stamp"]

COPIED_PREFIX: Final = "chronicle_copied_"
"""Prefix of the history-table key of a copied column whose key is a library column's name."""


@dataclass(frozen=True)
class LibraryColumns:
    """The chosen name of each library column of one versioned hierarchy, by default name."""

    version: str = "version"
    valid_from: str = "valid_from"
    valid_to: str = "valid_to"
    operation: str = "operation"
    transaction_id: str = "transaction_id"
    restored_from: str = "restored_from"
    retired_values: str = "retired_values"

    @classmethod
    def chosen(cls, option: Any, where: str) -> LibraryColumns:
        """The names :func:`~sqlalchemy_chronicle.configure` set, overridden by ``option``."""
        names = library_column_names()
        if option is not None:
            names.update(check_column_names(option, where))
        return cls(**names)

    def name(self, default: str) -> str:
        """The chosen name of the library column called ``default`` by default."""
        chosen: str = getattr(self, default)
        return chosen

    @property
    def names(self) -> Mapping[str, str]:
        """Every library column's chosen name, by default name, in table order."""
        return {default: self.name(default) for default in LIBRARY_COLUMNS}

    def copied_key(self, key: str) -> str:
        """The history-table key of a copied column whose live key is ``key``."""
        return f"{COPIED_PREFIX}{key}" if key in LIBRARY_COLUMNS else key


def stamp(version: Any, default: str) -> Any:
    """The value of the library column called ``default`` by default, of one version object."""
    columns: LibraryColumns = type(version).__chronicle_columns__
    return getattr(version, columns.name(default))
