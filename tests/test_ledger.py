"""Tamper evidence: verification finds each kind of tampering, and accepts the library's own."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sqlalchemy_chronicle import (
    ChangeLog,
    ConfigurationError,
    LedgerEntry,
    Versioned,
    anchor_digest,
    changes_by,
    configure,
    prune_history,
    redact,
    seal_history,
    verify_history,
)
from sqlalchemy_chronicle.operate.ledger import (
    ALTERED_INTERVAL,
    ALTERED_VALUE,
    ANCHOR_MISMATCH,
    BROKEN_CHAIN,
    DELETED_VERSION,
    INSERTED_VERSION,
    column_digest,
)
from sqlalchemy_chronicle.operate.ledger._common import sha, version_digest
from sqlalchemy_chronicle.types import UTCDateTime

from .conftest import _clear
from .models import Article, Base, Car
from .models_capture import DbNote
from .support import FrozenClock
from .test_database_capture import reset


class Sealed(Versioned, Base):
    """Columns of the types whose values must digest alike on every database."""

    __tablename__ = "ledger_sealed"
    __versioned__ = {"ledger": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str | None] = mapped_column(String(50))
    amount: Mapped[decimal.Decimal | None] = mapped_column(Numeric(10, 2))
    flag: Mapped[bool | None] = mapped_column(Boolean)
    seen: Mapped[dt.datetime | None] = mapped_column(
        DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    )
    data: Mapped[Any] = mapped_column(JSON, nullable=True)


def _history(session: Session, cls: Any) -> Table:
    table: Table = cls.__history__.__table__
    return table


def _articles(session: Session, clock: FrozenClock) -> None:
    """Article 1 in three versions, article 2 inserted and deleted; every version sealed."""
    session.add_all([Article(id=1, title="a", body="secret"), Article(id=2, title="x")])
    session.commit()
    clock.advance(minutes=1)
    session.get(Article, 1).title = "b"
    session.commit()
    clock.advance(minutes=1)
    session.get(Article, 1).title = "c"
    session.delete(session.get(Article, 2))
    session.commit()
    assert seal_history(session, [Article]) == 10  # five versions, five change-log entries
    session.commit()


def kinds(session: Session, table: str = "article") -> list[tuple[str, str | None, int | None]]:
    """The findings of verifying Article about ``table`` (or its change log)."""
    report = verify_history(session, [Article])
    return sorted((f.kind, f.row_id, f.version) for f in report.findings if f.table == table)


def test_untouched_history_verifies(session: Session, clock: FrozenClock) -> None:
    _articles(session, clock)
    report = verify_history(session, [Article])
    assert report.ok and report.findings == []
    assert (report.versions, report.changelog, report.tables) == (5, 5, ["article"])
    assert seal_history(session, [Article]) == 0  # nothing left to seal


Tamper = Callable[[Connection, Table], None]


def _alter_value(connection: Connection, history: Table) -> None:
    connection.execute(
        update(history).where(history.c.id == 1, history.c.version == 2).values(title="forged")
    )


def _alter_excluded_looking_value(connection: Connection, history: Table) -> None:
    connection.execute(
        update(history).where(history.c.id == 1, history.c.version == 1).values(body=None)
    )


def _alter_valid_from(connection: Connection, history: Table) -> None:
    row = connection.execute(
        select(history.c.valid_from).where(history.c.id == 1, history.c.version == 2)
    ).one()
    moved = row.valid_from + dt.timedelta(seconds=1)
    connection.execute(
        update(history).where(history.c.id == 1, history.c.version == 2).values(valid_from=moved)
    )
    connection.execute(
        update(history).where(history.c.id == 1, history.c.version == 1).values(valid_to=moved)
    )


def _alter_valid_to(connection: Connection, history: Table) -> None:
    connection.execute(
        update(history)
        .where(history.c.id == 1, history.c.version == 1)
        .values(valid_to=history.c.valid_from)
    )


def _close_newest(connection: Connection, history: Table) -> None:
    newest = (history.c.id == 1) & (history.c.version == 3)
    start = connection.scalar(select(history.c.valid_from).where(newest))
    end = start + dt.timedelta(seconds=10)
    connection.execute(update(history).where(newest).values(valid_to=end))


def _alter_operation(connection: Connection, history: Table) -> None:
    connection.execute(
        update(history).where(history.c.id == 1, history.c.version == 2).values(operation="restore")
    )


def _delete_version(connection: Connection, history: Table) -> None:
    connection.execute(delete(history).where(history.c.id == 1, history.c.version == 2))


def _delete_version_and_entry(connection: Connection, history: Table) -> None:
    _delete_version(connection, history)
    connection.execute(
        delete(LedgerEntry).where(
            LedgerEntry.table_name == "article", LedgerEntry.row_id == "1", LedgerEntry.version == 2
        )
    )


def _insert_version(connection: Connection, history: Table) -> None:
    row = (
        connection.execute(select(history).where(history.c.id == 1, history.c.version == 3))
        .one()
        ._asdict()
    )
    end = row["valid_from"] + dt.timedelta(seconds=1)
    connection.execute(
        update(history).where(history.c.id == 1, history.c.version == 3).values(valid_to=end)
    )
    connection.execute(
        insert(history).values({**row, "version": 4, "valid_from": end, "title": "planted"})
    )


def _insert_row(connection: Connection, history: Table) -> None:
    row = (
        connection.execute(select(history).where(history.c.id == 1, history.c.version == 1))
        .one()
        ._asdict()
    )
    connection.execute(insert(history).values({**row, "id": 7, "valid_to": None}))


def _rewrite_chain(connection: Connection, history: Table) -> None:
    connection.execute(
        update(LedgerEntry)
        .where(LedgerEntry.table_name == "article", LedgerEntry.row_id == "1")
        .where(LedgerEntry.version == 3)
        .values(previous="0" * 64)
    )


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (_alter_value, [(ALTERED_VALUE, "1", 2)]),
        (_alter_excluded_looking_value, [(ALTERED_VALUE, "1", 1)]),
        (_alter_valid_from, [(ALTERED_INTERVAL, "1", 2)]),
        (_alter_valid_to, [(ALTERED_INTERVAL, "1", 1)]),
        (_alter_operation, [(ALTERED_INTERVAL, "1", 2)]),
        (_close_newest, [(ALTERED_INTERVAL, "1", 3)]),
        (_delete_version, [(DELETED_VERSION, "1", 2)]),
        (_delete_version_and_entry, [(DELETED_VERSION, "1", 2)]),
        (_insert_version, [(INSERTED_VERSION, "1", 4)]),
        (_insert_row, [(INSERTED_VERSION, "7", 1)]),
        (_rewrite_chain, [(BROKEN_CHAIN, "1", 3)]),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_verify_names_each_kind_of_tampering(
    session: Session, clock: FrozenClock, tamper: Tamper, expected: list[Any]
) -> None:
    _articles(session, clock)
    with session.bind.begin() as connection:  # type: ignore[union-attr]
        tamper(connection, _history(session, Article))
    session.expire_all()
    found = kinds(session)
    assert found == expected
    report = verify_history(session, "article")
    assert not report.ok and all(str(f).startswith("article row") for f in report.findings)


def test_a_chain_whose_digests_were_recomputed_breaks_at_the_link(
    session: Session, clock: FrozenClock
) -> None:
    """Someone who recomputes one entry's digest still leaves the next one pointing elsewhere."""
    _articles(session, clock)
    history = _history(session, Article)
    entry = session.scalars(
        select(LedgerEntry).where(
            LedgerEntry.table_name == "article", LedgerEntry.row_id == "1", LedgerEntry.version == 2
        )
    ).one()
    row = (
        session.execute(select(history).where(history.c.id == 1, history.c.version == 2))
        .one()
        ._mapping
    )
    digests = {
        name: column_digest(salt, name, "forged" if name == "title" else row[name])
        for name, salt in entry.salts.items()
    }
    values = sha(digests)
    forged = {**row, "title": "forged"}
    entry.values_digest = values
    entry.digest = version_digest("article", "1", 2, forged, values, entry.previous)
    session.execute(
        update(history).where(history.c.id == 1, history.c.version == 2).values(title="forged")
    )
    session.commit()
    assert kinds(session) == [(BROKEN_CHAIN, "1", 3)]


