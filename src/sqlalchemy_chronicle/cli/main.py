"""The ``chronicle`` command: argument parsing and output around :mod:`.commands`.

Each command here reads its arguments, calls the plain function of the same name in
:mod:`.commands` and prints the result (:mod:`._output`); it holds no logic of its own. The global
options (``--url``, ``--json``, ``--models``, ``--timezone``) may be written before or after the
command's name.

Every failure the user can do something about (bad input, an unreachable database, a conflict
a restore found) is printed as one line on stderr, ``chronicle: error: ...``, and ends the
command with a non-zero status, without a traceback:

- 0: done;
- 1: the answer is "no": verification found something wrong, the row has no history, or no
  version at that time;
- 2: the input does not fit (a usage error, an unknown table, a malformed time or key), the
  database cannot be reached, or the operation was refused (a restore conflict, a read before a
  pruning horizon); nothing was changed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import click
import pendulum
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from .. import ChronicleError
from . import commands
from ._models import Models, load_models
from ._output import Output
from ._reflect import CommandError

__all__ = ["app", "main"]

USAGE_ERROR: Final = 2
NOT_FOUND: Final = 1
_GLOBAL_WITH_VALUE: Final = ("--url", "--models", "--timezone")
_GLOBAL_FLAGS: Final = ("--json",)


class _Chronicle(click.Group):
    """The command group, which reports every failure as one line on stderr."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        arguments = _globals_first(list(sys.argv[1:] if args is None else args))
        try:
            result = super().main(
                arguments, prog_name or "chronicle", complete_var, standalone_mode=False, **extra
            )
            code = result if isinstance(result, int) else 0
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "chronicle"
            _fail(f"{exc.format_message().rstrip('.')} (see '{command} --help')")
            code = exc.exit_code
        except click.ClickException as exc:
            _fail(exc.format_message())
            code = exc.exit_code
        except click.Abort:
            _fail("aborted")
            code = 1
        except BrokenPipeError:  # the reader went away (| head): stop quietly
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - kept until the interpreter exits
            code = 1
        except commands.NoSuchRowError as exc:
            _fail(str(exc))
            code = NOT_FOUND
        except ChronicleError as exc:
            _fail(str(exc))
            code = USAGE_ERROR
        except DBAPIError as exc:
            _fail(f"the database refused: {str(exc.orig).strip().splitlines()[0]}")
            code = USAGE_ERROR
        except SQLAlchemyError as exc:
            _fail(str(exc).splitlines()[0])
            code = USAGE_ERROR
        if standalone_mode:
            sys.exit(code)
        return code


def _fail(message: str) -> None:
    click.echo(f"chronicle: error: {' '.join(message.split())}", err=True)


def _globals_first(arguments: list[str]) -> list[str]:
    """The global options moved before the command's name, wherever they were written."""
    moved: list[str] = []
    rest: list[str] = []
    position = 0
    while position < len(arguments):
        argument = arguments[position]
        if argument == "--":
            rest += arguments[position:]
            break
        if argument in _GLOBAL_WITH_VALUE and position + 1 < len(arguments):
            moved += arguments[position : position + 2]
            position += 2
            continue
        if argument in _GLOBAL_FLAGS or argument.split("=", 1)[0] in _GLOBAL_WITH_VALUE:
            moved.append(argument)
        else:
            rest.append(argument)
        position += 1
    return moved + rest


@dataclass
class _State:
    url: str | None
    models: str | None
    timezone: str | None
    output: Output
    _engine: Engine | None = field(default=None, repr=False)

    def engine(self) -> Engine:
        if self._engine is None:
            if not self.url:
                raise CommandError("no database: give --url URL or set CHRONICLE_URL")
            self._engine = commands.connect(self.url)
        return self._engine

    def loaded_models(self, command: str) -> Models:
        if not self.models:
            raise CommandError(
                f"{command} writes through the application's models: give --models "
                "module[:attribute] (or set CHRONICLE_MODELS)"
            )
        return load_models(self.models)

    def optional_models(self) -> Models | None:
        return load_models(self.models) if self.models else None

    def time(self, text: str | None) -> pendulum.DateTime | None:
        """``text`` read as a time, after the ``--models`` module (which may set the timezone).

        A time without an offset falls back to the default timezone, which the module given with
        ``--models`` may set when imported: it is imported first, whatever the command. ``now``
        is read from the library's clock on the database (:func:`.commands.now`), which that
        module may configure too.
        """
        if text is None:
            return None
        now = commands.is_now(text)
        if self.models and (self.timezone is None or now):
            load_models(self.models)
        return commands.parse_time(text, self.timezone, self.engine() if now else None)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


_state = click.make_pass_decorator(_State)


