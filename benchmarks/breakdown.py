"""Where the writes of the standard workload spend their time, by step of the history writer.

Runs the workload's writes W1-W3 for one variant (``chronicle`` by default) on one database, with
a timer around each step of the library's writer, and prints the seconds spent in each: the
session's flushes, the history writer within them, and within that the short path (closing,
copying, delete markers), the full path, and the change log (building and inserting the
entries). The steps nest, so their times do not add up; what a flush spends outside the writer
is the ORM's own work and the capture of the flushed objects. The timers cost a little time of
their own.

``python -m benchmarks.breakdown --url URL [--variant chronicle-nolog] [--n 20000]``
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import create_engine

from benchmarks import workload

STEPS: list[tuple[str, str, str]] = [
    ("flush", "sqlalchemy.orm.session:Session", "_flush"),
    ("history writer", "sqlalchemy_chronicle.write", "write_history"),
    ("short path", "sqlalchemy_chronicle.write._writer", "copy_versions"),
    ("short path: close", "sqlalchemy_chronicle.write._short_path:_ShortPath", "close"),
    ("short path: copy", "sqlalchemy_chronicle.write._short_path:_ShortPath", "copy"),
    ("short path: markers", "sqlalchemy_chronicle.write._short_path:_ShortPath", "mark_deleted"),
    ("full path", "sqlalchemy_chronicle.write._full_path:FullPath", "plan_and_write"),
    ("change log", "sqlalchemy_chronicle.write._writer", "write_changelog"),
    ("change log: insert", "sqlalchemy_chronicle.write._changelog", "_insert_entries"),
]
"""(label, ``module[:attribute]`` holding the function, function name)."""


def _owner(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    owner: Any = __import__(module_name, fromlist=["_"])
    return getattr(owner, attribute) if attribute else owner


def _timed(function: Callable[..., Any], label: str, seconds: Counter[str]) -> Any:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[label] += time.perf_counter() - started

    return wrapper


def measure(url: str, variant_name: str, n: int) -> tuple[dict[str, float], Counter[str]]:
    """The seconds of W1-W3, and the seconds spent in each step."""
    seconds: Counter[str] = Counter()
    for label, path, name in STEPS:
        owner = _owner(path)
        setattr(owner, name, _timed(getattr(owner, name), label, seconds))
    engine = create_engine(url)
    variant = workload.make_variant(variant_name, engine)
    result = workload.Result(variant.name, engine.dialect.name, {})
    variant.setup()
    try:
        workload.write(variant, workload.Params(n=n), workload.Model(), result, workload.Counter())
    finally:
        variant.teardown()
        engine.dispose()
    return result.seconds, seconds


def main(argv: Sequence[str] | None = None) -> int:
    """Print the phases' seconds and the steps' seconds."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--variant", default="chronicle", choices=["chronicle", "chronicle-nolog"])
    parser.add_argument("--n", type=int, default=workload.Params.n, help="rows (default 20,000)")
    args = parser.parse_args(argv)
    phases, steps = measure(args.url, args.variant, args.n)
    total = sum(phases.values())
    print(f"{args.variant}, N = {args.n}: W1-W3 {total:.2f} s")
    print("| step | seconds |\n|---|---|")
    for label, _, _ in STEPS:
        print(f"| {label} | {steps[label]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
