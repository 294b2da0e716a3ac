"""The standard workload (``/work/shared/BENCHMARK.md``) for one variant on one database.

One table, ``bench_item(id int PK app-assigned, name varchar(100), qty int, price numeric(12,2),
note text null)``, is written and read through the ORM by one *variant*:

``plain``
    plain SQLAlchemy ORM, no history: the baseline every other figure is divided by;
``chronicle``
    the same class inheriting :class:`sqlalchemy_chronicle.Versioned`, default configuration
    (change log on);
``chronicle-nolog``
    the same with ``configure(changelog=False)``;
``chronicle-db``
    the same class in database capture mode (``__versioned__ = {"capture": "database"}``): the
    database's triggers write the history and the change log;
``continuum``
    SQLAlchemy-Continuum (``__versioned__ = {}``, validity strategy), when it is installed.

The phases, each timed on its own (N rows, commits every ``batch`` rows):

W1 insert
    N rows with ``Session.add_all``, a commit every ``batch`` rows.
W2 update
    5 rounds; each round selects every ``batch``-id range, sets ``qty`` and ``price`` and
    commits. Every row ends with 6 versions.
W3 delete
    ``Session.delete`` of every 4th row (loaded ``batch`` at a time), a commit every ``batch``
    deletes.
(untimed)
    ``VACUUM ANALYZE`` (PostgreSQL), ``ANALYZE TABLE`` (MariaDB), ``ANALYZE`` (SQLite) of the
    variant's own tables.
R1 point as-of
    ``lookups`` reads of (random id, random recorded commit time): the row as it was then, with
    ``query_as_of(Item, when).where(Item.id == id)``. Baseline: the same number of primary-key
    reads of the current table, ``select(Item).where(Item.id == id)``, in one session.
R2 snapshot as-of
    5 full-table reads at 5 random recorded commit times, ``query_as_of(Item, when)``, each in a
    fresh session. Baseline: 5 full reads of the current table, ``select(Item)``.
(untimed, after the writes' memory is read)
    ``related`` (1,000) live rows get two parts each in ``bench_item_part(id, item_id, label,
    qty)``, one commit (its time recorded); then every part changes and every 5th is deleted, one
    commit. ``Item.parts`` is a view-only relationship, so W1-W3 do not touch parts.
R3 time-travel session with relationships
    The ``related`` rows with their parts as of the first of those commits, in a time-travel
    session (``as_of(engine, when)``), once per loader, each in a new session: ``lazy`` (the
    rows in one query, then ``item.parts`` of each: one query per row), ``selectin``
    (``selectinload(Item.parts)``) and ``joined`` (``joinedload(Item.parts)``). Baseline: the
    same statements in a plain session, on the current tables.

The UTC time is recorded right after every commit, and an in-memory model keeps every row's
state after every commit. Correctness, untimed: 200 random (id, commit time) pairs, every R1
answer, every R2 snapshot and every R3 load (rows and parts) are compared with the model (the
baseline with the model's final state). A variant with a wrong answer has no figure.

Memory: the peak resident set size (``ru_maxrss``) of the worker process, read before W1 and
right after W3. Each variant runs in a process of its own that imports only what it needs (the
baseline does not import sqlalchemy-chronicle), so the peaks are comparable; ``ru_maxrss`` counts
everything the process holds (driver buffers and C allocations too), which ``tracemalloc`` does
not see. ``--tracemalloc`` also reports the Python-heap peak of the writes (it slows the run, so
its timings are not reported).

Run one variant with ``python -m benchmarks.workload --url URL --variant NAME --out FILE``;
``python -m benchmarks`` runs them all side by side (:mod:`benchmarks.run`).
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import json
import random
import resource
import sys
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    Select,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    inspect,
    or_,
    select,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Session,
    configure_mappers,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
)

TABLE = "bench_item"
VARIANTS = ("plain", "chronicle", "chronicle-nolog", "chronicle-db", "continuum")
PHASES = ("W1", "W2", "W3", "R1", "R2", "R3")
ROUNDS = 5
LOADERS = ("lazy", "selectin", "joined")
"""How R3 loads the parts: one timed load of the rows and their parts for each."""
PARTS_PER_ROW = 2

Row = tuple[int, str, int, Decimal, str | None]
"""One row's values: (id, name, qty, price, note)."""


# -- the values written ------------------------------------------------------------------------


