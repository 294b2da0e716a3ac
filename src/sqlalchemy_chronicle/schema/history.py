"""Building ``<table>_history`` and its mapped class from a versioned mapper.

For a versioned class ``Article`` on table ``article`` this module creates, in the same
:class:`~sqlalchemy.MetaData`, the table ``article_history`` and maps the class
``ArticleHistory`` to it. The history table copies every tracked column of ``article`` (same names
and types, but no unique constraints, foreign keys, server defaults or autoincrement; everything
nullable but the primary key) and adds:

``version``
    1 for a row's first version, then +1 per version of that row.
``valid_from``, ``valid_to``
    the closed-open validity interval; ``valid_to`` is NULL while the version is current.
``operation``
    ``"insert"``, ``"update"``, ``"delete"`` or ``"restore"``: what produced the version.
``transaction_id``
    the :class:`~sqlalchemy_chronicle.Transaction` that wrote it.
``restored_from``
    for a ``"restore"`` version, the number of the version it brought back; NULL otherwise.
``retired_values``
    the values of columns dropped from the model since the version was written, by column name
    (JSON; see :mod:`sqlalchemy_chronicle.operate.migrations`); NULL when there are none.

The primary key is ``(<pk columns>, version)``, which also serves the lookup of one row's
versions. An inheriting class follows its mapper: single-table subclasses add their columns to the
parent's history table, joined-table subclasses get a history table of their own whose rows share
``(<pk columns>, version)`` with the parent's; the interval columns live only in the base table.

Two more indexes: ``transaction_id``, and ``(<pk columns>, valid_to, valid_from)``, through which
an as-of read of one row finds its version without reading all of the row's versions; on MySQL
and MariaDB ``(<pk columns>, valid_from)`` instead (see :func:`interval_index_wanted`). The copies
of the live table's foreign-key columns are indexed too, unless the primary key starts
with them: an as-of read of a relationship (``order.lines`` as of some past time, see
:mod:`sqlalchemy_chronicle.read.query`) filters the history table on that key exactly as the live
read filters the live table, and without the index it would scan the whole history.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypeVar

import pendulum
from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    Unicode,
    UnicodeText,
    and_,
    event,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import InstrumentedAttribute, Mapped, Mapper, QueryableAttribute, object_session
from sqlalchemy.orm import exc as orm_exc
from sqlalchemy.orm.exc import DetachedInstanceError
from sqlalchemy.sql import sqltypes
from sqlalchemy.types import TypeEngine

from ..config import CAPTURE_MODES, LIBRARY_COLUMNS, CaptureMode, default_capture
from ..errors import ConfigurationError
from ..types import JSONDocument, UTCDateTime
from ._base import install_library_tables
from .columns import LibraryColumns, stamp
from .tables import Transaction

__all__ = [
    "HISTORY_SUFFIX",
    "INTERVAL_INDEX",
    "RETIRED_COLUMN",
    "START_INDEX",
    "HistorySpec",
    "TableHistory",
    "Version",
    "build_history",
    "history_table_name",
    "history_table_of",
    "interval_index_wanted",
    "link_spec",
    "settle_types",
    "spec_for",
    "table_history",
    "versioned_specs",
]

HISTORY_SUFFIX: Final = "_history"
"""What a live table's name ends with to name its history table, unless option ``table`` names
it (see :func:`history_table_name`)."""

RETIRED_COLUMN: Final = "retired_values"
"""The JSON column of a base history table that keeps the values of columns dropped since (its
default name, and its key in the history table)."""

INTERVAL_COLUMNS: Final = LIBRARY_COLUMNS
"""The columns the history base table adds to the copied ones, by their keys (default names)."""
_OPTIONS: Final = frozenset(
    {"exclude", "changelog", "columns", "table", "capture", "retain", "ledger"}
)


_PRIVATE_NAME: Final = "_chronicle_history_of_"
"""Prefix of a history class's name while it is mapped (see :func:`build_history`)."""

_TRANSACTION_KEY: Final = "_chronicle_transaction"
"""Where a version keeps its transaction once loaded (in the instance's ``__dict__``)."""


M = TypeVar("M")
"""The versioned class whose versions a :class:`Version` holds."""
_T = TypeVar("_T")

