"""R1 in steady state: the point lookups alone, each side in processes of its own, best of many.

The standard run times R1 once per variant, right after the writes: about a second, whose ratio
moves by 0.1-0.3 from run to run on a shared machine. This builds the workload's data once (W1-W3
of the plain baseline and of ``chronicle``, the baseline's table named ``bench_item_plain`` so
that both stand side by side), then times R1's 2,000 lookups (same seed, same pairs) in fresh
worker processes, baseline and as-of alternating, ``--rounds`` workers each. A worker runs the
lookups ``--best-of`` times, each time in a new session as R1 does, and reports its best; the
figure of each side is the best of its workers. As in the standard run, a baseline worker does
not import the library; ``--hook`` gives the baseline a no-op ``do_orm_execute`` listener, which
shows what any such listener costs (SQLAlchemy then runs its ORM pre-execution twice per
statement). Every answer is compared with the model of the writes; a wrong answer is reported
instead of a figure.

Run it with ``python -m benchmarks.lookups [--db NAME_OR_URL ...] [--n 20000] [--rounds 3]
[--best-of 5] [--hook]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.orm import Session

from benchmarks import workload
from benchmarks.run import backend_of, resolve, run_json_worker

PLAIN_TABLE = "bench_item_plain"
SIDES = ("plain", "chronicle")


def _variant(side: str, url: str) -> workload.Variant:
    engine = create_engine(url)
    if side == "plain":
        return workload.Variant(engine, table=PLAIN_TABLE)
    return workload.Chronicle(engine)


def _answer(row: workload.Row | None) -> list[Any] | None:
    """A lookup's answer as JSON keeps it (the price as text)."""
    return None if row is None else [row[0], row[1], row[2], str(row[3]), row[4]]


def worker(side: str, url: str, pairs: list[tuple[int, str]], best_of: int, hook: bool) -> Any:
    """Time the lookups ``best_of`` times, each in a new session: the best time and the answers."""
    variant = _variant(side, url)
    if hook:
        event.listen(Session, "do_orm_execute", lambda state: None)
    times = [(id_, dt.datetime.fromisoformat(when)) for id_, when in pairs]
    best = float("inf")
    answers: list[workload.Row | None] = []
    for _ in range(best_of):
        with Session(variant.engine) as session:
            start = time.perf_counter()
            answers = [variant.point(session, id_, when) for id_, when in times]
            best = min(best, time.perf_counter() - start)
    variant.engine.dispose()
    return {"best": best, "answers": [_answer(row) for row in answers]}


def measure(url: str, params: workload.Params, rounds: int, best_of: int, hook: bool) -> str:
    """Build both sides' data, time them alternately in workers; a table row, or the failure."""
    variants = {side: _variant(side, url) for side in SIDES}
    models = {side: workload.Model() for side in SIDES}
    best = dict.fromkeys(SIDES, float("inf"))
    wrong = dict.fromkeys(SIDES, 0)
    try:
        for side, variant in variants.items():
            variant.setup()
            result = workload.Result(side, backend_of(url), {})
            workload.write(variant, params, models[side], result, workload.Counter())
            variant.analyze()
        times = models["chronicle"].times
        rng = random.Random(params.seed)
        pairs = [
            (rng.randint(1, params.n), rng.randrange(len(times))) for _ in range(params.lookups)
        ]
        final = len(models["plain"].times) - 1
        expected = {
            "chronicle": [_answer(models["chronicle"].at(id_, commit)) for id_, commit in pairs],
            "plain": [_answer(models["plain"].at(id_, final)) for id_, _ in pairs],
        }
        with tempfile.TemporaryDirectory() as scratch:
            sent = Path(scratch, "pairs.json")
            sent.write_text(json.dumps([(id_, times[commit].isoformat()) for id_, commit in pairs]))
            for _ in range(rounds):
                for side in SIDES:
                    args = ["--worker", side, "--pairs", str(sent), "--db", url]
                    args += ["--best-of", str(best_of), *(["--hook"] if hook else [])]
                    found, code = run_json_worker(sys.executable, "benchmarks.lookups", args)
                    if found is None:
                        return f"| {backend_of(url)} | worker failed (exit code {code}) |"
                    best[side] = min(best[side], found["best"])
                    answers = zip(found["answers"], expected[side], strict=True)
                    wrong[side] += sum(got != want for got, want in answers)
    finally:
        for variant in variants.values():
            variant.teardown()
            variant.engine.dispose()
    if any(wrong.values()):
        return f"| {backend_of(url)} | WRONG answers: {wrong}; no figure |"
    ratio = best["chronicle"] / best["plain"]
    return (
        f"| {backend_of(url)} | {params.n:,} | {params.lookups:,} | {best['plain']:.3f} s | "
        f"{best['chronicle']:.3f} s | {ratio:.2f}x |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Measure each ``--db``, or run one worker (``--worker``, for :func:`measure`)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--db", action="append", default=[], help="a name or URL (repeatable)")
    parser.add_argument("--n", type=int, default=workload.Params.n, help="rows (default 20,000)")
    parser.add_argument("--rounds", type=int, default=3, help="workers per side (default 3)")
    parser.add_argument("--best-of", type=int, default=5, help="timed loops per worker")
    parser.add_argument("--hook", action="store_true", help="a no-op hook on the baseline")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--pairs", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        pairs = json.loads(Path(args.pairs).read_text())
        hook = args.hook and args.worker == "plain"
        found = worker(args.worker, args.db[0], pairs, args.best_of, hook)
        Path(args.out).write_text(json.dumps(found))
        return 0
    lines = [
        "| backend | rows | lookups | plain, best | as-of, best | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for url in resolve(args.db):
        lines.append(measure(url, workload.Params(n=args.n), args.rounds, args.best_of, args.hook))
        print(lines[-1], file=sys.stderr)
    if args.hook:
        lines.append("")
        lines.append("The baseline ran with a no-op `do_orm_execute` listener.")
    print("\n".join(lines))
    return 1 if any("WRONG" in line or "failed" in line for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
