"""As-of reads at growing history sizes: does a point as-of lookup stay flat?

The history of ``bench_item`` is grown, through the library's own bulk statements (ORM bulk
``INSERT`` and bulk ``UPDATE`` by primary key, 5,000 rows per transaction, change log off, which
reads do not touch), to each size in turn (about 10^4, 10^5 and 10^6 history rows by default),
in two shapes:

``rows``
    6 versions per row, as in the standard workload; the number of rows grows (size / 6).
``depth``
    a fixed 200 rows; the number of versions per row grows through the depths given (1, 10, 100
    and 1,000 by default, so up to 200,000 history rows). A point lookup reads one row's history, so
    the question is whether its cost follows the number of versions of the row.

At each size, after ``VACUUM ANALYZE``, the worker times R1 (2,000 point as-of lookups at random
recorded commit times, ``query_as_of(Item, when).where(Item.id == id)``, in chunks of 100
alternating with the baseline's, the sum of each chunk's best of 3 runs) and
R2 (5 snapshot reads, ``query_as_of(Item, when)``), and, as the baseline, the same reads of the
live table in the same process (the live table holds exactly what a plain table would). Every
answer is checked against a model of the values (a value is a function of the row id and its round
of updates). The plan of one point lookup as of the middle of the history is shown:
``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL, ``ANALYZE`` on MariaDB (rows read, ``r_rows``),
``EXPLAIN QUERY PLAN`` on SQLite.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, insert, select, update
from sqlalchemy.orm import Session

from benchmarks.workload import Chronicle, Row, inserted, row_of, updated

SHAPES = ("rows", "depth")
BATCH = 5_000
DEPTH_ROWS = 200
DEPTHS = (1, 10, 100, 1_000)
LOOKUPS = 2_000
SNAPSHOTS = 5
ROUNDS = 3
CHUNK = 100
"""R1 and its baseline run this many times, alternately by chunks of ``CHUNK`` lookups; the sum
of each chunk's best time is reported, so that a burst of load elsewhere on the machine counts
in neither side."""


@dataclass
class Commit:
    """One generating transaction: ids ``lo..hi`` reached update round ``round`` (0: insert)."""

    lo: int
    hi: int
    round: int
    time: Any = None


@dataclass
class Grown:
    """The history as generated so far."""

    rows: int = 0
    commits: list[Commit] = field(default_factory=list)
    rounds: list[int] = field(default_factory=lambda: [-1])
    """Current update round of every id (index = id; -1 = no row)."""

    def value(self, id_: int, round_: int) -> Row:
        row = inserted(id_)
        return row if round_ == 0 else updated(row, round_)

    def at(self, id_: int, commit: int) -> Row | None:
        for step in reversed(self.commits[: commit + 1]):
            if step.lo <= id_ <= step.hi:
                return self.value(id_, step.round)
        return None

    def snapshot(self, commit: int) -> dict[int, Row]:
        rounds = [-1] * (self.rows + 1)
        for step in self.commits[: commit + 1]:
            rounds[step.lo : step.hi + 1] = [step.round] * (step.hi - step.lo + 1)
        return {i: self.value(i, r) for i, r in enumerate(rounds) if r >= 0}


@dataclass
class Point:
    """The measurements at one history size."""

    shape: str
    history_rows: int
    rows: int
    versions_per_row: float
    commits: int
    generate_seconds: float
    r1_seconds: float
    r1_baseline_seconds: float
    r2_seconds: float
    r2_baseline_seconds: float
    wrong: int
    checked: int
    plan: list[str]


def _timestamp(session: Session) -> Any:
    import datetime as dt

    session.commit()
    return dt.datetime.now(dt.timezone.utc)


def grow(session: Session, item: Any, grown: Grown, rows: int, versions: int) -> None:
    """Insert ids up to ``rows`` and update every id until it has ``versions`` versions."""
    while len(grown.rounds) <= rows:
        grown.rounds.append(-1)
    for lo in range(grown.rows + 1, rows + 1, BATCH):
        hi = min(lo + BATCH - 1, rows)
        values = [inserted(i) for i in range(lo, hi + 1)]
        session.execute(
            insert(item),
            [{"id": r[0], "name": r[1], "qty": r[2], "price": r[3], "note": r[4]} for r in values],
        )
        grown.rounds[lo : hi + 1] = [0] * (hi - lo + 1)
        grown.commits.append(Commit(lo, hi, 0, _timestamp(session)))
    grown.rows = max(grown.rows, rows)
    # Rounds are applied range by range, lowest round first, so commits stay contiguous.
    while True:
        behind = [i for i in range(1, rows + 1) if grown.rounds[i] + 1 < versions]
        if not behind:
            break
        target = min(grown.rounds[i] for i in behind) + 1
        ids = [i for i in behind if grown.rounds[i] + 1 == target]
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            session.execute(
                update(item),
                [
                    {
                        "id": i,
                        "qty": updated(inserted(i), target)[2],
                        "price": updated(inserted(i), target)[3],
                    }
                    for i in chunk
                ],
            )
            for i in chunk:
                grown.rounds[i] = target
            grown.commits.append(Commit(chunk[0], chunk[-1], target, _timestamp(session)))
            assert chunk[-1] - chunk[0] + 1 == len(chunk), "update ranges must be contiguous"


def explain(engine: Engine, chronicle: Chronicle, when: Any, id_: int) -> list[str]:
    """The plan of one point as-of lookup, as the database tells it (see the module doc)."""
    prefix = {
        "postgresql": "EXPLAIN (ANALYZE, BUFFERS) ",
        "mysql": "ANALYZE ",
        "mariadb": "ANALYZE ",
        "sqlite": "EXPLAIN QUERY PLAN ",
    }.get(engine.dialect.name)
    if prefix is None:
        return []
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with Session(engine) as session:
            chronicle.point(session, id_, when)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = seen[-1]
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(prefix + statement, parameters)
        rows = cursor.fetchall()
        if engine.dialect.name == "postgresql":
            return [line[0] for line in rows]
        names = [d[0] for d in cursor.description]
        return [" ".join(f"{n}={v}" for n, v in zip(names, row, strict=True)) for row in rows]
    finally:
        raw.close()


def measure(
    engine: Engine, chronicle: Chronicle, grown: Grown, shape: str, seed: int
) -> tuple[float, float, float, float, int, int]:
    """R1 and R2 as of the past, and their baselines on the live table; checked answers."""
    item = chronicle.item
    rng = random.Random(seed)
    pairs = [
        (rng.randint(1, grown.rows), rng.randrange(len(grown.commits))) for _ in range(LOOKUPS)
    ]
    wrong = 0
    with Session(engine) as session:  # warm up the statement caches of both reads
        for i, k in pairs[:20]:
            chronicle.point(session, i, grown.commits[k].time)
            session.execute(select(item).where(item.id == i)).scalar_one_or_none()
    chunks = [pairs[start : start + CHUNK] for start in range(0, len(pairs), CHUNK)]
    best = [float("inf")] * len(chunks)
    best_base = [float("inf")] * len(chunks)
    answers: list[Row | None] = []
    for _ in range(ROUNDS):  # alternating chunk by chunk, the best of each: the machine is shared
        answers = []
        with Session(engine) as session, Session(engine) as live:
            for n, chunk in enumerate(chunks):
                start = time.perf_counter()
                answers += [chronicle.point(session, i, grown.commits[k].time) for i, k in chunk]
                best[n] = min(best[n], time.perf_counter() - start)
                start = time.perf_counter()
                for i, _ in chunk:
                    live.execute(select(item).where(item.id == i)).scalar_one_or_none()
                best_base[n] = min(best_base[n], time.perf_counter() - start)
    r1, r1_base = sum(best), sum(best_base)
    for (i, k), answer in zip(pairs, answers, strict=True):
        wrong += answer != grown.at(i, k)
    r2 = r2_base = 0.0
    for _ in range(SNAPSHOTS):
        k = rng.randrange(len(grown.commits))
        with Session(engine) as session:
            start = time.perf_counter()
            objects = session.scalars(chronicle.snapshot_query(grown.commits[k].time)).all()
            r2 += time.perf_counter() - start
            wrong += {o.id: row_of(o) for o in objects} != grown.snapshot(k)
            del objects
        with Session(engine) as session:
            start = time.perf_counter()
            session.scalars(select(item)).all()
            r2_base += time.perf_counter() - start
    return r1, r1_base, r2, r2_base, wrong, LOOKUPS + SNAPSHOTS


def run_shape(url: str, shape: str, sizes: Sequence[int], seed: int) -> list[Point]:
    """Grow one shape through ``sizes`` (history rows; versions per row for ``depth``)."""
    engine = create_engine(url)
    chronicle = Chronicle(engine, changelog=False)
    chronicle.setup()
    points: list[Point] = []
    grown = Grown()
    try:
        with Session(engine) as session:
            for size in sorted(sizes):
                if shape == "rows":
                    rows, versions = max(size // 6, 1), 6
                else:
                    rows, versions = DEPTH_ROWS, size
                start = time.perf_counter()
                grow(session, chronicle.item, grown, rows, versions)
                generated = time.perf_counter() - start
                chronicle.analyze()
                with engine.connect() as conn:
                    history_rows = conn.scalar(select(func.count()).select_from(chronicle.history))
                when = grown.commits[len(grown.commits) // 2].time
                plan = explain(engine, chronicle, when, rows // 2 or 1)
                r1, r1b, r2, r2b, wrong, checked = measure(engine, chronicle, grown, shape, seed)
                points.append(
                    Point(
                        shape,
                        int(history_rows or 0),
                        grown.rows,
                        (history_rows or 0) / grown.rows,
                        len(grown.commits),
                        generated,
                        r1,
                        r1b,
                        r2,
                        r2b,
                        wrong,
                        checked,
                        plan,
                    )
                )
                print(
                    f"[scale {shape} {history_rows}] R1={r1:.2f}/{r1b:.2f} R2={r2:.2f}/{r2b:.2f} "
                    f"generated in {generated:.0f} s, wrong={wrong}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        chronicle.teardown()
        engine.dispose()
    return points


def report(
    urls: Sequence[str],
    sizes: Sequence[int],
    python: str,
    depths: Sequence[int] = DEPTHS,
    shapes: Sequence[str] = SHAPES,
) -> tuple[str, bool]:
    """Run the shapes on every database (each in a worker process) and tabulate.

    ``sizes`` are the history sizes of the ``rows`` shape, ``depths`` the versions per row of
    the ``depth`` shape.
    """
    from benchmarks.run import backend_of, run_json_worker

    lines = [
        "| backend | shape | history rows | rows | versions/row | R1 as-of | R1 live | R1 ratio "
        "| per lookup as-of | R2 as-of | R2 live | R2 ratio | wrong |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    plans: list[str] = []
    right = True
    for url in urls:
        for shape in shapes:
            steps = sizes if shape == "rows" else depths
            args = ["--url", url, "--shape", shape, "--sizes", ",".join(map(str, steps))]
            found, code = run_json_worker(python, "benchmarks.scale", args)
            if found is None:
                right = False
                lines.append(f"| {backend_of(url)} | {shape} | ERROR: exit {code} |")
                continue
            for p in (Point(**d) for d in found):
                right = right and not p.wrong
                lines.append(
                    f"| {backend_of(url)} | {shape} | {p.history_rows:,} | {p.rows:,} | "
                    f"{p.versions_per_row:.0f} | {p.r1_seconds:.2f} s | "
                    f"{p.r1_baseline_seconds:.2f} s | "
                    f"{p.r1_seconds / p.r1_baseline_seconds:.2f}x | "
                    f"{p.r1_seconds / LOOKUPS * 1e6:.0f} us | {p.r2_seconds:.2f} s | "
                    f"{p.r2_baseline_seconds:.2f} s | "
                    f"{p.r2_seconds / p.r2_baseline_seconds:.2f}x | "
                    f"{p.wrong} / {p.checked} |"
                )
                if p.plan:
                    plans.append(
                        f"{backend_of(url)}, {shape}, {p.history_rows:,} history rows:\n\n"
                        + "\n".join("    " + line for line in p.plan)
                    )
    text = "\n".join(lines)
    if plans:
        text += "\n\nPlans of one point as-of lookup:\n\n" + "\n\n".join(plans)
    return text + "\n", right


def main(argv: Sequence[str] | None = None) -> int:
    """One shape on one database; the points as JSON to ``--out``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--shape", choices=SHAPES, required=True)
    parser.add_argument(
        "--sizes",
        default=None,
        help="history rows (rows shape; default 10^4,10^5,10^6) or versions per row (depth shape)",
    )
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    default = "10000,100000,1000000" if args.shape == "rows" else ",".join(map(str, DEPTHS))
    sizes = [int(float(s)) for s in (args.sizes or default).split(",")]
    points = run_shape(args.url, args.shape, sizes, args.seed)
    Path(args.out).write_text(json.dumps([asdict(p) for p in points]))
    return 0 if all(not p.wrong for p in points) else 1


if __name__ == "__main__":
    sys.exit(main())
