"""What the command line prints: Rich tables for people, JSON for programs, progress bars.

Values from the database are printed as :class:`rich.text.Text`, never as markup, so that a
value such as ``[bold]`` is shown as written. Progress bars are drawn on stderr, and only when
stdout and stderr are a terminal and ``--json`` is off: a pipe, or a program reading JSON, sees
no bar.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pendulum
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from .. import VerificationReport
from .commands import (
    Backfilled,
    Difference,
    LogEntry,
    Pruned,
    Redacted,
    Restored,
    RowVersion,
    verification_json,
)

__all__ = ["Output"]

_MAX_WIDTH = 60


def _text(value: Any) -> Text:
    if value is None:
        return Text("NULL", style="dim")
    if isinstance(value, dt.datetime):
        return Text(pendulum.instance(value).isoformat() if value.tzinfo else value.isoformat())
    shown = value if isinstance(value, str) else repr(value)
    if len(shown) > _MAX_WIDTH:
        shown = shown[: _MAX_WIDTH - 1] + "…"
    return Text(shown)


def _short(value: Any) -> str:
    shown = json.dumps(value, default=str, ensure_ascii=False)
    return shown if len(shown) <= 40 else shown[:39] + "…"


def _summary(entry: LogEntry) -> str:
    """The entry's changes in one line: ``title: "a" → "b"`` or ``title="a", …``."""
    parts = []
    for name, value in entry.changes.items():
        if entry.operation in ("UPDATE", "RESTORE") and isinstance(value, list) and len(value) == 2:
            parts.append(f"{name}: {_short(value[0])} → {_short(value[1])}")
        else:
            parts.append(f"{name}={_short(value)}")
    return ", ".join(parts)


