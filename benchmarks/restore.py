"""``restore_all`` of a large table: does restoring 100,000 rows take seconds (issue #4)?

``bench_item`` (the standard workload's table, :class:`~benchmarks.workload.Chronicle`, default
configuration: change log on) is given a history through the library's own bulk statements,
5,000 rows per transaction:

before the time ``t``
    N rows inserted; every 10th row updated once (so ``t`` falls on first and second versions).
after ``t``
    every row with ``id % 3 == 1`` updated; every row with ``id % 3 == 2`` deleted, and a third
    of those (``id % 9 == 2``) inserted again with other values; N / 10 new rows inserted.

Then, after ``ANALYZE`` of the tables (untimed), ``restore_all(session, Item, as_of=t)`` and the
session's commit are timed, in a fresh session. Restoring brings 2N/9 deleted rows back, puts
4N/9 changed rows back (the updated third and the re-inserted rows), deletes the N/10 new rows,
and leaves N/3 rows alone. The run is checked: the live table must equal the model's state at
``t``, the counts of :class:`~sqlalchemy_chronicle.RestoreResult` must be the expected ones, and
every restored row must have one new ``"restore"`` version.

``--profile FILE`` profiles the restore with :mod:`cProfile` (in the same run, so its time
includes the profiler's overhead) and writes the statistics to ``FILE``.

Run one database with ``python -m benchmarks.restore --url URL``; ``python -m benchmarks
--restore`` runs every database, each in a worker process.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, func, insert, select, update
from sqlalchemy.orm import Session

from benchmarks.workload import Chronicle, Row, inserted, row_of, updated

N = 100_000
BATCH = 5_000


@dataclass
class Outcome:
    """What one run measured on one database; times in seconds."""

    backend: str
    rows: int
    history_rows: int
    restore_seconds: float
    commit_seconds: float
    result: dict[str, int]
    expected: dict[str, int]
    wrong_rows: int
    restore_versions: int
    setup_seconds: float

    @property
    def ok(self) -> bool:
        """Whether the restore left the table, its counts and its history as expected."""
        restored = self.expected["inserted"] + self.expected["updated"]
        return (
            not self.wrong_rows
            and self.result == self.expected
            and self.restore_versions == restored
        )


def then(id_: int) -> Row:
    """Row ``id_`` at ``t``."""
    row = inserted(id_)
    return updated(row, 1) if id_ % 10 == 0 else row


def _values(rows: Sequence[Row]) -> list[dict[str, Any]]:
    return [{"id": r[0], "name": r[1], "qty": r[2], "price": r[3], "note": r[4]} for r in rows]


def _batches(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start : start + BATCH]


def build(session: Session, item: Any, n: int) -> dt.datetime:
    """Write the history described in the module docs; ``t``, the time to restore to."""
    for ids in _batches(range(1, n + 1)):
        session.execute(insert(item), _values([inserted(i) for i in ids]))
        session.commit()
    for ids in _batches(range(10, n + 1, 10)):
        session.execute(
            update(item), [{"id": i, "qty": then(i)[2], "price": then(i)[3]} for i in ids]
        )
        session.commit()
    when = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.01)
    for ids in _batches(range(1, n + 1, 3)):
        changed = [updated(then(i), 2) for i in ids]
        session.execute(update(item), [{"id": r[0], "qty": r[2], "price": r[3]} for r in changed])
        session.commit()
    for ids in _batches(range(2, n + 1, 3)):
        session.execute(delete(item).where(item.id.in_(ids)))
        session.commit()
    for ids in _batches(range(2, n + 1, 9)):
        session.execute(insert(item), _values([updated(then(i), 3) for i in ids]))
        session.commit()
    for ids in _batches(range(n + 1, n + n // 10 + 1)):
        session.execute(insert(item), _values([inserted(i) for i in ids]))
        session.commit()
    return when


def expected_counts(n: int) -> dict[str, int]:
    """The :class:`~sqlalchemy_chronicle.RestoreResult` that the history of :func:`build` calls
    for."""
    deleted = len(range(2, n + 1, 3))
    back = len(range(2, n + 1, 9))
    return {
        "inserted": deleted - back,
        "updated": len(range(1, n + 1, 3)) + back,
        "deleted": n // 10,
        "unchanged": len(range(3, n + 1, 3)),
    }


def run(url: str, n: int, profile: str | None = None) -> Outcome:
    """Build the history, time the restore, check it; the tables are dropped at the end."""
    from sqlalchemy_chronicle import restore_all, use_sqlite_savepoints

    engine = create_engine(url)
    use_sqlite_savepoints(engine)
    chronicle = Chronicle(engine)
    item, history = chronicle.item, chronicle.history
    chronicle.setup()
    try:
        start = time.perf_counter()
        with Session(engine) as session:
            when = build(session, item, n)
        setup_seconds = time.perf_counter() - start
        chronicle.analyze()
        with engine.connect() as conn:
            history_rows = int(conn.scalar(select(func.count()).select_from(history)) or 0)
        profiler = cProfile.Profile() if profile else None
        with Session(engine) as session:
            start = time.perf_counter()
            if profiler:
                profiler.enable()
            result = restore_all(session, item, as_of=when)
            restored = time.perf_counter()
            session.commit()
            if profiler:
                profiler.disable()
            committed = time.perf_counter()
        if profiler and profile:
            profiler.dump_stats(profile)
        with Session(engine) as session:
            live = {o.id: row_of(o) for o in session.scalars(select(item))}
            versions = session.scalar(
                select(func.count()).select_from(history).where(history.c.operation == "restore")
            )
        model = {i: then(i) for i in range(1, n + 1)}
        wrong = sum(live.get(i) != row for i, row in model.items()) + len(live.keys() - model)
        return Outcome(
            backend=engine.dialect.name,
            rows=n,
            history_rows=history_rows,
            restore_seconds=restored - start,
            commit_seconds=committed - restored,
            result=result._asdict(),
            expected=expected_counts(n),
            wrong_rows=wrong,
            restore_versions=int(versions or 0),
            setup_seconds=setup_seconds,
        )
    finally:
        chronicle.teardown()
        engine.dispose()


def report(urls: Sequence[str], n: int, python: str) -> tuple[str, bool]:
    """Run every database in a worker process of its own and tabulate."""
    from benchmarks.run import backend_of, run_json_worker

    lines = [
        "| backend | rows | history rows | restore_all | commit | total "
        "| inserted / updated / deleted / unchanged | check |",
        "|---|---|---|---|---|---|---|---|",
    ]
    right = True
    for url in urls:
        found, code = run_json_worker(python, "benchmarks.restore", ["--url", url, "--n", str(n)])
        if found is None:
            right = False
            lines.append(f"| {backend_of(url)} | ERROR: exit {code} |")
            continue
        o = Outcome(**found)
        right = right and o.ok
        counts = " / ".join(f"{o.result[k]:,}" for k in o.expected)
        check = "ok" if o.ok else f"WRONG: {o.wrong_rows} rows, {o.restore_versions} versions"
        lines.append(
            f"| {backend_of(url)} | {o.rows:,} | {o.history_rows:,} | {o.restore_seconds:.2f} s | "
            f"{o.commit_seconds:.2f} s | {o.restore_seconds + o.commit_seconds:.2f} s | "
            f"{counts} | {check} |"
        )
    return "\n".join(lines) + "\n", right


def main(argv: Sequence[str] | None = None) -> int:
    """One database; the :class:`Outcome` as JSON to ``--out`` (or stdout)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--n", type=int, default=N, help="rows (default 100,000)")
    parser.add_argument("--out")
    parser.add_argument("--profile", help="write cProfile statistics of the restore here")
    args = parser.parse_args(argv)
    outcome = run(args.url, args.n, args.profile)
    payload = json.dumps(asdict(outcome))
    print(
        f"[restore {outcome.backend} {args.n}] restore_all={outcome.restore_seconds:.2f} "
        f"commit={outcome.commit_seconds:.2f} (history built in {outcome.setup_seconds:.0f} s) "
        f"{'ok' if outcome.ok else 'WRONG'}",
        file=sys.stderr,
        flush=True,
    )
    if args.out:
        Path(args.out).write_text(payload)
    else:
        print(payload)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
