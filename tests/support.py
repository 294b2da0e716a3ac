"""Helpers shared by the tests: a frozen clock, a statement counter, history readers, and two
writers interleaved on a row lock."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pendulum
from sqlalchemy import Connection, Engine, MetaData, Table, event, select
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import ConcurrentVersionError, Version

START = pendulum.datetime(2030, 1, 1, tz="UTC")


class FrozenClock:
    """A clock that stands still until moved; every reading is recorded."""

    def __init__(self, start: pendulum.DateTime = START) -> None:
        self.now = start
        self.readings: list[pendulum.DateTime] = []

    def __call__(self, connection: Connection) -> dt.datetime:
        self.readings.append(self.now)
        return self.now

    def advance(self, **delta: Any) -> pendulum.DateTime:
        self.now = self.now + dt.timedelta(**delta)
        return self.now


@dataclass
class StatementCounter:
    """A ``before_cursor_execute`` listener that keeps the SQL it sees."""

    statements: list[str] = field(default_factory=list)

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def reset(self) -> None:
        self.statements.clear()

    @property
    def count(self) -> int:
        return len(self.statements)


def attach_schema(engine: Engine, path: Path | str = ":memory:") -> None:
    """Attach a database to every new SQLite connection of ``engine`` under the name of the
    schema of tests/models_shapes.py, so that ``Base.metadata.create_all(engine)`` works."""
    from .models_shapes import SCHEMA

    def attach(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.execute(f"ATTACH DATABASE '{path}' AS {SCHEMA}")

    event.listen(engine, "connect", attach)
    engine.dispose()


def versions(session: Session, history_class: type[Version], **key: Any) -> list[Any]:
    """Every version of the row with primary key ``key``, oldest first."""
    query = select(history_class).filter_by(**key).order_by(history_class.version)
    return list(session.scalars(query))


def assert_well_formed(rows: list[tuple[Any, int, str, Any, Any]]) -> None:
    """Check rules 1-2 on ``(row key, version, operation, valid_from, valid_to)`` tuples.

    Per row: versions count 1, 2, ...; every interval is non-empty except a delete marker's,
    which is empty; the intervals follow each other without gap or overlap while the row exists;
    only the last version may be open.
    """
    by_key: dict[Any, list[tuple[int, str, Any, Any]]] = {}
    for key, version, operation, valid_from, valid_to in rows:
        by_key.setdefault(key, []).append((version, operation, valid_from, valid_to))
    for key, row_versions in by_key.items():
        row_versions.sort()
        assert [v[0] for v in row_versions] == list(range(1, len(row_versions) + 1)), key
        for index, (_, operation, valid_from, valid_to) in enumerate(row_versions):
            last = index == len(row_versions) - 1
            if operation == "delete":
                assert valid_from == valid_to, (key, row_versions)
            elif valid_to is None:
                assert last, (key, row_versions)
            else:
                assert valid_from < valid_to, (key, row_versions)
            if index:
                _, previous_op, previous_from, previous_to = row_versions[index - 1]
                assert previous_to is not None, (key, row_versions)
                assert previous_from <= valid_from, (key, row_versions)
                if previous_op != "delete":
                    assert previous_to == valid_from, (key, row_versions)
                else:
                    assert previous_to <= valid_from, (key, row_versions)


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(
    engine: Engine, tmp_path: Path, script: str, tables: list[str]
) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<script>`` as a reader would, on the test database of ``engine``.

    On SQLite the example gets a file of its own; on a server the URL of the test database, and
    its ``tables`` (dependent tables first) are dropped afterwards.
    """
    if engine.dialect.name == "sqlite":
        url = f"sqlite:///{tmp_path / 'example.db'}"
    else:
        url = engine.url.render_as_string(hide_password=False)
    try:
        return subprocess.run(
            [sys.executable, str(EXAMPLES / script), url],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            check=False,
        )
    finally:
        if engine.dialect.name != "sqlite":
            metadata = MetaData()
            for name in tables:
                Table(name, metadata).drop(engine, checkfirst=True)


def blocked_writer(engine: Engine, cls: type[Any]) -> str | ConcurrentVersionError:
    """Two writers of rows 1 and 2 of ``cls`` (which has a ``title``), the second one blocked on
    the first one's row lock; return the second one's outcome: ``"committed"`` or its error.

    B changes row 2 first, so that its transaction and its time exist before A's; A then changes
    row 1 and holds its lock; B's change of row 1 waits for it, in a thread of its own, until A
    commits a newer version of the row. Not on SQLite, which lets one writer at a time.
    """
    a, b = Session(engine), Session(engine)
    outcome: list[str | ConcurrentVersionError] = []
    try:
        b_one, b_two = b.get(cls, 1), b.get(cls, 2)
        assert b_one is not None and b_two is not None
        b_two.title = "b2"
        b.flush()  # B's transaction row and time exist from here on
        time.sleep(0.01)
        a_one = a.get(cls, 1)
        assert a_one is not None
        a_one.title = "from A"
        a.flush()  # A holds the lock on row 1

        def b_writes() -> None:
            try:
                b_one.title = "from B"
                b.flush()  # waits for A's lock
                b.commit()
                outcome.append("committed")
            except ConcurrentVersionError as error:
                b.rollback()
                outcome.append(error)

        writer = threading.Thread(target=b_writes)
        writer.start()
        time.sleep(1.0)
        assert writer.is_alive(), "B should be waiting for A's row lock"
        a.commit()
        writer.join(timeout=60)
        assert not writer.is_alive()
    finally:
        a.close()
        b.close()
    return outcome[0]