def test_the_library_s_own_changes_verify(session: Session, clock: FrozenClock) -> None:
    _articles(session, clock)
    anchor = anchor_digest(session)
    with changes_by("dpo"):
        redact(session, Article, 1, ["body"], reason="erasure request")
    session.commit()
    assert verify_history(session, [Article], anchor=anchor).ok
    clock.advance(minutes=1)
    session.get(Article, 1).title = "d"
    session.commit()
    assert kinds(session) == [(INSERTED_VERSION, "1", 4)]  # not sealed yet
    (entry,) = kinds(session, "chronicle_changelog:article")
    assert entry[:2] == (INSERTED_VERSION, "1")
    seal_history(session)
    session.commit()
    assert verify_history(session, [Article], anchor=anchor).ok
    prune_history(session, clock.now - dt.timedelta(seconds=30), classes=[Article])
    assert verify_history(session, [Article]).ok
    report = verify_history(session, [Article], anchor=anchor)
    assert [f.kind for f in report.findings] == [ANCHOR_MISMATCH]  # pruned since
    assert verify_history(session, [Article], anchor=anchor_digest(session)).ok


def test_a_redacted_value_cannot_be_changed_again(session: Session, clock: FrozenClock) -> None:
    _articles(session, clock)
    redact(session, Article, 1, ["body"], reason="erasure", marker="[gone]")
    session.commit()
    assert kinds(session) == []
    history = _history(session, Article)
    session.execute(update(history).where(history.c.id == 1).values(body="back again"))
    session.commit()
    assert kinds(session) == [(ALTERED_VALUE, "1", v) for v in (1, 2, 3)]


