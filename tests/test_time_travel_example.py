"""``examples/time_travel.py`` runs as a reader would run it, on each database of the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, MetaData, Table

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "time_travel.py"
EXAMPLE_TABLES = [
    f"{name}{suffix}"
    for name in ("shop_order_line", "shop_order", "shop_product")
    for suffix in ("_history", "")
]


def test_time_travel_example_runs(engine: Engine, tmp_path: Path) -> None:
    if engine.dialect.name == "sqlite":
        url = f"sqlite:///{tmp_path / 'time_travel.db'}"
    else:
        url = engine.url.render_as_string(hide_password=False)
    try:
        result = subprocess.run(
            [sys.executable, str(EXAMPLE), url],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            check=False,
        )
    finally:
        if engine.dialect.name != "sqlite":
            metadata = MetaData()
            for name in EXAMPLE_TABLES:  # dependent tables first
                Table(name, metadata).drop(engine, checkfirst=True)
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
