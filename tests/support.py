"""Helpers shared by the tests: a frozen clock, a statement counter, history readers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pendulum
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import Version

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


def versions(session: Session, history_class: type[Version], **key: Any) -> list[Any]:
    """Every version of the row with primary key ``key``, oldest first."""
    query = select(history_class).filter_by(**key).order_by(history_class.version)
    return list(session.scalars(query))
