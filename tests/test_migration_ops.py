"""The Alembic operations that keep history through schema change, run through ``Operations``.

Column names may hold any character, quotes and backslashes included: the operations must keep
and give back every value whatever the name. Autogenerate's comparison reports what it would
do (``alembic check``) instead of failing, and keeps every history table, a joined subclass's
included.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Column, Engine, ForeignKey, Integer, MetaData, String, Table, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sqlalchemy_chronicle import Versioned
from sqlalchemy_chronicle.types import JSONDocument

NAMES = ['we"ird', "back\\slash", "it's", "dotted.name", "plain"]


@pytest.fixture(params=["retired_values", "chronicle_retired"])
def retired(request: pytest.FixtureRequest) -> str:
    """The name of the history table's ``retired_values`` column: its default, or a chosen one."""
    name: str = request.param
    return name


@pytest.fixture
def odd_table(engine: Engine, retired: str) -> Iterator[Table]:
    metadata = MetaData()
    table = Table(
        "odd_history",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column(retired, JSONDocument, key="retired_values"),
        *(Column(name, String(20)) for name in NAMES),
    )
    metadata.drop_all(engine)
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            table.insert(),
            [
                {"id": 1, "version": 1, **{name: f"v-{name}" for name in NAMES}},
                {"id": 1, "version": 2, **{name: None for name in NAMES}},
            ],
        )
    yield table
    metadata.drop_all(engine)


def operations(connection: Any) -> Operations:
    return Operations(MigrationContext.configure(connection))


def test_retiring_keeps_every_value_whatever_the_name(
    engine: Engine, odd_table: Table, retired: str
) -> None:
    chosen = {} if retired == "retired_values" else {"retired_column": retired}
    with engine.begin() as connection:
        op = operations(connection)
        for name in NAMES:
            op.retire_history_column("odd_history", name, **chosen)  # type: ignore[attr-defined]
    with engine.connect() as connection:
        query = select(odd_table.c.retired_values).order_by(odd_table.c.version)
        kept = connection.scalars(query).all()
    assert kept == [{name: f"v-{name}" for name in NAMES}, None]

    with engine.begin() as connection:
        op = operations(connection)
        for name in reversed(NAMES):
            op.unretire_history_column("odd_history", name, String(20), **chosen)  # type: ignore[attr-defined]
    with engine.connect() as connection:
        preparer = connection.dialect.identifier_preparer
        columns = ", ".join(preparer.quote(name) for name in NAMES)
        back = connection.execute(
            text(f"SELECT {columns}, {retired} FROM odd_history ORDER BY version")
        ).all()
    assert [tuple(row) for row in back] == [
        (*(f"v-{name}" for name in NAMES), None),
        (*(None for _ in NAMES), None),
    ]


class Before(DeclarativeBase):
    pass


class Machine(Versioned, Before):
    __tablename__ = "machine"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    watts: Mapped[int | None] = mapped_column(Integer)
    __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "machine"}


class Drill(Machine):
    __tablename__ = "drill"
    id: Mapped[int] = mapped_column(ForeignKey("machine.id"), primary_key=True)
    bits: Mapped[int] = mapped_column(Integer)
    __mapper_args__ = {"polymorphic_identity": "drill"}


OURS = {"machine", "machine_history", "drill", "drill_history"}


@pytest.fixture
def machines(engine: Engine) -> Iterator[None]:
    tables = [Before.metadata.tables[name] for name in OURS]
    Before.metadata.drop_all(engine, tables=tables)
    Before.metadata.create_all(engine, tables=tables)
    yield
    Before.metadata.drop_all(engine, tables=tables)


def diffs(engine: Engine, metadata: MetaData) -> list[Any]:
    def include_name(name: str | None, type_: str, parent: Any) -> bool:
        return type_ != "table" or name in OURS

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": include_name})
        return compare_metadata(context, metadata)


def test_the_comparison_reports_a_retirement(engine: Engine, machines: None) -> None:
    class After(DeclarativeBase):
        pass

    class Machine2(Versioned, After):
        __tablename__ = "machine"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        kind: Mapped[str] = mapped_column(String(20))
        __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "machine"}

    class Drill2(Machine2):
        __tablename__ = "drill"
        id: Mapped[int] = mapped_column(ForeignKey("machine.id"), primary_key=True)
        bits: Mapped[int] = mapped_column(Integer)
        __mapper_args__ = {"polymorphic_identity": "drill"}

    found = [d for d in diffs(engine, After.metadata) if d[0] != "remove_index"]
    assert ("retire_history_column", None, "machine_history", "watts") in found
    assert ("remove_column", None, "machine", Machine.__table__.c.watts) not in found
    assert not any(d[0] == "remove_table" for d in found)


def test_an_unversioned_hierarchy_keeps_every_history_table(engine: Engine, machines: None) -> None:
    class Unversioned(DeclarativeBase):
        pass

    class Plain(Unversioned):
        __tablename__ = "machine"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        kind: Mapped[str] = mapped_column(String(20))
        watts: Mapped[int | None] = mapped_column(Integer)

    class PlainDrill(Unversioned):
        __tablename__ = "drill"
        id: Mapped[int] = mapped_column(ForeignKey("machine.id"), primary_key=True)
        bits: Mapped[int] = mapped_column(Integer)

    found = diffs(engine, Unversioned.metadata)
    dropped = [d[1].name for d in found if d[0] == "remove_table"]
    assert "machine_history" not in dropped
    assert "drill_history" not in dropped


def test_a_retirement_names_a_chosen_retired_values_column(engine: Engine) -> None:
    """A history table whose ``retired_values`` was given another name retires into that one."""

    class Old(DeclarativeBase):
        pass

    class Gadget(Versioned, Old):
        __tablename__ = "gadget"
        __versioned__ = {"columns": {"retired_values": "kept_values"}}
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        size: Mapped[int | None] = mapped_column(Integer)

    class New(DeclarativeBase):
        pass

    class Gadget2(Versioned, New):
        __tablename__ = "gadget"
        __versioned__ = {"columns": {"retired_values": "kept_values"}}
        id: Mapped[int] = mapped_column(Integer, primary_key=True)

    tables = [Old.metadata.tables["gadget"], Gadget.__history__.__table__]  # type: ignore[attr-defined]
    Old.metadata.drop_all(engine, tables=tables)
    Old.metadata.create_all(engine, tables=tables)
    try:
        from alembic.autogenerate import produce_migrations

        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "include_name": lambda name, type_, _: (
                        type_ != "table" or name in ("gadget", "gadget_history")
                    )
                },
            )
            migration = produce_migrations(context, New.metadata)
        found = [
            op
            for table_ops in migration.upgrade_ops.ops  # type: ignore[union-attr]
            for op in getattr(table_ops, "ops", [])
            if getattr(op, "name", "") == "retire_history_column"
        ]
        assert [(op.column_name, op.retired_column) for op in found] == [("size", "kept_values")]
    finally:
        Old.metadata.drop_all(engine, tables=tables)