def test_an_anchor_detects_a_rewritten_ledger(session: Session, clock: FrozenClock) -> None:
    _articles(session, clock)
    anchor = anchor_digest(session)
    assert anchor.startswith("chronicle-anchor-v1:")
    history = _history(session, Article)
    # Remove the newest version of row 1 with its ledger entry, and reopen the one before:
    # every chain that is left verifies, only the anchor tells.
    session.execute(delete(history).where(history.c.id == 1, history.c.version == 3))
    session.execute(
        update(history).where(history.c.id == 1, history.c.version == 2).values(valid_to=None)
    )
    session.execute(
        delete(LedgerEntry).where(
            LedgerEntry.table_name == "article", LedgerEntry.row_id == "1", LedgerEntry.version == 3
        )
    )
    session.commit()
    assert verify_history(session, [Article]).ok
    report = verify_history(session, [Article], anchor=anchor)
    assert [f.kind for f in report.findings] == [ANCHOR_MISMATCH]
    with pytest.raises(ConfigurationError, match="anchor"):
        verify_history(session, [Article], anchor="not an anchor")


def test_sealing_at_commit(session: Session, clock: FrozenClock) -> None:
    session.add(Sealed(id=1, name="a"))
    session.commit()
    clock.advance(minutes=1)
    session.get(Sealed, 1).name = "b"
    session.commit()
    assert verify_history(session, [Sealed]).ok
    sealed = select(func.count()).where(LedgerEntry.table_name == "ledger_sealed")
    assert session.scalar(sealed) == 2
    stamps = select(LedgerEntry.sealed_at).where(LedgerEntry.table_name == "ledger_sealed")
    assert set(session.scalars(stamps)) <= {clock.now.subtract(minutes=1), clock.now}
    configure(ledger=True)
    session.add(Article(id=1, title="a"))
    session.commit()
    assert verify_history(session, [Article]).ok


