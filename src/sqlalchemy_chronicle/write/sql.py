"""SQL helpers shared by the writers.

Key lists in the form each database answers best, and the comparison of a version with its live
row in the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from operator import index
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    Row,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    cast,
    exists,
    false,
    func,
    insert,
    literal_column,
    or_,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlalchemy.types import ARRAY as AnyArray
from sqlalchemy.types import JSON, Integer, String, Text

if TYPE_CHECKING:
    from ..schema.history import TableHistory

__all__ = [
    "CHUNK",
    "Use",
    "by_primary_key",
    "chunks",
    "insert_rows",
    "is_mysql",
    "key_in",
    "keyed_chunks",
    "keyed_join",
    "keyed_rows",
    "reads_json_tables",
    "rows_in",
    "same_as_live",
    "unnest_keys",
    "update_by_primary_key",
    "versions_in",
]

CHUNK = 2000
"""Rows per IN-list; keeps every statement far below the drivers' parameter limits."""

T = TypeVar("T")

Use = Literal["read", "lock", "write"]
"""What a key list is for: a plain read, a locking read (``FOR UPDATE``, ``INSERT .. SELECT``)
or the ``WHERE`` of an ``UPDATE`` or ``DELETE``."""


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def key_in(
    columns: Sequence[ColumnElement[Any]], keys: Sequence[tuple[Any, ...]]
) -> ColumnElement[bool]:
    """``(columns) IN keys``; a plain ``IN`` for one column."""
    if len(columns) == 1:
        return columns[0].in_([key[0] for key in keys])
    return tuple_(*columns).in_(keys)


def is_mysql(connection: Connection) -> bool:
    """Whether ``connection`` talks to MySQL or MariaDB."""
    return connection.dialect.name in ("mysql", "mariadb")


def unnest_keys(columns: Sequence[ColumnElement[Any]], keys: Sequence[tuple[Any, ...]]) -> Any:
    """``keys`` as a PostgreSQL table ``(k0, k1, ..)``, one array parameter per key column.

    The SQL text is the same whatever the number of keys, so it is compiled once and the
    planner sees one array per column instead of thousands of parameters.
    """
    return _unnest(columns, list(zip(*keys, strict=True)), [f"k{n}" for n in range(len(columns))])


def _unnest(
    columns: Sequence[ColumnElement[Any]], parts: Sequence[Sequence[Any]], names: Sequence[str]
) -> Any:
    from sqlalchemy.dialects.postgresql import ARRAY

    arrays = [
        cast(bindparam(None, list(part), type_=ARRAY(c.type, dimensions=1)), ARRAY(c.type))
        for c, part in zip(columns, parts, strict=True)
    ]
    table: TableValuedAlias = func.unnest(*arrays).table_valued(*names).render_derived()
    return table


_SQLITE_UNION_CHUNK = 500
"""Rows per :func:`keyed_rows` table spelled as a ``UNION ALL`` on SQLite, whose compound
``SELECT`` has at most 500 terms."""


def keyed_chunks(
    connection: Connection, columns: Sequence[ColumnElement[Any]], rows: Sequence[tuple[Any, ...]]
) -> Iterable[Sequence[tuple[Any, ...]]]:
    """``rows`` in slices that :func:`keyed_rows` takes."""
    union = connection.dialect.name == "sqlite" and not _fit_for_json(connection, columns, rows)
    return chunks(rows, _SQLITE_UNION_CHUNK if union else CHUNK)