if TYPE_CHECKING:

    class _HistoryClassType(type):
        """What a type checker sees of a history class: any model column, as a column attribute."""

        def __getattr__(cls, name: str) -> InstrumentedAttribute[Any]: ...

else:
    _HistoryClassType = type


class Version(Generic[M], metaclass=_HistoryClassType):
    """Base class of every generated history class (``Article.__history__``).

    An instance is one version of one row: the row's tracked columns as they were stored, plus
    ``version``, ``valid_from``, ``valid_to``, ``operation``, ``transaction_id`` and
    ``restored_from``. A type checker sees ``Article.__history__`` as ``type[Version[Article]]``:
    the library's columns are typed mapped attributes, so that ``select(Article.__history__).where(
    Article.__history__.valid_to.is_(None))`` type-checks, and the model's own columns, which a
    type checker cannot know on the generated class, are ``Any`` (``version.title``) or, typed,
    read through the model's attribute: ``version[Article.title]`` is a ``str`` when
    ``Article.title`` is a ``Mapped[str]``. A class that gave the library's columns other names
    (``__versioned__ = {"columns": {...}}``) has them under those names instead, and its own
    attributes under theirs (``ReleaseHistory.version`` is then the model's ``version``).
    """

    __versioned_class__: ClassVar[type[Any]]
    __chronicle_columns__: ClassVar[LibraryColumns] = LibraryColumns()
    if TYPE_CHECKING:
        __table__: ClassVar[Table]

        def __getattr__(self, name: str) -> Any: ...

    version: Mapped[int]
    valid_from: Mapped[pendulum.DateTime]
    valid_to: Mapped[pendulum.DateTime | None]
    operation: Mapped[str]
    transaction_id: Mapped[int]
    restored_from: Mapped[int | None]
    retired_values: Mapped[dict[str, Any] | None]

    @property
    def transaction(self) -> Transaction:
        """The :class:`~sqlalchemy_chronicle.Transaction` that wrote this version.

        Read by primary key on first access (from the session's identity map when it is there),
        then kept with the version.
        A property rather than a relationship: the history class lives in the application's
        registry and ``Transaction`` in the library's, and a relationship between them would tie
        the registries together (``registry.configure()`` then refuses to configure one alone).
        """
        transaction_id = stamp(self, "transaction_id")
        loaded: Transaction | None = self.__dict__.get(_TRANSACTION_KEY)
        if loaded is not None and loaded.id == transaction_id:
            return loaded
        session = object_session(self)
        if session is None:
            raise DetachedInstanceError(
                f"{self!r} is not in a session: its transaction cannot be loaded"
            )
        found = session.get(Transaction, transaction_id)
        if found is None:
            raise LookupError(f"no transaction {transaction_id} for {self!r}")
        self.__dict__[_TRANSACTION_KEY] = found
        return found

    def __getitem__(self, attribute: QueryableAttribute[_T]) -> _T:
        """The value in this version of the model's column attribute ``attribute``.

        ``version[Article.title]`` is ``version.title``, typed as ``Article.title`` is. An
        attribute of another class, or one that is not a column the history keeps, raises
        :class:`~sqlalchemy_chronicle.ConfigurationError`.
        """
        versioned = self.__versioned_class__
        owner = getattr(attribute, "class_", None)
        spec = spec_for(versioned)
        if (
            not isinstance(owner, type)
            or not issubclass(versioned, owner)
            or spec is None
            or attribute.key not in spec.tracked_keys
        ):
            name = (
                f"{owner.__name__}.{attribute.key}" if isinstance(owner, type) else repr(attribute)
            )
            raise ConfigurationError(
                f"{name} is not a column that the versions of {versioned.__name__} keep; "
                f"version[{versioned.__name__}.<column attribute>] reads one of theirs"
            )
        value: _T = getattr(self, attribute.key)
        return value

    def __repr__(self) -> str:
        spec = spec_for(self.__versioned_class__)
        assert spec is not None
        key = ", ".join(repr(getattr(self, attr)) for attr in spec.pk_keys)
        return (
            f"<{type(self).__name__} ({key}) v{stamp(self, 'version')} "
            f"{stamp(self, 'operation')} [{stamp(self, 'valid_from')}, {stamp(self, 'valid_to')})>"
        )


