"""The shape of ``<table>_history`` and of the generated history classes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, ForeignKey, Integer, MetaData, String, inspect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sqlalchemy_chronicle import ConfigurationError, Transaction, Version, Versioned

from .models import Article, Base, Car, Employee, Manager, Tag, Vehicle


def test_history_class_is_named_and_mapped_in_the_same_metadata() -> None:
    history = Article.__history__
    assert history.__name__ == "ArticleHistory"
    assert issubclass(history, Version)
    assert history.__table__.name == "article_history"  # type: ignore[attr-defined]
    assert Base.metadata.tables["article_history"] is history.__table__  # type: ignore[attr-defined]
    assert "chronicle_transaction" in Base.metadata.tables


def test_copied_columns_keep_names_and_types_but_not_constraints() -> None:
    live = Article.__table__
    history = Article.__history__.__table__  # type: ignore[attr-defined]
    copied = {c.name for c in history.columns if c.info.get("chronicle") == "copied"}
    assert copied == {"id", "title", "body", "views", "slug_column"}
    for name in copied:
        column = history.c[name]
        assert type(column.type) is type(live.c[name].type)
        assert column.server_default is None
        assert not column.unique
        assert not column.foreign_keys
        assert column.nullable is (name != "id")
    assert {c.name for c in history.primary_key} == {"id", "version"}
    assert not history.foreign_keys
    assert not any(c.unique for c in history.columns)


def test_interval_columns() -> None:
    history = Article.__history__.__table__  # type: ignore[attr-defined]
    for name in ("version", "valid_from", "valid_to", "operation", "transaction_id"):
        assert name in history.c
    assert history.c.valid_to.nullable
    assert not history.c.valid_from.nullable


def test_renamed_column_keeps_the_attribute_name() -> None:
    assert Article.__history__.slug.property.columns[0].name == "slug_column"  # type: ignore[attr-defined]


def test_excluded_column_is_not_copied() -> None:
    assert "cached_html" not in Article.__history__.__table__.c  # type: ignore[attr-defined]
    assert not hasattr(Article.__history__, "cached_html")


def test_composite_primary_key() -> None:
    history = Tag.__history__.__table__  # type: ignore[attr-defined]
    assert [c.name for c in history.primary_key] == ["owner", "code", "version"]


def test_single_table_inheritance_follows_the_mapper() -> None:
    assert Manager.__history__.__table__ is Employee.__history__.__table__  # type: ignore[attr-defined]
    assert issubclass(Manager.__history__, Employee.__history__)
    assert "budget" in Employee.__history__.__table__.c  # type: ignore[attr-defined]


def test_joined_inheritance_has_its_own_history_table() -> None:
    car_history = Car.__history__.__table__  # type: ignore[attr-defined]
    assert car_history.name == "car_history"
    assert {c.name for c in car_history.primary_key} == {"id", "version"}
    assert "valid_from" not in car_history.c
    assert issubclass(Car.__history__, Vehicle.__history__)


def test_tables_exist_with_microsecond_timestamps(engine: Engine) -> None:
    inspector = inspect(engine)
    tables = set(inspector.get_table_names())
    assert {
        "article_history",
        "tag_history",
        "employee_history",
        "vehicle_history",
        "car_history",
        "chronicle_transaction",
    } <= tables
    columns = {c["name"]: c for c in inspector.get_columns("article_history")}
    if engine.dialect.name in ("mysql", "mariadb"):
        assert getattr(columns["valid_from"]["type"], "fsp", None) == 6
    index_columns = [tuple(i["column_names"]) for i in inspector.get_indexes("article_history")]
    assert ("transaction_id",) in index_columns


def test_library_tables_are_added_once_per_metadata() -> None:
    metadata = MetaData()

    class Other(DeclarativeBase):
        metadata = MetaData()

    class First(Versioned, Other):
        __tablename__ = "schema_first"
        id: Mapped[int] = mapped_column(primary_key=True)

    class Second(Versioned, Other):
        __tablename__ = "schema_second"
        id: Mapped[int] = mapped_column(primary_key=True)

    names = [t.name for t in Other.metadata.sorted_tables]
    assert names.count("chronicle_transaction") == 1
    assert Other.metadata.tables["chronicle_transaction"] is not Transaction.__table__
    assert not metadata.tables


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"exclude": ["nope"]}, "neither an attribute nor a column"),
        ({"excludes": ["x"]}, "unknown options"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], message: str) -> None:
    class Other(DeclarativeBase):
        pass

    with pytest.raises(ConfigurationError, match=message):

        class Bad(Versioned, Other):
            __tablename__ = "schema_bad"
            __versioned__ = options
            id: Mapped[int] = mapped_column(primary_key=True)
            x: Mapped[str] = mapped_column(String(10))


def test_history_table_name_clash_is_refused() -> None:
    class Other(DeclarativeBase):
        pass

    class Clash(Other):
        __tablename__ = "clash_history"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)

    with pytest.raises(ConfigurationError, match="already has a table of that name"):

        class Thing(Versioned, Other):
            __tablename__ = "clash"
            id: Mapped[int] = mapped_column(primary_key=True)
            other_id: Mapped[int] = mapped_column(ForeignKey("clash_history.id"))


def test_the_registry_configures_alone() -> None:
    """``registry.configure()`` (``cascade=False``) does not reach into the library's registry."""

    class Own(DeclarativeBase):
        pass

    class Alone(Versioned, Own):
        __tablename__ = "alone"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)

    Own.registry.configure()
    assert Alone.__history__.__mapper__.configured