def keyed_rows(
    connection: Connection,
    columns: Sequence[ColumnElement[Any]],
    rows: Sequence[tuple[Any, ...]],
    names: Sequence[str],
) -> Any:
    """``rows`` as a derived table with the columns ``names``, typed like ``columns``.

    For a join that pairs live rows with values the writer decided (such as each row's new version
    number) inside one statement. The rows travel in the form each database reads fastest:
    PostgreSQL unnests one array per column; SQLite (integers and strings) and MySQL/MariaDB
    (integers) read one JSON parameter, through ``json_each`` and ``JSON_TABLE``: one parameter
    and a statement compiled once. Otherwise the rows are a ``UNION ALL`` of one-row ``SELECT``
    statements (on SQLite at most :data:`_SQLITE_UNION_CHUNK` of them; see :func:`keyed_chunks`).
    """
    dialect = connection.dialect
    if dialect.name == "postgresql":
        return _unnest(columns, list(zip(*rows, strict=True)), names)
    if dialect.name == "sqlite" and _fit_for_json(connection, columns, rows):
        document = json.dumps([list(row) for row in rows])
        each = func.json_each(bindparam(None, document, type_=String())).table_valued("value")
        parts = [
            func.json_extract(each.c.value, f"$[{n}]").label(name) for n, name in enumerate(names)
        ]
        return Select(*parts).select_from(each).subquery()
    if _integer_json_table(connection, columns, rows):
        spec = ", ".join(f"{name} BIGINT PATH '$[{n}]'" for n, name in enumerate(names))
        source = text(f"JSON_TABLE(:keyed_rows, '$[*]' COLUMNS ({spec})) AS keyed_rows")
        document = json.dumps([list(row) for row in rows])
        parts = [literal_column(f"keyed_rows.{name}").label(name) for name in names]
        return Select(*parts).select_from(source.bindparams(keyed_rows=document)).subquery()
    first, *rest = rows
    selects: list[Select[Any]] = [
        Select(
            *(
                bindparam(None, value, type_=c.type).label(name)
                for c, value, name in zip(columns, first, names, strict=True)
            )
        )
    ]
    selects += [
        Select(*(bindparam(None, v, type_=c.type) for c, v in zip(columns, row, strict=True)))
        for row in rest
    ]
    return union_all(*selects).subquery() if rest else selects[0].subquery()


def reads_json_tables(connection: Connection) -> bool:
    """Whether MySQL/MariaDB has ``JSON_TABLE`` (MySQL 8.0.4, MariaDB 10.6 and later)."""
    dialect = connection.dialect
    version = dialect.server_version_info or ()
    return is_mysql(connection) and (
        version >= ((10, 6) if getattr(dialect, "is_mariadb", False) else (8, 0, 4))
    )


def _integer_json_table(
    connection: Connection, columns: Sequence[ColumnElement[Any]], rows: Sequence[tuple[Any, ...]]
) -> bool:
    """Whether ``rows`` go to MySQL/MariaDB as a ``JSON_TABLE`` of integers.

    Integers only: a string column of ``JSON_TABLE`` has its own collation, and a join on
    columns of different collations does not use the live table's index.
    """
    return (
        reads_json_tables(connection)
        and all(isinstance(c.type, Integer) for c in columns)
        and all(type(value) is int for row in rows for value in row)
    )


def insert_rows(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    returning: Sequence[ColumnElement[Any]] = (),
) -> Sequence[Row[Any]] | None:
    """``INSERT`` ``rows`` (dictionaries with the same keys) into ``table``, in one statement.

    On PostgreSQL the rows go as one array per column, unnested by the server (a value that is
    the same object in every row, such as the transaction's time, as one parameter): one round
    trip and one compiled statement, where an executemany sends every row on its own. Elsewhere,
    and for columns stored as arrays (``unnest`` would flatten them), an executemany.

    With ``returning``, the rows as stored (in no particular order), or None where the database
    cannot return inserted rows (MySQL).
    """
    first = rows[0]
    dialect = connection.dialect
    if (
        dialect.name != "postgresql"
        or len(rows) == 1
        or any(isinstance(table.c[key].type.dialect_impl(dialect), AnyArray) for key in first)
    ):
        can_return = (
            dialect.insert_executemany_returning if len(rows) > 1 else dialect.insert_returning
        )
        if not (returning and can_return):
            connection.execute(insert(table), rows)
            return None
        return connection.execute(insert(table).returning(*returning), rows).all()
    same = [key for key in first if all(row[key] is first[key] for row in rows)]
    varying = [key for key in first if key not in same]
    source = _unnest(
        [table.c[key] for key in varying], [[row[key] for row in rows] for key in varying], varying
    )
    shared = [bindparam(None, first[key], type_=table.c[key].type) for key in same]
    statement = insert(table).from_select([*varying, *same], Select(*source.c, *shared))
    if returning:
        return connection.execute(statement.returning(*returning)).all()
    connection.execute(statement)
    return None


