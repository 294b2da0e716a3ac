"""The history viewer's pages on a large history (issue #19): a row with 10,000 versions and a
change log of 10^6 entries, on PostgreSQL.

The data is written in SQL (``generate_series``), as the library would have written it, so that
building it takes seconds rather than a million flushes: the table ``bench_viewer_book`` with
100,001 rows, row 0 with 10,000 versions and rows 1 to 100,000 with 10 versions each (1,010,000
history rows), one ``chronicle_transaction`` row per version (actors ``user0`` to ``user49``, one
second apart) and one change-log entry per version (1,010,000 entries). Each page is then answered
by :meth:`HistoryViewer.respond` (the queries and the HTML, what an adapter does less its
framework's layout), in a new session each time; a page's figure is the best of ``--repeat``
runs after one to warm up, in milliseconds, and its status is checked to be 200.

Run it with ``python -m benchmarks.viewer [--url URL] [--repeat 5] [--keep]``; the default URL
is the ``test`` database of the local PostgreSQL. The benchmark drops its tables at the end and
deletes the rows it wrote into the library's tables (``--keep`` keeps them, and reuses them in
the next run).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, Integer, String, create_engine, inspect, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sqlalchemy_chronicle import Versioned
from sqlalchemy_chronicle.viewer import HistoryViewer

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
HOT_VERSIONS = 10_000
ROWS = 100_000
VERSIONS_PER_ROW = 10


class Base(DeclarativeBase):
    pass


class BenchBook(Versioned, Base):
    __tablename__ = "bench_viewer_book"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(100))
    price: Mapped[int] = mapped_column(Integer)


def _transaction_of(row: str, version: str) -> str:
    """The SQL of the transaction id that wrote ``version`` of ``row``."""
    return (
        f"(CASE WHEN {row} = 0 THEN {version} "
        f"ELSE {HOT_VERSIONS} + ({version} - 1) * {ROWS} + {row} END)"
    )


def clean(engine: Engine) -> None:
    """Drop the benchmark's tables and delete the rows it wrote into the library's."""
    with engine.begin() as connection:
        if inspect(connection).has_table("chronicle_changelog"):
            connection.execute(
                text(
                    "DELETE FROM chronicle_transaction WHERE id IN (SELECT transaction_id FROM "
                    "chronicle_changelog WHERE table_name = 'bench_viewer_book')"
                )
            )
            connection.execute(
                text("DELETE FROM chronicle_changelog WHERE table_name = 'bench_viewer_book'")
            )
    Base.metadata.drop_all(engine, tables=[BenchBook.__history__.__table__, BenchBook.__table__])


def build(engine: Engine) -> None:
    """Write the benchmark's tables afresh (see the module's docstring)."""
    clean(engine)
    Base.metadata.create_all(engine)
    with engine.connect() as connection:
        base = connection.scalar(text("SELECT coalesce(max(id), 0) FROM chronicle_transaction"))
    last = HOT_VERSIONS + VERSIONS_PER_ROW * ROWS
    versions = f"""
        SELECT 0 AS id, v FROM generate_series(1, {HOT_VERSIONS}) AS v
        UNION ALL
        SELECT r, v FROM generate_series(1, {ROWS}) AS r,
                          generate_series(1, {VERSIONS_PER_ROW}) AS v
    """
    at = "(TIMESTAMP '2025-01-01' + make_interval(secs => {}))"
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO chronicle_transaction (id, timestamp, actor, reason) "
                f"SELECT {base} + t, {at.format('t')}, 'user' || (t % 50), 'change ' || t "
                f"FROM generate_series(1, {last}) AS t"
            )
        )
        connection.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('chronicle_transaction', 'id'), "
                "(SELECT max(id) FROM chronicle_transaction))"
            )
        )
        tx = _transaction_of("id", "v")
        tx_next = _transaction_of("id", "v + 1")
        final = f"CASE WHEN id = 0 THEN {HOT_VERSIONS} ELSE {VERSIONS_PER_ROW} END"
        connection.execute(
            text(
                "INSERT INTO bench_viewer_book_history (id, version, title, price, valid_from, "
                "valid_to, operation, transaction_id) "
                f"SELECT id, v, 'title ' || v, v % 100, {at.format(tx)}, "
                f"CASE WHEN v = {final} THEN NULL ELSE {at.format(tx_next)} END, "
                f"CASE WHEN v = 1 THEN 'insert' ELSE 'update' END, {base} + {tx} "
                f"FROM ({versions}) AS s"
            )
        )
        connection.execute(
            text(
                "INSERT INTO bench_viewer_book (id, title, price) "
                "SELECT id, title, price FROM bench_viewer_book_history WHERE valid_to IS NULL"
            )
        )
        connection.execute(
            text(
                "INSERT INTO chronicle_changelog (transaction_id, table_name, row_id, "
                "event_type, timestamp, changes) "
                "SELECT transaction_id, 'bench_viewer_book', id::text, upper(operation), "
                "valid_from, CASE WHEN version = 1 "
                "THEN jsonb_build_object('id', id, 'title', title, 'price', price) "
                "ELSE jsonb_build_object('title', jsonb_build_array('title ' || (version - 1), "
                "title)) END "
                "FROM bench_viewer_book_history ORDER BY transaction_id"
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))


PAGES: list[tuple[str, str, dict[str, str]]] = [
    ("timeline, newest page", "timeline", {"key": "0"}),
    ("timeline, page 100 of 200", "timeline", {"key": "0", "page": "100"}),
    ("timeline, last page", "timeline", {"key": "0", "page": "200"}),
    ("diff of versions 1 and 10,000", "diff", {"key": "0", "a": "1", "b": "10000"}),
    ("as of a time in the middle", "as_of", {"key": "0", "when": "2025-01-01T01:23:20"}),
    ("restore preview of version 5,000", "restore", {"key": "0", "version": "5000"}),
    ("timeline of a row with 10 versions", "timeline", {"key": "54321"}),
    ("change log, newest page", "changelog", {}),
    ("change log, page at entry 500,000", "changelog", {"before": "+500000"}),
    ("change log, one actor (1 in 50)", "changelog", {"actor": "user7"}),
    ("change log, operation INSERT", "changelog", {"operation": "INSERT"}),
    (
        "change log, one hour",
        "changelog",
        {"since": "2025-01-05T10:00", "until": "2025-01-05T11:00"},
    ),
    ("change log, an actor with no entries", "changelog", {"actor": "nobody"}),
]


def _link(target: str, /, model: str | None = None, **query: Any) -> str:
    return f"/{target}/{model}?" + "&".join(f"{k}={v}" for k, v in query.items())


def measure(engine: Engine, repeat: int) -> list[tuple[str, float]]:
    """The best time of each page, in milliseconds."""
    viewer = HistoryViewer([BenchBook], page_size=50)
    with engine.connect() as connection:
        first = connection.scalar(
            text("SELECT min(id) FROM chronicle_changelog WHERE table_name = 'bench_viewer_book'")
        )
    figures = []
    for label, page, query in PAGES:
        params = {"model": "bench_viewer_book", **query}
        if params.get("before", "").startswith("+"):
            params["before"] = str(first + int(params["before"]))

        def once(label: str = label, page: str = page, params: dict[str, str] = params) -> float:
            with Session(engine) as session:
                start = time.perf_counter()
                answer = viewer.respond(session, page, params, _link, can_restore=True)
                elapsed = time.perf_counter() - start
            if answer.status != 200:
                raise RuntimeError(f"{label}: status {answer.status}: {answer.body[:300]}")
            return elapsed

        once()
        figures.append((label, 1000 * min(once() for _ in range(repeat))))
    return figures


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--keep", action="store_true", help="keep the data afterwards, reuse an earlier run's"
    )
    args = parser.parse_args(argv)
    engine = create_engine(args.url)
    if engine.dialect.name != "postgresql":
        parser.error("the benchmark writes its data with PostgreSQL's generate_series")
    if not (args.keep and inspect(engine).has_table("bench_viewer_book_history")):
        start = time.perf_counter()
        build(engine)
        out(f"built the data in {time.perf_counter() - start:.1f} s")
    out(f"| page | best of {args.repeat} (ms) |")
    out("|---|---:|")
    try:
        for label, ms in measure(engine, args.repeat):
            out(f"| {label} | {ms:.1f} |")
    finally:
        if not args.keep:
            clean(engine)
        engine.dispose()


if __name__ == "__main__":
    main()