def inserted(id_: int) -> Row:
    """The row W1 inserts."""
    note = f"note {id_}" if id_ % 3 == 0 else None
    return (id_, f"item {id_}", id_ % 100, Decimal(f"{id_ % 1000}.{id_ % 100:02d}"), note)


def updated(row: Row, round_: int) -> Row:
    """The row after W2's round ``round_`` (1-based); qty and price differ in every round."""
    id_ = row[0]
    qty = round_ * 1000 + id_ % 997
    price = Decimal(f"{round_ * 100 + id_ % 50}.{(id_ * round_) % 100:02d}")
    return (id_, row[1], qty, price, row[4])


def row_of(obj: Any) -> Row:
    """The values of a loaded object (live row, chronicle version or Continuum version)."""
    return (obj.id, obj.name, obj.qty, obj.price, obj.note)


Part = tuple[int, str, int]
"""One part's values: (id, label, qty)."""
Related = dict[int, tuple[Row, list[Part]]]
"""What R3 loads: each row's values and its parts', by the row's id."""


def related_of(items: Sequence[Any]) -> Related:
    """The values of loaded rows and of their parts (read through ``item.parts``)."""
    return {item.id: (row_of(item), [(p.id, p.label, p.qty) for p in item.parts]) for item in items}


# -- the in-memory model -----------------------------------------------------------------------


@dataclass
class Model:
    """Every row's state after every commit, and the UTC time recorded after each commit."""

    times: list[dt.datetime] = field(default_factory=list)
    states: dict[int, tuple[list[int], list[Row | None]]] = field(default_factory=dict)

    def set(self, row: Row | None, id_: int) -> None:
        """Row ``id_`` becomes ``row`` (None: deleted) with the next commit."""
        commits, rows = self.states.setdefault(id_, ([], []))
        commits.append(len(self.times))
        rows.append(row)

    def committed(self) -> None:
        """Record the time right after a commit."""
        self.times.append(dt.datetime.now(dt.timezone.utc))

    def at(self, id_: int, commit: int) -> Row | None:
        """Row ``id_`` as it was after commit number ``commit`` (0-based)."""
        found = self.states.get(id_)
        if found is None:
            return None
        commits, rows = found
        index = bisect.bisect_right(commits, commit) - 1
        return rows[index] if index >= 0 else None

    def snapshot(self, commit: int) -> dict[int, Row]:
        """Every row that existed after commit number ``commit``."""
        found = {id_: self.at(id_, commit) for id_ in self.states}
        return {id_: row for id_, row in found.items() if row is not None}


# -- the variants ------------------------------------------------------------------------------


def _declare(bases: tuple[type, ...], table: str = TABLE, **extra: Any) -> Any:
    """The mapped class of ``bench_item`` (or of ``table``, with the same columns) on ``bases``."""
    namespace: dict[str, Any] = {
        "__tablename__": table,
        "id": mapped_column(Integer, primary_key=True, autoincrement=False),
        "name": mapped_column(String(100), nullable=False),
        "qty": mapped_column(Integer, nullable=False),
        "price": mapped_column(Numeric(12, 2), nullable=False),
        "note": mapped_column(Text, nullable=True),
        **extra,
    }
    return type("BenchItem", bases, namespace)


def _declare_parts(bases: tuple[type, ...], item: Any, **extra: Any) -> Any:
    """The mapped class of ``<item table>_part``, and ``item.parts``, a view-only relationship.

    View-only, so that the writes of W1-W3 (a ``Session.delete`` of a row especially) neither
    load nor change parts: the standard phases cost what they cost without them.
    """
    table = item.__table__.name
    part: Any = type(
        "BenchPart",
        bases,
        {
            "__tablename__": f"{table}_part",
            "id": mapped_column(Integer, primary_key=True, autoincrement=False),
            "item_id": mapped_column(ForeignKey(f"{table}.id"), nullable=False, index=True),
            "label": mapped_column(String(100), nullable=False),
            "qty": mapped_column(Integer, nullable=False),
            **extra,
        },
    )
    item.parts = relationship(part, order_by=part.id, viewonly=True)
    return part


