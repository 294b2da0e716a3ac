"""The ``chronicle`` command line, on every database: through Click's runner and as a real program.

Each command's answer is compared with what the Python API says of the same rows (``history()``,
``query_as_of()``, ``changes()``, ``restore()``), or with what the test did; bad input must give
one line on stderr, a non-zero status and leave every table as it was. The models come from
:mod:`tests.cli_models`, imported by ``--models tests.cli_models`` as a user's would be.
"""

from __future__ import annotations

import json
import os
import pty
import select as select_fd
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, MetaData, insert, select, text, update
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import (
    ChangeLog,
    ConfigurationError,
    Horizon,
    InvalidKeyError,
    LedgerEntry,
    NotVersionedError,
    Redaction,
    Transaction,
    changes,
    changes_by,
    configure,
    format_row_id,
    history,
    prune_history,
    query_as_of,
    redact,
    seal_history,
    set_default_timezone,
    verify_history,
)
from sqlalchemy_chronicle.cli import app, main
from sqlalchemy_chronicle.cli._reflect import versioned_table
from sqlalchemy_chronicle.cli._where import parse_where
from sqlalchemy_chronicle.cli.commands import parse_time
from sqlalchemy_chronicle.viewer.core import HistoryViewer

from .cli_models import OWN_TABLES, Badge, Base, Label, Laptop, Memo, Ticket
from .support import FrozenClock

ROOT = Path(__file__).resolve().parent.parent
MODELS = "tests.cli_models"
INTERVAL_COLUMNS = {
    "version",
    "valid_from",
    "valid_to",
    "operation",
    "transaction_id",
    "restored_from",
    "retired_values",
}
CHRONICLE = Path(sys.executable).parent / "chronicle"


@pytest.fixture(scope="module")
def cli_tables(engine: Engine) -> Iterator[Engine]:
    Base.metadata.create_all(engine, tables=OWN_TABLES)
    yield engine
    Base.metadata.drop_all(engine, tables=OWN_TABLES)


@pytest.fixture
def cli_db(db: Engine, cli_tables: Engine) -> Engine:
    with db.begin() as connection:
        for table in reversed(OWN_TABLES):
            connection.execute(table.delete())
    return db


@pytest.fixture
def url(cli_db: Engine) -> str:
    return cli_db.url.render_as_string(hide_password=False)


def run(url: str, *arguments: str) -> Result:
    """``chronicle --url URL ARGUMENTS`` through Click's runner."""
    return CliRunner().invoke(app, ["--url", url, *arguments], catch_exceptions=False)


def run_json(url: str, *arguments: str) -> Any:
    result = run(url, "--json", *arguments)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


