"""The triggers a migration builds from the tables it reads are those the models would build.

``op.create_history_triggers()`` reflects the live and history tables, since the models of the
day the migration runs may differ from those it was written for. What reflection reads back
must give the triggers the same columns, key and value types as the declared classes, or the
history and change log of a migrated database would differ from those of one made by
``create_all()`` (``tests/test_alembic_triggers.py`` runs the operations through Alembic).
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import uuid
from typing import Any

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import JSON, Engine, MetaData, Numeric, String, Uuid, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sqlalchemy_chronicle import ChangeLog, ConfigurationError, Versioned
from sqlalchemy_chronicle.capture.database import (
    CapturedTable,
    _mysql,
    _postgresql,
    _sqlite,
    create_triggers,
    drop_triggers,
    reflect_captured,
)
from sqlalchemy_chronicle.schema.history import spec_for

from .models_shapes import SCHEMA


class Own(DeclarativeBase):
    metadata = MetaData()


class Measure(Versioned, Own):
    """Every kind of value whose change-log text the triggers choose by its type."""

    __tablename__ = "reflect_measure"
    __versioned__ = {"capture": "database", "exclude": ["scratch"]}

    site: Mapped[str] = mapped_column(String(20), primary_key=True)
    number: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    flag: Mapped[bool | None]
    data: Mapped[Any] = mapped_column(JSON, nullable=True)
    amount: Mapped[decimal.Decimal | None] = mapped_column(Numeric(10, 3))
    ratio: Mapped[float | None]
    day: Mapped[dt.date | None]
    moment: Mapped[dt.datetime | None]
    raw: Mapped[bytes | None]
    scratch: Mapped[str | None] = mapped_column(String(10))


class Tagged(Versioned, Own):
    """A UUID, which SQLite stores as ``CHAR(32)`` and so reads back as text."""

    __tablename__ = "reflect_tagged"
    __versioned__ = {"capture": "database"}

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    tag: Mapped[uuid.UUID | None] = mapped_column(Uuid)


MODULES = {"postgresql": _postgresql, "sqlite": _sqlite, "mysql": _mysql, "mariadb": _mysql}
TABLES = [Measure.__table__, Measure.__history__.__table__]
TABLES += [Tagged.__table__, Tagged.__history__.__table__]


@pytest.fixture
def created(engine: Engine) -> Any:
    Own.metadata.create_all(engine, tables=TABLES)
    yield engine
    Own.metadata.drop_all(engine, tables=TABLES)


@pytest.mark.parametrize("cls", [Measure, Tagged], ids=["types", "uuid"])
def test_triggers_from_the_database_are_those_of_the_models(created: Engine, cls: type) -> None:
    spec = spec_for(cls)
    assert spec is not None
    module = MODULES[created.dialect.name]
    with created.connect() as connection:
        reflected = reflect_captured(connection, cls.__tablename__, changelog=spec.changelog)
    declared = module.create_statements(CapturedTable.of(spec), created.dialect)
    from_database = module.create_statements(reflected, created.dialect)
    if cls is Tagged and created.dialect.name == "sqlite":
        assert from_database != declared  # documented: the change log's UUID is 32 digits
    else:
        assert from_database == declared
    assert [live.name for live, _ in reflected.base.copied] == [
        live.name for live, _ in spec.base.copied
    ]


def test_sqlite_reflected_triggers_log_a_uuid_as_its_32_digits(created: Engine) -> None:
    """The one documented difference: what SQLite stores for a ``Uuid`` reads back as text."""
    spec = spec_for(Tagged)
    assert spec is not None
    tag = uuid.UUID("4f1c2a7e9b3d4c5e8a6f0b1c2d3e4f5a")
    with created.begin() as connection:
        drop_triggers(connection, CapturedTable.of(spec))
        create_triggers(connection, reflect_captured(connection, Tagged.__tablename__))
        connection.execute(insert(Tagged.__table__).values(id=1, tag=tag))
        logged = connection.scalars(
            select(ChangeLog.changes).where(ChangeLog.table_name == Tagged.__tablename__)
        ).all()
    expected = tag.hex if created.dialect.name == "sqlite" else str(tag)
    assert logged == [{"id": 1, "tag": expected}]


def test_create_history_triggers_refuses_what_it_cannot_build(created: Engine) -> None:
    with created.begin() as connection:
        op = Operations(MigrationContext.configure(connection))
        with pytest.raises(ConfigurationError, match="no table reflect_nothing_history"):
            op.create_history_triggers(  # type: ignore[attr-defined]
                "reflect_measure", history_table="reflect_nothing_history"
            )
        with pytest.raises(ConfigurationError, match="no table reflect_nothing"):
            op.create_history_triggers("reflect_nothing")  # type: ignore[attr-defined]
        with pytest.raises(ConfigurationError, match="not that table's history"):
            op.create_history_triggers(  # type: ignore[attr-defined]
                "reflect_measure", history_table="reflect_tagged_history"
            )
    offline = MigrationContext.configure(dialect_name=created.dialect.name, opts={"as_sql": True})
    with pytest.raises(ConfigurationError, match="offline"):
        Operations(offline).create_history_triggers("reflect_measure")  # type: ignore[attr-defined]
    buffer = io.StringIO()
    script = MigrationContext.configure(
        dialect_name=created.dialect.name, opts={"as_sql": True, "output_buffer": buffer}
    )
    with pytest.raises(ConfigurationError, match="offline"):
        Operations(script).drop_history_triggers("reflect_measure")  # type: ignore[attr-defined]
    assert "TRIGGER" not in buffer.getvalue().upper()


class Shelved(Versioned, Own):
    """A table of another schema, created without triggers: the operations give it them."""

    __tablename__ = "reflect_shelved"
    __table_args__ = {"schema": SCHEMA}
    __versioned__ = {"capture": "orm"}

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    label: Mapped[str | None] = mapped_column(String(20))


class Unshelved(Versioned, Own):
    """A table of the same name in the default schema, whose triggers must stay."""

    __tablename__ = "reflect_shelved"
    __versioned__ = {"capture": "database"}

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    label: Mapped[str | None] = mapped_column(String(20))


@pytest.fixture
def shelved(engine: Engine) -> Any:
    tables = [Shelved.__table__, Shelved.__history__.__table__]
    tables += [Unshelved.__table__, Unshelved.__history__.__table__]
    Own.metadata.create_all(engine, tables=tables)
    yield engine
    Own.metadata.drop_all(engine, tables=tables)


def test_the_operations_take_the_triggers_of_a_table_of_another_schema(shelved: Engine) -> None:
    """Created, they version the table of that schema; dropped, those of the default one stay."""
    with shelved.begin() as connection:
        op = Operations(MigrationContext.configure(connection))
        if shelved.dialect.name == "sqlite":
            with pytest.raises(ConfigurationError, match="attached database"):
                op.create_history_triggers("reflect_shelved", schema=SCHEMA)  # type: ignore[attr-defined]
            return
        op.create_history_triggers("reflect_shelved", schema=SCHEMA)  # type: ignore[attr-defined]
        connection.execute(insert(Shelved.__table__).values(id=1, label="a"))
        op.drop_history_triggers("reflect_shelved", schema=SCHEMA)  # type: ignore[attr-defined]
        connection.execute(insert(Shelved.__table__).values(id=2, label="b"))
        connection.execute(insert(Unshelved.__table__).values(id=1, label="c"))
        history = Shelved.__history__.__table__
        assert connection.execute(select(history.c.id, history.c.label)).all() == [(1, "a")]
        default = Unshelved.__history__.__table__
        assert connection.execute(select(default.c.id, default.c.label)).all() == [(1, "c")]
