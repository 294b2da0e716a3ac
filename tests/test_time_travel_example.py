"""``examples/time_travel.py`` runs as a reader would run it, on each database of the run."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from .support import run_example

EXAMPLE_TABLES = [
    f"{name}{suffix}"
    for name in ("shop_order_line", "shop_order", "shop_product")
    for suffix in ("_history", "")
]


def test_time_travel_example_runs(engine: Engine, tmp_path: Path) -> None:
    result = run_example(engine, tmp_path, "time_travel.py", EXAMPLE_TABLES)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Now: order 1 for Ada, paid",
        "  5 x pen at 1.80",
        "Monday evening: order 1 for Ada, new",
        "  2 x pen at 1.50",
        "Tuesday noon: order 1 for Ada, new",
        "  2 x pen at 1.80",
        "  1 x notebook at 4.00",
        "Orders with a notebook on Tuesday noon: [1]",
        "Versions of order 1:",
        "  v1 insert  from 2024-03-04 09:00:00+00:00: "
        "id None -> 1, customer None -> 'Ada', status None -> 'new'",
        "  v2 update  from 2024-03-06 09:00:00+00:00: status 'new' -> 'paid'",
        "Versions of the withdrawn notebook:",
        "  v1 insert  at 4.00",
        "  v2 delete  at 4.00",
    ]