def iso(value: Any) -> str:
    return pendulum.instance(value).in_tz("UTC").isoformat()


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the command line's tables and the library's, to tell that nothing changed."""
    library = [
        Transaction.__tablename__,
        ChangeLog.__tablename__,
        Horizon.__tablename__,
        LedgerEntry.__tablename__,
        Redaction.__tablename__,
    ]
    found: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table in [*OWN_TABLES, *(Base.metadata.tables[name] for name in library)]:
            found[table.name] = sorted(map(tuple, connection.execute(select(table))), key=repr)
    return found


def make_history(session: Session, clock: FrozenClock) -> list[pendulum.DateTime]:
    """Tickets, a label and a laptop with a few versions each; the times of the transactions."""
    times = [clock.now]
    with changes_by(actor="alice", reason="import"):
        session.add_all(
            [
                Ticket(id=1, title="Broken login", status="open", points=3),
                Ticket(id=2, title="Slow page", status="open", points=None),
                Label(owner="acme", code=7, text="urgent"),
                Laptop(id=5, name="ThinkPad", memory=16),
                Memo(id=1, text="not versioned"),
            ]
        )
        session.commit()
    times.append(clock.advance(hours=1))
    with changes_by(actor="bob"):
        ticket = session.get(Ticket, 1)
        assert ticket is not None
        ticket.status, ticket.points = "done", 5
        label = session.get(Label, ("acme", 7))
        assert label is not None
        label.text = "[bold]later[/bold]"
        session.commit()
    times.append(clock.advance(hours=1))
    with changes_by(actor="carol", reason="cleanup"):
        ticket = session.get(Ticket, 1)
        assert ticket is not None
        ticket.title = "Login broken on Safari"
        session.delete(session.get(Ticket, 2))
        laptop = session.get(Laptop, 5)
        assert laptop is not None
        laptop.memory = 32
        session.commit()
    return times


# -- reading ------------------------------------------------------------------------------------


def test_log_lists_the_entries_newest_first_and_filters_them(
    url: str, session: Session, clock: FrozenClock
) -> None:
    t0, t1, t2 = make_history(session, clock)
    expected = [
        (iso(t2), "cli_asset", "5", "UPDATE", "carol", "cleanup"),
        (iso(t2), "cli_ticket", "1", "UPDATE", "carol", "cleanup"),
        (iso(t2), "cli_ticket", "2", "DELETE", "carol", "cleanup"),
        (iso(t1), "cli_label", '["acme",7]', "UPDATE", "bob", None),
        (iso(t1), "cli_ticket", "1", "UPDATE", "bob", None),
        (iso(t0), "cli_asset", "5", "INSERT", "alice", "import"),
        (iso(t0), "cli_label", '["acme",7]', "INSERT", "alice", "import"),
        (iso(t0), "cli_ticket", "1", "INSERT", "alice", "import"),
        (iso(t0), "cli_ticket", "2", "INSERT", "alice", "import"),
    ]

    def listed(*arguments: str) -> list[tuple[Any, ...]]:
        entries = run_json(url, "log", *arguments)
        times = [e["time"] for e in entries]
        assert times == sorted(times, reverse=True)
        return sorted(
            (
                (e["time"], e["table"], e["row"], e["operation"], e["actor"], e["reason"])
                for e in entries
            ),
            key=lambda e: (e[0], e[1], e[2]),
            reverse=False,
        )

    def ordered(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return sorted(rows, key=lambda e: (e[0], e[1], e[2]))

    assert listed() == ordered(expected)
    assert listed("--table", "cli_ticket") == ordered([e for e in expected if e[1] == "cli_ticket"])
    assert listed("--table", "cli_laptop") == ordered([e for e in expected if e[1] == "cli_asset"])
    assert listed("--actor", "bob") == ordered([e for e in expected if e[4] == "bob"])
    assert listed("--since", iso(t1)) == ordered([e for e in expected if e[0] >= iso(t1)])
    assert listed("--until", iso(t1)) == ordered([e for e in expected if e[0] < iso(t1)])
    assert len(run_json(url, "log", "--limit", "2")) == 2
    assert len(run_json(url, "log", "--limit", "0")) == len(expected)
    update = run_json(url, "log", "--table", "cli_label", "--actor", "bob")[0]
    assert update["changes"] == {"text": ["urgent", "[bold]later[/bold]"]}

    people = run(url, "log", "--table", "cli_label")
    assert people.exit_code == 0
    assert "[bold]later[/bold]" in people.stdout  # shown as written, not as markup
    assert "bob" in people.stdout and "alice" in people.stdout


def _as_api(found: Any, key: list[Any]) -> dict[str, Any]:
    values = {
        column.name: getattr(found, prop.key)
        for prop in found.__mapper__.column_attrs
        for column in prop.columns
        if column.name
        not in {
            "version",
            "valid_from",
            "valid_to",
            "operation",
            "transaction_id",
            "restored_from",
            "retired_values",
        }
    }
    return {
        "key": key,
        "version": found.version,
        "operation": found.operation,
        "valid_from": iso(found.valid_from),
        "valid_to": iso(found.valid_to) if found.valid_to else None,
        "restored_from": found.restored_from,
        "values": values,
    }


def _shown(document: dict[str, Any]) -> dict[str, Any]:
    keys = ("key", "version", "operation", "valid_from", "valid_to", "restored_from", "values")
    return {k: document[k] for k in keys}


@pytest.mark.parametrize(
    ("table", "cls", "key", "typed"),
    [
        ("cli_ticket", Ticket, 1, "1"),
        ("cli_ticket", Ticket, 2, " 2"),
        ("cli_label", Label, ("acme", 7), '["acme",7]'),
        ("cli_label", Label, ("acme", 7), "acme,7"),
        ("cli_laptop", Laptop, 5, "5"),
    ],
)
def test_history_show_and_diff_answer_as_the_python_api(
    url: str, session: Session, clock: FrozenClock, table: str, cls: type[Any], key: Any, typed: str
) -> None:
    times = make_history(session, clock)
    session.expire_all()
    expected = history(session, cls, key)
    listed = list(key) if isinstance(key, tuple) else [key]
    shown = run_json(url, "history", table, typed)
    assert [_shown(v) for v in shown] == [_as_api(v, listed) for v in expected]
    assert [v["actor"] for v in shown] == [
        session.get(Transaction, v.transaction_id).actor for v in expected
    ]  # type: ignore[union-attr]

    for when in [
        times[0].subtract(microseconds=1),
        *times,
        times[0].add(minutes=30),
        times[-1].add(days=1),
    ]:
        then = session.scalars(
            query_as_of(cls, when).where(
                *[
                    getattr(cls, name) == value
                    for name, value in zip(
                        ("owner", "code") if cls is Label else ("id",), listed, strict=True
                    )
                ]
            )
        ).one_or_none()
        result = run(url, "--json", "show", table, typed, "--as-of", iso(when))
        if then is None:
            assert result.exit_code == 1
            assert result.stderr.startswith("chronicle: error: ") and result.stderr.count("\n") == 1
            assert result.stdout == ""
        else:
            assert result.exit_code == 0, result.stderr
            assert _shown(json.loads(result.stdout)) == _as_api(then, listed)

    for first in expected:
        for second in expected:
            document = run_json(url, "diff", table, typed, str(first.version), str(second.version))
            want = {name: [c.old, c.new] for name, c in changes(first, second).items()}
            columns = {p.key: c.name for p in cls.__mapper__.column_attrs for c in p.columns}
            assert document["changes"] == {columns.get(k, k): v for k, v in want.items()}

    people = run(url, "history", table, typed)
    assert people.exit_code == 0 and "version" in people.stdout


def test_show_reads_times_in_the_timezone_given(
    url: str, session: Session, clock: FrozenClock
) -> None:
    t0, t1, _ = make_history(session, clock)
    paris = t1.in_tz("Europe/Paris").add(minutes=1)
    naive = paris.naive().isoformat()
    refused = run(url, "show", "cli_ticket", "1", "--as-of", naive)
    assert refused.exit_code == 2 and "--timezone" in refused.stderr
    document = run_json(
        url, "--timezone", "Europe/Paris", "show", "cli_ticket", "1", "--as-of", naive
    )
    assert document["version"] == 2
    assert parse_time("now") > t0.subtract(years=100)


def test_now_is_read_from_the_clock_that_stamps_the_versions(
    cli_db: Engine, url: str, session: Session, clock: FrozenClock
) -> None:
    """``now`` is the library's clock (the database's by default), not this machine's: a machine
    whose clock runs behind the server's still sees the newest version, and one whose clock runs
    ahead may still prune to the present."""
    make_history(session, clock)  # in 2030, ahead of this machine's clock
    session.rollback()
    newest = run_json(url, "history", "cli_ticket", "1")[-1]["version"]
    assert run_json(url, "show", "cli_ticket", "1", "--as-of", "now")["version"] == newest
    clock.advance(minutes=1)
    assert run_json(url, "log", "--since", "now", "--table", "cli_ticket") == []
    clock.now = pendulum.datetime(2001, 1, 1, tz="UTC")  # behind this machine's clock
    pruned = run_json(url, "prune", "--before", "now", "--dry-run")
    assert (pruned["versions"], pruned["changelog"]) == (0, 0)


def test_a_models_module_may_set_the_timezone_of_times_without_an_offset(
    url: str, session: Session, clock: FrozenClock
) -> None:
    """Without ``--timezone``, a naive time is read in the default timezone, which the module
    given with ``--models`` may set; it is imported before the time is read, in every command."""
    _, t1, _ = make_history(session, clock)
    naive = t1.in_tz("Europe/Paris").add(minutes=1).naive().isoformat()
    sys.modules.pop("tests.cli_models_paris", None)
    try:
        paris = "tests.cli_models_paris:Base"
        shown = run_json(url, "--models", paris, "show", "cli_ticket", "1", "--as-of", naive)
        assert shown["version"] == 2
        given = ["--timezone", "UTC", "show", "cli_ticket", "1", "--as-of", naive]
        assert run_json(url, "--models", paris, *given)["version"] == 3  # an hour later, in UTC
    finally:
        set_default_timezone(None)


# -- writing ------------------------------------------------------------------------------------


def test_restore_puts_a_row_back_attributed_and_dry_run_changes_nothing(
    url: str, session: Session, clock: FrozenClock, cli_db: Engine
) -> None:
    t0, _, _ = make_history(session, clock)
    clock.advance(hours=1)
    before = snapshot(cli_db)
    dry = run_json(
        url, "--models", MODELS, "restore", "cli_ticket", "1", "--as-of", iso(t0), "--dry-run"
    )
    assert dry == {
        "table": "cli_ticket",
        "as_of": iso(t0),
        "dry_run": True,
        "key": [1],
        "outcome": "restored",
        "restored_from": 1,
    }
    assert snapshot(cli_db) == before

    done = run_json(
        url,
        "restore",
        "cli_ticket",
        "1",
        "--as-of",
        iso(t0),
        "--models",
        MODELS,
        "--actor",
        "dave",
        "--reason",
        "undo cleanup",
    )
    assert done["outcome"] == "restored" and done["dry_run"] is False
    session.expire_all()
    versions = history(session, Ticket, 1)
    assert versions[-1].operation == "restore" and versions[-1].restored_from == 1
    assert versions[-1].transaction.actor == "dave"
    assert versions[-1].transaction.reason == "undo cleanup"
    live = session.get(Ticket, 1)
    assert live is not None and (live.title, live.status, live.points) == (
        "Broken login",
        "open",
        3,
    )

    session.rollback()  # SQLite: a reader's open transaction would lock the program's writes out
    again = run_json(url, "--models", MODELS, "restore", "cli_ticket", "1", "--as-of", iso(t0))
    assert again["outcome"] == "unchanged"
    deleted = run_json(url, "--models", MODELS, "restore", "cli_ticket", "2", "--as-of", iso(t0))
    assert deleted["outcome"] == "restored"
    session.expire_all()
    assert session.get(Ticket, 2) is not None
    session.rollback()
    gone = run_json(
        url,
        "--models",
        MODELS,
        "restore",
        "cli_ticket",
        "2",
        "--as-of",
        iso(t0.subtract(minutes=1)),
        "--allow-delete",
    )
    assert gone["outcome"] == "deleted"


def test_restore_all_with_where_restores_the_selected_rows(
    url: str, session: Session, clock: FrozenClock, cli_db: Engine
) -> None:
    t0, _, _ = make_history(session, clock)
    session.add(Ticket(id=3, title="New", status="open", points=1))
    session.commit()
    clock.advance(hours=1)
    before = snapshot(cli_db)
    arguments = ["--models", MODELS, "restore", "cli_ticket", "--all", "--as-of", iso(t0)]
    dry = run_json(url, *arguments, "--where", "status = 'open' OR points IS NULL", "--dry-run")
    assert (dry["inserted"], dry["updated"], dry["deleted"], dry["unchanged"]) == (1, 1, 1, 0)
    assert snapshot(cli_db) == before
    done = run_json(url, *arguments, "--where", "status = 'open' OR points IS NULL")
    assert (done["inserted"], done["updated"], done["deleted"]) == (1, 1, 1)
    session.expire_all()
    rows = {t.id: (t.title, t.status, t.points) for t in session.scalars(select(Ticket))}
    assert rows == {1: ("Broken login", "open", 3), 2: ("Slow page", "open", None)}


def test_backfill_gives_rows_without_history_a_first_version(
    url: str, session: Session, cli_db: Engine
) -> None:
    with cli_db.begin() as connection:  # Core inserts: not captured
        connection.execute(
            insert(Ticket.__table__),
            [{"id": i, "title": f"t{i}", "status": "open"} for i in range(1, 8)],
        )
        connection.execute(insert(Label.__table__), [{"owner": "x", "code": 1, "text": "y"}])
    done = run_json(
        url, "--models", f"{MODELS}:Base", "backfill", "--batch-size", "3", "--actor", "ops"
    )
    assert {d["table"]: d["rows"] for d in done} == {
        "cli_asset": 0,
        "cli_badge": 0,
        "cli_label": 1,
        "cli_ticket": 7,
    }
    for i in range(1, 8):
        (only,) = history(session, Ticket, i)
        assert (only.version, only.operation, only.title) == (1, "insert", f"t{i}")
        assert only.transaction.actor == "ops"
    session.rollback()
    again = run_json(url, "--models", MODELS, "backfill", "--table", "cli_ticket")
    assert again == [{"table": "cli_ticket", "rows": 0}]


# -- operating history: verify, seal, anchor, prune, redact --------------------------------------


def _findings(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["table"], f["row"]) for f in document["findings"]}


def test_verify_is_zero_when_intact_and_names_each_broken_row(
    url: str, session: Session, clock: FrozenClock, cli_db: Engine
) -> None:
    make_history(session, clock)
    session.rollback()
    unsealed = run(url, "--json", "verify")
    assert unsealed.exit_code == 1
    rows = {
        ("cli_ticket", "1"),
        ("cli_ticket", "2"),
        ("cli_label", '["acme",7]'),
        ("cli_asset", "5"),
    }
    logged = {(f"chronicle_changelog:{table}", row) for table, row in rows}
    assert _findings(json.loads(unsealed.stdout)) == rows | logged | {("cli_laptop", "5")}
    assert run_json(url, "seal") == {"sealed": 20}  # 11 versions (2 joined rows), 9 log entries
    intact = run_json(url, "verify")
    assert intact["ok"] is True and intact["findings"] == [] and intact["versions"] == 11
    anchor = run_json(url, "anchor")["anchor"]
    assert run(url, "anchor").stdout.strip() == anchor
    assert run_json(url, "verify", "--anchor", anchor)["ok"] is True
    people = run(url, "verify")
    assert people.exit_code == 0 and "intact" in people.stdout

    history_table = Base.metadata.tables["cli_ticket_history"]
    label_history = Base.metadata.tables["cli_label_history"]
    with cli_db.begin() as connection:  # behind the library's back
        connection.execute(
            history_table.update()
            .where(history_table.c.id == 1, history_table.c.version == 1)
            .values(title="Forged")
        )
        connection.execute(
            label_history.update()
            .where(label_history.c.version == 1)
            .values(valid_from=clock.now.subtract(days=1))
        )
    broken = run(url, "--json", "verify")
    assert broken.exit_code == 1
    document = json.loads(broken.stdout)
    assert document["ok"] is False
    assert {(f["table"], f["row"], f["version"], f["kind"]) for f in document["findings"]} == {
        ("cli_ticket", "1", 1, "altered value"),
        ("cli_label", '["acme",7]', 1, "altered interval"),
    }
    count = len(document["findings"])
    assert broken.stderr == f"chronicle: error: verification failed: {count} findings\n"
    only = run(url, "--json", "verify", "--table", "cli_label")
    assert _findings(json.loads(only.stdout)) == {("cli_label", '["acme",7]')}
    shown = run(url, "verify")
    assert shown.exit_code == 1 and "Forged" not in shown.stdout
    assert "cli_ticket" in shown.stdout and "altered value" in shown.stdout
    with cli_db.begin() as connection:
        connection.execute(Base.metadata.tables["chronicle_ledger"].delete())
    assert run(url, "verify", "--anchor", anchor).exit_code == 1


def test_prune_keeps_every_answer_at_or_after_the_horizon(
    url: str, session: Session, clock: FrozenClock, cli_db: Engine
) -> None:
    t0, t1, t2 = make_history(session, clock)
    session.rollback()
    clock.advance(hours=1)
    rows = [("cli_ticket", "1"), ("cli_ticket", "2"), ("cli_label", "acme,7"), ("cli_laptop", "5")]
    later = [t1, t1.add(minutes=30), t2, t2.add(days=1)]

    def answers() -> list[Any]:
        found = []
        for table, key in rows:
            for when in later:
                result = run(url, "--json", "show", table, key, "--as-of", iso(when))
                found.append((result.exit_code, result.stdout))
        return found

    before = answers()
    log_after = run_json(url, "log", "--since", iso(t1))
    unchanged = snapshot(cli_db)
    dry = run_json(url, "prune", "--before", iso(t1), "--dry-run")
    assert dry["dry_run"] is True and (dry["versions"], dry["changelog"]) == (2, 4)
    assert snapshot(cli_db) == unchanged
    done = run_json(url, "prune", "--before", iso(t1), "--batch-size", "2")
    assert (done["versions"], done["changelog"], done["dry_run"]) == (2, 4, False)
    assert {"cli_asset", "cli_label", "cli_ticket"} <= set(done["horizons"])  # and the suite's
    assert set(done["horizons"].values()) == {iso(t1)}
    assert answers() == before
    assert run_json(url, "log", "--since", iso(t1)) == log_after
    for arguments in (
        ["show", "cli_ticket", "1", "--as-of", iso(t0)],
        ["history", "cli_ticket", "1"],
    ):
        refused = run(url, *arguments)
        assert refused.exit_code == 2 and "pruned before" in refused.stderr
    noted = run(url, "log")
    assert noted.exit_code == 0 and "pruned before" in noted.stderr
    assert run_json(url, "prune", "--before", iso(t0))["versions"] == 0  # never moves back
    restored = run_json(url, "--models", MODELS, "restore", "cli_ticket", "1", "--as-of", iso(t1))
    assert restored["outcome"] in ("restored", "unchanged")  # a time after the horizon


def test_redact_scrubs_every_version_and_log_entry_of_the_row_and_nothing_else(
    url: str, session: Session, clock: FrozenClock, cli_db: Engine
) -> None:
    make_history(session, clock)
    session.rollback()
    assert run_json(url, "seal")["sealed"] == 20
    before = {name: rows for name, rows in snapshot(cli_db).items()}
    done = run_json(
        url,
        "redact",
        "cli_ticket",
        "1",
        "--columns",
        "title, points",
        "--reason",
        "GDPR request 42",
        "--actor",
        "dpo",
        "--marker",
        "[redacted]",
    )
    assert done == {
        "table": "cli_ticket",
        "row": "1",
        "columns": ["points", "title"],
        "versions": 3,
        "changelog": 3,
        "ledger": 3,
        "redaction": done["redaction"],
    }
    versions = run_json(url, "history", "cli_ticket", "1")
    assert [v["values"]["title"] for v in versions] == ["[redacted]"] * 3
    assert [v["values"]["points"] for v in versions] == [None] * 3
    assert [v["values"]["status"] for v in versions] == ["open", "done", "done"]
    after = snapshot(cli_db)
    for name in ("cli_ticket", "cli_label", "cli_label_history", "cli_asset_history"):
        assert after[name] == before[name], name
    session.expire_all()
    live = session.get(Ticket, 1)
    assert live is not None and live.title == "Login broken on Safari"  # the live row is the app's
    (record,) = session.scalars(select(Redaction))
    assert (record.actor, record.reason, record.table_name) == (
        "dpo",
        "GDPR request 42",
        "cli_ticket",
    )
    session.rollback()
    for entry in run_json(url, "log", "--table", "cli_ticket"):
        if entry["row"] == "1":
            assert "Broken login" not in json.dumps(entry["changes"])
    assert run_json(url, "verify")["ok"] is True


def test_prune_by_policy_and_redact_through_the_models(
    url: str, session: Session, clock: FrozenClock, cli_db: Engine
) -> None:
    _, _, t2 = make_history(session, clock)
    session.rollback()
    clock.advance(hours=1)  # Label keeps an hour: its history before t2 goes
    done = run_json(url, "--models", MODELS, "prune", "--by-policy")
    assert done["horizons"]["cli_label"] == iso(t2)
    assert "cli_ticket" not in done["horizons"] and done["versions"] >= 1
    assert run(url, "show", "cli_label", "acme,7", "--as-of", iso(t2)).exit_code == 0
    assert run(url, "history", "cli_label", "acme,7").exit_code == 2

    redacted = run_json(
        url, "--models", MODELS, "redact", "cli_laptop", "5", "--columns", "memory", "--reason", "r"
    )
    assert (redacted["table"], redacted["columns"], redacted["versions"]) == (
        "cli_asset",
        ["memory"],
        2,
    )
    versions = run_json(url, "history", "cli_laptop", "5")
    assert [v["values"]["memory"] for v in versions] == [None, None]
    assert [v["values"]["name"] for v in versions] == ["ThinkPad", "ThinkPad"]


def test_commands_on_tables_use_the_models_given_without_reflecting(
    url: str, session: Session, clock: FrozenClock
) -> None:
    """cli_badge's history table has a name of its own: only the models can find it."""
    session.add(Badge(id=1, holder="Ada"))
    session.commit()
    clock.advance(minutes=1)
    session.get_one(Badge, 1).holder = "Ada L."
    session.commit()
    later = clock.advance(minutes=1)
    session.close()
    for arguments in (["verify", "--table", "cli_badge"], ["seal", "--table", "cli_badge"]):
        refused = run(url, *arguments)
        assert refused.exit_code == 2 and "not versioned" in refused.stderr, refused.stderr
    on_badge = ["--table", "cli_badge"]
    sealed = run_json(url, "--models", MODELS, "seal", *on_badge)
    assert sealed == {"sealed": 4}  # two versions and their two change-log entries
    assert run_json(url, "--models", MODELS, "verify", *on_badge)["versions"] == 2
    redacted = run_json(
        url, "--models", MODELS, "redact", "cli_badge", "1", "--columns", "holder", "--reason", "r"
    )
    assert (redacted["table"], redacted["versions"]) == ("cli_badge", 2)
    assert run_json(url, "--models", MODELS, "verify", *on_badge)["ok"] is True
    pruned = run_json(url, "--models", MODELS, "prune", "--before", iso(later), *on_badge)
    assert pruned["horizons"] == {"cli_badge": iso(later)} and pruned["versions"] == 1
    restored = run_json(url, "--models", MODELS, "restore", "cli_badge", "1", "--as-of", iso(later))
    assert restored["outcome"] == "unchanged"
    assert session.scalars(select(Badge.__history__.holder)).all() == [None]


