"""Migrations: Alembic sees history tables as ordinary tables; rows from before versioning get a
first version from backfill_history()."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import (
    Engine,
    Integer,
    MetaData,
    String,
    Text,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sqlalchemy_chronicle import (
    ChangeLog,
    ConfigurationError,
    NotVersionedError,
    Versioned,
    backfill_history,
    query_as_of,
)

from .models import Article, Car, Note, Vehicle
from .support import FrozenClock

OURS = {"mig_page", "mig_page_history", "chronicle_transaction", "chronicle_changelog"}


def schema_v1(versioned: bool) -> MetaData:
    class Base(DeclarativeBase):
        pass

    mixins: tuple[type, ...] = (Versioned, Base) if versioned else (Base,)

    class Page(*mixins):  # type: ignore[misc]
        __tablename__ = "mig_page"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        title: Mapped[str] = mapped_column(String(100))

    return Base.metadata


def schema_v2() -> MetaData:
    class Base(DeclarativeBase):
        pass

    class Page(Versioned, Base):
        __tablename__ = "mig_page"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        title: Mapped[str] = mapped_column(String(100))
        summary: Mapped[str | None] = mapped_column(Text)

    return Base.metadata


def diff(engine: Engine, metadata: MetaData, tables: set[str]) -> list[Any]:
    def include_name(name: str | None, type_: str, parent: Any) -> bool:
        return type_ != "table" or name in tables

    def include_object(obj: Any, name: str | None, type_: str, *args: Any) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return table is None or table.name in tables

    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_name": include_name,
                "include_object": include_object,
                "compare_type": True,
            },
        )
        return compare_metadata(context, metadata)


@pytest.fixture
def clean(db: Engine) -> Iterator[Engine]:
    drop = MetaData()
    drop.reflect(db, only=lambda name, _: name in {"mig_page", "mig_page_history"})
    drop.drop_all(db)
    yield db
    drop = MetaData()
    drop.reflect(db, only=lambda name, _: name in {"mig_page", "mig_page_history"})
    drop.drop_all(db)


def test_autogenerate_proposes_the_history_table(clean: Engine) -> None:
    schema_v1(versioned=False).create_all(clean)
    versioned = schema_v1(versioned=True)
    changes = diff(clean, versioned, {"mig_page", "mig_page_history"})
    added = [change[1] for change in changes if change[0] == "add_table"]
    assert [table.name for table in added] == ["mig_page_history"]
    assert [c.name for c in added[0].columns] == [
        "id",
        "version",
        "valid_from",
        "valid_to",
        "operation",
        "transaction_id",
        "restored_from",
        "retired_values",
        "title",
    ]
    assert [
        change for change in changes if change[0] != "add_table" and change[0] != "add_index"
    ] == []
    versioned.create_all(clean)
    assert diff(clean, versioned, OURS) == []


def test_a_history_table_from_before_the_interval_index_gets_it_proposed(clean: Engine) -> None:
    versioned = schema_v1(versioned=True)
    versioned.create_all(clean)
    history = versioned.tables["mig_page_history"]
    by_columns = {tuple(c.name for c in index.columns): index for index in history.indexes}
    interval = by_columns["id", "valid_to", "valid_from"]
    start = by_columns["id", "valid_from"]
    # MySQL and MariaDB get the start index instead (see interval_index_wanted)
    made, other = (start, interval) if clean.dialect.name == "mysql" else (interval, start)
    indexes = {index["name"] for index in inspect(clean).get_indexes("mig_page_history")}
    assert made.name in indexes
    assert other.name not in indexes
    made.drop(clean)
    changes = diff(clean, versioned, OURS)
    assert [(change[0], change[1].name) for change in changes] == [("add_index", made.name)]
    made.create(clean)
    assert diff(clean, versioned, OURS) == []


def test_a_new_column_is_proposed_for_the_live_and_the_history_table(clean: Engine) -> None:
    schema_v1(versioned=True).create_all(clean)
    changes = diff(clean, schema_v2(), OURS)
    added = sorted((change[2], change[3].name) for change in changes if change[0] == "add_column")
    assert added == [("mig_page", "summary"), ("mig_page_history", "summary")]
    assert len(changes) == 2


def test_rows_from_before_versioning_get_a_first_version(db: Engine, clock: FrozenClock) -> None:
    with db.begin() as connection:  # written behind the library's back, as before versioning
        connection.execute(
            insert(Article.__table__), [{"id": i, "title": f"t{i}"} for i in range(7)]
        )
    with Session(db) as session:
        session.add(Article(id=100, title="versioned"))
        session.commit()
        t1 = clock.advance(seconds=1)
        assert backfill_history(session, Article, batch_size=3) == 7
        session.commit()
        assert backfill_history(session, Article) == 0
        session.commit()
        versions = session.scalars(
            select(Article.__history__).where(Article.__history__.id < 7)
        ).all()
        assert {(v.version, v.operation, v.valid_from, v.views) for v in versions} == {
            (1, "insert", t1, 0)
        }
        assert len(session.scalars(query_as_of(Article, t1)).all()) == 8
        assert session.scalar(select(func.count()).select_from(ChangeLog)) == 8


def test_a_backfill_reports_progress_and_resumes_after_an_interruption(
    db: Engine, clock: FrozenClock
) -> None:
    with db.begin() as connection:
        connection.execute(
            insert(Article.__table__), [{"id": i, "title": f"t{i}"} for i in range(10)]
        )
    seen: list[tuple[int, int]] = []

    def interrupt_after_two_batches(done: int, total: int) -> None:
        seen.append((done, total))
        if len(seen) == 2:
            raise KeyboardInterrupt

    with Session(db) as session, pytest.raises(KeyboardInterrupt):
        backfill_history(
            session, Article, batch_size=3, commit=True, progress=interrupt_after_two_batches
        )
    assert seen == [(3, 10), (6, 10)]
    with Session(db) as session:
        seen.clear()
        resumed = backfill_history(
            session, Article, batch_size=3, commit=True, progress=lambda *p: seen.append(p)
        )
        assert (resumed, seen) == (4, [(3, 4), (4, 4)])
        versions = session.scalars(select(Article.__history__)).all()
        assert sorted((v.id, v.version) for v in versions) == [(i, 1) for i in range(10)]


@pytest.mark.parametrize("size", [0, -1, 2.5, "10", True])
def test_a_backfill_refuses_a_batch_size_that_is_not_a_positive_integer(
    session: Session, size: object
) -> None:
    with pytest.raises(ConfigurationError, match="batch_size"):
        backfill_history(session, Article, batch_size=size)  # type: ignore[arg-type]


def test_joined_inheritance_backfills_every_table(db: Engine, clock: FrozenClock) -> None:
    with db.begin() as connection:
        connection.execute(text("INSERT INTO vehicle (id, kind, name) VALUES (1, 'car', 'c')"))
        connection.execute(text("INSERT INTO car (id, doors) VALUES (1, 4)"))
    with Session(db) as session:
        assert backfill_history(session, Vehicle) == 1
        session.commit()
        (version,) = session.scalars(select(Car.__history__)).all()
        assert (type(version), version.name, version.doors) == (Car.__history__, "c", 4)


def test_unversioned_classes_are_refused(session: Session) -> None:
    with pytest.raises(NotVersionedError):
        backfill_history(session, Note)
