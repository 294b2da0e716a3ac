"""Alembic sees history tables as ordinary tables of the application's MetaData."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sqlalchemy_chronicle import Versioned

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
        "title",
    ]
    assert [
        change for change in changes if change[0] != "add_table" and change[0] != "add_index"
    ] == []
    versioned.create_all(clean)
    assert diff(clean, versioned, OURS) == []


def test_a_new_column_is_proposed_for_the_live_and_the_history_table(clean: Engine) -> None:
    schema_v1(versioned=True).create_all(clean)
    changes = diff(clean, schema_v2(), OURS)
    added = sorted((change[2], change[3].name) for change in changes if change[0] == "add_column")
    assert added == [("mig_page", "summary"), ("mig_page_history", "summary")]
    assert len(changes) == 2
