"""The change log: one entry per changed row per transaction, written with the change."""

from __future__ import annotations

import decimal
import doctest
from typing import Any

import pytest
from sqlalchemy import Engine, Float, Numeric, String, TypeDecorator, create_engine, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sqlalchemy_chronicle import (
    ChangeLog,
    InvalidKeyError,
    NotVersionedError,
    Transaction,
    Versioned,
    changelog_between,
    changelog_by,
    changelog_for,
    changelog_of_transaction,
    changes_by,
    configure,
    format_row_id,
    parse_row_id,
)
from sqlalchemy_chronicle.schema import tables

from .models import Article, Car, Note, Tag
from .support import FrozenClock, StatementCounter


def entries(session: Session) -> list[tuple[str, str, str, dict]]:
    return [
        (e.table_name, e.row_id, e.event_type, e.changes)
        for e in session.scalars(select(ChangeLog).order_by(ChangeLog.id))
    ]


def test_insert_update_delete_entries(session: Session, clock: FrozenClock) -> None:
    session.add(Article(id=1, title="a", body="x"))
    session.commit()
    t1 = clock.advance(seconds=1)
    article = session.get(Article, 1)
    assert article is not None
    article.title = "b"
    article.cached_html = "excluded"
    session.commit()
    t2 = clock.advance(seconds=1)
    session.delete(article)
    session.commit()
    row = {"id": 1, "title": "a", "body": "x", "views": 0, "slug_column": None}
    assert entries(session) == [
        ("article", "1", "INSERT", row),
        ("article", "1", "UPDATE", {"title": ["a", "b"]}),
        ("article", "1", "DELETE", {**row, "title": "b"}),
    ]
    stamps = list(session.scalars(select(ChangeLog.timestamp).order_by(ChangeLog.id)))
    assert stamps == [t1 - (t2 - t1), t1, t2]
    transactions = list(session.scalars(select(ChangeLog.transaction_id).order_by(ChangeLog.id)))
    assert transactions == list(session.scalars(select(Transaction.id).order_by(Transaction.id)))


def test_one_net_entry_per_row_per_transaction(session: Session, clock: FrozenClock) -> None:
    session.add(Article(id=1, title="a"))
    session.commit()
    clock.advance(seconds=1)
    article = session.get(Article, 1)
    assert article is not None
    for title in ("b", "c", "d"):
        article.title = title
        session.flush()
    article.body = "body"
    session.commit()
    assert entries(session)[1:] == [
        ("article", "1", "UPDATE", {"title": ["a", "d"], "body": [None, "body"]})
    ]


def test_joined_inheritance_entries_hold_both_tables(session: Session, clock: FrozenClock) -> None:
    session.add(Car(id=1, name="a", doors=3))
    session.commit()
    clock.advance(seconds=1)
    car = session.get(Car, 1)
    assert car is not None
    car.doors = 5
    session.commit()
    clock.advance(seconds=1)
    car.name = "b"
    session.flush()
    car.doors = 4
    session.commit()
    clock.advance(seconds=1)
    session.delete(car)
    session.commit()
    row = {"id": 1, "kind": "car", "name": "b", "doors": 4}
    assert entries(session) == [
        ("vehicle", "1", "INSERT", {**row, "name": "a", "doors": 3}),
        ("vehicle", "1", "UPDATE", {"doors": [3, 5]}),
        ("vehicle", "1", "UPDATE", {"name": ["a", "b"], "doors": [5, 4]}),
        ("vehicle", "1", "DELETE", row),
    ]


def test_insert_then_update_is_one_insert_entry(session: Session) -> None:
    article = Article(id=1, title="a")
    session.add(article)
    session.flush()
    article.title = "b"
    session.commit()
    assert [(e[2], e[3]["title"]) for e in entries(session)] == [("INSERT", "b")]


def test_insert_then_delete_leaves_no_entry(session: Session) -> None:
    article = Article(id=1, title="a")
    session.add(article)
    session.flush()
    session.delete(article)
    session.commit()
    assert entries(session) == []


def test_update_then_delete_is_one_delete_entry(session: Session, clock: FrozenClock) -> None:
    session.add(Article(id=1, title="a"))
    session.commit()
    clock.advance(seconds=1)
    article = session.get(Article, 1)
    assert article is not None
    article.title = "b"
    session.flush()
    session.delete(article)
    session.commit()
    assert [(e[2], e[3]["title"]) for e in entries(session)] == [("INSERT", "a"), ("DELETE", "b")]


