"""The floor of versioned writes: what the database alone spends on the history of an update.

For each 1,000-row range of the standard workload's table, after its writes W1 and W2 (N rows,
6 versions each), this times the set-based statements that versioning an update of those rows
needs at the least, sent as SQL with no Python work per row, in one transaction per range that
is rolled back (the change-log statement reads the versions the copy wrote):

``close``
    ``UPDATE`` of the open versions (``valid_to`` = the time);
``copy``
    ``INSERT .. SELECT`` of the new versions from the live rows, each numbered after its row's
    highest version;
``changelog``
    ``INSERT .. SELECT`` of change-log entries built in SQL from the new and the previous version
    (the two changed columns as ``[old, new]`` JSON arrays).

Beside them, ``plain`` is the unversioned baseline of one round of W2 for the same rows: select
them through the ORM, set ``qty`` and ``price``, commit. The medians show how far below the
baseline a writer can get on a database at all: the ratio ``(plain + close + copy [+ changelog])
/ plain`` is the least that history costs there, whatever the library does in Python.

With ``--lean`` the history table and the change log lose every index but their primary keys
before the timings: the library's interval, transaction and change-log indexes serve reads and
operations, and cost every write, so what is left is the floor of writing the rows themselves.
The change log's indexes are created again afterwards, since the change log may be shared.

Run it with ``python -m benchmarks.floor [--db NAME_OR_URL ...] [--n 20000] [--lean]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Engine,
    Index,
    String,
    Table,
    and_,
    cast,
    create_engine,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session, aliased

from benchmarks import workload
from benchmarks.run import backend_of, resolve

RANGE = 1_000
STATEMENTS = ("close", "copy", "changelog")


def _json_functions(engine: Engine) -> tuple[Any, Any]:
    name = engine.dialect.name
    if name == "postgresql":
        return func.jsonb_build_object, func.jsonb_build_array
    if name == "sqlite":
        return func.json_object, func.json_array
    return func.JSON_OBJECT, func.JSON_ARRAY


def history_statements(variant: workload.Chronicle, start: int) -> dict[str, Any]:
    """The set-based statements that version an update of the ids ``[start, start + RANGE)``."""
    live = variant.metadata.tables[workload.TABLE]
    history = variant.history
    changelog = variant.metadata.tables["chronicle_changelog"]
    now = dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)
    ids = (start, start + RANGE - 1)
    previous = aliased(history)
    newest = (
        select(func.max(previous.c.version) + 1).where(previous.c.id == live.c.id).scalar_subquery()
    )
    copied = select(
        live.c.id,
        live.c.name,
        live.c.qty,
        live.c.price,
        live.c.note,
        newest,
        literal(now, history.c.valid_from.type),
        literal("update"),
        literal(1),
    ).where(live.c.id.between(*ids))
    names = ["id", "name", "qty", "price", "note", "version", "valid_from", "operation"]
    new, old = aliased(history), aliased(history)
    json_object, json_array = _json_functions(variant.engine)
    changes = json_object(
        "qty",
        json_array(old.c.qty, new.c.qty),
        "price",
        json_array(cast(old.c.price, String), cast(new.c.price, String)),
    )
    entries = (
        select(
            literal(1),
            literal(workload.TABLE),
            cast(new.c.id, String),
            literal("UPDATE"),
            literal(now, changelog.c.timestamp.type),
            changes,
        )
        .join_from(new, old, and_(old.c.id == new.c.id, old.c.version == new.c.version - 1))
        .where(new.c.id.between(*ids), new.c.valid_from == literal(now, history.c.valid_from.type))
    )
    return {
        "close": sql_update(history)
        .where(history.c.id.between(*ids), history.c.valid_to.is_(None))
        .values(valid_to=now),
        "copy": insert(history).from_select([*names, "transaction_id"], copied),
        "changelog": insert(changelog).from_select(
            ["transaction_id", "table_name", "row_id", "event_type", "timestamp", "changes"],
            entries,
        ),
    }


def measure(url: str, n: int, lean: bool = False) -> dict[str, float]:
    """Median milliseconds per 1,000-row range of each statement, and of a plain W2 round.

    With ``lean``, the history table and the change log have their primary keys only.
    """
    params = workload.Params(n=n)
    timings: dict[str, list[float]] = {name: [] for name in ("plain", *STATEMENTS)}
    engine = create_engine(url)
    try:
        plain = workload.make_variant("plain", engine)
        plain.setup()
        try:
            workload.write(plain, params, workload.Model(), _result(plain), workload.Counter())
            for start in range(1, n + 1, RANGE):
                with Session(engine) as session:
                    began = time.perf_counter()
                    ids = plain.item.id.between(start, start + RANGE - 1)
                    query = select(plain.item).where(ids)
                    for obj in session.scalars(query):
                        obj.qty += 1
                        obj.price += 1
                    session.commit()
                    timings["plain"].append(time.perf_counter() - began)
        finally:
            plain.teardown()
        versioned = workload.make_variant("chronicle", engine)
        assert isinstance(versioned, workload.Chronicle)
        changelog = versioned.metadata.tables["chronicle_changelog"]
        dropped: list[Index] = []
        versioned.setup()
        try:
            workload.write(
                versioned, params, workload.Model(), _result(versioned), workload.Counter()
            )
            if lean:
                dropped = _drop_indexes(engine, [versioned.history, changelog])
            versioned.analyze()
            for start in range(1, n + 1, RANGE):
                statements = history_statements(versioned, start)
                with engine.connect() as connection, connection.begin() as transaction:
                    for name in STATEMENTS:
                        began = time.perf_counter()
                        connection.execute(statements[name])
                        timings[name].append(time.perf_counter() - began)
                    transaction.rollback()
        finally:
            _restore_indexes(engine, [i for i in dropped if i.table is changelog])
            versioned.teardown()
    finally:
        engine.dispose()
    return {name: statistics.median(values) * 1000 for name, values in timings.items()}


def _drop_indexes(engine: Engine, tables: Sequence[Table]) -> list[Index]:
    """Drop the indexes of ``tables`` but their primary keys; the indexes dropped."""
    dropped: list[Index] = []
    with engine.begin() as connection:
        for table in tables:
            for index in table.indexes:
                index.drop(connection, checkfirst=True)
                dropped.append(index)
    return dropped


def _restore_indexes(engine: Engine, indexes: Sequence[Index]) -> None:
    """Create ``indexes`` again: the change log may be another user's, which keeps them."""
    with engine.begin() as connection:
        for index in indexes:
            index.create(connection, checkfirst=True)