@click.group(cls=_Chronicle, name="chronicle", no_args_is_help=True)
@click.option("--url", envvar="CHRONICLE_URL", help="The database, as a SQLAlchemy URL.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs instead of tables.")
@click.option(
    "--models",
    envvar="CHRONICLE_MODELS",
    metavar="MODULE[:ATTRIBUTE]",
    help="The application's models, for restore and backfill.",
)
@click.option(
    "--timezone",
    envvar="CHRONICLE_TIMEZONE",
    metavar="ZONE",
    help="Where times without an offset are (an IANA name such as Europe/Paris).",
)
@click.version_option(package_name="sqlalchemy-chronicle")
@click.pass_context
def app(
    context: click.Context,
    url: str | None,
    as_json: bool,
    models: str | None,
    timezone: str | None,
) -> None:
    """Read, restore, backfill, prune, redact and verify the history sqlalchemy-chronicle keeps.

    The global options may be written before or after the command. Times are ISO 8601
    (2024-03-05T14:30:00+01:00, 2024-03-05 13:30Z) or "now".
    """
    state = _State(url, models, timezone, Output(as_json=as_json))
    context.obj = state
    context.call_on_close(state.close)


_KEY_HELP: Final = "KEY is the primary key: 42, or for a composite key '[\"acme\",7]' or acme,7."


_as_of = click.option(
    "--as-of", "as_of", required=True, metavar="TIME", help="The time to look at."
)
_Command = TypeVar("_Command", bound=Callable[..., Any])


def _attribution(command: _Command) -> _Command:
    command = click.option("--reason", help="Why, recorded on the change's transaction.")(command)
    return click.option("--actor", help="Who, recorded on the change's transaction.")(command)


@app.command("log")
@click.option("--table", help="Only this table's entries.")
@click.option("--actor", help="Only the changes attributed to this actor.")
@click.option("--since", metavar="TIME", help="Only entries at or after this time.")
@click.option("--until", metavar="TIME", help="Only entries before this time.")
@click.option(
    "--limit", type=click.IntRange(min=0), default=50, show_default=True, help="0 for all."
)
@_state
def log_command(
    state: _State,
    table: str | None,
    actor: str | None,
    since: str | None,
    until: str | None,
    limit: int,
) -> None:
    """The change log, newest first: table, row, operation, time, actor, reason, changes."""
    start, end = state.time(since), state.time(until)
    engine = state.engine()
    entries = commands.log(
        engine, table=table, actor=actor, since=start, until=end, limit=limit or None
    )
    state.output.log(entries)
    for name, horizon in sorted(commands.horizons(engine).items()):
        if (start is None or start < horizon) and (table is None or table == name):
            state.output.note(
                f"the history of {name!r} was pruned before {horizon.isoformat()}: older "
                "entries may be gone"
            )


@app.command("history", epilog=_KEY_HELP)
@click.argument("table")
@click.argument("key")
@_state
def history_command(state: _State, table: str, key: str) -> None:
    """Every version of one row, oldest first, with who wrote it and why."""
    state.output.history(commands.history(state.engine(), table, key))


@app.command("show", epilog=_KEY_HELP)
@click.argument("table")
@click.argument("key")
@_as_of
@_state
def show_command(state: _State, table: str, key: str, as_of: str) -> None:
    """The row as it was at a time."""
    when = state.time(as_of)
    assert when is not None
    state.output.show(commands.show(state.engine(), table, key, when))


@app.command("diff", epilog=_KEY_HELP)
@click.argument("table")
@click.argument("key")
@click.argument("first", type=click.IntRange(min=1))
@click.argument("second", type=click.IntRange(min=1))
@_state
def diff_command(state: _State, table: str, key: str, first: int, second: int) -> None:
    """What changed in a row between versions FIRST and SECOND."""
    state.output.diff(commands.diff(state.engine(), table, key, first, second))


@app.command("restore", epilog=_KEY_HELP)
@click.argument("table")
@click.argument("key", required=False)
@_as_of
@click.option("--all", "all_rows", is_flag=True, help="Restore every row of the table.")
@click.option(
    "--where", metavar="CONDITION", help="With --all, only these rows: \"status = 'open'\"."
)
@click.option("--allow-delete", is_flag=True, help="Delete the row if it did not exist then.")
@click.option("--dry-run", is_flag=True, help="Say what would be restored; change nothing.")
@_attribution
@_state
def restore_command(
    state: _State,
    table: str,
    key: str | None,
    as_of: str,
    all_rows: bool,
    where: str | None,
    allow_delete: bool,
    dry_run: bool,
    actor: str | None,
    reason: str | None,
) -> None:
    """Put a row (KEY) or a table's rows (--all) back as they were (needs --models)."""
    models = state.loaded_models("restore")
    when = state.time(as_of)
    assert when is not None
    engine = state.engine()
    with state.output.working(f"restoring {table}"):
        result = commands.restore(
            engine,
            models,
            table,
            key,
            as_of=when,
            all_rows=all_rows,
            where=where,
            allow_delete=allow_delete,
            dry_run=dry_run,
            actor=actor,
            reason=reason,
        )
    state.output.restored(result)