# -- bad input ----------------------------------------------------------------------------------

_RESTORE = ["--models", MODELS, "restore"]
_RESTORE_ALL = [*_RESTORE, "cli_ticket", "--all", "--as-of", "now"]
_ONE_ROW = ["cli_ticket", "1", "--as-of"]

BAD_INPUT = [
    (["history", "nope", "1"], "no table 'nope'"),
    (["history", "cli_memo", "1"], "not versioned"),
    (["history", "cli_ticket_history", "1"], "is a history table"),
    (["log", "--table", "cli_memo"], "not versioned"),
    (["history", "cli_ticket", "abc"], "cli_ticket.id takes an integer"),
    (["history", "cli_ticket", "1,2"], "cli_ticket.id takes an integer"),
    (["history", "cli_label", "acme"], "(owner, code)"),
    (["history", "cli_label", '["acme",7,1]'], "(owner, code)"),
    (["history", "cli_label", '["acme",'], "not a JSON array"),
    (["history", "cli_label", '["acme","x"]'], "cli_label.code takes an integer"),
    (["history", "cli_ticket", "99"], "no history"),
    (["show", *_ONE_ROW, "yesterday"], "not an ISO-8601"),
    (["show", *_ONE_ROW, "2024-02-30T10:00Z"], "not an ISO-8601"),
    (["show", *_ONE_ROW, "2024-03-05T10:00"], "no UTC offset"),
    (["log", "--since", "soon"], "not an ISO-8601"),
    (["diff", "cli_ticket", "1", "1", "9"], "no version 9"),
    (["diff", "cli_ticket", "1", "1", "x"], "Invalid value"),
    (["--timezone", "Mars/Olympus", "log", "--since", "2024-03-05"], "unknown timezone"),
    (["restore", *_ONE_ROW, "2030-01-01T00:00Z"], "--models"),
    (["--models", "no.such.module", "restore", *_ONE_ROW, "now"], "cannot import"),
    (["--models", f"{MODELS}:Nope", "restore", *_ONE_ROW, "now"], "has no 'Nope'"),
    ([*_RESTORE, "cli_memo", "1", "--as-of", "now"], "no versioned class"),
    ([*_RESTORE, "cli_ticket", "--as-of", "now"], "--all"),
    ([*_RESTORE_ALL, "1"], "--all"),
    ([*_RESTORE_ALL, "--where", "id = "], "--where"),
    ([*_RESTORE_ALL, "--where", "id = 1; DROP TABLE cli_ticket"], "--where"),
    ([*_RESTORE_ALL, "--where", "lower(title) = 'x'"], "functions"),
    ([*_RESTORE_ALL, "--where", "colour = 'red'"], "no column 'colour'"),
    ([*_RESTORE_ALL, "--where", "points = NULL"], "IS NULL"),
    ([*_RESTORE, "cli_asset", "--all", "--as-of", "now"], "joined-inheritance"),
    ([*_RESTORE, "cli_ticket", "7", "--as-of", "2030-01-01T00:30Z"], "(7,) has no history"),
    ([*_RESTORE, *_ONE_ROW, "2029-12-31T00:00Z"], "give --allow-delete"),
    (["--models", MODELS, "backfill", "--table", "cli_memo"], "no versioned class"),
    (["--models", MODELS, "backfill", "--batch-size", "0"], "Invalid value"),
    (["frobnicate"], "No such command"),
    (["prune"], "--before"),
    (["prune", "--before", "2999-01-01T00:00Z"], "in the future"),
    (["prune", "--by-policy"], "--models"),
    (["prune", "--before", "2030-01-01T00:00Z", "--table", "cli_memo"], "not versioned"),
    (["verify", "--table", "nope"], "no table 'nope'"),
    (["verify", "--anchor", "not-an-anchor"], "not an anchor digest"),
    (["redact", "cli_ticket", "1", "--columns", "title"], "Missing option '--reason'"),
    (["redact", "cli_ticket", "1", "--columns", "title", "--reason", " "], "reason"),
    (["redact", "cli_ticket", "1", "--columns", "id", "--reason", "x"], "primary key"),
    (["redact", "cli_ticket", "1", "--columns", "colour", "--reason", "x"], "'colour'"),
    (["redact", "cli_ticket", "x", "--columns", "title", "--reason", "x"], "takes an integer"),
    (["redact", "cli_ticket", "99", "--columns", "title", "--reason", "x"], "no history"),
    (["redact", "cli_memo", "1", "--columns", "text", "--reason", "x"], "not versioned"),
]


