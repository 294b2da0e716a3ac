"""Run the standard workload for every variant on every database, side by side, and tabulate.

Each (database, repeat, variant) is a fresh worker process (:mod:`benchmarks.workload`), run one
after another, the variants interleaved within each repeat (in an order that rotates from one
repeat to the next), so that a slow spell of the shared machine hits them alike. Seconds are the
median over the repeats; a ratio is the median of the variant over the median of the plain
baseline of the same database in the same run.

``--quick`` runs a small workload (N = 600, commits every 150 rows) once, for the correctness
checks only: it makes no timing claim, and it is what the test suite runs on each of its
databases. ``--scale`` measures point and snapshot as-of reads at growing history sizes instead
(:mod:`benchmarks.scale`), and ``--restore`` times ``restore_all`` of 100,000 rows
(:mod:`benchmarks.restore`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from benchmarks.workload import LOADERS, PHASES, Params

ROOT = Path(__file__).resolve().parent.parent
KNOWN = {
    "sqlite": "sqlite:////tmp/chronicle-bench.db",
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
}
BACKEND_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MariaDB"}
TARGETS = {"writes": 1.3, "R1": 1.3, "R2": 1.2, "R3": 1.2, "rss": 1.2}
QUICK = Params(n=600, batch=150, lookups=200, checks=200, snapshots=5, related=200)

Record = dict[str, Any]


def backend_of(url: str) -> str:
    """``SQLite``, ``PostgreSQL`` or ``MariaDB`` for a database URL."""
    name = make_url(url).get_backend_name()
    return BACKEND_NAMES.get(name, name)


def run_json_worker(python: str, module: str, args: list[str]) -> tuple[Any, int]:
    """``python -m module args --out FILE`` in a process of its own, its stderr passed on.

    Returns the JSON the worker wrote to ``FILE`` (None if it wrote nothing) and its exit code.
    """
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        path = out.name
    command = [python, "-m", module, *args, "--out", path]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    sys.stderr.write(done.stderr)
    text = Path(path).read_text() if Path(path).exists() else ""
    Path(path).unlink(missing_ok=True)
    return (json.loads(text) if text else None), done.returncode


def run_worker(url: str, variant: str, params: Params, python: str, trace: bool = False) -> Record:
    """One variant in a process of its own; its result, or a failure record."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        path = out.name
    command = [python, "-m", "benchmarks.workload", "--url", url, "--variant", variant]
    command += ["--out", path]
    for name, value in vars(params).items():
        command += [f"--{name}", str(value)]
    if trace:
        command.append("--tracemalloc")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    try:
        record: Record = json.loads(Path(path).read_text() or "null") or {}
    except (OSError, json.JSONDecodeError):
        record = {}
    finally:
        Path(path).unlink(missing_ok=True)
    if not record:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        record = {"variant": variant, "error": "\n".join(tail) or f"exit {done.returncode}"}
    record["backend_label"] = backend_of(url)
    return record


def ok(record: Record) -> bool:
    """Whether a worker ran and every answer was right."""
    return "error" not in record and not (
        record["wrong"]
        or record["wrong_r1"]
        or record["snapshots_wrong"]
        or record.get("related_wrong")
    )


def has_phase(records: list[Record], phase: str) -> bool:
    """Whether every record timed ``phase`` (R3 needs a time-travel session: not Continuum)."""
    return phase == "writes" or all(phase in r["seconds"] for r in records)


def median_seconds(records: list[Record], phase: str) -> float:
    """The median over the repeats of a phase's seconds (``writes``: W1 + W2 + W3)."""
    if phase == "writes":
        values = [sum(r["seconds"][p] for p in ("W1", "W2", "W3")) for r in records]
    else:
        values = [r["seconds"][phase] for r in records]
    return float(statistics.median(values))


def median_rss(records: list[Record]) -> float:
    """The median peak RSS of the write phases, in MiB."""
    return float(statistics.median(r["rss_writes_kib"] for r in records)) / 1024


def ratio_range(records: list[Record], baseline: list[Record], phase: str) -> str:
    """The spread of the per-repeat ratios (each variant run over the plain run of its repeat)."""
    if not (has_phase(records, phase) and has_phase(baseline, phase)):
        return "-"
    ratios = [
        median_seconds([r], phase) / median_seconds([b], phase)
        for r, b in zip(records, baseline, strict=False)
    ]
    if len(ratios) < 2:
        return ""
    return f"{min(ratios):.2f}-{max(ratios):.2f}"


def _seconds_per_row(records: list[Record], phase: str) -> float | None:
    """The median over the repeats of a phase's seconds per object loaded; None if not recorded."""
    if not records or not all(r.get("rows", {}).get(phase) for r in records):
        return None
    return float(statistics.median(r["seconds"][phase] / r["rows"][phase] for r in records))