def test_joined_inheritance_is_sealed_per_table(session: Session, clock: FrozenClock) -> None:
    session.add(Car(id=1, name="car", doors=3))
    session.commit()
    clock.advance(minutes=1)
    session.get(Car, 1).doors = 5
    session.commit()
    assert seal_history(session, [Car]) == 6  # two versions in two tables, two entries
    session.commit()
    assert verify_history(session, [Car]).ok
    car_history = _history(session, Car)
    session.execute(update(car_history).where(car_history.c.version == 1).values(doors=4))
    session.commit()
    report = verify_history(session, [Car])
    assert [(f.kind, f.table, f.version) for f in report.findings] == [(ALTERED_VALUE, "car", 1)]


def test_values_digest_alike_on_every_database(session: Session, clock: FrozenClock) -> None:
    """Each column digests as the Python value written, whatever the database."""
    written = {
        "id": 1,
        "name": "zoë",
        "amount": decimal.Decimal("12.50"),
        "flag": True,
        "seen": dt.datetime(2030, 5, 6, 7, 8, 9, 123456),
        "data": {"b": [1, 2.5, None], "a": "x"},
    }
    session.add(Sealed(**written))
    session.commit()
    (entry,) = session.scalars(select(LedgerEntry).where(LedgerEntry.table_name == "ledger_sealed"))
    expected = {
        name: column_digest(entry.salts[name], name, value) for name, value in written.items()
    }
    assert sha(expected) == entry.values_digest


def test_a_table_without_models(session: Session, clock: FrozenClock) -> None:
    """The command line's way: a live table's name, its history reflected from the database."""
    metadata = MetaData()
    live = Table("ledger_plain", metadata, Column("id", Integer, primary_key=True))
    history = Table(
        "ledger_plain_history",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("label", String(20)),
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("valid_from", UTCDateTime, nullable=False),
        Column("valid_to", UTCDateTime),
        Column("operation", String(8), nullable=False),
        Column("transaction_id", Integer, nullable=False),
        Column("restored_from", Integer),
    )
    bind = session.connection()
    metadata.drop_all(bind)
    metadata.create_all(bind)
    try:
        t0, t1 = clock.now, clock.now + dt.timedelta(minutes=1)
        session.execute(
            insert(history),
            [
                {"id": 1, "label": "a", "version": 1, "valid_from": t0, "valid_to": t1,
                 "operation": "insert", "transaction_id": 1},
                {"id": 1, "label": "b", "version": 2, "valid_from": t1, "valid_to": None,
                 "operation": "update", "transaction_id": 2},
            ],
        )  # fmt: skip
        assert seal_history(session, "ledger_plain") == 2
        assert verify_history(session, "ledger_plain").ok
        result = redact(session, "ledger_plain", 1, ["label"], reason="test")
        assert (result.table, result.versions) == ("ledger_plain", 2)
        assert session.scalars(select(history.c.label)).all() == [None, None]
        assert verify_history(session, "ledger_plain").ok
        clock.advance(minutes=2)
        prune_history(session, t1, classes="ledger_plain")
        assert session.scalars(select(history.c.version)).all() == [2]
        assert verify_history(session, "ledger_plain").ok
    finally:
        session.rollback()
        metadata.drop_all(session.connection())
        session.commit()
    del live


def test_sealing_waits_for_the_transaction_s_commit(session: Session, clock: FrozenClock) -> None:
    """A version flushed in a released savepoint may still be rewritten by the transaction."""
    with session.begin_nested():
        session.add(Sealed(id=1, name="a"))
    session.get(Sealed, 1).name = "b"  # the same version, rewritten in place
    session.commit()
    assert verify_history(session, [Sealed]).ok


@pytest.mark.parametrize("ledger", ["yes", 1, None])
def test_the_ledger_switch_takes_a_bool(ledger: Any) -> None:
    with pytest.raises(ConfigurationError, match="ledger"):
        configure(ledger=ledger)

    class Other(DeclarativeBase):
        pass

    with pytest.raises(ConfigurationError, match="ledger"):

        class Bad(Versioned, Other):
            __tablename__ = "bad_ledger"
            __versioned__ = {"ledger": ledger}
            id: Mapped[int] = mapped_column(primary_key=True)