class Variant:
    """One way of writing and reading ``bench_item``; subclasses add history."""

    name = "plain"
    as_of = False
    """Whether reads can go back in time; the baseline reads the current table."""

    def __init__(self, engine: Engine, table: str = TABLE) -> None:
        self.engine = engine

        class Base(DeclarativeBase):
            metadata = MetaData()

        self.metadata = Base.metadata
        self.item = _declare((Base,), table)
        self.part: Any = _declare_parts((Base,), self.item)

    def own_tables(self) -> list[Table]:
        """The tables this run creates and drops."""
        return [self.item.__table__, self.part.__table__]

    def setup(self) -> None:
        """Drop what a previous run may have left, create the variant's tables."""
        self.teardown()
        self.metadata.create_all(self.engine, tables=self.own_tables())

    def teardown(self) -> None:
        """Drop this variant's tables."""
        self.metadata.drop_all(self.engine, tables=self.own_tables(), checkfirst=True)

    def point(self, session: Session, id_: int, when: dt.datetime) -> Row | None:
        """Row ``id_`` as of ``when`` (the baseline: as it is now)."""
        found = session.execute(select(self.item).where(self.item.id == id_)).scalar_one_or_none()
        return None if found is None else row_of(found)

    def snapshot_query(self, when: dt.datetime) -> Select[Any]:
        """The statement of a full-table read as of ``when``."""
        return select(self.item)

    def past_session(self, when: dt.datetime) -> Session | None:
        """A session that reads as of ``when`` (the baseline: a plain one); None: no R3."""
        return Session(self.engine)

    def analyze(self) -> None:
        """Refresh the planner statistics of the variant's tables (untimed)."""
        names = [table.name for table in self.own_tables()]
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for name in names:
                    conn.exec_driver_sql(f'VACUUM ANALYZE "{name}"')
        elif dialect in ("mysql", "mariadb"):
            with self.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE TABLE " + ", ".join(f"`{n}`" for n in names)).all()
        else:
            with self.engine.begin() as conn:
                for name in names:
                    conn.exec_driver_sql(f'ANALYZE "{name}"')


class Chronicle(Variant):
    """sqlalchemy-chronicle's :class:`~sqlalchemy_chronicle.Versioned`."""

    name = "chronicle"
    as_of = True

    def __init__(self, engine: Engine, changelog: bool = True, capture: str = "orm") -> None:
        from sqlalchemy_chronicle import Versioned, as_of, configure, query_as_of

        self.engine = engine
        self.name = "chronicle" if changelog else "chronicle-nolog"
        if capture == "database":
            self.name = "chronicle-db"
        configure(changelog=changelog)
        self.query_as_of = query_as_of
        self.as_of_session = as_of

        class Base(DeclarativeBase):
            metadata = MetaData()

        self.metadata = Base.metadata
        self.item = _declare((Versioned, Base), __versioned__={"capture": capture})
        self.part = _declare_parts((Versioned, Base), self.item, __versioned__={"capture": capture})
        self.history: Table = self.item.__history__.__table__
        self.histories: list[Table] = [self.history, self.part.__history__.__table__]
        self.created_library: list[Table] = []

    def own_tables(self) -> list[Table]:
        return [self.item.__table__, self.part.__table__, *self.histories]

    def library_tables(self) -> list[Table]:
        """The library's tables, which other users of the database may share."""
        return [
            self.metadata.tables["chronicle_transaction"],
            self.metadata.tables["chronicle_changelog"],
        ]

    def setup(self) -> None:
        existing = set(inspect(self.engine).get_table_names())
        self.created_library = [t for t in self.library_tables() if t.name not in existing]
        super().setup()
        self.metadata.create_all(self.engine, tables=self.created_library)

    def teardown(self) -> None:
        """Remove our transaction and change-log rows, then drop the tables we created."""
        names = set(inspect(self.engine).get_table_names())
        if {"chronicle_transaction", "chronicle_changelog"} <= names:
            transaction, changelog = self.library_tables()
            with self.engine.begin() as conn:
                ids: set[int] = set()
                for history in self.histories:
                    if history.name in names:
                        ids.update(conn.scalars(select(history.c.transaction_id).distinct()))
                tables = [t.name for t in (self.item.__table__, self.part.__table__)]
                found = sorted(ids)
                for start in range(0, len(found), 1000):
                    chunk = found[start : start + 1000]
                    conn.execute(
                        delete(changelog).where(
                            changelog.c.transaction_id.in_(chunk),
                            changelog.c.table_name.in_(tables),
                        )
                    )
                    conn.execute(delete(transaction).where(transaction.c.id.in_(chunk)))
        super().teardown()
        self.metadata.drop_all(self.engine, tables=self.created_library, checkfirst=True)

    def point(self, session: Session, id_: int, when: dt.datetime) -> Row | None:
        query = self.query_as_of(self.item, when).where(self.item.id == id_)
        found = session.execute(query).scalar_one_or_none()
        return None if found is None else row_of(found)

    def snapshot_query(self, when: dt.datetime) -> Select[Any]:
        return self.query_as_of(self.item, when)

    def past_session(self, when: dt.datetime) -> Session | None:
        return self.as_of_session(self.engine, when)


