"""One model per mapping shape of issue #15, for tests/test_mapping_shapes.py; they share ``Base``.

The schema-qualified tables live in the schema ``SCHEMA`` (``CHRONICLE_TEST_SCHEMA``, by default
``chronicle_s``): a PostgreSQL schema, a MariaDB database, a database attached to SQLite's
connections under that name. The test engine creates it.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import os
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Enum,
    ForeignKey,
    Integer,
    Interval,
    LargeBinary,
    Numeric,
    String,
    Table,
    TypeDecorator,
    Uuid,
    func,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from sqlalchemy_chronicle import Versioned

from .models import Base

SCHEMA = os.environ.get("CHRONICLE_TEST_SCHEMA", "chronicle_s")


class Shelf(Versioned, Base):
    """A schema-qualified table, parent of :class:`Volume`; its key's column is named otherwise."""

    __tablename__ = "shelf"
    __table_args__ = {"schema": SCHEMA}

    id: Mapped[int] = mapped_column("shelf_no", key="number", primary_key=True, autoincrement=False)
    label: Mapped[str] = mapped_column(String(40))
    volumes: Mapped[list[Volume]] = relationship(back_populates="shelf", order_by="Volume.id")


class Volume(Versioned, Base):
    """A schema-qualified table with a foreign key into the same schema."""

    __tablename__ = "volume"
    __table_args__ = {"schema": SCHEMA}

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(40))
    shelf_id: Mapped[int | None] = mapped_column(ForeignKey(f"{SCHEMA}.shelf.number"))
    shelf: Mapped[Shelf | None] = relationship(back_populates="volumes")


class Keeper(Versioned, Base):
    """Holds animals of the three-level hierarchy below."""

    __tablename__ = "keeper"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(40))
    animals: Mapped[list[Animal]] = relationship(back_populates="keeper", order_by="Animal.id")


class Animal(Versioned, Base):
    """Joined-table inheritance, three levels deep, with single-table subclasses below."""

    __tablename__ = "animal"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(40))
    keeper_id: Mapped[int | None] = mapped_column(ForeignKey("keeper.id"))
    keeper: Mapped[Keeper | None] = relationship(back_populates="animals")

    __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "animal"}


class Mammal(Animal):
    __tablename__ = "mammal"

    id: Mapped[int] = mapped_column(ForeignKey("animal.id"), primary_key=True)
    fur: Mapped[str] = mapped_column(String(20))

    __mapper_args__ = {"polymorphic_identity": "mammal"}


class Dog(Mammal):
    __tablename__ = "dog"

    id: Mapped[int] = mapped_column(ForeignKey("mammal.id"), primary_key=True)
    breed: Mapped[str] = mapped_column(String(20))
    puppy_teeth: Mapped[int | None] = mapped_column(Integer)

    __mapper_args__ = {"polymorphic_identity": "dog"}


class Puppy(Dog):
    """A single-table subclass of the third level: its column lives in ``dog``."""

    __mapper_args__ = {"polymorphic_identity": "puppy"}


class Alias(Versioned, Base):
    """Attributes whose columns are named otherwise (a unique one among them), a Column key, and
    column properties."""

    __tablename__ = "alias_row"

    id: Mapped[int] = mapped_column("alias_id", primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column("title_text", String(40))
    note: Mapped[str | None] = mapped_column("note_text", String(40), key="note_key", unique=True)
    shout = column_property(func.upper(title))
    length: Mapped[int] = column_property(mapped_column("length_value", Integer, default=0))


class Composite(Versioned, Base):
    """A composite primary key of a string and a UUID."""

    __tablename__ = "composite_row"

    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    token: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    amount: Mapped[int] = mapped_column(Integer)


class Release(Versioned, Base):
    """Application columns named like every library column; the library's are renamed."""

    __tablename__ = "release"
    __versioned__ = {
        "columns": {
            "version": "chronicle_version",
            "valid_from": "chronicle_valid_from",
            "valid_to": "chronicle_valid_to",
            "operation": "chronicle_operation",
            "transaction_id": "chronicle_transaction_id",
            "restored_from": "chronicle_restored_from",
            "retired_values": "chronicle_retired_values",
        }
    }

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    version: Mapped[str] = mapped_column(String(20))
    valid_from: Mapped[dt.date | None]
    valid_to: Mapped[dt.date | None]
    operation: Mapped[str | None] = mapped_column(String(20))
    transaction_id: Mapped[int | None]
    restored_from: Mapped[str | None] = mapped_column(String(20))
    retired_values: Mapped[str | None] = mapped_column(String(20))


class TaskInstanceHistory(Base):
    """An application table named like ``task_instance``'s default history table."""

    __tablename__ = "task_instance_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    note: Mapped[str] = mapped_column(String(40))


class TaskInstance(Versioned, Base):
    """Its history table is named by the option ``table``."""

    __tablename__ = "task_instance"
    __versioned__ = {"table": "task_instance_audit"}

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(20))


team_member = Table(
    "team_member",
    Base.metadata,
    Column("member_id", ForeignKey("member.id"), primary_key=True),
    Column("team_id", ForeignKey("team.id"), primary_key=True),
)


class Member(Versioned, Base):
    """Many-to-many through the plain association table ``team_member``."""

    __tablename__ = "member"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(40))
    teams: Mapped[list[Team]] = relationship(secondary=team_member, order_by="Team.id")


class Team(Versioned, Base):
    __tablename__ = "team"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(40))


class Course(Versioned, Base):
    __tablename__ = "course"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(40))
    enrollments: Mapped[list[Enrollment]] = relationship(
        back_populates="course", order_by="Enrollment.student"
    )


class Enrollment(Versioned, Base):
    """An association table mapped as a class: an ordinary versioned class."""

    __tablename__ = "enrollment"

    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), primary_key=True)
    student: Mapped[str] = mapped_column(String(20), primary_key=True)
    grade: Mapped[str | None] = mapped_column(String(2))
    course: Mapped[Course] = relationship(back_populates="enrollments")


class Mood(enum.Enum):
    CALM = "calm"
    STORMY = "stormy"


class Trimmed(TypeDecorator[str]):
    """Stores text stripped and upper-cased."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else value.strip().upper()


class Typed(Versioned, Base):
    """Column types whose values must come back from history as they went in."""

    __tablename__ = "typed_row"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    mood: Mapped[Mood] = mapped_column(Enum(Mood, name="typed_mood"))
    doc: Mapped[Any] = mapped_column(JSON().with_variant(postgresql.JSONB(), "postgresql"))
    numbers: Mapped[list[int]] = mapped_column(
        JSON().with_variant(postgresql.ARRAY(Integer), "postgresql")
    )
    blob: Mapped[bytes] = mapped_column(LargeBinary(64))
    amount: Mapped[decimal.Decimal] = mapped_column(Numeric(12, 3))
    span: Mapped[dt.timedelta] = mapped_column(Interval)
    token: Mapped[uuid.UUID] = mapped_column(Uuid)
    label: Mapped[str] = mapped_column(Trimmed)


class Counted(Versioned, Base):
    """Optimistic locking through ``version_id_col``."""

    __tablename__ = "counted"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(40))
    revision: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": revision}