@dataclass(eq=False)
class TableHistory:
    """One live table and the history table that shadows it."""

    live: Table
    history: Table
    key: list[Column[Any]]
    mapper: Mapper[Any] | None = None
    """The mapper whose history this table started, for a hierarchy's base table."""
    """The history columns of the row identity (the primary key without ``version``), in the
    order of the versioned mapper's identity key."""
    copied: list[tuple[Column[Any], Column[Any]]] = field(default_factory=list)
    """Pairs of (live column, history column) for every tracked column, the key's first."""

    @property
    def live_key(self) -> list[Column[Any]]:
        """The live columns of the row identity, in the order of :attr:`key`."""
        return [live for live, _ in self.copied[: len(self.key)]]

    @property
    def key_returns_as_sent(self) -> bool:
        """Whether the database gives the key back as sent, so rows it returns are told apart."""
        return all(_returns_as_sent(column.type) for column in self.live_key)


@dataclass(eq=False)
class HistorySpec:
    """Everything the writer and the queries need to know about one versioned mapper."""

    mapper: Mapper[Any]
    history_class: type[Version[Any]]
    tables: list[TableHistory]
    """The tables an instance of this mapper is stored in, the hierarchy's base table first."""
    root: HistorySpec | None = None
    excluded: frozenset[str] = frozenset()
    columns: LibraryColumns = field(default_factory=LibraryColumns)
    """The names of the library's columns in this hierarchy's history tables."""
    capture: CaptureMode = "orm"
    """Who writes this hierarchy's history: option ``capture`` of its base class, else the mode
    :func:`~sqlalchemy_chronicle.configure` set when the base class was declared."""
    _value_keys: dict[int, tuple[int, list[tuple[str, str | None]]]] = field(
        default_factory=dict, repr=False
    )

    @property
    def changelog(self) -> bool:
        """Whether this hierarchy writes change-log entries (option ``changelog``)."""
        return bool(_options(self.root_spec.mapper.class_).get("changelog", True))

    @property
    def retain(self) -> dt.timedelta | None:
        """How long this hierarchy keeps history (option ``retain``), or None for ever."""
        retain: dt.timedelta | None = _options(self.root_spec.mapper.class_).get("retain")
        return retain

    @property
    def ledger(self) -> bool:
        """Whether this hierarchy's versions are sealed at commit (option ``ledger``)."""
        return bool(_options(self.root_spec.mapper.class_).get("ledger", False))

    @property
    def captured_by_database(self) -> bool:
        """Whether the triggers write this hierarchy's history, so that flushes must not."""
        return self.capture == "database"

    @property
    def root_spec(self) -> HistorySpec:
        """The spec of the hierarchy's base versioned mapper."""
        return self.root or self

    @property
    def base(self) -> TableHistory:
        """The table that holds the interval columns."""
        return self.tables[0]

    @functools.cached_property
    def pk_keys(self) -> list[str]:
        """Attribute names of the primary key, in identity-key order."""
        return [self.mapper.get_property_by_column(c).key for c in self.mapper.primary_key]

    def attribute_key(self, column: Column[Any]) -> str | None:
        """The key of the attribute this mapper maps the live ``column`` to, or None."""
        return _attribute_key(self.mapper, column)

    def value_keys(self, table: TableHistory) -> list[tuple[str, str | None]]:
        """(history column key, attribute key of this mapper or None) for ``table``'s columns.

        The writer asks once per row, so the answer is kept; it is rebuilt when a single-table
        subclass has added columns to ``table`` since.
        """
        known = self._value_keys.get(id(table))
        if known is None or known[0] != len(table.copied):
            keys = [(hist.key, self.attribute_key(live)) for live, hist in table.copied]
            known = self._value_keys[id(table)] = (len(table.copied), keys)
        return known[1]

    @property
    def copies_whole_rows(self) -> bool:
        """Whether the database copies this class's versions from the live rows (the short path).

        It can when a version is its one table's row, every column of it mapped, and the key
        comes back from the database as the value sent (integers and variable-length strings; a
        ``CHAR`` comes back padded, a time may come back in another zone), since the rows the
        database writes are told apart by the key it returns.
        """
        if len(self.tables) != 1:
            return False
        table = self.tables[0]
        if not table.key_returns_as_sent:
            return False
        return all(attr is not None for _, attr in self.value_keys(table))

    @functools.cached_property
    def tracked_keys(self) -> frozenset[str]:
        """Attribute names whose change makes a new version."""
        keys: set[str] = set()
        for table in self.tables:
            keys.update(attr for _, attr in self.value_keys(table) if attr is not None)
        return frozenset(keys)


