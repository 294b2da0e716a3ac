"""As-of SQL: a versioned table read as it was at one point in time.

Time travel comes down to one substitution. Where a statement reads the versioned live table
``article``, it reads instead the derived table ::

    (SELECT h.id AS id, h.title AS title, ..., h.version AS version, h.valid_from AS valid_from, ...
     FROM article_history AS h
     WHERE h.valid_from <= :chronicle_as_of
       AND (h.valid_to > :chronicle_as_of OR h.valid_to IS NULL)) AS article

that is, the one version of each row whose closed-open validity interval contains the time, under
the live table's own name and with the live table's column names. Every column reference written
for the live table (``article.title``) is therefore still valid SQL and now means the historic
value; a delete marker (an empty interval) never matches, a row created later has no version that
early. A column left out of history reads as NULL. For a joined-inheritance subclass table, whose
history has no interval columns, the derived table joins the base history table on
``(key, version)`` and filters there. The planner merges such a derived table into the enclosing
query (PostgreSQL, MariaDB and SQLite all do for this shape), so a filter on the primary key or on
a foreign key reaches the history table's primary key or foreign-key index: one statement, no
per-row subquery, whatever the length of the history.

The substitution is made in two places:

* **At compile time, for every table.** Once the process has read the past (see
  :func:`install_compilers`), a statement executed with the parameter ``chronicle_as_of``
  renders each versioned :class:`~sqlalchemy.Table` of its FROM clause as the derived table
  above (:func:`_compile_table`). The ORM compiles relationship loads (lazy,
  joined, select-in, subquery), ``Session.get`` and secondary tables into ordinary SQL, so all of
  them travel in time without knowing it. The parameter's name is among the compiled statement's
  "column keys", which are part of SQLAlchemy's compiled-cache key: the as-of form of a statement
  is cached apart from its live form, and one compiled form serves every time, which is a bound
  value.

* **In the statement, for the queried class.** :class:`Snapshot` is that derived table as a
  statement element, standing in for the live table: it hides the live table from the FROM list
  and counts as derived from it, so criteria and relationship joins written against the model's
  attributes land on it, and the history class is aliased to it so that the rows load as
  versions (:class:`AsOfQuery`).

In both the time is the parameter ``chronicle_as_of``, which the session supplies (see
:func:`sqlalchemy_chronicle.query._on_execute`): from the time-travel session, or from the
execution options of a ``query_as_of()`` statement.

What does not depend on the time is made once per class (:class:`AsOfQuery`: the snapshots, the
aliased class, the statement), so that a point lookup costs about what a primary-key read of the
history class costs: a snapshot's cache key names its inner SELECT by identity instead of
walking it, a statement is rewritten only when it names history columns, and the validity times
convert once per distinct value (:class:`~sqlalchemy_chronicle.types.UTCDateTime`). The rows of
an as-of query leave out the library's columns but ``version`` until one is used (see
:mod:`sqlalchemy_chronicle.read._provenance`): they were half of what the database sends per row.
"""

from __future__ import annotations

import itertools
import warnings
import weakref
from collections.abc import Iterable, Mapping
from typing import Any, Final

from sqlalchemy import (
    Column,
    ColumnElement,
    FromClause,
    Select,
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
)
from sqlalchemy.exc import DontWrapMixin
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.cache_key import HasCacheKey
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import (
    BinaryExpression,
    BindParameter,
    BooleanClauseList,
    ColumnClause,
)
from sqlalchemy.sql.selectable import Subquery, TableClause
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeEngine
from sqlalchemy.util import LRUCache

from ..errors import ConfigurationError, UnversionedTableWarning
from ..schema._base import LibraryBase
from ..schema.history import (
    INTERVAL_COLUMNS,
    HistorySpec,
    TableHistory,
    Version,
    interval_index_wanted,
    table_history,
)
from ..types import UTCDateTime
from ._provenance import DEFERRED_COLUMNS, Deferral

__all__ = ["OPTION", "PARAM", "AsOfQuery", "Snapshot", "as_of_select"]

PARAM: Final = "chronicle_as_of"
"""The execution parameter that carries the time, and switches a statement to as-of reading."""

