"""Reading the past: as-of queries, a time-travel session, a row's versions and their changes.

Every version of a row is kept with the closed-open interval ``[valid_from, valid_to)`` in which
it was the row's state, the current version included (see
:mod:`sqlalchemy_chronicle.schema.history`).
The state of a table at a time ``T`` is therefore the set of versions whose interval contains
``T``; a delete leaves a marker with an empty interval, which no time falls into. This module
reads that state in three forms.

**A time-travel session.** :func:`as_of` opens a read-only :class:`AsOfSession` in which every
versioned table reads as it was at one time. Ordinary ORM code works unchanged and sees the past:
``select(Order)``, ``session.get(Order, 7)``, and every relationship load, lazy or eager, through
association tables too::

    with as_of(session, last_tuesday) as past:
        order = past.get(Order, 7)
        order.lines  # the lines as they were last Tuesday

The objects are instances of the models themselves, kept apart from the live ones by the
session's own identity map. The session refuses to flush and to run INSERT, UPDATE or DELETE.

**An as-of query.** :func:`query_as_of` returns a :class:`~sqlalchemy.Select` of the versions of
one class that were current at a time; it composes like any other (``.where()``, ``.order_by()``,
``.limit()``, ``.join()``), and criteria may name the model's attributes, which then mean the
historic values::

    session.scalars(query_as_of(Article, when).where(Article.title == "x"))

The rows are history objects (``Article.__history__``): the model's attributes plus ``version``,
``valid_from``, ``valid_to``, ``operation`` and ``transaction_id``. They are read-only: a flush
that would change or delete one raises :class:`~sqlalchemy_chronicle.ReadOnlyError`.

**A row's versions.** :func:`history` lists them oldest first, from an object or, so that a
deleted row can still be read, from a class and a primary key; :func:`previous_version` and
:func:`next_version` step through them, :func:`changes` tells what differs between two.

A time is an aware :class:`~datetime.datetime` (a :class:`pendulum.DateTime` is one) or an
ISO-8601 string with an offset. A naive time could mean any instant and is refused with
:class:`~sqlalchemy_chronicle.InvalidTimeError`, unless :func:`set_default_timezone` says where
naive times are. A time before any history gives no rows, a time in the future the current state.

Each query is one SQL statement, which reads the versions it needs through the history tables'
indexes; how is told in :mod:`sqlalchemy_chronicle.read._asof`.
"""

from __future__ import annotations

import decimal
import numbers
import threading
import uuid
from collections.abc import Mapping
from typing import Any, Final, NamedTuple, TypeVar, overload

import pendulum
from sqlalchemy import Connection, Engine, Select, event, inspect, select
from sqlalchemy.orm import (
    Mapper,
    ORMExecuteState,
    Session,
    UOWTransaction,
    with_polymorphic,
)
from sqlalchemy.sql import sqltypes
from sqlalchemy.types import TypeDecorator, TypeEngine

from ..config import reading_engine
from ..errors import (
    ConfigurationError,
    HistoryPrunedError,
    InvalidKeyError,
    NotVersionedError,
    ReadOnlyError,
)
from ..instants import TimeLike, to_instant
from ..schema.columns import stamp
from ..schema.history import RETIRED_COLUMN, HistorySpec, Version, spec_for
from . import _asof
from .horizon import check_first_versions, check_horizon, session_horizons, tables_reached

__all__ = [
    "AsOfSession",
    "Change",
    "as_of",
    "changes",
    "check_key",
    "history",
    "next_version",
    "normalize_key",
    "previous_version",
    "query_as_of",
    "spec_of",
]

_MISSING: Final[Any] = object()
M = TypeVar("M")


# -- as-of queries -----------------------------------------------------------------------------


def refuse_async(source: Any, name: str) -> None:
    """Refuse an async session, engine or connection given to the synchronous ``name``."""
    if any(hasattr(source, a) for a in ("sync_session", "sync_engine", "sync_connection")):
        raise ConfigurationError(
            f"{name}() was given {type(source).__name__}: with asyncio, await "
            f"sqlalchemy_chronicle.asyncio.{name}(...) instead, which takes it"
        )


