"""The benchmark's quick mode on every database of the suite, so that the benchmark cannot rot.

It runs ``python -m benchmarks --quick`` (a small standard workload, correctness checks only, no
timing claims) and small runs of the other tools (``benchmarks.floor``,
``benchmarks.trigger_floor``, ``benchmarks.breakdown``, ``benchmarks.lookups``,
``benchmarks.hooks``, and ``benchmarks.big`` on PostgreSQL) in child
processes against the suite's database. The benchmark uses its own tables (``bench_item``,
``bench_item_part``, their histories, ``bench_item_plain``, ``bench_hooks_plain``) in its own
MetaData and, in the library's shared tables, deletes only the transaction and change-log rows it
wrote.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, inspect, select

from sqlalchemy_chronicle import ChangeLog, Transaction

ROOT = Path(__file__).resolve().parent.parent


def run_benchmark(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


BENCHMARK_TABLES = {
    "bench_item",
    "bench_item_history",
    "bench_item_part",
    "bench_item_part_history",
    "bench_item_plain",
    "bench_item_plain_part",
    "bench_floor_history",
    "bench_floor_changelog",
}


def run_tool(engine: Engine, module: str, *args: str, url_option: str = "--db") -> str:
    """Run a benchmark module against ``engine``'s database; its output, once it succeeded."""
    url = engine.url.render_as_string(hide_password=False)
    done = run_benchmark(module, *args, url_option, url)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def assert_benchmark_tables_dropped(engine: Engine) -> None:
    assert not BENCHMARK_TABLES & set(inspect(engine).get_table_names())


def ratio_rows(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("| ") and "x |" in line]


def test_quick_benchmark(engine: Engine) -> None:
    with engine.connect() as conn:
        before = (
            conn.scalar(select(func.count()).select_from(Transaction)),
            conn.scalar(select(func.count()).select_from(ChangeLog)),
        )
    output = run_tool(engine, "benchmarks", "--quick")
    assert "| chronicle | 0 / 200 | 0 / 200 | 0 / 5 | 0 / 3 |" in output, output
    assert "| chronicle-nolog | 0 / 200 | 0 / 200 | 0 / 5 | 0 / 3 |" in output, output
    with engine.connect() as conn:
        after = (
            conn.scalar(select(func.count()).select_from(Transaction)),
            conn.scalar(select(func.count()).select_from(ChangeLog)),
        )
    assert after == before, "the benchmark left rows in the library's tables"
    assert_benchmark_tables_dropped(engine)


@pytest.mark.parametrize("indexes", [(), ("--lean",)], ids=["indexes", "lean"])
def test_floor_benchmark_runs_its_statements(engine: Engine, indexes: tuple[str, ...]) -> None:
    def changelog_indexes() -> set[str | None]:
        found = inspect(engine)
        if not found.has_table("chronicle_changelog"):
            return set()
        return {index["name"] for index in found.get_indexes("chronicle_changelog")}

    before = changelog_indexes()
    output = run_tool(engine, "benchmarks.floor", "--n", "2000", *indexes)
    assert len(ratio_rows(output)) == 1, output
    assert ("primary keys only" in output) == bool(indexes), output
    assert_benchmark_tables_dropped(engine)
    assert changelog_indexes() == before, "the change log is the suite's too: keep its indexes"


def test_trigger_floor_benchmark_checks_what_its_triggers_wrote(engine: Engine) -> None:
    output = run_tool(engine, "benchmarks.trigger_floor", "--n", "400", "--repeat", "1")
    assert len(ratio_rows(output)) == 1, output
    assert_benchmark_tables_dropped(engine)


def test_breakdown_benchmark_times_the_writer(engine: Engine) -> None:
    output = run_tool(engine, "benchmarks.breakdown", "--n", "600", url_option="--url")
    seconds = dict(
        (line.split("|")[1].strip(), float(line.split("|")[2]))
        for line in output.splitlines()
        if line.startswith("| ") and not line.startswith("| step")
    )
    assert seconds["history writer"] > 0 and seconds["change log"] > 0, output
    assert (seconds["short path"] > 0) == (engine.dialect.name != "mysql"), output


def test_lookups_benchmark_checks_its_answers(engine: Engine) -> None:
    args = ("--n", "300", "--rounds", "1", "--best-of", "1")
    output = run_tool(engine, "benchmarks.lookups", *args)
    assert len(ratio_rows(output)) == 1, output
    assert_benchmark_tables_dropped(engine)


def test_hooks_benchmark_runs_every_set_up(engine: Engine) -> None:
    output = run_tool(
        engine,
        "benchmarks.hooks",
        *("--reads", "20", "--loops", "1", "--repeat", "1"),
        url_option="--url",
    )
    assert [line.split("|")[2].strip() for line in ratio_rows(output)] == [
        "bare",
        "library",
        "as-of",
        "noop-hook",
    ], output
    assert "bench_hooks_plain" not in inspect(engine).get_table_names()


def test_big_snapshot_benchmark_streams_and_checks(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("benchmarks.big generates its history with PostgreSQL's generate_series")
    output = run_tool(
        engine, "benchmarks.big", "--rows", "500", "--versions", "4", url_option="--url"
    )
    reads = re.findall(r"^\| (as of \S+|live) \| 500 \| 0 \|", output, re.MULTILINE)
    assert len(reads) == 2, output
    assert re.search(r"^    .* on bench_item_history", output, re.MULTILINE), output
    assert_benchmark_tables_dropped(engine)