OPTION: Final = "chronicle_as_of_query"
"""The execution option under which a :func:`~sqlalchemy_chronicle.query_as_of` statement keeps
its :class:`AsOfQuery`; its time is the execution option :data:`PARAM`."""

_COPIED_KWARGS: Final = ("literal_binds", "literal_execute", "render_postcompile")
_SHAPES: Final = 500
"""How many statement shapes (cache keys) each :class:`AsOfQuery` remembers for :meth:`adapt`;
SQLAlchemy's compiled cache keeps as many by default."""


class _TypedNull(ColumnElement[Any]):
    """``NULL`` standing for a column that history does not keep.

    PostgreSQL gets ``CAST(NULL AS <type>)``, since it would otherwise type the derived column as
    text and refuse to compare it with, say, an integer; the other backends take a bare NULL.
    """

    __visit_name__ = "chronicle_typed_null"
    inherit_cache = True
    _traverse_internals = [("type", InternalTraversal.dp_type)]  # noqa: RUF012 - SQLAlchemy's form

    def __init__(self, type_: TypeEngine[Any]) -> None:
        self.type = type_


@compiles(_TypedNull)
def _compile_typed_null(element: _TypedNull, compiler: SQLCompiler, **kw: Any) -> str:
    if compiler.dialect.name == "postgresql":
        type_sql = compiler.dialect.type_compiler_instance.process(element.type)
        return f"CAST(NULL AS {type_sql})"
    return "NULL"


class SessionRequiredError(ConfigurationError, DontWrapMixin):
    """An as-of statement executed without the ORM session that hands it its time."""


def _no_time() -> Any:
    """Refuse to run an as-of statement whose time no session handed over (see :data:`_WHEN`)."""
    raise SessionRequiredError(
        "an as-of query (query_as_of()) is executed as a statement of its own by an ORM Session, "
        "which hands it its time: session.execute(query) or session.scalars(query), not "
        "Connection.execute() (wrap a connection: Session(bind=connection)); a statement that "
        "wraps it needs its options: .execution_options(**query.get_execution_options())"
    )


_WHEN: Final = bindparam(PARAM, type_=UTCDateTime(), callable_=_no_time)
"""The time of an as-of read; the session gives its value, and without one :func:`_no_time`
refuses the statement."""


def as_of_select(live: Table) -> Select[Any]:
    """The SELECT of the derived table that stands for ``live`` as of ``chronicle_as_of``.

    Its columns are named like the live table's, followed by ``version`` and, for a hierarchy's
    base table, the interval columns.
    """
    found = table_history(live)
    if found is None:
        raise ConfigurationError(f"table {live.name!r} is not versioned")
    own, base = found
    history = own.history
    copies = {live_column.name: copy for live_column, copy in own.copied}
    columns: list[ColumnElement[Any]] = [
        (copies[column.name] if column.name in copies else _TypedNull(column.type)).label(
            column.name
        )
        for column in live.columns
    ]
    columns.append(history.c.version.label(history.c.version.name))
    if own is base:
        columns += [history.c[key].label(history.c[key].name) for key in INTERVAL_COLUMNS[1:]]
    interval = base.history
    query = select(*columns)
    if own is not base:
        query = query.join_from(history, interval, _same_version(own, base))
    return query.where(
        interval.c.valid_from <= _WHEN,
        or_(interval.c.valid_to > _WHEN, interval.c.valid_to.is_(None)),
    ).correlate(None)


def _same_version(own: TableHistory, base: TableHistory) -> ColumnElement[bool]:
    pairs = zip(own.key, base.key, strict=True)
    return and_(own.history.c.version == base.history.c.version, *(a == b for a, b in pairs))


def _compile_table(element: Table, compiler: SQLCompiler, **kw: Any) -> str:
    """Render a versioned table as its as-of derived table when the statement asks for it."""
    if (
        kw.get("asfrom")
        and not kw.get("iscrud")
        and PARAM in (getattr(compiler, "column_keys", None) or ())
    ):
        live = element._deannotate()
        if isinstance(live, Table) and table_history(live) is not None:
            return _render_as_of(element, live, compiler, kw)
        if isinstance(live, Table):
            _warn_unversioned(live)
    rendered: str = compiler.visit_table(element, **kw)  # type: ignore[no-untyped-call]
    return rendered