def test_bad_input_is_one_line_on_stderr_and_changes_nothing(
    url: str, session: Session, clock: FrozenClock, cli_db: Engine
) -> None:
    make_history(session, clock)
    session.rollback()
    before = snapshot(cli_db)
    for arguments, message in BAD_INPUT:
        for as_json in ([], ["--json"]):
            result = run(url, *as_json, *arguments)
            case = (arguments, result.stderr)
            assert result.exit_code in (1, 2), case
            assert result.stdout == "", case
            assert result.stderr.startswith("chronicle: error: "), case
            assert result.stderr.count("\n") == 1, case
            assert message in result.stderr, case
        assert snapshot(cli_db) == before, arguments


def test_an_unreachable_or_malformed_database_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    for url, message in [
        ("postgresql+psycopg://postgres@127.0.0.1:1/nowhere", "cannot connect"),
        ("mysql+pymysql://root@127.0.0.1:1/nowhere", "cannot connect"),
        (f"sqlite:///{missing}", "no SQLite file"),
        ("not a url", "not a database URL"),
        ("nosuchdb://host/x", "cannot connect"),
    ]:
        result = run(url, "log")
        assert result.exit_code == 2
        assert result.stderr.startswith("chronicle: error: ") and result.stderr.count("\n") == 1
        assert message in result.stderr
    assert not missing.exists()
    without = CliRunner(env={"CHRONICLE_URL": None}).invoke(app, ["log"])
    assert without.exit_code == 2 and "--url" in without.stderr