_RETURNED_AS_SENT: Final = frozenset(
    {
        *(Integer, BigInteger, SmallInteger, sqltypes.INTEGER, sqltypes.BIGINT, sqltypes.SMALLINT),
        *(String, Unicode, Text, UnicodeText, sqltypes.VARCHAR, sqltypes.NVARCHAR, sqltypes.TEXT),
    }
)
"""Key types whose values come back from every database as they were sent."""


def _returns_as_sent(type_: TypeEngine[Any]) -> bool:
    return type(type_) in _RETURNED_AS_SENT


def _attribute_key(mapper: Mapper[Any], column: Column[Any]) -> str | None:
    """The key of the attribute ``mapper`` maps ``column`` to, or None when it maps none."""
    try:
        return mapper.get_property_by_column(column).key
    except orm_exc.UnmappedColumnError:
        return None


_specs: weakref.WeakKeyDictionary[Mapper[Any], HistorySpec] = weakref.WeakKeyDictionary()
_tables: weakref.WeakKeyDictionary[Table, tuple[TableHistory, TableHistory]] = (
    weakref.WeakKeyDictionary()
)
_by_history: weakref.WeakKeyDictionary[Table, tuple[TableHistory, TableHistory]] = (
    weakref.WeakKeyDictionary()
)


def spec_for(target: type[Any] | Mapper[Any]) -> HistorySpec | None:
    """The :class:`HistorySpec` of a versioned class or mapper, or None if it is not versioned."""
    if isinstance(target, Mapper):
        return _specs.get(target)
    from sqlalchemy import inspect

    mapper = inspect(target, raiseerr=False)
    return _specs.get(mapper) if isinstance(mapper, Mapper) else None


def versioned_specs() -> list[HistorySpec]:
    """The specs of every versioned mapper there is."""
    return list(_specs.values())


def link_spec(live: Table) -> HistorySpec | None:
    """The spec of the class :func:`~sqlalchemy_chronicle.versioned_table` mapped to ``live``.

    None unless ``live`` is an association table versioned by that function: its rows are
    written by relationships (``secondary=``), so capture reads its changes from them.
    """
    found = _tables.get(live)
    if found is None:
        return None
    spec = _specs.get(found[0].mapper) if found[0].mapper is not None else None
    return spec if spec is not None and getattr(spec.mapper.class_, LINK_MARK, False) else None


LINK_MARK: Final = "__chronicle_link__"
"""Class attribute set on the classes :func:`~sqlalchemy_chronicle.versioned_table` maps."""


def table_history(live: Table) -> tuple[TableHistory, TableHistory] | None:
    """The history of a versioned live table and its hierarchy's base table, or None.

    The second item holds the interval columns; it is the first one unless ``live`` is the table
    of a joined-inheritance subclass.
    """
    return _tables.get(live)


def history_table_of(history: Table) -> tuple[TableHistory, TableHistory] | None:
    """Like :func:`table_history`, from the history table instead of the live one."""
    return _by_history.get(history)


def _options(cls: type[Any]) -> Mapping[str, Any]:
    options = getattr(cls, "__versioned__", None) or {}
    if not isinstance(options, Mapping):
        raise ConfigurationError(f"{cls.__name__}.__versioned__ must be a mapping")
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ConfigurationError(
            f"{cls.__name__}.__versioned__ has unknown options {sorted(unknown)}; "
            f"known: {sorted(_OPTIONS)}"
        )
    retain = options.get("retain")
    if retain is not None and (not isinstance(retain, dt.timedelta) or retain <= dt.timedelta(0)):
        raise ConfigurationError(
            f"{cls.__name__}.__versioned__['retain'] is {retain!r}: give a positive "
            "datetime.timedelta, such as datetime.timedelta(days=365)"
        )
    if "ledger" in options and not isinstance(options["ledger"], bool):
        raise ConfigurationError(
            f"{cls.__name__}.__versioned__['ledger'] is {options['ledger']!r}: give True or False"
        )
    capture = options.get("capture")
    if capture is not None and capture not in CAPTURE_MODES:
        raise ConfigurationError(
            f"{cls.__name__}.__versioned__ has capture={capture!r}; the capture mode is 'orm' "
            "or 'database'"
        )
    return options