def _warn_unversioned(live: Table) -> None:
    """Warn that a time-travel read takes ``live`` as it is now.

    Statements compile once per shape (SQLAlchemy's compiled cache), and Python shows a warning
    once per message and place, so an application sees it about once per table.
    """
    if live.info.get("chronicle") or live.key in LibraryBase.metadata.tables:
        return
    warnings.warn(
        f"a time-travel read takes the table {live.fullname!r} as it is now: it keeps no "
        "history (version its class, or call sqlalchemy_chronicle.versioned_table() on an "
        "association table)",
        UnversionedTableWarning,
        stacklevel=2,
    )


def _compile_column(element: Column[Any], compiler: SQLCompiler, **kw: Any) -> str:
    """Render a column; one of a schema-qualified versioned table without the schema as of a time.

    The derived table that stands for such a table (:func:`_compile_table`) is named like it but
    has no schema, so ``myschema.article.title`` becomes ``article.title`` there.
    """
    rendered: str = compiler.visit_column(element, **kw)
    table = element.table
    if (
        isinstance(table, Table)
        and table.schema is not None
        and PARAM in (getattr(compiler, "column_keys", None) or ())
    ):
        live = table._deannotate()
        if isinstance(live, Table) and table_history(live) is not None:
            preparer = compiler.preparer
            schema = preparer.schema_for_object(live)
            if schema:
                prefix = f"{preparer.quote_schema(schema)}."
                if rendered.startswith(prefix):
                    return rendered[len(prefix) :]
    return rendered


_compilers_installed = False


def install_compilers() -> None:
    """Register :func:`_compile_table` and :func:`_compile_column`, once per process.

    They take part in compiling every table and column of every statement of the application
    (when a statement is not in SQLAlchemy's compiled cache), so they are registered by the
    first as-of query or time-travel session (:func:`sqlalchemy_chronicle.read.query.
    _watch_as_of`), before any statement can carry the parameter ``chronicle_as_of``.
    """
    global _compilers_installed
    if not _compilers_installed:
        compiles(Table)(_compile_table)
        compiles(Column)(_compile_column)
        _compilers_installed = True


def _render_as_of(element: Table, live: Table, compiler: SQLCompiler, kw: dict[str, Any]) -> str:
    enclosing: Any = kw.get("enclosing_alias")
    aliased_here = enclosing is not None and enclosing.element is element
    found = _point_of(compiler, [enclosing if aliased_here else element], live)
    query = as_of_select(live) if found is None else _point_select(live, found, compiler)
    body = _render_derived(element, live.fullname, query, compiler, kw)
    if aliased_here:
        return body  # the alias adds its own name
    suffix: str = compiler.get_render_as_alias_suffix(  # type: ignore[no-untyped-call]
        compiler.preparer.quote(live.name)
    )
    return body + suffix


def _render_derived(
    element: FromClause, name: str, query: Select[Any], compiler: SQLCompiler, kw: dict[str, Any]
) -> str:
    """``(<query>)``, the body of the derived table that stands for ``element`` (``name``)."""
    linter = kw.get("from_linter")
    if linter is not None:
        linter.froms[element] = name
    inner = {key: kw[key] for key in _COPIED_KWARGS if key in kw}
    return f"({compiler.process(query, asfrom=True, **inner)})"