@app.command("backfill")
@click.option("--table", "tables", multiple=True, help="Only this table (repeatable).")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="Rows per batch; each batch is committed.",
)
@_attribution
@_state
def backfill_command(
    state: _State,
    tables: tuple[str, ...],
    batch_size: int,
    actor: str | None,
    reason: str | None,
) -> None:
    """Give every row that has no history a first version (needs --models)."""
    models = state.loaded_models("backfill")
    engine = state.engine()
    with state.output.progress() as task:
        results = commands.backfill(
            engine,
            models,
            tables=tables,
            batch_size=batch_size,
            actor=actor,
            reason=reason,
            progress=task,
        )
    state.output.backfilled(results)


_TABLES = click.option(
    "--table",
    "tables",
    multiple=True,
    help="Only this table (repeatable); default: every versioned table.",
)


@app.command("verify")
@_TABLES
@click.option("--anchor", help="An anchor digest kept from 'chronicle anchor', checked too.")
@_state
def verify_command(state: _State, tables: tuple[str, ...], anchor: str | None) -> None:
    """Check every version against the ledger; exit 1 naming each broken row."""
    models = state.optional_models()
    engine = state.engine()
    with state.output.progress() as task:
        report = commands.verify(
            engine, models, tables=tables, anchor=anchor, progress=task("verifying")
        )
    state.output.verified(report)
    if not report.ok:
        count = len(report.findings)
        _fail(f"verification failed: {count} finding{'' if count == 1 else 's'}")
        click.get_current_context().exit(NOT_FOUND)


@app.command("seal")
@_TABLES
@_state
def seal_command(state: _State, tables: tuple[str, ...]) -> None:
    """Seal the versions not sealed yet into the ledger, so that verify checks them."""
    models = state.optional_models()
    engine = state.engine()
    with state.output.progress() as task:
        sealed = commands.seal(engine, models, tables=tables, progress=task("sealing"))
    state.output.sealed(sealed)


@app.command("anchor")
@_state
def anchor_command(state: _State) -> None:
    """Print the ledger's anchor digest, to keep where the database's users cannot write."""
    state.output.anchor(commands.anchor(state.engine()))


@app.command("prune")
@click.option(
    "--before", metavar="TIME", help="Remove the history that ended at or before this time."
)
@_TABLES
@click.option("--by-policy", is_flag=True, help="Prune each class to its retain option.")
@click.option("--keep-changelog", is_flag=True, help="Keep the change-log entries.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="Rows per batch; each batch is committed.",
)
@click.option("--dry-run", is_flag=True, help="Count what would be removed; change nothing.")
@_state
def prune_command(
    state: _State,
    before: str | None,
    tables: tuple[str, ...],
    by_policy: bool,
    keep_changelog: bool,
    batch_size: int,
    dry_run: bool,
) -> None:
    """Remove old history; every read at or after the horizon answers as before."""
    when = state.time(before)
    models = state.optional_models()
    engine = state.engine()
    with state.output.progress() as task:
        result = commands.prune(
            engine,
            models,
            before=when,
            tables=tables,
            by_policy=by_policy,
            keep_changelog=keep_changelog,
            batch_size=batch_size,
            dry_run=dry_run,
            progress=task("pruning"),
        )
    state.output.pruned(result)


@app.command("redact", epilog=_KEY_HELP)
@click.argument("table")
@click.argument("key")
@click.option(
    "--columns", required=True, metavar="C1,C2", help="The columns to scrub, comma-separated."
)
@click.option("--reason", required=True, help="Why; recorded with the redaction.")
@click.option("--marker", help="Text that replaces string values (default: NULL).")
@click.option("--actor", help="Who redacts; recorded with the redaction.")
@_state
def redact_command(
    state: _State,
    table: str,
    key: str,
    columns: str,
    reason: str,
    marker: str | None,
    actor: str | None,
) -> None:
    """Scrub columns from every version and change-log entry of one row (not the live row)."""
    models = state.optional_models()
    engine = state.engine()
    result = commands.redact(
        engine,
        models,
        table,
        key,
        columns=columns.split(","),
        reason=reason,
        marker=marker,
        actor=actor,
    )
    state.output.redacted(result)


def main(arguments: Sequence[str] | None = None) -> None:
    """Run the ``chronicle`` command line (the console script's entry point)."""
    app.main(arguments, prog_name="chronicle")