def test_a_database_without_chronicle_tables_is_named(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    from sqlalchemy import create_engine

    plain = create_engine(f"sqlite:///{path}")
    with plain.begin() as connection:
        connection.execute(text("CREATE TABLE thing (id INTEGER PRIMARY KEY)"))
        connection.execute(
            text("CREATE TABLE thing_history (id INTEGER, version INTEGER, valid_from TEXT)")
        )
    plain.dispose()
    result = run(f"sqlite:///{path}", "log")
    assert result.exit_code == 2 and "chronicle_transaction" in result.stderr
    result = run(f"sqlite:///{path}", "history", "thing", "1")
    assert result.exit_code == 2 and "chronicle_transaction" in result.stderr


# -- as a program -------------------------------------------------------------------------------


def program(*arguments: str, **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(arguments),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
        **options,
    )


def test_the_installed_program_and_python_m_run_the_commands(
    url: str, session: Session, cli_db: Engine
) -> None:
    configure(clock=None)  # the program writes with the default clock; so does the test here
    with changes_by(actor="alice"):
        session.add_all(
            [Ticket(id=1, title="A", status="open"), Label(owner="o", code=1, text="t")]
        )
        session.commit()
    first = history(session, Ticket, 1)[0].valid_from
    ticket = session.get(Ticket, 1)
    assert ticket is not None
    ticket.title = "B"
    session.commit()
    chronicle, python_m = [str(CHRONICLE)], [sys.executable, "-m", "sqlalchemy_chronicle"]
    done = program(*python_m, "--url", url, "--json", "log", "--table", "cli_ticket")
    assert done.returncode == 0, done.stderr
    assert [e["operation"] for e in json.loads(done.stdout)] == ["UPDATE", "INSERT"]
    assert done.stderr == ""
    shown = program(*chronicle, "history", "cli_label", "o,1", "--url", url)
    assert shown.returncode == 0, shown.stderr
    assert "t" in shown.stdout and "\x1b[" not in shown.stdout  # no colours in a pipe
    bad = program(*python_m, "--url", url, "show", "cli_ticket", "1", "--as-of", "tomorrow")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("chronicle: error: ") and bad.stderr.count("\n") == 1
    arguments = ["--models", MODELS, "--json", "restore", "cli_ticket", "1", "--as-of", iso(first)]
    restored = program(*chronicle, "--url", url, *arguments)
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["restored_from"] == 1
    session.expire_all()
    assert [v.operation for v in history(session, Ticket, 1)] == ["insert", "update", "restore"]
    session.rollback()
    unsealed = program(*chronicle, "--url", url, "verify", "--table", "cli_ticket")
    assert unsealed.returncode == 1 and "cli_ticket" in unsealed.stdout
    assert unsealed.stderr == "chronicle: error: verification failed: 6 findings\n"  # 3 + 3 log
    env = {**os.environ, "CHRONICLE_URL": url, "CHRONICLE_MODELS": MODELS}
    backfilled = program(*chronicle, "backfill", env=env)
    assert backfilled.returncode == 0, backfilled.stderr
    assert backfilled.stderr == ""  # no progress bar when nobody watches
    assert "cli_ticket" in backfilled.stdout


def test_a_progress_bar_is_drawn_only_on_a_terminal(url: str, cli_db: Engine) -> None:
    configure(clock=None)
    with cli_db.begin() as connection:
        connection.execute(
            insert(Ticket.__table__), [{"id": i, "title": "t", "status": "s"} for i in range(1, 6)]
        )
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [str(CHRONICLE), "--url", url, "--models", MODELS, "backfill", "--batch-size", "2"],
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=terminal,
            cwd=ROOT,
            env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
        )
        os.close(terminal)
        seen = b""
        while True:
            ready, _, _ = select_fd.select([controller], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        assert process.wait(timeout=60) == 0, seen
    finally:
        os.close(controller)
    shown = seen.decode(errors="replace")
    assert "━" in shown and "5/5" in shown  # the bar of cli_ticket, done
    assert "Backfill" in shown


def test_main_is_the_console_script(
    url: str, session: Session, clock: FrozenClock, capsys: pytest.CaptureFixture[str]
) -> None:
    make_history(session, clock)
    with pytest.raises(SystemExit) as exit_status:
        main(["--url", url, "--json", "history", "cli_ticket", "2"])
    assert exit_status.value.code == 0
    assert [v["operation"] for v in json.loads(capsys.readouterr().out)] == ["insert", "delete"]


# -- what --where and a typed key mean, against a model -----------------------------------------

WHERE_ROWS = [
    (1, "alpha", "open", 3),
    (2, "beta", "done", None),
    (3, "gamma", "open", 0),
    (4, "delta", "wontfix", 8),
    (5, "alpha", "done", 3),
    (6, "epsilon", "open", None),
]
_INTEGER_COLUMNS = {"id": 0, "points": 3}
_TEXT_COLUMNS = {"title": 1, "status": 2}
_WORDS = st.sampled_from(["alpha", "beta", "open", "done", "wontfix", "zeta", "o'brien"])
_NUMBERS = st.sampled_from([-1, 0, 1, 3, 5, 8, 9])
_COMPARISONS = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_LEAVES = st.one_of(
    st.tuples(
        st.just("compare"),
        st.sampled_from(sorted(_INTEGER_COLUMNS)),
        st.sampled_from(sorted(_COMPARISONS)),
        _NUMBERS,
    ),
    st.tuples(
        st.just("compare"),
        st.sampled_from(sorted(_TEXT_COLUMNS)),
        st.sampled_from(["=", "!="]),
        _WORDS,
    ),
    st.tuples(
        st.just("in"),
        st.sampled_from(sorted(_INTEGER_COLUMNS)),
        st.booleans(),
        st.lists(_NUMBERS, min_size=1, max_size=3),
    ),
    st.tuples(
        st.just("in"),
        st.sampled_from(sorted(_TEXT_COLUMNS)),
        st.booleans(),
        st.lists(_WORDS, min_size=1, max_size=3),
    ),
    st.tuples(st.just("null"), st.sampled_from(["points", "title"]), st.booleans()),
    st.tuples(
        st.just("like"), st.just("title"), st.booleans(), st.sampled_from(["a", "al", "e", "", "z"])
    ),
)
CONDITIONS = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.tuples(st.just("not"), inner),
        st.tuples(st.sampled_from(["and", "or", "AND", "Or"]), inner, inner),
    ),
    max_leaves=6,
)


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def render(condition: Any) -> str:
    kind = condition[0]
    if kind == "compare":
        return f"{condition[1]} {condition[2]} {_literal(condition[3])}"
    if kind == "in":
        values = ", ".join(_literal(v) for v in condition[3])
        return f"{condition[1]} {'NOT IN' if condition[2] else 'IN'} ({values})"
    if kind == "null":
        return f"{condition[1]} IS {'NOT NULL' if condition[2] else 'NULL'}"
    if kind == "like":
        return f"{condition[1]} {'NOT LIKE' if condition[2] else 'LIKE'} '{condition[3]}%'"
    if kind == "not":
        return f"NOT ({render(condition[1])})"
    return f"({render(condition[1])}) {kind} ({render(condition[2])})"