def _per_row_cell(records: list[Record], plain: list[Record] | None) -> str | None:
    """R2's rows and median time per row, with the ratio to the baseline's; None if not recorded.

    A diagnostic, not a target: a snapshot at a commit before W3 holds the rows W3 deletes, so
    the as-of reads load more rows than the baseline's reads of the current table.
    """
    per_row = _seconds_per_row(records, "R2")
    if per_row is None:
        return None
    rows = int(statistics.median(r["rows"]["R2"] for r in records))
    cell = f"{rows:,} | {per_row * 1e6:.2f} us"
    base = None if plain is None or plain is records else _seconds_per_row(plain, "R2")
    if base is not None:
        cell += f" ({per_row / base:.2f}x)"
    return cell


def _loader_cells(records: list[Record], plain: list[Record]) -> str:
    """R3's median seconds per loader, with the ratio to the baseline's."""
    cells = []
    for loader in LOADERS:
        seconds = median_seconds(records, f"R3 {loader}")
        if records is plain or not has_phase(plain, f"R3 {loader}"):
            cells.append(f"{seconds:.2f} s")
        else:
            base = median_seconds(plain, f"R3 {loader}")
            cells.append(f"{seconds:.2f} s ({seconds / base:.2f}x)")
    return " | ".join(cells)


def tabulate(results: dict[str, dict[str, list[Record]]], repeat: int) -> tuple[str, bool]:
    """The figures as Markdown tables, and whether the project's variants answered right."""
    columns = ["W1", "W2", "W3", "writes", "R1", "R2", "R3"]
    lines = [
        "| backend | variant | "
        + " | ".join(columns)
        + " | peak RSS, writes | as-of answers wrong |",
        "|---|---|" + "---|" * len(columns) + "---|---|",
    ]
    spread = [
        "| backend | variant | "
        + " | ".join(f"{c} ratio range" for c in ("writes", "R1", "R2", "R3"))
        + " |",
        "|---|---|---|---|---|---|",
    ]
    loaders = [
        "| backend | variant | " + " | ".join(f"R3 {loader}" for loader in LOADERS) + " |",
        "|---|---|" + "---|" * len(LOADERS),
    ]
    rows_loaded = [
        "| backend | variant | R2 rows | R2 per row |",
        "|---|---|---|---|",
    ]
    targets = [
        "| backend | variant | writes <= 1.3x | R1 <= 1.3x | R2 <= 1.2x | R3 <= 1.2x "
        "| peak RSS <= 1.2x |",
        "|---|---|---|---|---|---|---|",
    ]
    all_right = True
    for backend, by_variant in results.items():
        plain = by_variant.get("plain", [])
        plain_ok = bool(plain) and all(ok(r) for r in plain)
        for variant, records in by_variant.items():
            failed = [r for r in records if not ok(r)]
            if failed:
                if variant != "continuum":
                    all_right = False
                first = failed[0]
                why = first.get("error") or (
                    f"{first['wrong']} / {first['checked']} checks, "
                    f"{first['wrong_r1']} R1 answers, "
                    f"{first['snapshots_wrong']} snapshots, "
                    f"{first.get('related_wrong', 0)} R3 loads"
                )
                why = why.replace("\n", " ")[-300:]
                lines.append(
                    f"| {backend} | {variant} | "
                    + " | ".join("-" for _ in columns)
                    + f" | - | FAIL: {why} |"
                )
                continue
            cells = []
            rss = median_rss(records)
            for column in columns:
                if not has_phase(records, column):
                    cells.append("-")
                    continue
                seconds = median_seconds(records, column)
                if variant == "plain" or not plain_ok:
                    cells.append(f"{seconds:.2f} s")
                else:
                    cells.append(
                        f"{seconds:.2f} s ({seconds / median_seconds(plain, column):.2f}x)"
                    )
            wrong = f"{records[0]['wrong']} / {records[0]['checked']}"
            if variant == "plain" or not plain_ok:
                rss_cell = f"{rss:.0f} MiB"
            else:
                rss_cell = f"{rss:.0f} MiB ({rss / median_rss(plain):.2f}x)"
            lines.append(
                f"| {backend} | {variant} | " + " | ".join(cells) + f" | {rss_cell} | {wrong} |"
            )
            if has_phase(records, "R3"):
                loaders.append(f"| {backend} | {variant} | " + _loader_cells(records, plain) + " |")
            per_row = _per_row_cell(records, plain if plain_ok else None)
            if per_row is not None:
                rows_loaded.append(f"| {backend} | {variant} | {per_row} |")
            if variant == "plain" or not plain_ok:
                continue
            if repeat > 1:
                spread.append(
                    f"| {backend} | {variant} | "
                    + " | ".join(
                        ratio_range(records, plain, p) for p in ("writes", "R1", "R2", "R3")
                    )
                    + " |"
                )
            verdicts = []
            for key, limit in TARGETS.items():
                if key == "rss":
                    value = rss / median_rss(plain)
                elif not has_phase(records, key):
                    verdicts.append("-")
                    continue
                else:
                    value = median_seconds(records, key) / median_seconds(plain, key)
                verdicts.append(f"{value:.2f}x {'met' if value <= limit else 'NOT met'}")
            targets.append(f"| {backend} | {variant} | " + " | ".join(verdicts) + " |")
    text = "\n".join(lines)
    if len(loaders) > 2:
        text += "\n\nR3 by loader (median seconds, ratio to plain):\n\n" + "\n".join(loaders)
    if len(rows_loaded) > 2:
        text += (
            "\n\nR2 per row loaded (diagnostic, not a target: median rows of the 5 reads, median "
            "seconds per row, ratio to plain):\n\n" + "\n".join(rows_loaded)
        )
    if repeat > 1:
        text += "\n\nPer-repeat ratios (min-max over the repeats):\n\n" + "\n".join(spread)
    text += "\n\nTargets (ratios of medians to the plain baseline):\n\n" + "\n".join(targets)
    return text, all_right