def _point_of(
    compiler: SQLCompiler, targets: Iterable[FromClause], live: Table
) -> tuple[BindParameter[Any], ...] | None:
    """The values the statement being compiled gives the whole key of the live table, if any.

    ``targets`` are what the columns of the live table (or its alias, or its :class:`Snapshot`) in
    the FROM list of the SELECT being compiled belong to (a snapshot's criteria may name the live
    table's columns, see :class:`Snapshot`). A point read constrains every column of the key with
    an equality to a bound value among the conjuncts of that SELECT's ``WHERE`` (``Session.get``,
    a many-to-one lazy load, ``query_as_of(...).where(Model.id == x)``); the derived table may
    then hold that row's version only (:func:`_point_select`), since the statement keeps no other
    row of it, whatever its joins.
    """
    stack = compiler.stack
    if not stack:
        return None
    criteria = getattr(stack[-1].get("selectable"), "_where_criteria", None)
    if not criteria:
        return None
    found = table_history(live)
    assert found is not None
    own = found[0]
    names = [live_column.name for live_column, _ in own.copied[: len(own.key)]]
    wanted = {hash(target) for target in targets}
    values: dict[str, BindParameter[Any]] = {}
    pending = list(criteria)
    while pending:
        criterion = pending.pop()
        if isinstance(criterion, BooleanClauseList) and criterion.operator is operators.and_:
            pending.extend(criterion.clauses)
        elif isinstance(criterion, BinaryExpression) and criterion.operator is operators.eq:
            for column, value in (
                (criterion.left, criterion.right),
                (criterion.right, criterion.left),
            ):
                if (
                    isinstance(column, ColumnClause)
                    and isinstance(value, BindParameter)
                    and not value.expanding
                    and column.table is not None
                    and hash(column.table) in wanted
                    and column.name in names
                ):
                    values.setdefault(column.name, value)
    if len(values) < len(names):
        return None
    return tuple(values[name] for name in names)


def _point_select(
    live: Table, values: tuple[BindParameter[Any], ...], compiler: SQLCompiler
) -> Select[Any]:
    """:func:`as_of_select` of the one row whose key has ``values``, probing one index entry.

    Through the key alone the database reads every version of the row and keeps the one whose
    interval holds the time. Here a scalar subquery first finds one bound of that version's
    interval by a single probe of an index, and the version is then looked up by key and bound:
    ``valid_to IS NULL OR valid_to = (SELECT MIN(valid_to) .. WHERE key AND valid_to > :t)``
    through the interval index ``(<key>, valid_to, valid_from)``; on SQLite ``valid_to IS
    (SELECT ..)``, one condition its planner seeks in the index (the ``OR`` it read as a scan of
    the row's entries once a deep history's statistics were gathered); on MySQL and MariaDB,
    which have the start index ``(<key>, valid_from)`` instead (see
    :func:`~sqlalchemy_chronicle.schema.history.interval_index_wanted`),
    ``valid_from = (SELECT MAX(valid_from) .. WHERE key AND valid_from <= :t)``. Since a row's
    intervals do not overlap, the version that holds the time ends first among those that end
    after it, and begins last among those that begin at or before it; the interval condition of
    :func:`as_of_select` stays, so an answer is never more than it would be without the probe.
    The cost no longer grows with the number of versions of the row (``benchmarks/README.md``).
    """
    found = table_history(live)
    assert found is not None
    interval = found[1].history
    base = found[1]
    probe = interval.alias("chronicle_probe")
    same = [probe.c[column.key] == value for column, value in zip(base.key, values, strict=True)]
    dialect = compiler.dialect.name
    if interval_index_wanted(dialect):
        end = select(func.min(probe.c.valid_to)).where(*same, probe.c.valid_to > _WHEN)
        ending = end.scalar_subquery()
        if dialect == "sqlite":
            bound = interval.c.valid_to.is_not_distinct_from(ending)
        else:
            bound = or_(interval.c.valid_to.is_(None), interval.c.valid_to == ending)
    else:
        start = select(func.max(probe.c.valid_from)).where(*same, probe.c.valid_from <= _WHEN)
        bound = interval.c.valid_from == start.scalar_subquery()
    at_key = [column == value for column, value in zip(base.key, values, strict=True)]
    return as_of_select(live).where(*at_key, bound)


