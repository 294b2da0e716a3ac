"""NUL characters in keys and values reach the change log exactly, and never fail the commit.

Issue #12 (4). The entries of a flush travel to the database as one JSON document that the
database turns into rows. SQLite's JSON functions cut text at a NUL, so a key ``"a\\x00b"`` was
logged as ``"a"``; PostgreSQL's ``jsonb`` has no NUL at all, so a JSON value holding ``"\\u0000"``,
which a ``json`` column accepts, failed the commit at the change log.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import JSON, Engine, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sqlalchemy_chronicle import ChangeLog, Versioned, changelog_for


class Base(DeclarativeBase):
    pass


class Keyed(Versioned, Base):
    """A text primary key, which SQLite and MariaDB let hold a NUL (PostgreSQL's text cannot)."""

    __tablename__ = "nul_keyed"

    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    label: Mapped[str] = mapped_column(String(20))


class Holder(Versioned, Base):
    """A JSON column, whose strings hold a NUL on every database (``json`` on PostgreSQL)."""

    __tablename__ = "nul_holder"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    data: Mapped[Any] = mapped_column(JSON)


TABLES = [Keyed.__table__, Keyed.__history__.__table__, Holder.__table__]
TABLES.append(Holder.__history__.__table__)


@pytest.fixture
def nul_db(db: Engine) -> Iterator[Engine]:
    Base.metadata.drop_all(db, tables=TABLES)
    Base.metadata.create_all(db, tables=TABLES)
    try:
        yield db
    finally:
        Base.metadata.drop_all(db, tables=TABLES)


def logged(session: Session, table: str) -> list[tuple[str, str, Any]]:
    return [
        (e.row_id, e.event_type, e.changes)
        for e in session.scalars(
            select(ChangeLog).where(ChangeLog.table_name == table).order_by(ChangeLog.id)
        )
    ]


def test_a_key_with_a_nul_is_logged_whole(nul_db: Engine) -> None:
    if nul_db.dialect.name == "postgresql":
        pytest.skip("PostgreSQL text holds no NUL, so no key can have one")
    with Session(nul_db) as session:
        session.add_all([Keyed(code="a\x00b", label="x\x00y"), Keyed(code="a", label="plain")])
        session.commit()
        keyed = session.get(Keyed, "a\x00b")
        assert keyed is not None
        keyed.label = "z"
        session.commit()
        assert sorted(logged(session, "nul_keyed"), key=repr) == [
            ("a", "INSERT", {"code": "a", "label": "plain"}),
            ("a\x00b", "INSERT", {"code": "a\x00b", "label": "x\x00y"}),
            ("a\x00b", "UPDATE", {"label": ["x\x00y", "z"]}),
        ]
        found = session.scalars(changelog_for(Keyed, "a\x00b")).all()
        assert [e.event_type for e in found] == ["INSERT", "UPDATE"]
        assert [e.changes for e in session.scalars(changelog_for(Keyed, "a"))] == [
            {"code": "a", "label": "plain"}
        ]


NUL_DOCUMENTS: list[Any] = [
    {"text": "a\x00b", "a\x00key": ["\x00", "\x00\x00"], "plain": "c"},
    # Text that looks like whatever escape a database needs must come back as it was, too.
    ["\\u0000", "\ufdd0", "\ufdd0\x00", "%00", "\\", "\x00%"],
    "\x00",
]


def test_json_values_with_a_nul_are_logged_exactly_and_the_commit_succeeds(
    nul_db: Engine,
) -> None:
    with Session(nul_db) as session:
        session.add_all(Holder(id=n, data=d) for n, d in enumerate(NUL_DOCUMENTS, start=1))
        session.commit()
        first = session.get(Holder, 1)
        assert first is not None
        first.data = {"text": "\x00 changed"}
        session.delete(session.get(Holder, 3))
        session.commit()
        assert logged(session, "nul_holder") == [
            *((str(n), "INSERT", {"id": n, "data": d}) for n, d in enumerate(NUL_DOCUMENTS, 1)),
            ("1", "UPDATE", {"data": [NUL_DOCUMENTS[0], {"text": "\x00 changed"}]}),
            ("3", "DELETE", {"id": 3, "data": "\x00"}),
        ]
        (entry,) = session.scalars(changelog_for(Holder, 2))
        assert entry.changes == {"id": 2, "data": NUL_DOCUMENTS[1]}


def test_the_escape_is_what_sql_reading_the_column_sees(nul_db: Engine) -> None:
    """Only where it is needed: NUL on PostgreSQL, and text that starts like an escape."""
    with Session(nul_db) as session:
        session.add(Holder(id=1, data=["a\x00%b", "\ufdd0c", "plain %"]))
        session.commit()
        raw = session.scalar(select(ChangeLog.changes).where(ChangeLog.table_name == "nul_holder"))
    nul = "\ufdd0a%00%25b" if nul_db.dialect.name == "postgresql" else "a\x00%b"
    assert raw == {"id": 1, "data": [nul, "\ufdd0\ufdd0c", "plain %"]}
