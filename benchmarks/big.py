"""A snapshot of 10^6 live rows as of a time, from a history of 10^7 versions (PostgreSQL).

Issue #18's size target. ``bench_item`` and its history are generated in the database, set-based
(``INSERT .. SELECT`` from ``generate_series``, not through the ORM): ``--rows`` rows (10^6 by
default) with ``--versions`` versions each (10), version ``v`` of row ``i`` valid from
``base + (v - 1) hours + i microseconds`` to the next version's start, the last one open; the
live table holds the last versions. After ``VACUUM ANALYZE`` (untimed), one process reads the
snapshot as of ``base + (versions / 2 - 0.5) hours``, when every row is at version
``versions // 2``, with ``query_as_of(Item, when).execution_options(yield_per=...)``, streaming
the versions through the ORM in batches and checking each (its version and its values) without
keeping it; then the live table the same way (the baseline). Reported: the time of each, the
peak resident set size of the process before and after each read (``ru_maxrss``: flat memory
means the peak does not grow with the rows read), the sizes of the tables, and the plan of the
as-of statement, ``EXPLAIN (ANALYZE, BUFFERS)``.

Run it with ``python -m benchmarks.big --url postgresql+psycopg://... [--rows N] [--versions V]
[--yield-per K] [--keep]``. It takes several minutes and about 2 GB of disk at the default
size (1.9 GB for the history table and its indexes); the tables are dropped at the end unless
``--keep``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, create_engine, event, select, text
from sqlalchemy.orm import Session

from benchmarks.workload import Chronicle, max_rss_kib

BASE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def generate(engine: Engine, chronicle: Chronicle, rows: int, versions: int) -> float:
    """Fill the history and the live table in the database; the seconds it took."""
    history = chronicle.history.name
    live = chronicle.item.__table__.name
    values = (
        "'item ' || i, v * 1000 + i % 997, (i % 1000) + v / 100.0, "
        "CASE WHEN i % 3 = 0 THEN 'note ' || i END"
    )
    start = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO {history} (id, version, valid_from, valid_to, operation, "
                "transaction_id, name, qty, price, note) "
                "SELECT i, v, :base + (v - 1) * interval '1 hour' + i * interval '1 microsecond', "
                "CASE WHEN v < :versions "
                "THEN :base + v * interval '1 hour' + i * interval '1 microsecond' END, "
                f"CASE WHEN v = 1 THEN 'insert' ELSE 'update' END, 0, {values} "
                "FROM generate_series(1, :rows) AS i, generate_series(1, :versions) AS v"
            ),
            {"base": BASE, "rows": rows, "versions": versions},
        )
        conn.execute(
            text(
                f"INSERT INTO {live} (id, name, qty, price, note) "
                f"SELECT i, {values} FROM generate_series(1, :rows) AS i, "
                "(SELECT CAST(:versions AS integer) AS v) AS last"
            ),
            {"rows": rows, "versions": versions},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"VACUUM ANALYZE {history}")
        conn.exec_driver_sql(f"VACUUM ANALYZE {live}")
    return time.perf_counter() - start


def expected(id_: int, version: int) -> tuple[str, int]:
    """The name and quantity generated for row ``id_`` at ``version``."""
    return f"item {id_}", version * 1000 + id_ % 997


def stream(engine: Engine, query: Any, version: int, yield_per: int) -> dict[str, Any]:
    """Read ``query`` in batches of ``yield_per``, checking each row; time, rows, wrong, RSS."""
    before = max_rss_kib()
    start = time.perf_counter()
    count = wrong = 0
    with Session(engine) as session:
        result = session.scalars(query.execution_options(yield_per=yield_per))
        for obj in result:
            count += 1
            if (obj.name, obj.qty) != expected(obj.id, version):
                wrong += 1
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rows": count,
        "wrong": wrong,
        "rss_before": before,
        "rss_after": max_rss_kib(),
    }


def explain(engine: Engine, query: Any) -> list[str]:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of the statement that ``query`` sends."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with Session(engine) as session:
            session.execute(query.limit(1)).all()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = seen[-1]
    statement = statement.rsplit("LIMIT", 1)[0]
    parameters = {k: v for k, v in parameters.items() if not k.startswith("param_")}
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        return [line[0] for line in cursor.fetchall()]
    finally:
        raw.close()


def sizes(engine: Engine, tables: Sequence[str]) -> list[str]:
    """Each table's total size on disk (with its indexes), as PostgreSQL reports it."""
    with engine.connect() as conn:
        found = [
            conn.scalar(text("SELECT pg_size_pretty(pg_total_relation_size(:name))"), {"name": n})
            for n in tables
        ]
    return [f"{name}: {size}" for name, size in zip(tables, found, strict=True)]


def main(argv: Sequence[str] | None = None) -> int:
    """Generate, read as of the middle of the history and now, report; 1 on a wrong answer."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--url", required=True, help="a PostgreSQL URL")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--yield-per", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true", help="leave the tables in place")
    args = parser.parse_args(argv)
    engine = create_engine(args.url)
    if engine.dialect.name != "postgresql":
        parser.error("this benchmark runs on PostgreSQL")
    chronicle = Chronicle(engine, changelog=False)
    chronicle.setup()
    try:
        generated = generate(engine, chronicle, args.rows, args.versions)
        middle = args.versions // 2
        when = BASE + dt.timedelta(hours=middle - 0.5)
        past = chronicle.query_as_of(chronicle.item, when)
        plan = explain(engine, past)
        as_of = stream(engine, past, middle, args.yield_per)
        live = stream(engine, select(chronicle.item), args.versions, args.yield_per)
        tables = [chronicle.history.name, chronicle.item.__table__.name]
        lines = [
            f"{args.rows:,} rows x {args.versions} versions = {args.rows * args.versions:,} "
            f"history rows, generated (with VACUUM ANALYZE) in {generated:.0f} s; "
            + "; ".join(sizes(engine, tables)),
            "",
            "| read | rows | wrong | seconds | peak RSS before | peak RSS after |",
            "|---|---|---|---|---|---|",
        ]
        for name, found in (("as of " + when.isoformat(), as_of), ("live", live)):
            lines.append(
                f"| {name} | {found['rows']:,} | {found['wrong']} | {found['seconds']:.1f} s | "
                f"{found['rss_before'] / 1024:.0f} MiB | {found['rss_after'] / 1024:.0f} MiB |"
            )
        lines += ["", f"as-of / live: {as_of['seconds'] / live['seconds']:.2f}x", "", "Plan:"]
        lines += ["    " + line for line in plan]
        print("\n".join(lines))
        right = as_of["rows"] == live["rows"] == args.rows and not as_of["wrong"] + live["wrong"]
        return 0 if right else 1
    finally:
        if not args.keep:
            chronicle.teardown()
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