class Output:
    """Prints results as tables or as JSON, and shows progress where someone is watching."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        terminal = sys.stdout.isatty()
        self.console = Console(width=None if terminal else 200, highlight=False)
        self.errors = Console(stderr=True, highlight=False)
        self.watched = terminal and sys.stderr.isatty() and not as_json

    def json(self, document: Any) -> None:
        """Print ``document`` as JSON on stdout."""
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")

    def message(self, text: str) -> None:
        """A line for people (printed only without ``--json``)."""
        if not self.as_json:
            self.console.print(Text(text))

    # -- results -------------------------------------------------------------------------------

    def log(self, entries: Sequence[LogEntry]) -> None:
        """The change log."""
        if self.as_json:
            return self.json([entry.to_json() for entry in entries])
        table = Table(title="Change log, newest first", title_justify="left")
        for heading in ("time", "table", "row", "operation", "actor", "reason", "changes"):
            table.add_column(heading, overflow="fold")
        for entry in entries:
            table.add_row(
                _text(entry.time),
                _text(entry.table),
                _text(entry.row_id),
                _text(entry.operation),
                _text(entry.actor),
                _text(entry.reason),
                Text(_summary(entry)),
            )
        self.console.print(table)
        if not entries:
            self.console.print(Text("no entries", style="dim"))
        return None

    def history(self, versions: Sequence[RowVersion]) -> None:
        """Every version of a row."""
        if self.as_json:
            return self.json([found.to_json() for found in versions])
        first = versions[0]
        names = list(first.values)
        for found in versions:
            names += [n for n in found.retired if n not in names]
        table = Table(title=f"{first.table} {_key(first)}: {_count(len(versions), 'version')}")
        for heading in ("version", "operation", "valid from", "valid to", "actor", "reason"):
            table.add_column(heading)
        for name in names:
            table.add_column(name, overflow="fold")
        for found in versions:
            values = found.all_values()
            operation = found.operation + (
                f" (of {found.restored_from})" if found.restored_from else ""
            )
            table.add_row(
                _text(found.version),
                _text(operation),
                _text(found.valid_from),
                _text(found.valid_to) if found.valid_to else Text("current", style="green"),
                _text(found.actor),
                _text(found.reason),
                *(_text(values.get(name)) for name in names),
            )
        self.console.print(table)
        return None

    def show(self, found: RowVersion, as_of: dt.datetime | None = None) -> None:
        """One version of a row, column by column."""
        if self.as_json:
            return self.json(found.to_json())
        until = _text(found.valid_to).plain if found.valid_to else "now"
        self.console.print(
            Text(
                f"{found.table} {_key(found)}, version {found.version} ({found.operation}), "
                f"valid from {_text(found.valid_from).plain} to {until}"
            )
        )
        table = Table()
        table.add_column("column")
        table.add_column("value", overflow="fold")
        for name, value in found.all_values().items():
            table.add_row(Text(name), _text(value))
        self.console.print(table)
        return None

    def diff(self, difference: Difference) -> None:
        """What changed between two versions."""
        if self.as_json:
            return self.json(difference.to_json())
        first, second = difference.first, difference.second
        if not difference.changes:
            self.console.print(
                Text(f"versions {first.version} and {second.version} hold the same values")
            )
            return None
        table = Table(title=f"{first.table} {_key(first)}", title_justify="left")
        table.add_column("column")
        table.add_column(f"version {first.version}", style="red", overflow="fold")
        table.add_column(f"version {second.version}", style="green", overflow="fold")
        for name, (old, new) in difference.changes.items():
            table.add_row(Text(name), _text(old), _text(new))
        self.console.print(table)
        return None

    def restored(self, result: Restored) -> None:
        """What a restore did."""
        if self.as_json:
            return self.json(result.to_json())
        when = _text(result.as_of).plain
        would = "would be" if result.dry_run else "was"
        if result.key is not None:
            row = f"{result.table} {_plain_key(result.key)}"
            if result.outcome == "restored":
                text = f"{row} {would} restored to version {result.restored_from}, as at {when}"
            elif result.outcome == "deleted":
                text = f"{row} {would} deleted: it did not exist at {when}"
            else:
                text = f"{row} is already as it was at {when}; nothing {would} changed"
        else:
            text = (
                f"{result.table} as at {when}: {result.inserted} inserted, {result.updated} "
                f"updated, {result.deleted} deleted, {result.unchanged} unchanged"
            )
        if result.dry_run:
            text += " (dry run: nothing was changed)"
        self.console.print(Text(text))
        return None

    def backfilled(self, results: Sequence[Backfilled]) -> None:
        """The rows each table's backfill gave a first version."""
        if self.as_json:
            return self.json([result.to_json() for result in results])
        table = Table(title="Backfill", title_justify="left")
        table.add_column("table")
        table.add_column("rows given a first version", justify="right")
        for result in results:
            table.add_row(Text(result.table), Text(str(result.rows)))
        self.console.print(table)
        return None

    def note(self, text: str) -> None:
        """A remark for people, on stderr (also with ``--json``, whose stdout it leaves alone)."""
        self.errors.print(Text(f"note: {text}", style="yellow"), soft_wrap=True)

    def verified(self, report: VerificationReport) -> None:
        """What verification found."""
        if self.as_json:
            return self.json(verification_json(report))
        if report.ok:
            self.console.print(
                Text(
                    f"intact: {_count(report.versions, 'version')} of "
                    f"{_count(len(report.tables), 'table')} verified",
                    style="green",
                )
            )
            return None
        table = Table(title="Verification failed", title_justify="left", title_style="red")
        for heading in ("table", "row", "version", "finding", "detail"):
            table.add_column(heading, overflow="fold")
        for finding in report.findings:
            table.add_row(
                _text(finding.table),
                _text(finding.row_id),
                _text(finding.version),
                Text(finding.kind, style="red"),
                Text(finding.detail),
            )
        self.console.print(table)
        return None

    def sealed(self, count: int) -> None:
        """How many versions were sealed."""
        if self.as_json:
            return self.json({"sealed": count})
        self.console.print(Text(f"{_count(count, 'version')} sealed"))
        return None

    def anchor(self, digest: str) -> None:
        """The anchor digest, alone on its line (also for people: it is meant to be copied)."""
        if self.as_json:
            return self.json({"anchor": digest})
        sys.stdout.write(digest + "\n")
        return None

    def pruned(self, pruned: Pruned) -> None:
        """What a pruning removed."""
        if self.as_json:
            return self.json(pruned.to_json())
        result = pruned.result
        would = "would remove" if result.dry_run else "removed"
        table = Table(title=f"Pruning {would}", title_justify="left")
        table.add_column("table")
        table.add_column("horizon")
        for name, horizon in sorted(result.horizons.items()):
            table.add_row(Text(name), _text(horizon))
        self.console.print(table)
        self.console.print(
            Text(
                f"{_count(result.versions, 'version')}, "
                f"{_count(result.changelog, 'change-log entry', 'change-log entries')} and "
                f"{_count(result.ledger, 'ledger entry', 'ledger entries')} "
                f"{'would be ' if result.dry_run else ''}removed"
                + (" (dry run: nothing was changed)" if result.dry_run else "")
            )
        )
        return None

    def redacted(self, redacted: Redacted) -> None:
        """What a redaction changed."""
        if self.as_json:
            return self.json(redacted.to_json())
        result = redacted.result
        self.console.print(
            Text(
                f"{result.table} {result.row_id}: {', '.join(result.columns)} redacted in "
                f"{_count(result.versions, 'version')}, "
                f"{_count(result.changelog, 'change-log entry', 'change-log entries')} and "
                f"{_count(result.ledger, 'ledger entry', 'ledger entries')} "
                f"(redaction {result.redaction_id})"
            )
        )
        return None

    # -- progress ------------------------------------------------------------------------------

    @contextmanager
    def progress(self) -> Iterator[Callable[[str], Callable[[int, int], None]]]:
        """Yield ``task(description)``, which returns a ``(done, total)`` callback for one bar.

        Nothing is drawn unless someone watches (see the module documentation).
        """
        if not self.watched:
            yield lambda description: lambda done, total: None
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.errors, transient=False) as bars:

            def task(description: str) -> Callable[[int, int], None]:
                task_id = bars.add_task(description, total=None)

                def advance(done: int, total: int) -> None:
                    bars.update(task_id, completed=done, total=max(total, done))

                return advance

            yield task

    @contextmanager
    def working(self, description: str) -> Iterator[None]:
        """A spinner for work that cannot count its steps, where someone watches."""
        if not self.watched:
            yield
            return
        columns = (SpinnerColumn(), TextColumn(description), TimeElapsedColumn())
        with Progress(*columns, console=self.errors, transient=True) as spinner:
            spinner.add_task(description, total=None)
            yield


def _count(number: int, one: str, many: str | None = None) -> str:
    return f"{number} {one if number == 1 else (many or one + 's')}"


def _plain_key(key: tuple[Any, ...]) -> str:
    return str(key[0]) if len(key) == 1 else json.dumps(list(key), default=str)


def _key(found: RowVersion) -> str:
    return _plain_key(found.key)