def versions_in(
    connection: Connection,
    table: TableHistory,
    keys: Sequence[tuple[Any, ...]],
    use: Use = "read",
) -> ColumnElement[bool]:
    """``(key..., version) IN keys`` for ``table``'s history; see :func:`rows_in`."""
    return rows_in(connection, [*table.key, table.history.c.version], keys, use)


def rows_in(
    connection: Connection,
    columns: Sequence[ColumnElement[Any]],
    keys: Sequence[tuple[Any, ...]],
    use: Use = "read",
) -> ColumnElement[bool]:
    """``(columns) IN keys``, in a form each database answers from the primary key.

    PostgreSQL gets the keys as arrays it unnests and joins (a long row-constructor ``IN`` is a
    filter tried on every row there, and a long list of parameters is parsed anew by the driver
    for every statement). MariaDB may scan for a row-constructor ``IN``, and a scan that locks
    (``use`` ``"lock"`` or ``"write"``) locks every row it passes: there the keys are spelled as
    ``OR``-ed equalities, which lock the rows named and no gap between them (integer keys as SQL
    text, see :class:`_IntegerKeys`). SQLite gets integer and string keys as one JSON parameter
    (:func:`_json_keys`). Otherwise a row-constructor ``IN`` comes with an ``IN`` of the first
    column, which MariaDB and SQLite answer from the primary key (alone, SQLite scans the table
    for it).
    """
    if not keys:
        return false()
    if connection.dialect.name == "postgresql":
        unnested = unnest_keys(columns, keys)
        return tuple_(*columns).in_(Select(*unnested.c))
    if is_mysql(connection) and use != "read":
        if all(isinstance(c.type, Integer) for c in columns):
            return _IntegerKeys(columns, keys)
        return or_(*(and_(*(c == v for c, v in zip(columns, key, strict=True))) for key in keys))
    if connection.dialect.name == "sqlite" and _fit_for_json(connection, columns, keys):
        return tuple_(*columns).in_(_json_keys(columns, keys))
    if len(columns) == 1:
        return columns[0].in_([key[0] for key in keys])
    return and_(columns[0].in_({key[0] for key in keys}), tuple_(*columns).in_(keys))


def _fit_for_json(
    connection: Connection, columns: Sequence[ColumnElement[Any]], keys: Sequence[tuple[Any, ...]]
) -> bool:
    """Whether ``keys`` reach SQLite through JSON as they would as parameters.

    Integers and strings (without NUL, at which SQLite's JSON functions stop) of integer and
    string columns that do not convert their values on the way in.
    """
    dialect = connection.dialect
    if any(
        not isinstance(c.type, Integer | String) or c.type.bind_processor(dialect) for c in columns
    ):
        return False
    return all(
        type(value) is int or (type(value) is str and "\x00" not in value)
        for key in keys
        for value in key
    )


def _json_keys(columns: Sequence[ColumnElement[Any]], keys: Sequence[tuple[Any, ...]]) -> Any:
    """SQLite: ``SELECT`` of ``keys`` from one JSON parameter, through ``json_each``.

    One parameter instead of one per key value: the statement is compiled once, and the driver
    binds one value where it would bind thousands.
    """
    document = json.dumps([list(key) for key in keys])
    each = func.json_each(bindparam(None, document, type_=String())).table_valued("value")
    parts = [func.json_extract(each.c.value, f"$[{n}]") for n in range(len(columns))]
    return Select(*parts).select_from(each)