def spec_of(cls: Any) -> HistorySpec:
    """The :class:`HistorySpec` of a versioned class; anything else raises NotVersionedError."""
    spec = spec_for(cls) if isinstance(cls, type | Mapper) else None
    if spec is None:
        name = getattr(cls, "__name__", repr(cls))
        raise NotVersionedError(f"{name} is not a versioned class (it does not inherit Versioned)")
    return spec


def query_as_of(cls: type[M], when: TimeLike, *, provenance: bool = False) -> Select[Version[M]]:
    """A SELECT of the versions of ``cls`` that were current at ``when``.

    One row per row of ``cls``'s table that existed at ``when``, as an instance of
    ``cls.__history__`` holding the values it had then. Add criteria, ordering, limits and joins
    as to any ``select(cls)``; criteria on ``cls``'s attributes (``Article.title == "x"``) and on
    the history class's (``Article.__history__.version > 1``) both filter the historic values,
    and other versioned classes joined in are read as of ``when`` too. Execute it with a
    :class:`~sqlalchemy.orm.Session`, which hands the time to the statement (it is kept in the
    statement's execution options, so an enclosing statement does not have it).

    The library's columns other than ``version`` (``valid_from``, ``valid_to``, ``operation``,
    ``transaction_id``, ``restored_from``, ``retired_values``) are read on first use: reading one
    of them reads all of them, in one statement for that object. That spares a snapshot a third
    of its cost when only the model's values are wanted. ``provenance=True`` reads them with the
    rows.
    """
    query = _asof.AsOfQuery.made_for(cls)
    if query is None:
        query = _asof.AsOfQuery.of(spec_of(cls))
    _watch_as_of()
    statement = query.full_statement if provenance else query.statement
    return statement.execution_options(**{_asof.PARAM: to_instant(when)})


class AsOfSession(Session):
    """A read-only :class:`~sqlalchemy.orm.Session` that sees versioned tables as at :attr:`when`.

    Made by :func:`as_of`. Statements run through it read every versioned table as it was at
    :attr:`when`; tables that are not versioned are read as they are now. It takes its
    connections from ``source`` (a session, whose binds it follows) or from ``bind``.
    """

    when: pendulum.DateTime
    """The time this session shows, in UTC."""

    def __init__(self, when: TimeLike, *, source: Session | None = None, **kwargs: Any) -> None:
        self.when = to_instant(when)
        _watch_as_of()
        self._source = source
        self._reading: dict[Engine, Engine] = {}
        super().__init__(**kwargs)

    def get_bind(self, mapper: Any = None, *, clause: Any = None, **kw: Any) -> Any:
        """The source session's bind for ``mapper``, unless this session was given its own.

        An engine is taken as :func:`~sqlalchemy_chronicle.config.reading_engine` gives it, so
        that a time-travel session left open on a SQLite file holds no lock that would fail
        another session's commit.
        """
        if self._source is not None and kw.get("bind") is None:
            kw.pop("bind", None)
            bind = self._source.get_bind(mapper, clause=clause, **kw)
        else:
            bind = super().get_bind(mapper, clause=clause, **kw)
        if isinstance(bind, Engine):
            reading = self._reading.get(bind)
            if reading is None:
                reading = self._reading[bind] = reading_engine(bind)
            return reading
        return bind

    def __repr__(self) -> str:
        return f"<AsOfSession at {self.when}>"


def as_of(source: Session | Engine | Connection, when: TimeLike) -> AsOfSession:
    """A read-only session showing the database as it was at ``when``.

    ``source`` is the session (or engine, or connection) whose database to look at. The new
    session has its own identity map and its own transaction on the same binds; close it when
    done, for example with ``with as_of(session, when) as past: ...``.
    """
    refuse_async(source, "as_of")
    if isinstance(source, Session):
        return AsOfSession(when, source=source)
    return AsOfSession(when, bind=source)