class Continuum(Variant):
    """SQLAlchemy-Continuum 2.x, validity strategy; as of a time = as of the last transaction
    issued at or before it."""

    name = "continuum"
    as_of = True

    def __init__(self, engine: Engine) -> None:
        import sqlalchemy_continuum as continuum  # type: ignore[import-not-found,unused-ignore]

        self.engine = engine
        continuum.make_versioned(user_cls=None)

        class Base(DeclarativeBase):
            metadata = MetaData()

        self.metadata = Base.metadata
        self.item = _declare((Base,), __versioned__={})
        self.part = None
        configure_mappers()
        self.version = continuum.version_class(self.item)
        self.transaction = continuum.versioning_manager.transaction_cls
        self.created: list[Table] = []

    def own_tables(self) -> list[Table]:
        return [self.metadata.tables[TABLE], self.version.__table__, self.transaction.__table__]

    def setup(self) -> None:
        existing = set(inspect(self.engine).get_table_names())
        if self.transaction.__table__.name in existing:
            raise RuntimeError("a table 'transaction' exists already; use a database of its own")
        super().setup()

    def _as_of(self, query: Select[Any], when: dt.datetime) -> Select[Any]:
        tx = (
            select(func.max(self.transaction.id))
            .where(
                self.transaction.issued_at <= when.astimezone(dt.timezone.utc).replace(tzinfo=None)
            )
            .scalar_subquery()
        )
        v = self.version
        return query.where(
            v.transaction_id <= tx,
            or_(v.end_transaction_id > tx, v.end_transaction_id.is_(None)),
            v.operation_type != 2,
        )

    def point(self, session: Session, id_: int, when: dt.datetime) -> Row | None:
        query = self._as_of(select(self.version).where(self.version.id == id_), when)
        found = session.execute(query).scalar_one_or_none()
        return None if found is None else row_of(found)

    def snapshot_query(self, when: dt.datetime) -> Select[Any]:
        return self._as_of(select(self.version), when)

    def past_session(self, when: dt.datetime) -> Session | None:
        return None


def make_variant(name: str, engine: Engine) -> Variant:
    """The variant called ``name`` (one of :data:`VARIANTS`) on ``engine``."""
    if name == "plain":
        return Variant(engine)
    if name in ("chronicle", "chronicle-nolog"):
        return Chronicle(engine, changelog=name == "chronicle")
    if name == "chronicle-db":
        return Chronicle(engine, capture="database")
    if name == "continuum":
        return Continuum(engine)
    raise ValueError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Params:
    """The size of the workload."""

    n: int = 20_000
    batch: int = 1_000
    lookups: int = 2_000
    checks: int = 200
    snapshots: int = 5
    related: int = 1_000
    seed: int = 2024


@dataclass
class Result:
    """What one variant measured on one database; times in seconds, memory in KiB."""

    variant: str
    backend: str
    params: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    """CPU time of the benchmark process (the client side: Python, driver, SQLite itself)."""
    statements: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    """Objects loaded by a phase, where it varies with the variant (R2: the snapshots' rows)."""
    rss_before_kib: int = 0
    rss_writes_kib: int = 0
    tracemalloc_writes_kib: int | None = None
    commits: int = 0
    checked: int = 0
    wrong: int = 0
    wrong_r1: int = 0
    snapshots_wrong: int = 0
    related_wrong: int = 0
    """R3 loads (one per loader) whose rows or parts differ from the model."""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every answer was right."""
        return not (self.wrong or self.wrong_r1 or self.snapshots_wrong or self.related_wrong)


def max_rss_kib() -> int:
    """The peak resident set size of this process so far, in KiB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