class _IntegerKeys(ColumnElement[bool]):
    """``(a = 1 AND b = 2) OR ..`` for integer keys, rendered as SQL text without parameters.

    Built as expressions, a list of two thousand keys costs thousands of objects, a cache key
    and a compilation per statement; rendered directly, it costs one string. A new list is a new
    statement, so the statements it is part of are not cached (``inherit_cache = False``).
    """

    inherit_cache = False
    type = Boolean()
    _is_implicitly_boolean = True

    def __init__(self, columns: Sequence[ColumnElement[Any]], keys: Sequence[tuple[Any, ...]]):
        self.columns = list(columns)
        self.keys = keys


@compiles(_IntegerKeys)
def _render_integer_keys(element: _IntegerKeys, compiler: SQLCompiler, **kw: Any) -> str:
    names = [compiler.process(column, **kw) for column in element.columns]
    terms = (
        " AND ".join(f"{name} = {index(value)}" for name, value in zip(names, key, strict=True))
        for key in element.keys
    )
    return "((" + ") OR (".join(terms) + "))"


def by_primary_key(connection: Connection, query: Select[Any], table: TableHistory) -> Select[Any]:
    """On MySQL/MariaDB, make a lookup in ``table``'s history use the primary key, not a scan.

    A scan would lock (``FOR UPDATE``, ``INSERT .. SELECT``) every row it passes.
    """
    if is_mysql(connection):
        for name in ("mysql", "mariadb"):
            query = query.with_hint(table.history, "FORCE INDEX (PRIMARY)", name)
    return query


def update_by_primary_key(connection: Connection, statement: Update) -> Update:
    """On MySQL/MariaDB, an ``UPDATE`` of versions named by :func:`versions_in` by primary key.

    The keys are ``OR``-ed equalities there, and the optimizer estimates every one of those
    ranges in every index that could serve it: with the start index ``(<key>, valid_from)``
    (:func:`~sqlalchemy_chronicle.schema.history.interval_index_wanted`) closing a chunk of
    versions took three times as long, with the same plan (``benchmarks/README.md``); the hint
    leaves it the primary key alone to weigh.
    """
    if is_mysql(connection):
        for name in ("mysql", "mariadb"):
            statement = statement.with_hint("FORCE INDEX (PRIMARY)", dialect_name=name)
    return statement


def keyed_join(
    connection: Connection, query: Select[Any], keyed: Any, table: Table, on: ColumnElement[bool]
) -> Select[Any]:
    """``query`` reading ``table``'s rows named by the :func:`keyed_rows` table ``keyed``.

    The key list drives the join. On MySQL/MariaDB it is made to (``STRAIGHT_JOIN``, then the
    primary key): for a small table the optimizer would otherwise scan it and lock
    (``FOR UPDATE``, ``INSERT .. SELECT``) every row it passes.
    """
    query = query.select_from(keyed).join(table, on)
    if is_mysql(connection):
        for name in ("mysql", "mariadb"):
            query = query.prefix_with("STRAIGHT_JOIN", dialect=name)
            query = query.with_hint(table, "FORCE INDEX (PRIMARY)", name)
    return query


def same_as_live(base: TableHistory) -> ColumnElement[bool]:
    """``EXISTS`` a live row equal, column for column (NULL to NULL), to the history row.

    JSON is compared as text (PostgreSQL's ``json`` has no equality); the versions copied by the
    database hold the live row's text.
    """
    history = base.history
    width = len(base.key)
    same = [live == hist for live, hist in base.copied[:width]]
    for live, hist in base.copied[width:]:
        if isinstance(live.type, JSON):
            same.append(cast(live, Text).is_not_distinct_from(cast(hist, Text)))
        else:
            same.append(live.is_not_distinct_from(hist))
    return exists().where(*same).correlate(history)