def _changelog(session: Session) -> list[ChangeLog]:
    query = select(ChangeLog).where(ChangeLog.table_name == "article").order_by(ChangeLog.id)
    return list(session.scalars(query))


def test_the_change_log_is_chained_too(session: Session, clock: FrozenClock) -> None:
    _articles(session, clock)
    table = ChangeLog.__table__
    first, second, third, *_ = ((e.id, e.row_id, e) for e in _changelog(session))
    forged = {c.name: getattr(first[2], c.key) for c in table.columns if c.name != "id"}
    session.execute(
        update(table).where(table.c.id == third[0]).values(changes={"title": ["a", "forged"]})
    )
    session.execute(delete(table).where(table.c.id == second[0]))
    session.execute(insert(table).values({**forged, "event_type": "DELETE"}))
    session.commit()
    planted = max(e.id for e in _changelog(session))
    assert kinds(session, "chronicle_changelog:article") == sorted(
        [
            (ALTERED_VALUE, third[1], third[0]),
            (DELETED_VERSION, second[1], second[0]),
            (INSERTED_VERSION, first[1], planted),
        ]
    )
    assert kinds(session) == []  # the history itself is intact


def test_a_redacted_change_cannot_be_changed_again(session: Session, clock: FrozenClock) -> None:
    _articles(session, clock)
    redact(session, Article, 1, ["body"], reason="erasure")
    session.commit()
    assert verify_history(session, [Article]).ok
    first = next(e for e in _changelog(session) if e.row_id == "1")
    assert first.changes["body"] is None
    table = ChangeLog.__table__
    session.execute(
        update(table).where(table.c.id == first.id).values(changes={**first.changes, "body": "x"})
    )
    session.commit()
    assert kinds(session, "chronicle_changelog:article") == [(ALTERED_VALUE, "1", first.id)]


_EXAMPLES = min(settings.default.max_examples, 20)


