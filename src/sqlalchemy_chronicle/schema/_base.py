"""The declarative base of the library's own tables, and their installation in a user's MetaData.

The library's models (:class:`~sqlalchemy_chronicle.Transaction` and the change log) are mapped
once, on a private :class:`~sqlalchemy.MetaData`. When a versioned class is declared, a copy of
those tables joins that class's ``MetaData``, so that ``metadata.create_all()`` and Alembic
autogenerate treat them as ordinary tables of the application.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

__all__ = ["LibraryBase", "install_library_tables"]


class LibraryBase(DeclarativeBase):
    """Declarative base of the tables that sqlalchemy-chronicle owns."""

    metadata = MetaData()


def install_library_tables(metadata: MetaData) -> None:
    """Copy the library's tables into ``metadata`` unless they are there already."""
    for table in LibraryBase.metadata.sorted_tables:
        if table.key not in metadata.tables:
            table.to_metadata(metadata)