def _excluded(mapper: Mapper[Any], parent: HistorySpec | None) -> frozenset[str]:
    """Column names excluded from history; options name attributes or columns."""
    names = set(parent.excluded if parent else ())
    for name in _options(mapper.class_).get("exclude", ()):
        prop = mapper.get_property(name) if mapper.has_property(name) else None
        columns = getattr(prop, "columns", None)
        if columns:
            names.update(c.name for c in columns)
        elif name in mapper.local_table.c or any(name in t.c for t in mapper.tables):
            names.add(name)
        else:
            raise ConfigurationError(
                f"{mapper.class_.__name__}.__versioned__ excludes {name!r}, "
                "which is neither an attribute nor a column"
            )
    return frozenset(names)


def _copy_column(column: Column[Any], names: LibraryColumns) -> Column[Any]:
    copy: Column[Any] = Column(
        column.name,
        column.type,
        key=names.copied_key(column.key),
        primary_key=column.primary_key,
        nullable=not column.primary_key,
        autoincrement=False,
        info={"chronicle": "copied"},
    )
    if column.type._isnull:
        _untyped.append((column, copy))
    return copy


_untyped: list[tuple[Column[Any], Column[Any]]] = []
"""Copies of live columns whose type was not known yet: a foreign-key column declared without a
type takes its target's once the target column exists, which may be after the copy was made."""


def settle_types() -> None:
    """Give copies of untyped live columns the type their live column has taken since.

    Called when another class is versioned, when the mappers are configured, before a history
    table is created and before Alembic compares the schema.
    """
    if not _untyped:
        return
    waiting = []
    for live, copy in _untyped:
        if live.type._isnull:
            waiting.append((live, copy))
        else:
            copy.type = live.type
    _untyped[:] = waiting


def _add_copies(
    table: TableHistory,
    columns: Iterable[Column[Any]],
    excluded: frozenset[str],
    names: LibraryColumns,
) -> None:
    present = {live.name for live, _ in table.copied}
    for column in columns:
        if column.name in present or column.name in excluded:
            continue
        if column.primary_key and column.table is table.live:
            continue
        copy = _copy_column(column, names)
        table.history.append_column(copy)
        table.copied.append((column, copy))
    _index_foreign_keys(table)


def _index_foreign_keys(table: TableHistory) -> None:
    """Index the copies of the live table's foreign keys; see the module documentation."""
    history = table.history
    copies = {live.name: hist for live, hist in table.copied}
    primary = [column.name for column in history.primary_key.columns]
    indexed = {tuple(column.name for column in index.columns) for index in history.indexes}
    for constraint in table.live.foreign_key_constraints:
        columns = [copies[column.name] for column in constraint.columns if column.name in copies]
        names = tuple(column.name for column in columns)
        if len(columns) < len(constraint.columns) or names in indexed:
            continue
        if tuple(primary[: len(names)]) == names:
            continue
        Index(_index_name(history.name, names), *columns)
        indexed.add(names)


def _index_name(table: str, columns: tuple[str, ...]) -> str:
    """``ix_<table>_<columns>``, shortened with a hash to fit every backend's 63-character limit."""
    name = f"ix_{table}_{'_'.join(columns)}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[:54]}_{digest}"


def _library_column(names: LibraryColumns, key: str, *args: Any, **kwargs: Any) -> Column[Any]:
    """A library column: keyed by its default name, named as chosen."""
    return Column(names.name(key), *args, key=key, **kwargs)