def holds(condition: Any, row: tuple[Any, ...]) -> bool | None:
    """SQL's three-valued answer of ``condition`` for ``row``: None is unknown."""
    kind = condition[0]
    if kind in ("compare", "in", "null", "like"):
        column = condition[1]
        value = row[{**_INTEGER_COLUMNS, **_TEXT_COLUMNS}[column]]
        if kind == "null":
            return (value is not None) if condition[2] else (value is None)
        if value is None:
            return None
        if kind == "compare":
            return _COMPARISONS[condition[2]](value, condition[3])
        if kind == "in":
            return (value in condition[3]) != condition[2]
        return value.startswith(condition[3]) != condition[2]
    if kind == "not":
        inner = holds(condition[1], row)
        return None if inner is None else not inner
    left, right = holds(condition[1], row), holds(condition[2], row)
    if kind.lower() == "and":
        if left is False or right is False:
            return False
        return None if left is None or right is None else True
    if left is True or right is True:
        return True
    return None if left is None or right is None else False


def _insert_where_rows(connection: Any) -> None:
    connection.execute(Ticket.__table__.delete())
    columns = ("id", "title", "status", "points")
    rows = [dict(zip(columns, row, strict=True)) for row in WHERE_ROWS]
    connection.execute(insert(Ticket.__table__), rows)


