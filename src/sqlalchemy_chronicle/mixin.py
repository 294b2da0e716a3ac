"""The :class:`Versioned` mixin: inherit it and a mapped class keeps its full row history.

::

    class Article(Versioned, Base):
        __tablename__ = "article"
        __versioned__ = {"exclude": ["cached_html"]}

        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str]
        cached_html: Mapped[str | None]

Declaring the class is the whole set-up. As soon as its mapper exists, ``article_history`` and the
class ``ArticleHistory`` (``Article.__history__``) are created in the same ``MetaData``, next to
the library's own tables, and every :class:`~sqlalchemy.orm.Session` records the changes it
flushes (see :mod:`sqlalchemy_chronicle.capture`). This module is where the layers meet: it
connects what capture sees to the writer, which capture does not import.

Options, in ``__versioned__``:

``exclude``
    attribute (or column) names left out of history. They are not copied into the history table,
    and a change to excluded columns only writes no version.
``columns``
    other names for the library's columns in this hierarchy's history tables, by default name:
    ``{"version": "chronicle_version"}`` (see :mod:`sqlalchemy_chronicle.schema.columns`).
``table``
    the name of the class's history table, instead of ``<table>_history``.
``changelog``
    ``False`` writes no change-log entries for the class.
``capture``
    ``"orm"`` (the session's flushes are versioned) or ``"database"`` (the database's triggers
    version every write; see :mod:`sqlalchemy_chronicle.capture.database`); by default the mode
    of :func:`~sqlalchemy_chronicle.configure` at the time the class is declared.

**Association tables.** A many-to-many relationship (``secondary=``) writes the rows of a plain
:class:`~sqlalchemy.Table`, which no class maps. :func:`versioned_table` versions such a table: it
maps a small class of the library's to it, whose history is ``<table>_history``, and capture
records the links that relationships add and remove. A versioned class's relationship through a
plain ``Table`` object (or the name of one already in its ``MetaData``) versions that table by
itself when the class is declared, unless the relationship is ``viewonly``; one the library
cannot see then is reported with :class:`~sqlalchemy_chronicle.UnversionedTableWarning` once
the mappers are configured.
"""

from __future__ import annotations

import warnings
import weakref
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from sqlalchemy import Connection, MetaData, Table, event, inspect
from sqlalchemy.orm import Mapper, RelationshipProperty, registry

from . import capture, write
from .errors import ConfigurationError, UnversionedTableWarning
from .operate import ledger
from .read.query import spec_of
from .schema.history import (
    LINK_MARK,
    build_history,
    link_spec,
    settle_types,
    table_history,
    versioned_specs,
)

if TYPE_CHECKING:
    from .schema.history import HistorySpec, Version

__all__ = ["Versioned", "create_triggers", "drop_triggers", "versioned_table"]

M = TypeVar("M")

if TYPE_CHECKING:

    class _HistoryClassOf:
        """How a type checker reads ``Model.__history__``: ``type[Version[Model]]``.

        Only a declaration: at run time each versioned class holds its history class itself.
        """

        def __get__(self, instance: object, owner: type[M]) -> type[Version[M]]: ...