@settings(
    parent=settings.default,
    max_examples=_EXAMPLES,
    suppress_health_check=[
        *settings.default.suppress_health_check,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(
    titles=st.lists(
        st.lists(st.sampled_from(["a", "b", "c", None]), min_size=2, max_size=2),
        min_size=1,
        max_size=5,
    ),
    data=st.data(),
)
def test_any_single_tampering_is_found_where_it_was_made(
    db: Engine, clock: FrozenClock, titles: list[list[str | None]], data: st.DataObject
) -> None:
    """One change behind the library's back, anywhere, is reported at that row and version."""
    _clear(db)
    with Session(db) as session:
        for step in titles:
            clock.advance(minutes=1)
            for row_id, title in enumerate(step, start=1):
                row = session.get(Article, row_id)
                if title is None and row is not None:
                    session.delete(row)
                elif title is not None and row is None:
                    session.add(Article(id=row_id, title=title))
                elif title is not None and row is not None:
                    row.title = title
            session.commit()
        history = _history(session, Article)
        stored = session.execute(select(history.c.id, history.c.version)).all()
        if not stored:
            return
        seal_history(session, [Article])
        session.commit()
        assert verify_history(session, [Article]).ok

        row_id, version = data.draw(st.sampled_from(sorted(stored)), label="version")
        kind = data.draw(
            st.sampled_from([ALTERED_VALUE, ALTERED_INTERVAL, DELETED_VERSION]), label="kind"
        )
        where = (history.c.id == row_id) & (history.c.version == version)
        if kind == ALTERED_VALUE:
            session.execute(update(history).where(where).values(views=history.c.views + 1))
        elif kind == ALTERED_INTERVAL:
            start = session.scalar(select(history.c.valid_from).where(where))
            session.execute(
                update(history).where(where).values(valid_from=start - dt.timedelta(seconds=1))
            )
        else:
            session.execute(delete(history).where(where))
        session.commit()
        found = {(f.kind, f.row_id, f.version) for f in verify_history(session, [Article]).findings}
        assert (kind, str(row_id), version) in found


class Renamed(Versioned, Base):
    """A model column named like a library column, whose library columns take other names."""

    __tablename__ = "ledger_renamed"
    __versioned__ = {
        "columns": {"version": "chronicle_version", "valid_from": "chronicle_from"},
        "ledger": True,
    }

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(50))


def test_renamed_library_columns(session: Session, clock: FrozenClock) -> None:
    session.add(Renamed(id=1, version=10, note="secret"))
    session.commit()
    clock.advance(minutes=1)
    session.get_one(Renamed, 1).version = 11
    session.commit()
    horizon = clock.advance(minutes=1)
    session.get_one(Renamed, 1).version = 12
    session.commit()
    clock.advance(minutes=1)
    assert verify_history(session, [Renamed]).ok
    assert verify_history(session).ok  # found through its model, though named otherwise
    redact(session, Renamed, 1, ["note"], reason="erasure")
    session.commit()
    assert verify_history(session, "ledger_renamed").ok
    result = prune_history(session, horizon, classes=[Renamed])
    assert result.versions == 2
    assert verify_history(session, [Renamed]).ok
    history = _history(session, Renamed)
    session.execute(
        update(history)
        .where(history.c.chronicle_copied_version == 12)
        .values(chronicle_copied_version=99)
    )
    session.commit()
    (finding,) = verify_history(session, [Renamed]).findings
    assert (finding.kind, finding.version) == (ALTERED_VALUE, 3)


def test_history_written_by_the_database_s_triggers(session: Session, clock: FrozenClock) -> None:
    """Sealing, verification, redaction and pruning read the tables, whoever wrote them."""
    session.add(DbNote(id=1, title="a", count=1))
    session.commit()
    clock.advance(minutes=1)
    session.get_one(DbNote, 1).title = "b"
    session.commit()
    horizon = clock.advance(minutes=1)
    session.get_one(DbNote, 1).count = 2
    session.commit()
    clock.advance(minutes=1)
    assert seal_history(session, [DbNote]) >= 3
    session.commit()
    assert verify_history(session, [DbNote]).ok
    assert redact(session, DbNote, 1, ["title"], reason="erasure").versions == 3
    session.commit()
    assert verify_history(session, [DbNote]).ok
    assert prune_history(session, horizon, classes=[DbNote]).versions == 2
    assert verify_history(session, [DbNote]).ok
    history = _history(session, DbNote)
    session.execute(update(history).values(count=history.c.count + 1))
    session.commit()
    assert [f.kind for f in verify_history(session, [DbNote]).findings] == [ALTERED_VALUE]


def test_database_mode_is_sealed_at_commit(session: Session, clock: FrozenClock) -> None:
    """The versions and change-log entries the triggers wrote are sealed by the session's commit."""
    reset(session.get_bind())  # type: ignore[arg-type]
    session.execute(delete(LedgerEntry))
    session.commit()
    configure(ledger=True)
    session.add_all([DbNote(id=1, title="a"), DbNote(id=2, title="x")])
    session.commit()
    clock.advance(minutes=1)
    session.get_one(DbNote, 1).title = "b"
    session.execute(text("DELETE FROM capture_db_note WHERE id = 2"))
    session.commit()
    sealed = select(func.count()).where(LedgerEntry.table_name == "capture_db_note")
    assert session.scalar(sealed) == 4
    assert verify_history(session, [DbNote]).ok
    history = _history(session, DbNote)
    forged = update(history).where(history.c.id == 1, history.c.version == 2)
    session.execute(forged.values(title="forged"))
    session.commit()
    report = verify_history(session, [DbNote])
    assert sorted((f.kind, f.row_id, f.version) for f in report.findings) == [
        (ALTERED_VALUE, "1", 2)
    ]