def _on_execute(state: ORMExecuteState) -> None:
    """Hand the as-of time to the statements of as-of queries and of time-travel sessions.

    Every ORM statement of every session passes here once :func:`_watch_as_of` has run, so a
    statement that reads the present (no as-of query, not a time-travel session) returns at the
    first test.
    """
    options = state.execution_options
    query: _asof.AsOfQuery | None = options.get(_asof.OPTION)
    session = state.session
    if query is None and not isinstance(session, AsOfSession):
        return
    view = session.when if isinstance(session, AsOfSession) else None
    if view is not None and state.statement.is_dml:
        raise ReadOnlyError(f"{session!r} shows the past and cannot run INSERT, UPDATE or DELETE")
    if query is not None:
        when = options[_asof.PARAM]
        state.statement = query.adapt(state.statement)
        if session.identity_map and "populate_existing" not in options:
            # A version already in the session may be stale (its valid_to is set when the row
            # changes again): refresh it. With nothing in the session there is nothing to
            # refresh, and populating every row "existing" would only cost time per row.
            state.update_execution_options(populate_existing=True)
    else:
        when = view
    horizons = session_horizons(session, state.bind_arguments)
    if horizons and any(when < horizon for horizon in horizons.values()):
        check_horizon(horizons, tables_reached(state.statement), when)
    if isinstance(state.parameters, Mapping) or state.parameters is None:
        state.parameters = {**(state.parameters or {}), _asof.PARAM: when}


def _refuse_flush(session: Session, flush_context: UOWTransaction, instances: Any) -> None:
    raise ReadOnlyError(
        f"{session!r} shows the past and cannot flush changes; make them in the session it was "
        "made from"
    )


def _refuse_version_write(mapper: Mapper[Any], connection: Connection, target: Any) -> None:
    raise ReadOnlyError(
        f"{target!r} is a stored version, which cannot be changed or deleted; change the live "
        "object instead"
    )


# -- one row's versions ------------------------------------------------------------------------


def normalize_key(spec: HistorySpec, key: Any) -> tuple[Any, ...]:
    """A primary key given as a value, a tuple or a mapping, as the identity tuple of ``spec``."""
    names = spec.pk_keys
    if isinstance(key, Mapping):
        try:
            values = tuple(key[name] for name in names)
        except KeyError as exc:
            raise InvalidKeyError(f"the key {key!r} lacks {exc.args[0]!r}") from exc
    elif isinstance(key, tuple):
        values = key
    else:
        values = (key,)
    if len(values) != len(names):
        raise InvalidKeyError(
            f"{spec.mapper.class_.__name__} has the primary key ({', '.join(names)}); got {key!r}"
        )
    return values


def check_key(spec: HistorySpec, values: tuple[Any, ...]) -> None:
    """Refuse a key (from :func:`normalize_key`) whose values cannot be ``spec``'s primary key.

    Each value is checked against its column's type before any SQL runs, so that every
    database gives the same :class:`~sqlalchemy_chronicle.InvalidKeyError` (PostgreSQL would
    refuse ``"abc"`` for an integer, MariaDB compare it as 0): an integer column takes an
    ``int`` (not a ``bool``, not a string of digits), a string column a ``str``, a numeric one a
    number, an ``Enum`` a member or a name, ``Uuid`` a :class:`~uuid.UUID` or a string, other
    types their ``python_type``; no column takes None. Types that do not tell what they take
    (a :class:`~sqlalchemy.types.TypeDecorator`, for example) take anything.
    """
    for column, name, value in zip(spec.mapper.primary_key, spec.pk_keys, values, strict=True):
        accepted = _key_python_types(column.type)
        if value is None:
            problem = "None"
        elif accepted is None or (isinstance(value, accepted) and not _is_bool_for(value, column)):
            continue
        else:
            problem = f"{value!r}, a {type(value).__name__}"
        takes = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in accepted or ())
        raise InvalidKeyError(
            f"{spec.mapper.class_.__name__}.{name} is {column.type!r}, so its value in a key "
            f"must be {takes or 'a value'}; got {problem}"
        )