def _result(variant: workload.Variant) -> workload.Result:
    return workload.Result(variant.name, variant.engine.dialect.name, {})


def report(urls: Sequence[str], n: int, lean: bool = False) -> str:
    """A table of the medians and of the least ratios they allow."""
    indexes = "primary keys only" if lean else "the library's indexes"
    lines = [
        f"N = {n}; median milliseconds per {RANGE:,} rows updated; history and change log with "
        f"{indexes}",
        "",
        "| backend | plain W2 round | close | copy | changelog | least ratio, history only "
        "| least ratio, with change log |",
        "|---|---|---|---|---|---|---|",
    ]
    for url in urls:
        ms = measure(url, n, lean)
        history = ms["plain"] + ms["close"] + ms["copy"]
        lines.append(
            f"| {backend_of(url)} | {ms['plain']:.1f} | {ms['close']:.1f} | {ms['copy']:.1f} | "
            f"{ms['changelog']:.1f} | {history / ms['plain']:.2f}x | "
            f"{(history + ms['changelog']) / ms['plain']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the report of the databases given (all three by default)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--db", action="append", default=[], help="a name or URL (repeatable)")
    parser.add_argument("--n", type=int, default=workload.Params.n, help="rows (default 20,000)")
    parser.add_argument(
        "--lean", action="store_true", help="history and change log with primary keys only"
    )
    args = parser.parse_args(argv)
    sys.stdout.write(report(resolve(args.db), args.n, args.lean))
    return 0


if __name__ == "__main__":
    sys.exit(main())