def test_rollback_removes_entries_with_the_change(session: Session) -> None:
    session.add(Article(id=1, title="a"))
    session.flush()
    assert len(entries(session)) == 1
    session.rollback()
    assert entries(session) == []


def test_rolled_back_savepoint_removes_its_entries(session: Session, clock: FrozenClock) -> None:
    session.add(Article(id=1, title="a"))
    session.commit()
    clock.advance(seconds=1)
    article = session.get(Article, 1)
    assert article is not None
    article.title = "b"
    session.flush()
    savepoint = session.begin_nested()
    article.title = "c"
    session.add(Article(id=2, title="z"))
    session.flush()
    savepoint.rollback()
    session.commit()
    assert [(e[1], e[2], e[3].get("title")) for e in entries(session)] == [
        ("1", "INSERT", "a"),
        ("1", "UPDATE", ["a", "b"]),
    ]


def test_composite_keys_are_json_arrays(session: Session) -> None:
    session.add(Tag(owner="acme", code=7, label="x"))
    session.commit()
    assert entries(session)[0][:3] == ("tag", '["acme",7]', "INSERT")
    assert format_row_id(("acme", 7)) == '["acme",7]'
    assert format_row_id((42,)) == "42"


def test_parse_row_id_reads_what_format_row_id_writes(session: Session) -> None:
    session.add(Tag(owner="acme", code=7, label="x"))
    session.commit()
    key = list(Tag.__table__.primary_key.columns)
    written = entries(session)[0][1]
    assert parse_row_id(written, key, table="tag") == ("acme", 7)
    assert session.get(Tag, parse_row_id("acme,7", key, table="tag")) is not None
    examples = doctest.DocTestFinder().find(parse_row_id, globs=vars(tables))
    assert examples[0].examples
    runner = doctest.DocTestRunner()
    for example in examples:
        runner.run(example)
    assert runner.summarize(verbose=False).failed == 0


def test_query_helpers_are_one_statement_each(
    session: Session, clock: FrozenClock, statements: StatementCounter
) -> None:
    with changes_by(actor="alice"):
        session.add_all([Article(id=1, title="a"), Article(id=2, title="b")])
        session.commit()
    t1 = clock.advance(seconds=10)
    with changes_by(actor="bob"):
        article = session.get(Article, 1)
        assert article is not None
        article.title = "c"
        session.add(Tag(owner="o", code=1, label="l"))
        session.commit()
    session.expunge_all()
    statements.reset()
    article_1 = session.scalars(changelog_for(Article, 1)).all()
    assert [e.event_type for e in article_1] == ["INSERT", "UPDATE"]
    by_bob = session.scalars(changelog_by("bob")).all()
    assert sorted((e.table_name, e.row_id) for e in by_bob) == [
        ("article", "1"),
        ("tag", '["o",1]'),
    ]
    later = session.scalars(changelog_between(Article, t1, t1.add(seconds=1))).all()
    assert [e.row_id for e in later] == ["1"]
    assert (
        session.scalars(changelog_between("article", t1.add(seconds=1), t1.add(days=1))).all() == []
    )
    first = session.scalars(changelog_of_transaction(article_1[0].transaction_id)).all()
    assert [e.row_id for e in first] == ["1", "2"]
    selects = [s for s in statements.statements if s.startswith("SELECT")]
    assert len([s for s in selects if "FROM chronicle_changelog" in s]) == 5
    # changelog_between's horizon check reads the horizons once per transaction
    assert len([s for s in selects if "FROM chronicle_horizon" in s]) == 1
    assert [e.event_type for e in session.scalars(changelog_for(session.get(Article, 2)))] == [
        "INSERT"
    ]
    with pytest.raises(NotVersionedError):
        changelog_for(Note, 1)


def test_switched_off_globally_writes_history_only(session: Session) -> None:
    configure(changelog=False)
    session.add(Article(id=1, title="a"))
    session.commit()
    assert entries(session) == []
    assert session.scalar(select(func.count()).select_from(Article.__history__)) == 1


def test_switched_off_per_class() -> None:
    class Other(DeclarativeBase):
        pass

    class Quiet(Versioned, Other):
        __tablename__ = "quiet"
        __versioned__ = {"changelog": False}
        id: Mapped[int] = mapped_column(primary_key=True)

    class Loud(Versioned, Other):
        __tablename__ = "loud"
        id: Mapped[int] = mapped_column(primary_key=True)

    engine = create_engine("sqlite://")
    Other.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Quiet(id=1), Loud(id=1)])
        session.commit()
        assert [e.table_name for e in session.scalars(select(ChangeLog))] == ["loud"]


class Lowercase(TypeDecorator[str]):
    impl = String(50)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else value.lower()