class Snapshot(Subquery):
    """The as-of derived table of one versioned table, standing in for it in a statement.

    It is named like the live table, hides the live table from the FROM list (so that criteria on
    the model's columns do not add the live table back) and counts as derived from it (so that the
    ORM starts a relationship join such as ``.join(Order.lines)`` from it).
    """

    inherit_cache = True
    live: Table
    _inner: Select[Any]
    _binds: tuple[BindParameter[Any], ...] | None

    @classmethod
    def of(cls, live: Table) -> Snapshot:
        """The snapshot of ``live`` at the time of the parameter ``chronicle_as_of``."""
        inner = as_of_select(live)
        snapshot = cls._construct(inner, name=live.name)
        snapshot.live = live
        snapshot._inner = inner
        found = inner._generate_cache_key()
        snapshot._binds = None if found is None else tuple(found.bindparams)
        return snapshot

    def _gen_cache_key(self, anon_map: Any, bindparams: list[BindParameter[Any]]) -> Any:
        """A short cache key: the inner SELECT by identity, instead of its whole structure.

        Every statement of an as-of query (and every relationship load built on it) embeds this
        derived table, and SQLAlchemy computes the cache key of a statement at each execution:
        walking the inner SELECT's dozen labelled columns and its interval condition each time
        was most of that key's cost. The inner SELECT is made once and never changed in place,
        so the object itself identifies the SQL it compiles to, as a :class:`~sqlalchemy.Table`
        does in its own key; a copy whose inner SELECT was rewritten (an adapter that descends
        into it) holds another object and gets another key. The inner bound parameters (the
        time) are reported as the full traversal would.
        """
        binds = self._binds
        if binds is None or self.element is not self._inner:
            return super()._gen_cache_key(anon_map, bindparams)
        id_, found = anon_map.get_anon(self)
        if found:
            return (id_, self.__class__)
        bindparams.extend(binds)
        key: tuple[Any, ...] = (id_, self.__class__, self.element, self.name)
        if self._annotations:
            # Memoized on the annotated copy, as SQLAlchemy does for a table's columns: the
            # copies come from the AsOfQuery's aliased class, which is made once.
            key += self._annotations_cache_key
        return key

    @property
    def _hide_froms(self) -> Iterable[FromClause]:
        return itertools.chain((self.live,), super()._hide_froms)

    def is_derived_from(self, fromclause: FromClause | None) -> bool:
        """True for the live table too; see the class documentation."""
        if fromclause is not None and hash(fromclause) == hash(self.live):
            return True
        return super().is_derived_from(fromclause)


@compiles(Snapshot)
def _compile_snapshot(element: Snapshot, compiler: SQLCompiler, **kw: Any) -> str:
    """Render a snapshot; that of one row's version only in a point read (see :func:`_point_of`)."""
    enclosing = kw.get("enclosing_alias")
    if kw.get("asfrom") and (enclosing is None or enclosing.element is not element):
        found = _point_of(compiler, [element, element.live], element.live)
        if found is not None:
            query = _point_select(element.live, found, compiler)
            original: FromClause = element._de_clone()  # type: ignore[no-untyped-call]
            body = _render_derived(original, element.name, query, compiler, kw)
            suffix: str = compiler.get_render_as_alias_suffix(  # type: ignore[no-untyped-call]
                compiler.preparer.format_alias(element, element.name)
            )
            return body + suffix
    rendered: str = compiler.visit_subquery(element, **kw)  # type: ignore[no-untyped-call]
    return rendered


