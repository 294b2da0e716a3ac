"""``examples/restore.py`` runs as a reader would run it, on each database of the run."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from .support import run_example

EXAMPLE_TABLES = [
    f"{name}{suffix}"
    for name in ("undo_invoice_line", "undo_invoice", "undo_customer")
    for suffix in ("_history", "")
]


def test_restore_example_runs(engine: Engine, tmp_path: Path) -> None:
    result = run_example(engine, tmp_path, "restore.py", EXAMPLE_TABLES)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Monday: 2 invoices, 3 lines, total 123.00; customers Ada Lovelace, Grace Hopper",
        "Tuesday noon: 1 invoices, 2 lines, total 8300.00; customers Ada Lovelace, G.",
        "Customer 2 back to version 1: Grace Hopper",
        "Invoice 2 back with its lines: compiler 40.00",
        "Lines put back by restore_all: 2 updated, 0 inserted, 0 deleted, 1 already right",
        "Tuesday evening: 2 invoices, 3 lines, total 123.00; customers Ada Lovelace, Grace Hopper",
        "Versions of line 1:",
        "  v1 insert  80.00",
        "  v2 update  8000.00",
        "  v3 restore 80.00 (version 1 again)",
        "The fix, by admin (undo Tuesday morning):",
        "  RESTORE undo_customer 2",
        "  RESTORE undo_invoice 2",
        "  RESTORE undo_invoice_line 1",
        "  RESTORE undo_invoice_line 2",
        "  RESTORE undo_invoice_line 3",
    ]