def test_entries_hold_values_as_stored(db: Engine) -> None:
    """New values are those of the history just written, in the form the database stored."""

    class Other(DeclarativeBase):
        pass

    class Account(Versioned, Other):
        __tablename__ = "account"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(Lowercase)
        price: Mapped[decimal.Decimal] = mapped_column(Numeric(12, 2))
        name: Mapped[str] = mapped_column(String(20))

    Other.metadata.create_all(db)
    try:
        with Session(db, expire_on_commit=False) as session:
            account = Account(id=1, email="A@X.ORG", price=decimal.Decimal("1.5"), name="a")
            session.add(account)
            session.commit()
            account.name = "b"
            session.commit()
            logged = [
                (e.event_type, e.changes)
                for e in session.scalars(
                    select(ChangeLog)
                    .where(ChangeLog.table_name == "account")
                    .order_by(ChangeLog.id)
                )
            ]
        assert logged == [
            ("INSERT", {"id": 1, "email": "a@x.org", "price": "1.50", "name": "a"}),
            ("UPDATE", {"name": ["a", "b"]}),
        ]
    finally:
        Other.metadata.drop_all(db, tables=[Account.__table__, Account.__history__.__table__])


def test_entries_keep_any_text_and_name_non_finite_floats(db: Engine) -> None:
    """Text survives the JSON document the entries travel in; JSON has no NaN or infinity."""

    class Other(DeclarativeBase):
        pass

    class Reading(Versioned, Other):
        __tablename__ = "reading"
        id: Mapped[int] = mapped_column(primary_key=True)
        label: Mapped[str] = mapped_column(String(50))
        value: Mapped[float | None] = mapped_column(Float)

    # MariaDB stores no infinity and SQLite no NaN (it reads back as NULL).
    stored = {"postgresql": ["nan", "inf", "-inf"], "sqlite": ["inf", "-inf"], "mysql": []}
    values = [float(name) for name in stored[db.dialect.name]] + [0.25]
    names = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
    label = 'say "hi" \\ \u00e9 \u2603 \n\t {"not": "json"}'
    Other.metadata.create_all(db)
    try:
        with Session(db) as session:
            session.add_all(
                Reading(id=n, label=label, value=v) for n, v in enumerate(values, start=1)
            )
            session.commit()
            logged = sorted(
                (int(e.row_id), e.changes)
                for e in session.scalars(select(ChangeLog).where(ChangeLog.table_name == "reading"))
            )
        assert logged == [
            (n, {"id": n, "label": label, "value": names.get(str(v), v)})
            for n, v in enumerate(values, start=1)
        ]
    finally:
        Other.metadata.drop_all(db, tables=[Reading.__table__, Reading.__history__.__table__])


def test_a_key_too_long_for_the_change_log_is_refused_and_nothing_is_written(db: Engine) -> None:
    """The change log's ``row_id`` holds 255 characters; a longer key is the library's error, not
    the database's (SQLite would even store it), and the failed flush leaves nothing behind."""

    class Other(DeclarativeBase):
        pass

    class Document(Versioned, Other):
        __tablename__ = "document"
        path: Mapped[str] = mapped_column(String(400), primary_key=True)
        title: Mapped[str] = mapped_column(String(50))

    class Unlogged(Versioned, Other):
        __tablename__ = "unlogged_document"
        __versioned__ = {"changelog": False}
        path: Mapped[str] = mapped_column(String(400), primary_key=True)
        title: Mapped[str] = mapped_column(String(50))

    long_path = "/".join(["folder"] * 40) + "/x"  # 282 characters
    Other.metadata.create_all(db)
    try:
        with Session(db) as session:
            session.add(Document(path="/" + "a" * 254, title="fits"))  # 255 characters
            session.commit()
            session.add(Document(path=long_path, title="too long"))
            with pytest.raises(InvalidKeyError, match="255 characters"):
                session.flush()
            session.rollback()
            assert session.scalars(select(Document.path)).all() == ["/" + "a" * 254]
            assert session.scalar(select(func.count()).select_from(Document.__history__)) == 1
            logged = select(ChangeLog.row_id).where(ChangeLog.table_name == "document")
            assert session.scalars(logged).all() == ["/" + "a" * 254]
            session.add(Unlogged(path=long_path, title="no change log, no limit"))
            session.commit()
            assert session.scalars(select(Unlogged.__history__.path)).all() == [long_path]
    finally:
        tables = [Document, Unlogged]
        Other.metadata.drop_all(
            db, tables=[t.__table__ for t in tables] + [t.__history__.__table__ for t in tables]
        )
