"""What the library's hooks cost an application that does not read the past.

A plain primary-key read of an unversioned class, ``session.execute(select(Plain).where(Plain.id
== id)).scalar_one_or_none()``, statement cache warm, timed in four set-ups, each in a process of
its own:

``bare``
    SQLAlchemy alone: the library is not imported.
``library``
    the library imported and a versioned class mapped next to ``Plain`` (which is what installs
    the bulk-statement hook and the ``@compiles`` hooks); no as-of read.
``as-of``
    as ``library``, after one ``query_as_of()`` has been built (which installs the as-of hook on
    every session).
``noop-hook``
    SQLAlchemy alone with one ``do_orm_execute`` listener that does nothing: the least any such
    hook costs, since SQLAlchemy then prepares every ORM statement twice.

Each worker runs ``--loops`` loops of ``--reads`` reads in one session and keeps the best loop;
the set-ups run one after another, ``--repeat`` times, and the report gives each one's best,
per read, and its ratio to ``bare``. It also times compiling the statement anew (the ``@compiles``
hooks run at compile time only, which a warm statement cache skips), as the best of ``--reads``
compilations.

    python -m benchmarks.hooks [--url URL ...] [--reads 2000] [--loops 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, String, create_engine, event, select
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column

SETUPS = ("bare", "library", "as-of", "noop-hook")


def _worker(url: str, setup: str, reads: int, loops: int) -> dict[str, float]:
    class Base(DeclarativeBase):
        pass

    class Plain(Base):
        __tablename__ = "bench_hooks_plain"
        id = mapped_column(Integer, primary_key=True)
        name = mapped_column(String(50))

    mixins: tuple[type, ...] = ()
    if setup in ("library", "as-of"):
        from sqlalchemy_chronicle import Versioned, query_as_of

        mixins = (Versioned,)

        class Kept(*mixins, Base):  # type: ignore[misc]
            __tablename__ = "bench_hooks_kept"
            id = mapped_column(Integer, primary_key=True)
            name = mapped_column(String(50))

        if setup == "as-of":
            import datetime as dt

            query_as_of(Kept, dt.datetime.now(dt.timezone.utc))
    if setup == "noop-hook":
        event.listen(Session, "do_orm_execute", lambda state: None)

    engine = create_engine(url)
    tables = [Base.metadata.tables["bench_hooks_plain"]]
    Base.metadata.drop_all(engine, tables=tables)
    Base.metadata.create_all(engine, tables=tables)
    try:
        with Session(engine) as session:
            session.add_all([Plain(id=i, name=f"row {i}") for i in range(1, 101)])
            session.commit()
        ids = [1 + (i * 37) % 100 for i in range(reads)]
        gc.collect()
        gc.freeze()  # what the set-up imported is not scanned again by the collections below
        best = float("inf")
        with Session(engine) as session:
            for _ in range(loops + 1):  # the first loop warms the caches
                session.expunge_all()
                start = time.perf_counter()
                for id_ in ids:
                    session.execute(select(Plain).where(Plain.id == id_)).scalar_one_or_none()
                best = min(best, time.perf_counter() - start)
        statement = select(Plain).where(Plain.id == 5)
        compile_best = float("inf")
        for _ in range(reads):
            start = time.perf_counter()
            statement.compile(dialect=engine.dialect)
            compile_best = min(compile_best, time.perf_counter() - start)
    finally:
        Base.metadata.drop_all(engine, tables=tables)
        engine.dispose()
    return {"read": best / reads, "compile": compile_best}


def report(urls: Sequence[str], reads: int, loops: int, repeat: int, python: str) -> str:
    """Run every set-up on every database ``repeat`` times and tabulate the best of each."""
    from benchmarks.run import backend_of, run_json_worker

    lines = [
        "| backend | set-up | per read, best | ratio to bare | compile, best | ratio to bare |",
        "|---|---|---|---|---|---|",
    ]
    for url in urls:
        best: dict[str, dict[str, float]] = {}
        for _ in range(repeat):
            for setup in SETUPS:
                args = ["--url", url, "--setup", setup, "--reads", str(reads)]
                found, code = run_json_worker(
                    python, "benchmarks.hooks", [*args, "--loops", str(loops)]
                )
                if found is None:
                    raise SystemExit(f"benchmarks.hooks {setup} on {url} failed: exit {code}")
                mine = best.setdefault(setup, {"read": float("inf"), "compile": float("inf")})
                for key in mine:
                    mine[key] = min(mine[key], found[key])
        bare = best["bare"]
        for setup in SETUPS:
            figures: Any = best[setup]
            lines.append(
                f"| {backend_of(url)} | {setup} | {figures['read'] * 1e6:.1f} us | "
                f"{figures['read'] / bare['read']:.3f}x | {figures['compile'] * 1e6:.1f} us | "
                f"{figures['compile'] / bare['compile']:.3f}x |"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """The report, or (with ``--setup``) one worker's figures as JSON to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", action="append", default=[], help="SQLAlchemy URL (repeatable)")
    parser.add_argument("--reads", type=int, default=2000, help="reads per loop (default 2,000)")
    parser.add_argument("--loops", type=int, default=5, help="loops per worker (default 5)")
    parser.add_argument("--repeat", type=int, default=3, help="workers per set-up (default 3)")
    parser.add_argument("--setup", choices=SETUPS, help="run one worker (internal)")
    parser.add_argument("--out", help="the worker's JSON (internal)")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the workers")
    args = parser.parse_args(argv)
    urls = args.url or ["sqlite://"]
    if args.setup:
        found = _worker(urls[0], args.setup, args.reads, args.loops)
        Path(args.out).write_text(json.dumps(found))
        return 0
    print(report(urls, args.reads, args.loops, args.repeat, args.python))
    return 0


if __name__ == "__main__":
    sys.exit(main())