_TYPE_NAMES: Final[dict[type, str]] = {
    numbers.Integral: "int",
    numbers.Real: "a number",
    decimal.Decimal: "Decimal",
}


def _key_python_types(type_: TypeEngine[Any]) -> tuple[type, ...] | None:
    """The Python types a primary-key column of ``type_`` takes, or None when it cannot tell."""
    if isinstance(type_, TypeDecorator):
        return None
    if isinstance(type_, sqltypes.Enum):
        enum_class = type_.enum_class
        return (str,) if enum_class is None else (enum_class, str)
    if isinstance(type_, sqltypes.String):
        return (str,)
    if isinstance(type_, sqltypes.Integer):
        return (numbers.Integral,)
    if isinstance(type_, sqltypes.Numeric):
        return (numbers.Real, decimal.Decimal)
    if isinstance(type_, sqltypes.Uuid):
        return (uuid.UUID, str)
    try:
        python_type = type_.python_type
    except NotImplementedError:
        return None
    return None if python_type is object else (python_type,)


def _is_bool_for(value: Any, column: Any) -> bool:
    """Whether ``value`` is a bool given for a column that is not boolean (bool is an int)."""
    return isinstance(value, bool) and not isinstance(column.type, sqltypes.Boolean)


@overload
def history(session: Session, target: type[M], key: Any, /) -> list[Version[M]]: ...
@overload
def history(session: Session, target: M, /) -> list[Version[M]]: ...


def history(session: Session, target: Any, key: Any = _MISSING, /) -> list[Version[Any]]:
    """Every version of one row, oldest first, as history objects (``Model.__history__``).

    Either ``history(session, obj)``, or ``history(session, Model, key)`` with the primary key
    (a tuple for a composite key), which also reads the history of a deleted row. Delete markers
    are included. One statement; every attribute comes loaded. A key of the wrong shape or type
    raises :class:`~sqlalchemy_chronicle.InvalidKeyError` (see :func:`check_key`). When the
    table's history was pruned (see :func:`~sqlalchemy_chronicle.prune_history`) and the row's
    first versions are gone, or none is left, it raises
    :class:`~sqlalchemy_chronicle.HistoryPrunedError` rather than list an incomplete history.
    """
    refuse_async(session, "history")
    if key is _MISSING:
        if isinstance(target, type):
            raise InvalidKeyError(f"history(session, {target.__name__}, key) needs the key")
        spec = spec_of(type(target))
        state = inspect(target)
        identity = state.identity or state.mapper.primary_key_from_instance(target)
        if identity is None or any(value is None for value in identity):
            raise InvalidKeyError(f"{target!r} has no primary key yet, so no history")
        values = tuple(identity)
    else:
        spec = spec_of(target)
        values = normalize_key(spec, key)
        check_key(spec, values)
    root = spec.root_spec
    entity = with_polymorphic(root.history_class, "*")
    criteria = [
        getattr(entity, name) == value for name, value in zip(root.pk_keys, values, strict=True)
    ]
    query = (
        select(entity)
        .where(*criteria)
        .order_by(getattr(entity, root.columns.version))
        .execution_options(populate_existing=True)
    )
    found = list(session.scalars(query))
    if not found or stamp(found[0], "version") != 1:
        table = root.base.live.fullname
        check_first_versions(
            session_horizons(session, {"mapper": root.mapper}),
            table,
            stamp(found[0], "version") if found else None,
            repr(values),
        )
    return found


def _neighbour(session: Session, version: Version[M], number: int) -> Version[M] | None:
    spec = spec_of(version.__versioned_class__)
    identity = (*(getattr(version, name) for name in spec.pk_keys), number)
    found = session.get(type(version), identity)
    if found is None and type(version) is not spec.root_spec.history_class:
        found = session.get(spec.root_spec.history_class, identity)
    return found