class AsOfQuery:
    """The snapshots behind the :func:`~sqlalchemy_chronicle.query_as_of` statements of a class.

    ``entity`` is the history class aliased to the snapshot of its table (to the join of the
    snapshots of its tables, for a joined-inheritance subclass). :meth:`adapt` moves criteria
    written against the history class itself onto the snapshots. The time is not part of it (it
    is the parameter ``chronicle_as_of``), so one serves every time: see :meth:`of`.
    """

    @classmethod
    def of(cls, spec: HistorySpec) -> AsOfQuery:
        """The as-of query of ``spec``'s class, made once."""
        query = _queries.get(spec.mapper.class_)
        if query is None:
            query = _queries[spec.mapper.class_] = cls(spec)
        return query

    @staticmethod
    def made_for(versioned: Any) -> AsOfQuery | None:
        """The as-of query of the class ``versioned`` if it was made already, else None.

        A point lookup finds its query here without inspecting the class.
        """
        try:
            return _queries.get(versioned)
        except TypeError:  # not weakly referenceable, so not a class
            return None

    def __init__(self, spec: HistorySpec) -> None:
        snapshots = [Snapshot.of(table.live) for table in spec.tables]
        selectable: FromClause = snapshots[0]
        base = spec.tables[0]
        for table, snapshot in zip(spec.tables[1:], snapshots[1:], strict=True):
            onclause = and_(
                *(
                    snapshot.c[own.name] == snapshots[0].c[other.name]
                    for own, other in zip(table.key, base.key, strict=True)
                )
            )
            selectable = selectable.join(snapshot, onclause)
        self.selectable = selectable
        self.entity: type[Version[Any]] = aliased(spec.history_class, selectable)
        self.snapshots: Mapping[FromClause, Snapshot] = {
            table.history: snapshot for table, snapshot in zip(spec.tables, snapshots, strict=True)
        }
        self._shapes: LRUCache[tuple[Any, ...], bool] = LRUCache(_SHAPES)
        names = spec.root_spec.columns
        self.deferral = Deferral.of(
            self.entity, [getattr(self.entity, names.name(key)) for key in DEFERRED_COLUMNS]
        )
        """The option that leaves the library's columns out of the rows of :attr:`statement`."""
        self.full_statement: Select[Any] = (
            select(self.entity).select_from(self.entity).execution_options(**{OPTION: self})
        )
        """``select(entity)`` loading every column (``query_as_of(..., provenance=True)``)."""
        self.statement: Select[Any] = self.full_statement.options(self.deferral)
        """``select(entity)`` as :func:`~sqlalchemy_chronicle.query_as_of` returns it, without the
        time: built once, since building it costs as much as a small query's execution."""

    def adapt(self, statement: Executable) -> Executable:
        """``statement`` with the history class's columns replaced by the snapshots' columns.

        Most statements name no column of the history tables (criteria on the model's attributes
        are already right, see :class:`Snapshot`), and copying the statement then costs as much
        as the rest of a point lookup: such a statement is returned as it is, and keeps the cache
        key it memoizes, which its execution needs anyway. Whether a statement names history
        columns depends only on its shape, which is what its cache key describes, so the answer
        is remembered per cache key (up to :data:`_SHAPES` of them) and a statement of a known
        shape costs one dictionary look-up.
        """
        found = statement._generate_cache_key() if isinstance(statement, HasCacheKey) else None
        if found is None:
            names = self._names_history(statement)
        else:
            known = self._shapes.get(found.key)
            if known is None:
                known = self._shapes[found.key] = self._names_history(statement)
            names = known
        if not names:
            return statement
        snapshots = self.snapshots

        def replace(element: Any, **kw: Any) -> Any:
            if self._is_as_of(element):
                return element  # already as of the time: do not descend
            if isinstance(element, ColumnClause):
                snapshot = snapshots.get(element.table) if element.table is not None else None
                if snapshot is not None:
                    return snapshot.corresponding_column(element)
            return None

        options: dict[str, Any] = {}
        assert isinstance(statement, visitors.ExternallyTraversible)
        adapted = visitors.replacement_traverse(statement, options, replace)
        assert isinstance(adapted, Executable)
        return adapted

    def _is_as_of(self, element: Any) -> bool:
        """Whether ``element`` is a snapshot or the join of them, which :meth:`adapt` skips."""
        return isinstance(element, FromClause) and (
            isinstance(element, Snapshot) or hash(element) == hash(self.selectable)
        )

    def _names_history(self, statement: Executable) -> bool:
        """Whether :meth:`adapt` would replace anything in ``statement``.

        The walk visits what the replacement visits (the children of each element, not those of
        the snapshots), without copying; a table has no children worth visiting.
        """
        snapshots = self.snapshots
        stack: list[Any] = [statement]
        seen: set[int] = set()
        while stack:
            element = stack.pop()
            if id(element) in seen:
                continue
            seen.add(id(element))
            if isinstance(element, ColumnClause):
                if element.table is not None and element.table in snapshots:
                    return True
            elif isinstance(element, TableClause) or self._is_as_of(element):
                continue
            stack.extend(element.get_children())
        return False


_queries: weakref.WeakKeyDictionary[type[Any], AsOfQuery] = weakref.WeakKeyDictionary()
