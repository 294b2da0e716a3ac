"""The floor of database capture mode: the least a row trigger that keeps history can cost.

Database capture mode versions every write with the database's row triggers (SQLite and MariaDB
have no others; the ORM sends one-row statements, so PostgreSQL's statement triggers would fire
once per row too). Whatever those triggers check, each versioned write makes them do at least
this, which is what the minimal triggers here do, and nothing more:

insert
    the row's first version, and a change-log entry of its values;
update
    close the open version (``valid_to``), insert the next version (numbered after the row's
    highest), and a change-log entry of the two columns the workload's W2 changes, as
    ``[old, new]`` pairs (written whatever changed: a real trigger also tests each column);
delete
    close the open version, insert the delete marker, and a change-log entry.

The minimal triggers keep no transaction row, no attribution, no one-version-per-transaction
rule, no strict mode, and take the time from the database's clock at each row. The history table
has its primary key ``(id, version)`` only, the change log its own only: none of the library's
indexes.

The standard workload's writes W1-W3 (:func:`benchmarks.workload.write`) run through the ORM on
the plain table without triggers and on the same table with them, alternating, ``--repeat``
times each; the ratio of the medians of W1+W2+W3 is the floor of database capture mode's
writes ratio on that database.

``python -m benchmarks.trigger_floor [--db NAME_OR_URL ...] [--n 5000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence

from sqlalchemy import Engine, create_engine, text

from benchmarks import workload
from benchmarks.run import backend_of, resolve

HISTORY = "bench_floor_history"
CHANGELOG = "bench_floor_changelog"
_COLUMNS = ("id", "name", "qty", "price", "note")
_FUNCTIONS = {
    "postgresql": ("ch_now", "jsonb_build_object", "jsonb_build_array"),
    "sqlite": ("strftime('%Y-%m-%d %H:%M:%f', 'now')", "json_object", "json_array"),
    "mysql": ("UTC_TIMESTAMP(6)", "JSON_OBJECT", "JSON_ARRAY"),
}
"""Per dialect: the time of the row (on PostgreSQL a variable holding ``clock_timestamp()``; the
others' clocks stand still within a statement), and the functions that build a JSON object and
a JSON array."""


def _tables(dialect: str) -> list[str]:
    time_type = {"postgresql": "TIMESTAMPTZ", "sqlite": "TEXT"}.get(dialect, "DATETIME(6)")
    serial = {
        "postgresql": "BIGSERIAL PRIMARY KEY",
        "sqlite": "INTEGER PRIMARY KEY",
    }.get(dialect, "BIGINT AUTO_INCREMENT PRIMARY KEY")
    json_type = {"postgresql": "JSONB", "sqlite": "TEXT"}.get(dialect, "LONGTEXT")
    return [
        f"CREATE TABLE {HISTORY} (id INTEGER NOT NULL, version INTEGER NOT NULL, "
        "name VARCHAR(100), qty INTEGER, price NUMERIC(12, 2), note TEXT, "
        f"valid_from {time_type} NOT NULL, valid_to {time_type}, operation VARCHAR(8) NOT NULL, "
        "PRIMARY KEY (id, version))",
        f"CREATE TABLE {CHANGELOG} (id {serial}, table_name VARCHAR(100) NOT NULL, "
        f"row_id VARCHAR(100) NOT NULL, event_type VARCHAR(8) NOT NULL, changes {json_type})",
    ]


def _statements(table: str, dialect: str) -> dict[str, list[str]]:
    """The statements of the minimal triggers, per event: what any versioning trigger does."""
    now, json_object, json_array = _FUNCTIONS[dialect]

    def every(record: str) -> str:
        pairs = ", ".join(f"'{c}', {record}.{c}" for c in _COLUMNS)
        return f"{json_object}({pairs})"

    def values(record: str) -> str:
        return ", ".join(f"{record}.{c}" for c in _COLUMNS[1:])

    def close(record: str) -> str:
        return f"UPDATE {HISTORY} SET valid_to = {now} WHERE id = {record}.id AND valid_to IS NULL"

    def version(record: str, valid_to: str, operation: str) -> str:
        return (
            f"INSERT INTO {HISTORY} SELECT {record}.id, max(version) + 1, {values(record)}, "
            f"{now}, {valid_to}, '{operation}' FROM {HISTORY} WHERE id = {record}.id"
        )

    def entry(record: str, event: str, changes: str) -> str:
        return (
            f"INSERT INTO {CHANGELOG} (table_name, row_id, event_type, changes) "
            f"VALUES ('{table}', {record}.id, '{event}', {changes})"
        )

    changed = (
        f"{json_object}('qty', {json_array}(OLD.qty, NEW.qty), "
        f"'price', {json_array}(OLD.price, NEW.price))"
    )
    return {
        "INSERT": [
            f"INSERT INTO {HISTORY} VALUES (NEW.id, 1, {values('NEW')}, {now}, NULL, 'insert')",
            entry("NEW", "INSERT", every("NEW")),
        ],
        "UPDATE": [
            close("OLD"),
            version("NEW", "NULL", "update"),
            entry("NEW", "UPDATE", changed),
        ],
        "DELETE": [
            close("OLD"),
            version("OLD", now, "delete"),
            entry("OLD", "DELETE", every("OLD")),
        ],
    }


def _triggers(table: str, dialect: str) -> list[str]:
    """The minimal triggers: on PostgreSQL one function for the three events, elsewhere three."""
    statements = _statements(table, dialect)
    if dialect == "postgresql":
        branches = "\n  ELS".join(
            f"IF TG_OP = '{event}' THEN\n" + "".join(f"    {s};\n" for s in body)
            for event, body in statements.items()
        )
        return [
            "CREATE FUNCTION bench_floor() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "DECLARE ch_now timestamptz := clock_timestamp();\nBEGIN\n"
            f"  {branches}  END IF;\n  RETURN NULL;\nEND $$",
            f"CREATE TRIGGER bench_floor AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION bench_floor()",
        ]
    each = "" if dialect == "sqlite" else " FOR EACH ROW"
    return [
        f"CREATE TRIGGER bench_floor_{event.lower()} AFTER {event} ON {table}{each} BEGIN\n"
        + "".join(f"  {s};\n" for s in body)
        + "END"
        for event, body in statements.items()
    ]


def _drop(engine: Engine) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("DROP FUNCTION IF EXISTS bench_floor() CASCADE")
        for name in (HISTORY, CHANGELOG):
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")


def _install(engine: Engine, table: str) -> None:
    dialect = engine.dialect.name
    with engine.begin() as connection:
        for statement in [*_tables(dialect), *_triggers(table, dialect)]:
            connection.exec_driver_sql(statement)


def _writes(engine: Engine, n: int, triggered: bool) -> float:
    """W1+W2+W3 of the plain variant, in seconds; with the minimal triggers when ``triggered``."""
    variant = workload.make_variant("plain", engine)
    variant.setup()
    _drop(engine)
    try:
        if triggered:
            _install(engine, workload.TABLE)
        result = workload.Result(variant.name, engine.dialect.name, {})
        workload.write(variant, workload.Params(n=n), workload.Model(), result, workload.Counter())
        if triggered:
            _check(engine, n)
        return sum(result.seconds[phase] for phase in ("W1", "W2", "W3"))
    finally:
        _drop(engine)
        variant.teardown()


def _check(engine: Engine, n: int) -> None:
    """Refuse a run whose triggers did not write as many versions and entries as the writes."""
    expected = n + workload.ROUNDS * n + len(range(4, n + 1, 4))
    with engine.connect() as connection:
        for name in (HISTORY, CHANGELOG):
            found = connection.scalar(text(f"SELECT count(*) FROM {name}"))
            if found != expected:
                raise RuntimeError(f"{name} holds {found} rows; the writes should make {expected}")


def measure(url: str, n: int, repeat: int) -> tuple[float, float]:
    """Median seconds of the writes without and with the minimal triggers, alternating."""
    engine = create_engine(url)
    try:
        plain: list[float] = []
        triggered: list[float] = []
        for _ in range(repeat):
            plain.append(_writes(engine, n, triggered=False))
            triggered.append(_writes(engine, n, triggered=True))
        return statistics.median(plain), statistics.median(triggered)
    finally:
        engine.dispose()


def report(urls: Sequence[str], n: int, repeat: int) -> str:
    """A table of the medians and the floor ratio on each database."""
    lines = [
        f"N = {n}; W1+W2+W3, median of {repeat}, alternating",
        "",
        "| backend | plain | minimal triggers | floor of database capture mode's writes |",
        "|---|---|---|---|",
    ]
    for url in urls:
        plain, triggered = measure(url, n, repeat)
        lines.append(
            f"| {backend_of(url)} | {plain:.2f} s | {triggered:.2f} s | {triggered / plain:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the report of the databases given (all three by default)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--db", action="append", default=[], help="a name or URL (repeatable)")
    parser.add_argument("--n", type=int, default=5_000, help="rows (default 5,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side (default 3)")
    args = parser.parse_args(argv)
    sys.stdout.write(report(resolve(args.db), args.n, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