def _new_history_table(
    live: Table,
    identity: list[Column[Any]],
    excluded: frozenset[str],
    base: bool,
    names: LibraryColumns,
    name: str,
) -> TableHistory:
    """Create the history table ``name``; ``identity``: the live primary key in identity order."""
    metadata = live.metadata
    pk_copies = [_copy_column(c, names) for c in identity]
    extra: list[Column[Any]] = [
        _library_column(
            names,
            "version",
            Integer,
            primary_key=True,
            autoincrement=False,
            info={"chronicle": "version"},
        )
    ]
    if base:
        extra += [
            _library_column(
                names, "valid_from", UTCDateTime, nullable=False, info={"chronicle": "interval"}
            ),
            _library_column(
                names, "valid_to", UTCDateTime, nullable=True, info={"chronicle": "interval"}
            ),
            _library_column(
                names, "operation", String(8), nullable=False, info={"chronicle": "operation"}
            ),
            _library_column(
                names,
                "transaction_id",
                BigInteger().with_variant(Integer, "sqlite"),
                nullable=False,
                info={"chronicle": "transaction"},
            ),
            _library_column(
                names, "restored_from", Integer, nullable=True, info={"chronicle": "restore"}
            ),
            _library_column(
                names, RETIRED_COLUMN, JSONDocument, nullable=True, info={"chronicle": "retired"}
            ),
        ]
    key = f"{live.schema}.{name}" if live.schema else name
    if key in metadata.tables:
        raise ConfigurationError(
            f"cannot create the history table {key!r} of {live.fullname!r}: the MetaData already "
            "has a table of that name; choose another with __versioned__ = "
            '{"table": "<name>"}'
        )
    history = Table(
        name, metadata, *pk_copies, *extra, schema=live.schema, info={"chronicle": "history"}
    )
    event.listen(history, "before_create", _settle_before_create)
    if base:
        Index(_index_name(name, ("transaction_id",)), history.c.transaction_id)
        _index_interval(history, pk_copies)
    table = TableHistory(live=live, history=history, key=pk_copies)
    table.copied.extend(zip(identity, pk_copies, strict=True))
    _add_copies(table, live.columns, excluded, names)
    return table


INTERVAL_INDEX: Final = "interval"
"""The ``info["chronicle"]`` of a history table's interval index (see :func:`_index_interval`)."""

START_INDEX: Final = "interval start"
"""The ``info["chronicle"]`` of a history table's start index, the interval index of MySQL and
MariaDB (see :func:`_index_interval`)."""


def interval_index_wanted(dialect_name: str, kind: str = INTERVAL_INDEX) -> bool:
    """Whether the interval index ``kind`` is made on the database of ``dialect_name``.

    The interval index (:data:`INTERVAL_INDEX`) is made everywhere but on MySQL and MariaDB, the
    start index (:data:`START_INDEX`) only there. Maintaining an index that holds ``valid_to``
    made closing versions cost twice as much on InnoDB, which must update the entry of every
    version closed; the start index holds only what never changes once a version is written
    (``benchmarks/README.md``).
    """
    on_mysql = dialect_name in ("mysql", "mariadb")
    return on_mysql if kind == START_INDEX else not on_mysql


def _interval_index_if(
    ddl: Any,
    target: Any,
    bind: Any,
    tables: Any = None,
    state: Any = None,
    *,
    dialect: Dialect,
    compiler: Any = None,
    checkfirst: bool = False,
) -> bool:
    return interval_index_wanted(dialect.name, target.info["chronicle"])


def _index_interval(history: Table, key: list[Column[Any]]) -> None:
    """Index ``(<key>, valid_to, valid_from)``, or ``(<key>, valid_from)`` on MySQL and MariaDB.

    An as-of read of one row (``valid_from <= T AND (valid_to > T OR valid_to IS NULL)`` and the
    key) then finds its version among the index entries instead of reading every version of the
    row, and a point read (:func:`sqlalchemy_chronicle.read._asof._point_select`) probes one
    entry: the first version to end after ``T`` in the interval index, the last to begin at or
    before it in the start index. Each index carries its kind in ``info["chronicle"]`` and is made
    only where :func:`interval_index_wanted` says, and Alembic's autogenerate proposes only that
    one (:mod:`sqlalchemy_chronicle.operate.migrations`). See ``benchmarks/README.md``.
    """
    for kind, ends in (
        (INTERVAL_INDEX, [history.c.valid_to, history.c.valid_from]),
        (START_INDEX, [history.c.valid_from]),
    ):
        columns = [*key, *ends]
        name = _index_name(history.name, tuple(column.name for column in columns))
        index = Index(name, *columns, info={"chronicle": kind})
        index.ddl_if(callable_=_interval_index_if)