class Counter:
    """Counts the statements sent to the database (an executemany counts once per batch)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *args: Any) -> None:
        self.count += 1


@contextmanager
def phase(result: Result, name: str, counter: Counter) -> Iterator[None]:
    """Time the block as phase ``name`` and count its statements."""
    before = counter.count
    cpu = time.process_time()
    start = time.perf_counter()
    yield
    result.seconds[name] = time.perf_counter() - start
    result.cpu_seconds[name] = time.process_time() - cpu
    result.statements[name] = counter.count - before


def write(variant: Variant, params: Params, model: Model, result: Result, counter: Counter) -> None:
    """W1, W2 and W3."""
    item = variant.item
    n, batch = params.n, params.batch
    current: dict[int, Row] = {}
    with Session(variant.engine) as session:
        with phase(result, "W1", counter):
            for start in range(1, n + 1, batch):
                objects = []
                for id_ in range(start, min(start + batch, n + 1)):
                    row = inserted(id_)
                    objects.append(
                        item(id=row[0], name=row[1], qty=row[2], price=row[3], note=row[4])
                    )
                    current[id_] = row
                    model.set(row, id_)
                session.add_all(objects)
                session.commit()
                model.committed()
                del objects
        with phase(result, "W2", counter):
            for round_ in range(1, ROUNDS + 1):
                for start in range(1, n + 1, batch):
                    stop = min(start + batch - 1, n)
                    for obj in session.scalars(select(item).where(item.id.between(start, stop))):
                        row = updated(current[obj.id], round_)
                        obj.qty = row[2]
                        obj.price = row[3]
                        current[row[0]] = row
                        model.set(row, row[0])
                    session.commit()
                    model.committed()
        with phase(result, "W3", counter):
            doomed = list(range(4, n + 1, 4))
            for start in range(0, len(doomed), batch):
                chunk = doomed[start : start + batch]
                for obj in session.scalars(select(item).where(item.id.in_(chunk))):
                    session.delete(obj)
                    model.set(None, obj.id)
                session.commit()
                model.committed()
    result.commits = len(model.times)


@dataclass
class Parts:
    """R3's data: the rows it loads, their parts then (at ``when``) and now."""

    ids: list[int]
    when: dt.datetime
    then: dict[int, list[Part]]
    now: dict[int, list[Part]]


def write_parts(variant: Variant, params: Params, model: Model) -> Parts | None:
    """Give ``params.related`` live rows two parts each, then change them (untimed; see R3)."""
    part = variant.part
    if part is None:
        return None
    last = len(model.times) - 1
    ids = [id_ for id_ in range(1, params.n + 1) if model.at(id_, last) is not None]
    ids = ids[: params.related]
    then: dict[int, list[Part]] = {id_: [] for id_ in ids}
    now: dict[int, list[Part]] = {id_: [] for id_ in ids}
    with Session(variant.engine) as session:
        objects = []
        for index, item_id in enumerate(ids):
            for number in range(PARTS_PER_ROW):
                part_id = index * PARTS_PER_ROW + number + 1
                values = (part_id, f"part {part_id}", number)
                then[item_id].append(values)
                objects.append(part(id=part_id, item_id=item_id, label=values[1], qty=values[2]))
        session.add_all(objects)
        session.commit()
        when = dt.datetime.now(dt.timezone.utc)
        for obj in session.scalars(select(part).order_by(part.id)):
            if obj.id % 5 == 0:
                session.delete(obj)
                continue
            obj.label = f"{obj.label} (changed)"
            obj.qty += 100
            now[obj.item_id].append((obj.id, obj.label, obj.qty))
        session.commit()
    return Parts(ids, when, then, now)


def read_related(
    variant: Variant, parts: Parts, model: Model, result: Result, counter: Counter
) -> None:
    """R3: the rows with their parts as of ``parts.when``, once per loader; checked."""
    last = len(model.times) - 1
    rows = {id_: model.at(id_, last) for id_ in parts.ids}
    expected = {
        id_: (row, parts.then[id_] if variant.as_of else parts.now[id_])
        for id_, row in rows.items()
    }
    item = variant.item
    query = select(item).where(item.id.in_(parts.ids)).order_by(item.id)
    statements = {
        "lazy": query,
        "selectin": query.options(selectinload(item.parts)),
        "joined": query.options(joinedload(item.parts)),
    }
    result.seconds["R3"] = result.cpu_seconds["R3"] = 0.0
    result.statements["R3"] = 0
    for loader in LOADERS:
        session = variant.past_session(parts.when)
        assert session is not None
        with session, phase(result, f"R3 {loader}", counter):
            loaded = related_of(session.scalars(statements[loader]).unique().all())
        for key in ("seconds", "cpu_seconds", "statements"):
            getattr(result, key)["R3"] += getattr(result, key)[f"R3 {loader}"]
        if loaded != expected:
            result.related_wrong += 1
            result.problems.append(f"R3 ({loader}) differs from the model")