def quick_table(results: dict[str, dict[str, list[Record]]]) -> tuple[str, bool]:
    """The correctness checks of a quick run, without timings."""
    lines = [
        "| backend | variant | checks wrong | R1 answers wrong | snapshots wrong "
        "| R3 loads wrong | commits |",
        "|---|---|---|---|---|---|---|",
    ]
    all_right = True
    for backend, by_variant in results.items():
        for variant, records in by_variant.items():
            for record in records:
                if "error" in record:
                    all_right = False
                    error = record["error"].replace("\n", "\n    ")
                    lines.append(f"| {backend} | {variant} | ERROR | | | | |\n    {error}")
                    continue
                all_right = all_right and ok(record)
                lines.append(
                    f"| {backend} | {variant} | {record['wrong']} / {record['checked']} | "
                    f"{record['wrong_r1']} / {record['params']['lookups']} | "
                    f"{record['snapshots_wrong']} / {record['params']['snapshots']} | "
                    f"{record.get('related_wrong', 0)} / "
                    f"{len(LOADERS) if 'R3' in record['seconds'] else 0} | "
                    f"{record['commits']} |"
                )
                for problem in record.get("problems", []):
                    lines.append(f"    {problem}")
    return "\n".join(lines), all_right


def environment(urls: Sequence[str]) -> str:
    """The machine and the versions a run used."""
    import sqlalchemy
    from sqlalchemy import create_engine

    lines = [
        f"- Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, "
        f"sqlalchemy-chronicle {_version('sqlalchemy-chronicle')}, "
        f"SQLAlchemy-Continuum {_version('sqlalchemy-continuum')}",
        f"- {platform.platform()}, {os.cpu_count()} CPUs, {_memory()}",
        f"- sqlalchemy-chronicle imported from {_source()}",
    ]
    for url in urls:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                info = conn.dialect.server_version_info
                driver = f"{engine.dialect.name}+{engine.dialect.driver}"
                lines.append(
                    f"- {backend_of(url)}: server {'.'.join(map(str, info or ()))} ({driver})"
                )
        except Exception as exc:  # reported, not fatal: the run reports the failure too
            lines.append(f"- {backend_of(url)}: unreachable ({exc.__class__.__name__})")
        finally:
            engine.dispose()
    return "\n".join(lines)


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _source() -> str:
    """Where the workers import the library from, and its git commit when it is this checkout."""
    import sqlalchemy_chronicle

    path = Path(sqlalchemy_chronicle.__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(path)
    return f"{path} (commit {commit}{', with local changes' if dirty else ''})"


def _memory() -> str:
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(meminfo.readline().split()[1])
        return f"{kib / 1024 / 1024:.0f} GiB memory"
    except OSError:
        return "memory unknown"


def resolve(names: Sequence[str]) -> list[str]:
    """Database URLs for ``--db`` values (short names or URLs)."""
    if not names:
        env = os.environ.get("CHRONICLE_BENCH_DATABASES", "")
        names = [n.strip() for n in env.split(",") if n.strip()] or list(KNOWN)
    return [KNOWN.get(name, name) for name in names]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: see ``python -m benchmarks --help`` and ``benchmarks/README.md``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument(
        "--db",
        action="append",
        default=[],
        help="sqlite, postgresql, mariadb or a SQLAlchemy URL (repeatable); default: "
        "$CHRONICLE_BENCH_DATABASES, else all three: " + ", ".join(KNOWN.values()),
    )
    parser.add_argument("--n", type=int, default=Params.n, help="rows (default 20,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant (default 3)")
    parser.add_argument("--with-continuum", action="store_true", help="add SQLAlchemy-Continuum")
    parser.add_argument(
        "--variants", default="plain,chronicle,chronicle-nolog", help="comma-separated variants"
    )
    parser.add_argument("--quick", action="store_true", help="small N, correctness checks only")
    parser.add_argument("--tracemalloc", action="store_true", help="also the Python-heap peak")
    parser.add_argument("--scale", action="store_true", help="as-of reads at growing history")
    parser.add_argument(
        "--scale-sizes", default="10000,100000,1000000", help="history rows for --scale"
    )
    parser.add_argument(
        "--scale-depths", default="1,10,100,1000", help="versions per row for --scale (depth)"
    )
    parser.add_argument(
        "--scale-shapes", default="rows,depth", help="shapes for --scale: rows, depth or both"
    )
    parser.add_argument("--restore", action="store_true", help="restore_all of a large table")
    parser.add_argument(
        "--restore-rows", type=int, default=100_000, help="rows for --restore (default 100,000)"
    )
    parser.add_argument("--markdown", help="also write the report to this file")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the workers")
    args = parser.parse_args(argv)
    urls = resolve(args.db)

    if args.scale:
        from benchmarks import scale

        sizes = [int(float(s)) for s in args.scale_sizes.split(",")]
        depths = [int(float(s)) for s in args.scale_depths.split(",")]
        shapes = [s.strip() for s in args.scale_shapes.split(",") if s.strip()]
        report, right = scale.report(urls, sizes, args.python, depths, shapes)
        return _finish(report, right, args.markdown)

    if args.restore:
        from benchmarks import restore

        report, right = restore.report(urls, args.restore_rows, args.python)
        command = "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv)
        report += f"\nCommand: `{command}`\n\n{environment(urls)}\n"
        return _finish(report, right, args.markdown)

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if "plain" not in variants:
        variants.insert(0, "plain")
    if args.with_continuum and "continuum" not in variants:
        variants.append("continuum")
    params = QUICK if args.quick else Params(n=args.n)
    repeat = 1 if args.quick else args.repeat
    results: dict[str, dict[str, list[Record]]] = {}
    for url in urls:
        by_variant = results.setdefault(backend_of(url), {v: [] for v in variants})
        for index in range(repeat):
            # the order rotates with each repeat, so that no variant always follows the same one
            # (a predecessor's clean-up, such as PostgreSQL's autovacuum, may still be running)
            shift = index % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                record = run_worker(url, variant, params, args.python)
                by_variant[variant].append(record)
                _progress(url, index, variant, record)
    if args.tracemalloc and not args.quick:
        for url in urls:
            for variant in variants:
                record = run_worker(url, variant, params, args.python, trace=True)
                results[backend_of(url)][variant][0]["tracemalloc_writes_kib"] = record.get(
                    "tracemalloc_writes_kib"
                )
    if args.quick:
        table, right = quick_table(results)
        report = f"Quick run (N = {params.n}, correctness only, no timing claims)\n\n{table}"
    else:
        table, right = tabulate(results, repeat)
        command = "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv)
        report = (
            f"N = {params.n}, {repeat} repeat(s); median seconds (ratio to plain)\n\n{table}\n\n"
            f"{memory_table(results) if args.tracemalloc else ''}"
            f"Command: `{command}`\n\n{environment(urls)}\n"
        )
    return _finish(report, right, args.markdown)


def memory_table(results: dict[str, dict[str, list[Record]]]) -> str:
    """Python-heap peaks of the writes (``--tracemalloc``), from a separate, untimed run."""
    lines = ["| backend | variant | tracemalloc peak, writes |", "|---|---|---|"]
    for backend, by_variant in results.items():
        base = (by_variant.get("plain") or [{}])[0].get("tracemalloc_writes_kib")
        for variant, records in by_variant.items():
            peak = records[0].get("tracemalloc_writes_kib")
            if peak is None:
                continue
            ratio = f" ({peak / base:.2f}x)" if base and variant != "plain" else ""
            lines.append(f"| {backend} | {variant} | {peak / 1024:.1f} MiB{ratio} |")
    return "\n".join(lines) + "\n\n"


def _progress(url: str, index: int, variant: str, record: Record) -> None:
    if "error" in record:
        status = "ERROR " + record["error"].splitlines()[-1]
    else:
        seconds = record["seconds"]
        status = " ".join(f"{p}={seconds[p]:.2f}" for p in PHASES if p in seconds) + (
            "" if ok(record) else " WRONG ANSWERS"
        )
    print(f"[{backend_of(url)} #{index + 1} {variant}] {status}", file=sys.stderr, flush=True)


def _finish(report: str, right: bool, markdown: str | None) -> int:
    print(report)
    if markdown:
        Path(markdown).write_text(report)
    if not right:
        print("FAILED: wrong answers or errors (see above)", file=sys.stderr)
    return 0 if right else 1