def _settle_before_create(target: Table, connection: Any, **kw: Any) -> None:
    settle_types()


def _library_columns(mapper: Mapper[Any], parent: HistorySpec | None) -> LibraryColumns:
    """The library column names of ``mapper``'s hierarchy: its base class chooses them."""
    cls = mapper.class_
    option = _options(cls).get("columns")
    if parent is None:
        return LibraryColumns.chosen(option, f"{cls.__name__}.__versioned__['columns']")
    inherited = parent.root_spec.columns
    if option is not None and "columns" in vars(cls).get("__versioned__", {}):
        chosen = LibraryColumns.chosen(option, f"{cls.__name__}.__versioned__['columns']")
        if chosen != inherited:
            raise ConfigurationError(
                f"{cls.__name__}.__versioned__['columns'] differs from its base class's: the "
                "library's column names are chosen once per hierarchy, on its base class"
            )
    return inherited


def history_table_name(table_name: str, history_table: str | None = None) -> str:
    """The history table's name: ``history_table``, else ``<table_name>_history``."""
    return history_table or table_name + HISTORY_SUFFIX


def _history_table_name(mapper: Mapper[Any], single: bool) -> str:
    """The name of ``mapper``'s own history table: option ``table``, else ``<table>_history``."""
    cls = mapper.class_
    own = vars(cls).get("__versioned__") or {}
    chosen = own.get("table") if isinstance(own, Mapping) else None
    if chosen is None:
        return history_table_name(mapper.local_table.name)  # type: ignore[attr-defined]
    if single:
        raise ConfigurationError(
            f"{cls.__name__}.__versioned__['table']: a single-table subclass shares its base "
            "class's history table and cannot name one"
        )
    if not isinstance(chosen, str) or not chosen:
        raise ConfigurationError(
            f"{cls.__name__}.__versioned__['table'] must be a non-empty table name, not {chosen!r}"
        )
    return chosen


def _refuse_clashes(mapper: Mapper[Any], names: LibraryColumns) -> None:
    """Refuse a model column or attribute that would take a library column's name."""
    chosen = set(names.names.values())
    cls = mapper.class_
    for column in mapper.local_table.columns:
        assert isinstance(column, Column)
        key = _attribute_key(mapper, column)
        for clash, what in ((column.name, "a column"), (key, "an attribute")):
            if clash in chosen:
                default = next(d for d, n in names.names.items() if n == clash)
                raise ConfigurationError(
                    f"{cls.__name__} has {what} named {clash!r}, which is the name of the "
                    f"library's history column {default!r}; give the library's column another "
                    f"name, for this class with __versioned__ = {{'columns': {{{default!r}: "
                    f"'chronicle_{default}'}}}} or for every class with sqlalchemy_chronicle."
                    f"configure(columns={{{default!r}: 'chronicle_{default}'}})"
                )


def build_history(mapper: Mapper[Any]) -> HistorySpec:
    """Create the history table(s) and mapped history class for a newly constructed mapper."""
    if mapper in _specs:
        return _specs[mapper]
    settle_types()
    cls = mapper.class_
    parent = spec_for(mapper.inherits) if mapper.inherits is not None else None
    live = mapper.local_table
    if not isinstance(live, Table):
        raise ConfigurationError(f"{cls.__name__} is not mapped to a Table; it cannot be versioned")
    excluded = _excluded(mapper, parent)
    names = _library_columns(mapper, parent)
    _refuse_clashes(mapper, names)
    is_single = parent is not None and live is parent.mapper.local_table
    table_name = _history_table_name(mapper, is_single)
    install_library_tables(live.metadata)

    if parent is None:
        identity = [live.c[column.key] for column in mapper.primary_key]
        tables = [_new_history_table(live, identity, excluded, True, names, table_name)]
    elif is_single:
        assert parent is not None
        tables = list(parent.tables)
        _add_copies(tables[-1], live.columns, excluded, names)
    else:
        assert parent is not None
        own = _new_history_table(
            live, _joined_identity(live, parent), excluded, False, names, table_name
        )
        tables = [*parent.tables, own]

    name = f"{cls.__name__}History"
    # Mapped under a name of the library's, so that the history class never takes (nor clashes
    # with) an application class's name in the registry's string lookup (Airflow has a class
    # TaskInstanceHistory next to TaskInstance); it is renamed once mapped.
    history_class = type(
        f"{_PRIVATE_NAME}{name}",
        (parent.history_class if parent else Version,),
        {"__versioned_class__": cls, "__module__": cls.__module__, "__chronicle_columns__": names},
    )
    mapper_args = _mapper_arguments(mapper, parent, tables, names)
    # A single-table subclass is mapped without a table of its own, as SQLAlchemy expects, so that
    # its queries are limited to its discriminator values.
    single = parent is not None and tables[-1] is parent.tables[-1]
    own_table = None if single else tables[-1].history
    mapper.registry.map_imperatively(history_class, own_table, **mapper_args)
    history_class.__name__ = history_class.__qualname__ = name
    if single:
        history_class.__table__ = tables[-1].history  # type: ignore[attr-defined]
    spec = HistorySpec(
        mapper=mapper,
        history_class=history_class,
        tables=tables,
        root=parent.root_spec if parent else None,
        excluded=excluded,
        columns=names,
        capture=parent.capture if parent else _options(cls).get("capture") or default_capture(),
    )
    _specs[mapper] = spec
    if parent is None:
        tables[0].mapper = mapper
    for table in tables:
        _tables[table.live] = _by_history[table.history] = (table, tables[0])
    cls.__history__ = history_class
    return spec