def read(variant: Variant, params: Params, model: Model, result: Result, counter: Counter) -> None:
    """R1 and R2, then the correctness checks; every answer is compared with the model."""
    rng = random.Random(params.seed)
    last = len(model.times) - 1
    pairs = [
        (rng.randint(1, params.n), rng.randrange(len(model.times))) for _ in range(params.lookups)
    ]
    answers: list[Row | None] = []
    with Session(variant.engine) as session, phase(result, "R1", counter):
        for id_, commit in pairs:
            answers.append(variant.point(session, id_, model.times[commit]))
    for (id_, commit), answer in zip(pairs, answers, strict=True):
        if answer != model.at(id_, commit if variant.as_of else last):
            result.wrong_r1 += 1
            if len(result.problems) < 5:
                result.problems.append(f"R1 ({id_}, commit {commit}): got {answer}")

    commits = [rng.randrange(len(model.times)) for _ in range(params.snapshots)]
    loaded: list[dict[int, Row]] = []
    result.seconds["R2"] = result.cpu_seconds["R2"] = 0.0
    result.rows["R2"] = 0
    before = counter.count
    for commit in commits:
        with Session(variant.engine) as session:
            cpu = time.process_time()
            start = time.perf_counter()
            objects = session.scalars(variant.snapshot_query(model.times[commit])).all()
            result.seconds["R2"] += time.perf_counter() - start
            result.cpu_seconds["R2"] += time.process_time() - cpu
            loaded.append({obj.id: row_of(obj) for obj in objects})
            result.rows["R2"] += len(objects)
            del objects
    result.statements["R2"] = counter.count - before
    for commit, snapshot in zip(commits, loaded, strict=True):
        if snapshot != model.snapshot(commit if variant.as_of else last):
            result.snapshots_wrong += 1
            result.problems.append(f"R2 snapshot at commit {commit} differs")

    checks = random.Random(params.seed + 1)
    with Session(variant.engine) as session:
        for _ in range(params.checks):
            id_, commit = checks.randint(1, params.n), checks.randrange(len(model.times))
            answer = variant.point(session, id_, model.times[commit])
            result.checked += 1
            if answer != model.at(id_, commit if variant.as_of else last):
                result.wrong += 1
                if len(result.problems) < 10:
                    result.problems.append(f"check ({id_}, commit {commit}): got {answer}")


def run(url: str, variant_name: str, params: Params, trace: bool = False) -> Result:
    """The whole workload for one variant; the tables are dropped at the end."""
    engine = create_engine(url)
    variant = make_variant(variant_name, engine)
    result = Result(variant_name, engine.dialect.name, asdict(params))
    counter = Counter()
    event.listen(engine, "before_cursor_execute", counter)
    model = Model()
    variant.setup()
    try:
        result.rss_before_kib = max_rss_kib()
        if trace:
            tracemalloc.start()
        write(variant, params, model, result, counter)
        result.rss_writes_kib = max_rss_kib()
        if trace:
            result.tracemalloc_writes_kib = tracemalloc.get_traced_memory()[1] // 1024
            tracemalloc.stop()
        parts = write_parts(variant, params, model)
        variant.analyze()
        read(variant, params, model, result, counter)
        if parts is not None:
            read_related(variant, parts, model, result, counter)
    finally:
        variant.teardown()
        engine.dispose()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run one variant and write its :class:`Result` as JSON to ``--out`` (or stdout)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--url", required=True)
    parser.add_argument("--variant", required=True, choices=VARIANTS)
    parser.add_argument("--out")
    parser.add_argument("--tracemalloc", action="store_true")
    defaults = Params()
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name}", type=int, default=value)
    args = parser.parse_args(argv)
    params = Params(**{name: getattr(args, name) for name in asdict(defaults)})
    result = run(args.url, args.variant, params, trace=args.tracemalloc)
    payload = json.dumps(asdict(result))
    if args.out:
        with open(args.out, "w") as out:
            out.write(payload)
    else:
        print(payload)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