def _selected(connection: Any, condition: Any) -> set[int]:
    query = select(Ticket.id).where(parse_where(Ticket, render(condition)))
    return set(connection.scalars(query))


def test_each_comparison_selects_the_rows_sql_would(cli_db: Engine) -> None:
    leaves: list[Any] = [
        ("compare", column, op, value)
        for column in _INTEGER_COLUMNS
        for op in _COMPARISONS
        for value in (0, 3, 5)
    ]
    leaves += [("compare", "status", op, "open") for op in ("=", "!=")]
    leaves += [("in", c, negated, [3, 8]) for c in _INTEGER_COLUMNS for negated in (False, True)]
    leaves += [("in", "status", negated, ["open", "done"]) for negated in (False, True)]
    leaves += [("null", "points", negated) for negated in (False, True)]
    leaves += [("like", "title", negated, "al") for negated in (False, True)]
    combined = [("not", leaves[0]), ("and", leaves[1], leaves[-1]), ("or", leaves[2], leaves[-3])]
    with cli_db.begin() as connection:
        _insert_where_rows(connection)
        for condition in [*leaves, *combined]:
            expected = {row[0] for row in WHERE_ROWS if holds(condition, row) is True}
            assert _selected(connection, condition) == expected, render(condition)


@settings(
    parent=settings.default,
    max_examples=min(settings.default.max_examples, 60),
    suppress_health_check=[
        *settings.default.suppress_health_check,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(condition=CONDITIONS)
def test_where_selects_the_rows_sql_would(cli_db: Engine, condition: Any) -> None:
    with cli_db.begin() as connection:
        _insert_where_rows(connection)
        selected = _selected(connection, condition)
    assert selected == {row[0] for row in WHERE_ROWS if holds(condition, row) is True}


@settings(
    parent=settings.default,
    max_examples=min(settings.default.max_examples, 60),
    suppress_health_check=[
        *settings.default.suppress_health_check,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(
    owner=st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
    code=st.integers(-(2**31), 2**31 - 1),
)
def test_a_composite_key_reads_back_as_typed(cli_db: Engine, owner: str, code: int) -> None:
    with cli_db.connect() as connection:
        label = versioned_table(connection, "cli_label")
    assert label.parse_key(json.dumps([owner, code])) == (owner, code)
    assert label.parse_key(json.dumps([owner, str(code)])) == (owner, code)
    if "," not in owner and not owner.lstrip().startswith("["):
        assert label.parse_key(f"{owner}, {code} ") == (owner, code)


KEY_TEXTS = [
    ('["acme",7]', ("acme", 7)),
    ('["acme","7"]', ("acme", 7)),
    ("acme, 7 ", ("acme", 7)),
    ('["ä,b",-3]', ("ä,b", -3)),
]
BAD_KEY_TEXTS = ["acme", '["acme",7,1]', '["acme",', '["acme","x"]', "acme,1.5", '["acme",null]']


def _key_readers(connection: Connection, session: Session) -> list[Callable[[str], Any]]:
    """The command line's, the viewer's and redact()'s reading of a key of cli_label as text."""
    label = versioned_table(connection, "cli_label")
    viewer = HistoryViewer([Label])

    def redacted(text: str) -> Any:
        with session.begin_nested():
            result = redact(session, "cli_label", text, ["text"], reason="reading the key")
        session.rollback()
        return result.row_id

    return [label.parse_key, lambda text: viewer.parse_key(Label, text), redacted]


def test_every_front_end_reads_a_key_alike(cli_db: Engine, clock: FrozenClock) -> None:
    with Session(cli_db) as session:
        session.add(Label(owner="acme", code=7, text="a"))
        session.add(Label(owner="ä,b", code=-3, text="b"))
        session.commit()
        with cli_db.connect() as connection:
            readers = _key_readers(connection, session)
            for text, key in KEY_TEXTS:
                found = [read(text) for read in readers]
                assert found == [key, key, format_row_id(key)], text
            for text in BAD_KEY_TEXTS:
                messages = set()
                for read in readers:
                    with pytest.raises(InvalidKeyError) as caught:
                        read(text)
                    messages.add(str(caught.value).replace("Label", "cli_label"))
                assert len(messages) == 1, (text, messages)


@pytest.mark.parametrize(
    ("name", "error", "text"),
    [
        ("nope", ConfigurationError, "no table 'nope'"),
        ("cli_ticket_history", ConfigurationError, "is a history table; name the table it keeps"),
        ("cli_memo", NotVersionedError, "not versioned: the database has no cli_memo_history"),
    ],
)
def test_the_library_and_the_command_line_reflect_a_table_name_alike(
    cli_db: Engine, name: str, error: type[Exception], text: str
) -> None:
    """One reflection of history tables: the same refusals by name, from either side."""
    with cli_db.connect() as connection, pytest.raises(error, match=text):
        versioned_table(connection, name)
    with Session(cli_db) as session:
        for operation in (verify_history, seal_history):
            with pytest.raises(error, match=text):
                operation(session, [name])
        with pytest.raises(error, match=text):
            prune_history(session, pendulum.datetime(2000, 1, 1), classes=[name])


def test_the_history_of_a_dropped_table_is_read_alone(
    cli_db: Engine, url: str, session: Session, clock: FrozenClock
) -> None:
    """A table dropped with its class keeps its history (``docs/migrations.md``): every
    by-name operation and reading command reads ``<name>_history`` alone, without models."""
    times = make_history(session, clock)
    kept = Base.metadata.tables["cli_ticket_history"]
    orphan = kept.to_metadata(MetaData(), name="cli_dropped_history")
    orphan.indexes.clear()  # their names are the kept table's
    orphan.create(cli_db)
    try:
        with cli_db.begin() as connection:
            connection.execute(insert(orphan).from_select(list(kept.c.keys()), select(kept)))
        shown = run_json(url, "history", "cli_dropped", "1")
        assert [v["values"]["status"] for v in shown] == ["open", "done", "done"]
        at_last = run(url, "show", "cli_dropped", "1", "--as-of", iso(times[-1]))
        assert at_last.exit_code == 0, at_last.output
        assert verify_history(session, ["cli_dropped"]).versions == 5
        session.rollback()
        assert run_json(url, "seal", "--table", "cli_dropped") is not None
        verified = run(url, "verify", "--table", "cli_dropped")
        assert verified.exit_code == 0, verified.output
        assert verify_history(session, ["cli_dropped"]).ok
        assert seal_history(session, ["cli_dropped"]) == 0
        session.rollback()
        assert "cli_dropped" in verify_history(session).tables, "no names: every history table"
        session.rollback()
        with cli_db.begin() as connection:
            connection.execute(
                update(orphan).where(orphan.c.id == 1, orphan.c.version == 1).values(title="x")
            )
        found = [f for f in verify_history(session).findings if f.table == "cli_dropped"]
        assert [(f.kind, f.row_id, f.version) for f in found] == [("altered value", "1", 1)]
        session.rollback()
        assert redact(session, "cli_dropped", 1, ["title"], reason="gone").versions == 3
        horizon = pendulum.datetime(2000, 1, 1)
        assert prune_history(session, horizon, classes=["cli_dropped"]).versions == 0
    finally:
        session.rollback()  # a failed assertion leaves it holding a lock that DROP waits for
        orphan.drop(cli_db)