def _mapper_arguments(
    mapper: Mapper[Any],
    parent: HistorySpec | None,
    tables: list[TableHistory],
    names: LibraryColumns,
) -> dict[str, Any]:
    own = tables[-1]
    properties: dict[str, Any] = {}
    for live_col, hist_col in own.copied:
        key = _attribute_key(mapper, live_col)
        if key is not None and key != hist_col.key:
            properties[key] = hist_col
    if parent is None:
        for default in LIBRARY_COLUMNS:
            properties[names.name(default)] = own.history.c[default]
    args: dict[str, Any] = {"properties": properties}
    if parent is not None:
        args["inherits"] = parent.history_class
        if own.history is not parent.base.history and own.history is not parent.tables[-1].history:
            parent_history = parent.tables[-1].history
            clauses: list[ColumnElement[bool]] = [own.history.c.version == parent_history.c.version]
            parent_history_key = parent.tables[-1].key
            clauses += [
                own_col == parent_col
                for own_col, parent_col in zip(own.key, parent_history_key, strict=True)
            ]
            args["inherit_condition"] = and_(*clauses)
            parent_mapper = sa_inspect(parent.history_class)

            def inherited(column: Column[Any]) -> list[Column[Any]]:
                """The columns the parent history class maps to ``column``'s attribute."""
                prop = parent_mapper.get_property_by_column(column)
                return [c for c in prop.columns if isinstance(c, Column)]

            properties[names.version] = [
                own.history.c.version,
                *inherited(parent_history.c.version),
            ]
            for (live_col, own_col), parent_col in zip(
                own.copied, parent_history_key, strict=False
            ):
                key = _attribute_key(mapper, live_col) or own_col.key
                properties[key] = [own_col, *inherited(parent_col)]
    if mapper.polymorphic_on is not None and isinstance(mapper.polymorphic_on, Column):
        for live_col, hist_col in tables[0].copied:
            if live_col is mapper.polymorphic_on:
                args["polymorphic_on"] = hist_col
    if mapper.polymorphic_identity is not None:
        args["polymorphic_identity"] = mapper.polymorphic_identity
    return args


def _joined_identity(live: Table, parent: HistorySpec) -> list[Column[Any]]:
    """A joined subclass table's primary key, ordered like the parent table's identity."""
    parent_table = parent.tables[-1]
    ordered: list[Column[Any]] = []
    for parent_live_col, _ in parent_table.copied[: len(parent_table.key)]:
        for column in live.primary_key.columns:
            if any(fk.column is parent_live_col for fk in column.foreign_keys):
                ordered.append(column)
                break
        else:
            if parent_live_col.key not in live.primary_key.columns:
                raise ConfigurationError(
                    f"cannot tell which primary-key column of {live.name!r} refers to "
                    f"{parent_table.live.name}.{parent_live_col.name}"
                )
            ordered.append(live.primary_key.columns[parent_live_col.key])
    return ordered