def previous_version(session: Session, version: Version[M]) -> Version[M] | None:
    """The version before ``version`` of the same row, or None for the first one.

    Taken from the session's identity map when it is there (after :func:`history`, for
    example), else read by primary key. Raises :class:`~sqlalchemy_chronicle.HistoryPrunedError`
    when that version was pruned.
    """
    refuse_async(session, "previous_version")
    number: int = stamp(version, "version")
    if number <= 1:
        return None
    found = _neighbour(session, version, number - 1)
    if found is None:
        root = spec_of(version.__versioned_class__).root_spec
        table = root.base.live.fullname
        horizon = session_horizons(session, {"mapper": root.mapper}).get(table)
        if horizon is not None:
            raise HistoryPrunedError(
                f"the version before {version!r} was pruned with the history of {table!r} "
                f"before {horizon.isoformat()}",
                table=table,
                horizon=horizon,
            )
    return found


def next_version(session: Session, version: Version[M]) -> Version[M] | None:
    """The version after ``version`` of the same row, or None for the latest one."""
    refuse_async(session, "next_version")
    return _neighbour(session, version, stamp(version, "version") + 1)


class Change(NamedTuple):
    """The values of one attribute in two versions."""

    old: Any
    new: Any


def changes(old: Version[M] | None, new: Version[M]) -> dict[str, Change]:
    """The attributes whose values differ from ``old`` to ``new``, in mapper order.

    ``old`` None stands for "no row yet", so every attribute of ``new`` with a value counts as
    changed. Both must be versions of the same row. No SQL is run when the versions are loaded.
    Columns dropped from the model since (their values kept in ``retired_values``) are compared
    too, under their old names.
    """
    spec = spec_of(new.__versioned_class__)
    if old is not None:
        old_key = [getattr(old, name) for name in spec.pk_keys]
        new_key = [getattr(new, name) for name in spec.pk_keys]
        if old_key != new_key:
            raise InvalidKeyError(f"{old!r} and {new!r} are versions of different rows")
    found: dict[str, Change] = {}
    for prop in spec.mapper.column_attrs:
        if prop.key not in spec.tracked_keys:
            continue
        before = getattr(old, prop.key, None) if old is not None else None
        after = getattr(new, prop.key, None)
        if before != after:
            found[prop.key] = Change(before, after)
    retired_before = (stamp(old, RETIRED_COLUMN) if old is not None else None) or {}
    retired_after = stamp(new, RETIRED_COLUMN) or {}
    for name in [*retired_before, *(n for n in retired_after if n not in retired_before)]:
        if name not in found and retired_before.get(name) != retired_after.get(name):
            found[name] = Change(retired_before.get(name), retired_after.get(name))
    return found


# -- installation ------------------------------------------------------------------------------

_installed = False
_watching = False
_watching_lock = threading.Lock()


def _watch_as_of() -> None:
    """Register :func:`_on_execute` on every session, once per process.

    It is registered by the first :func:`query_as_of` and the first time-travel session, not
    on import, together with the as-of compilers of tables and columns
    (:func:`~sqlalchemy_chronicle.read._asof.install_compilers`): SQLAlchemy runs the ORM's
    preparation of a statement twice for a session with any ``do_orm_execute`` listener, and
    the compilers take part in compiling every statement, so an application that never reads
    the past pays for neither (``python -m benchmarks.hooks``). The listener goes first, so that
    a time-travel session refuses a bulk ``UPDATE`` before the bulk-statement hook of
    :mod:`sqlalchemy_chronicle.capture.bulk` versions it.
    """
    global _watching
    if _watching:
        return
    with _watching_lock:
        if not _watching:
            _asof.install_compilers()
            event.listen(Session, "do_orm_execute", _on_execute, insert=True)
            _watching = True


def install() -> None:
    """Register the listeners that time travel needs, once per process."""
    global _installed
    if _installed:
        return
    event.listen(AsOfSession, "before_flush", _refuse_flush)
    event.listen(Version, "before_update", _refuse_version_write, propagate=True)
    event.listen(Version, "before_delete", _refuse_version_write, propagate=True)
    _installed = True


install()