class Versioned:
    """Mixin for declarative classes whose rows keep a history of every version."""

    if TYPE_CHECKING:
        __history__: _HistoryClassOf
        """The mapped history class, ``<Name>History`` on table ``<table>_history``.

        A type checker reads ``Article.__history__`` as ``type[Version[Article]]``.
        """

    __versioned__: ClassVar[dict[str, Any]] = {}
    """Per-class options: ``exclude``, attribute (or column) names left out of history;
    ``changelog``, False to write no change-log entries for the class."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _install()
        mapper = inspect(cls, raiseerr=False)
        if isinstance(mapper, Mapper) and mapper.class_ is cls:
            _build(mapper)
        else:
            event.listen(cls, "after_mapper_constructed", _mapper_constructed)


def create_triggers(connection: Connection, cls: type[Any]) -> None:
    """Create (or re-create) the database-capture triggers of versioned class ``cls``.

    ``metadata.create_all()`` creates them with the table. A migration uses
    ``op.create_history_triggers()`` instead (see :mod:`sqlalchemy_chronicle.operate.migrations`),
    which autogenerate writes and which builds them from the tables as they are when it runs, not
    from today's class.

    :raises NotVersionedError: ``cls`` is not versioned.
    :raises ConfigurationError: ``cls`` is not in database capture mode.
    """
    capture.database.create_triggers(
        connection, capture.database.CapturedTable.of(_in_database_mode(cls))
    )


def drop_triggers(connection: Connection, cls: type[Any]) -> None:
    """Drop the database-capture triggers of versioned class ``cls``.

    See :func:`create_triggers`.
    """
    capture.database.drop_triggers(
        connection, capture.database.CapturedTable.of(_in_database_mode(cls))
    )


def _in_database_mode(cls: type[Any]) -> HistorySpec:
    spec = spec_of(cls)
    if not spec.captured_by_database:
        raise ConfigurationError(
            f"{cls.__name__} is in ORM capture mode, which has no triggers; give it "
            "__versioned__ = {'capture': 'database'}"
        )
    return spec.root_spec


def versioned_table(table: Table) -> type[Any]:
    """Version the association table ``table`` and return the class mapped to it.

    For a many-to-many relationship's ``secondary=`` table: its history table
    ``<table>_history`` joins ``table``'s ``MetaData`` (call this before ``create_all()`` or
    autogenerate), every link a relationship adds or removes becomes a version of its row (an
    insert, a delete marker) and a change-log entry, and the time-travel session reads past
    collections through it. The returned class (``<Table>Link``, mapped in a registry of the
    library's) is an ordinary versioned class: ``history()``, ``query_as_of()`` and
    ``restore_all()`` take it. Calling it again returns the same class.

    :raises ConfigurationError: ``table`` is not a :class:`~sqlalchemy.Table`, has no primary key,
        or is already versioned through a class of the application's.
    """
    if not isinstance(table, Table):
        raise ConfigurationError(f"versioned_table() takes a Table, not {table!r}")
    found = link_spec(table)
    if found is not None:
        return found.mapper.class_
    if table_history(table) is not None:
        raise ConfigurationError(
            f"table {table.fullname!r} is versioned already, through the class mapped to it"
        )
    if not table.primary_key.columns:
        raise ConfigurationError(
            f"versioned_table({table.fullname!r}): the table has no primary key, so its rows "
            "cannot be told apart; make its columns the primary key"
        )
    name = "".join(part[:1].upper() + part[1:] for part in table.name.split("_")) + "Link"
    link = type(name, (Versioned,), {"__module__": __name__, LINK_MARK: True})
    _link_registry(table.metadata).map_imperatively(link, table)
    return link


_registries: weakref.WeakKeyDictionary[MetaData, registry] = weakref.WeakKeyDictionary()


def _link_registry(metadata: MetaData) -> registry:
    """The library's registry for the link classes of the tables in ``metadata``."""
    found = _registries.get(metadata)
    if found is None:
        found = _registries[metadata] = registry(metadata=metadata)
    return found


def _install() -> None:
    """Hand what the session and bulk statements capture to the writer (once per process)."""
    capture.install(write.write_history)
    write.install()
    ledger.install()
    if not event.contains(Mapper, "after_configured", _warn_unversioned_secondaries):
        event.listen(Mapper, "after_configured", _warn_unversioned_secondaries)


def _mapper_constructed(mapper: Mapper[Any], cls: type[Any]) -> None:
    if mapper.class_ is cls:
        _build(mapper)


def _build(mapper: Mapper[Any]) -> None:
    """Build the class's history and version the association tables it goes through.

    In database capture mode the history comes with its triggers' DDL listeners.
    """
    capture.database.attach(build_history(mapper))
    for prop in list(mapper._props.values()):
        if isinstance(prop, RelationshipProperty) and not prop.viewonly:
            secondary = _secondary_table(prop, mapper)
            if secondary is not None and table_history(secondary) is None:
                versioned_table(secondary)


def _secondary_table(prop: RelationshipProperty[Any], mapper: Mapper[Any]) -> Table | None:
    """The association table of ``prop`` if it is known already (a Table or a name of one)."""
    secondary = prop._init_args.secondary.argument  # what was given; resolved at configuration
    if isinstance(secondary, str):
        metadata = getattr(mapper.local_table, "metadata", None)
        secondary = metadata.tables.get(secondary) if metadata is not None else None
    return secondary if isinstance(secondary, Table) else None


_warned: weakref.WeakSet[Table] = weakref.WeakSet()


def _warn_unversioned_secondaries() -> None:
    """Warn of versioned classes' many-to-many relationships through unversioned tables."""
    settle_types()
    for spec in versioned_specs():
        mapper = spec.mapper
        for prop in mapper.relationships:
            secondary = prop.secondary
            if (
                isinstance(secondary, Table)
                and not prop.viewonly
                and table_history(secondary) is None
                and secondary not in _warned
            ):
                _warned.add(secondary)
                warnings.warn(
                    f"{mapper.class_.__name__}.{prop.key} goes through the association table "
                    f"{secondary.fullname!r}, which keeps no history: the time-travel session "
                    "reads its links as they are now; call sqlalchemy_chronicle."
                    "versioned_table() on it before creating the tables",
                    UnversionedTableWarning,
                    stacklevel=2,
                )
