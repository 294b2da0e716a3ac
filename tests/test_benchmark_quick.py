"""The benchmark's quick mode on every database of the suite, so that the benchmark cannot rot.

It runs ``python -m benchmarks --quick`` (a small standard workload, correctness checks only, no
timing claims) and small runs of the other tools (``benchmarks.floor``, ``benchmarks.breakdown``,
``benchmarks.lookups``) in child processes against the suite's database. The benchmark uses its
own tables (``bench_item``, ``bench_item_history``, ``bench_item_plain``) in its own MetaData and,
in the library's shared tables, deletes only the transaction and change-log rows it wrote.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def test_quick_benchmark(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    with engine.connect() as conn:
        before = (
            conn.scalar(select(func.count()).select_from(Transaction)),
            conn.scalar(select(func.count()).select_from(ChangeLog)),
        )
    done = run_benchmark("benchmarks", "--quick", "--db", url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| chronicle | 0 / 200 | 0 / 200 | 0 / 5 |" in done.stdout, done.stdout
    assert "| chronicle-nolog | 0 / 200 | 0 / 200 | 0 / 5 |" in done.stdout, done.stdout
    with engine.connect() as conn:
        after = (
            conn.scalar(select(func.count()).select_from(Transaction)),
            conn.scalar(select(func.count()).select_from(ChangeLog)),
        )
    assert after == before, "the benchmark left rows in the library's tables"
    names = set(inspect(engine).get_table_names())
    assert not {"bench_item", "bench_item_history"} & names


def test_floor_benchmark_runs_its_statements(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    done = run_benchmark("benchmarks.floor", "--n", "2000", "--db", url)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "x |" in line]
    assert len(rows) == 1, done.stdout
    names = set(inspect(engine).get_table_names())
    assert not {"bench_item", "bench_item_history"} & names


def test_breakdown_benchmark_times_the_writer(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    done = run_benchmark("benchmarks.breakdown", "--n", "600", "--url", url)
    assert done.returncode == 0, done.stdout + done.stderr
    seconds = dict(
        (line.split("|")[1].strip(), float(line.split("|")[2]))
        for line in done.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| step")
    )
    assert seconds["history writer"] > 0 and seconds["change log"] > 0, done.stdout
    assert (seconds["short path"] > 0) == (engine.dialect.name != "mysql"), done.stdout


def test_lookups_benchmark_checks_its_answers(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    done = run_benchmark(
        "benchmarks.lookups", "--n", "300", "--rounds", "1", "--best-of", "1", "--db", url
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "x |" in line]
    assert len(rows) == 1, done.stdout
    names = set(inspect(engine).get_table_names())
    assert not {"bench_item", "bench_item_history", "bench_item_plain"} & names
