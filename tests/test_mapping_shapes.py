"""Every mapping shape of issue #15 through the whole life of a row, on every database.

One scenario per shape (the models are in tests/models_shapes.py): a row is inserted, updated and
deleted, one second apart; then ``query_as_of`` and the time-travel session are asked for it at
each of those times and before them, ``history()`` lists its versions, and ``restore`` puts the
deleted row back as it was after the update. The expected values are those the live row had at
each time, read through the model's own attributes.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    inspect,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from sqlalchemy_chronicle import (
    Change,
    ChangeLog,
    ConfigurationError,
    UnversionedTableWarning,
    Versioned,
    as_of,
    changes,
    configure,
    format_row_id,
    history,
    next_version,
    previous_version,
    query_as_of,
    restore,
    restore_all,
    versioned_table,
)
from sqlalchemy_chronicle.config import LIBRARY_COLUMNS
from sqlalchemy_chronicle.schema.columns import COPIED_PREFIX

from .models_shapes import (
    Alias,
    Animal,
    Composite,
    Counted,
    Course,
    Enrollment,
    Keeper,
    Member,
    Mood,
    Puppy,
    Release,
    Shelf,
    TaskInstance,
    TaskInstanceHistory,
    Team,
    Typed,
    Volume,
    team_member,
)
from .support import FrozenClock


@dataclass
class Shape:
    """How to make, change and read one shape's row."""

    name: str
    model: type[Any]
    make: Callable[[Session], Any]
    change: Callable[[Any], None]
    read: Callable[[Any], tuple[Any, ...]]
    """The row's values, from a live object, a past object or a version."""
    related: Callable[[Any], Any] | None = None
    """A relationship's value, from a live or past object (not from a version)."""
    restored: Callable[[tuple[Any, ...]], tuple[Any, ...]] = lambda state: state
    """The values a restore of ``state`` gives the row inserted again."""
    set_based: bool = True
    """Whether ``restore_all`` takes the class (not a joined hierarchy's, see its docs)."""


def _volume(session: Session) -> Volume:
    shelf = Shelf(id=1, label="top")
    volume = Volume(id=10, title="Dune", shelf=shelf)
    session.add(volume)
    return volume


def _puppy(session: Session) -> Puppy:
    puppy = Puppy(id=5, name="Rex", fur="short", breed="collie", puppy_teeth=28)
    puppy.keeper = Keeper(id=1, name="Ann")
    session.add(puppy)
    return puppy


def _change_puppy(puppy: Puppy) -> None:
    puppy.name, puppy.fur, puppy.breed, puppy.puppy_teeth = "Max", "long", "husky", 12


def _enrollment(session: Session) -> Enrollment:
    enrollment = Enrollment(student="zoe", grade="B", course=Course(id=3, title="Latin"))
    session.add(enrollment)
    return enrollment


def _typed(session: Session) -> Typed:
    typed = Typed(
        id=1,
        mood=Mood.CALM,
        doc={"a": [1, "two"], "b": None},
        numbers=[1, 2, 3],
        blob=b"\x00\xffbytes",
        amount=decimal.Decimal("12.345"),
        span=dt.timedelta(days=2, seconds=5),
        token=uuid.UUID(int=7),
        label=" quiet ",
    )
    session.add(typed)
    return typed


def _change_typed(typed: Typed) -> None:
    typed.mood = Mood.STORMY
    typed.doc = {"a": [], "c": "x"}
    typed.numbers = [4]
    typed.blob = b"\x01"
    typed.amount = decimal.Decimal("-0.5")
    typed.span = dt.timedelta(hours=3)
    typed.token = uuid.UUID(int=8)
    typed.label = "loud"


def _release(session: Session) -> Release:
    release = Release(
        id=1,
        version="1.0",
        valid_from=dt.date(2024, 1, 1),
        valid_to=None,
        operation="ship",
        transaction_id=77,
        restored_from=None,
        retired_values="none",
    )
    session.add(release)
    return release


def _change_release(release: Release) -> None:
    release.version, release.valid_to, release.operation = "1.1", dt.date(2025, 1, 1), "patch"
    release.restored_from, release.transaction_id = "0.9", 78


def _read_release(row: Any) -> tuple[Any, ...]:
    names = ("id", "version", "valid_from", "valid_to", "operation", "transaction_id")
    return tuple(getattr(row, name) for name in (*names, "restored_from", "retired_values"))


def _named(*names: str) -> Callable[[Any], tuple[Any, ...]]:
    return lambda row: tuple(getattr(row, name) for name in names)


SHAPES = [
    Shape(
        "schema-qualified",
        Volume,
        _volume,
        lambda volume: setattr(volume, "title", "Emma"),
        _named("id", "title", "shelf_id"),
        lambda volume: volume.shelf.label,
    ),
    Shape(
        "joined-three-levels-single-below",
        Puppy,
        _puppy,
        _change_puppy,
        _named("id", "kind", "name", "fur", "breed", "puppy_teeth", "keeper_id"),
        lambda puppy: puppy.keeper.name,
        set_based=False,
    ),
    Shape(
        "column-names-and-properties",
        Alias,
        lambda session: _added(session, Alias(id=1, title="low", note="n1", length=3)),
        lambda alias: _set(alias, title="high", note=None, length=4),
        _named("id", "title", "note", "length"),
        lambda alias: alias.shout,
    ),
    Shape(
        "composite-string-uuid-key",
        Composite,
        lambda session: _added(session, Composite(code="a-1", token=uuid.UUID(int=3), amount=1)),
        lambda row: _set(row, amount=2),
        _named("code", "token", "amount"),
    ),
    Shape(
        "columns-named-like-the-library's",
        Release,
        _release,
        _change_release,
        _read_release,
    ),
    Shape(
        "chosen-history-table-name",
        TaskInstance,
        lambda session: _added(session, TaskInstance(id=1, state="queued")),
        lambda task: _set(task, state="running"),
        _named("id", "state"),
    ),
    Shape(
        "association-mapped-as-class",
        Enrollment,
        _enrollment,
        lambda enrollment: _set(enrollment, grade="A"),
        _named("course_id", "student", "grade"),
        lambda enrollment: [e.student for e in enrollment.course.enrollments],
    ),
    Shape(
        "column-types",
        Typed,
        _typed,
        _change_typed,
        _named("id", "mood", "doc", "numbers", "blob", "amount", "span", "token", "label"),
    ),
    Shape(
        "version-id-col",
        Counted,
        lambda session: _added(session, Counted(id=1, name="a")),
        lambda counted: _set(counted, name="b"),
        _named("id", "name", "revision"),
        # SQLAlchemy's counter: a row inserted again starts at 1, as any new row does
        restored=lambda state: (*state[:-1], 1),
    ),
]


def _added(session: Session, obj: Any) -> Any:
    session.add(obj)
    return obj


def _set(obj: Any, **values: Any) -> None:
    for name, value in values.items():
        setattr(obj, name, value)


@pytest.mark.parametrize("shape", SHAPES, ids=[shape.name for shape in SHAPES])
def test_a_row_of_each_shape_travels_in_time(
    session: Session, clock: FrozenClock, shape: Shape
) -> None:
    model = shape.model
    before = clock.now
    inserted = clock.advance(seconds=1)
    obj = shape.make(session)
    session.commit()
    key = inspect(obj).identity
    states: list[tuple[Any, ...] | None] = [shape.read(obj)]
    relations = [shape.related(obj) if shape.related else None]
    updated = clock.advance(seconds=1)
    shape.change(obj)
    session.commit()
    states.append(shape.read(obj))
    relations.append(shape.related(obj) if shape.related else None)
    deleted = clock.advance(seconds=1)
    session.delete(obj)
    session.commit()
    session.expunge_all()
    times = [before, inserted, updated, deleted]
    expected: list[tuple[Any, ...] | None] = [None, *states, None]

    for when, state in zip(times, expected, strict=True):
        found = session.scalars(query_as_of(model, when)).all()
        assert [shape.read(version) for version in found] == ([state] if state else [])
        with as_of(session, when) as past:
            then = past.get(model, key)
            assert (shape.read(then) if then is not None else None) == state
            if then is not None and shape.related is not None:
                assert shape.related(then) == relations[times.index(when) - 1]

    versions = history(session, model, key)
    operation = model.__history__.__chronicle_columns__.operation
    assert [getattr(v, operation) for v in versions] == ["insert", "update", "delete"]
    assert [shape.read(v) for v in versions] == [*states, states[-1]]

    restored = restore(session, model, key, as_of=updated)
    session.commit()
    assert restored is not None
    session.expunge_all()
    assert shape.read(session.get_one(model, key)) == shape.restored(states[-1])
    session.expunge_all()

    if shape.set_based:
        clock.advance(seconds=1)
        session.delete(session.get_one(model, key))
        session.commit()
        clock.advance(seconds=1)
        result = restore_all(session, model, as_of=inserted)
        session.commit()
        assert (result.inserted, result.updated, result.deleted) == (1, 0, 0)
        session.expunge_all()
        assert shape.read(session.get_one(model, key)) == states[0]


def test_the_history_table_takes_the_chosen_name_beside_the_application_table() -> None:
    assert TaskInstance.__history__.__table__.name == "task_instance_audit"  # type: ignore[attr-defined]
    assert TaskInstanceHistory.__table__.name == "task_instance_history"
    assert TaskInstance.__history__.__name__ == "TaskInstanceHistory"
    assert TaskInstance.__history__ is not TaskInstanceHistory


def test_library_columns_take_the_chosen_names(session: Session, clock: FrozenClock) -> None:
    history_table = Release.__history__.__table__  # type: ignore[attr-defined]
    assert "chronicle_version" in history_table.c["version"].name
    release = Release(id=1, version="1.0")
    session.add(release)
    session.commit()
    found = session.execute(
        select(Release.__history__.version, Release.__history__.chronicle_version)  # type: ignore[attr-defined]
    ).one()
    assert tuple(found) == ("1.0", 1)
    clock.advance(seconds=1)
    release.version = "1.1"
    session.commit()
    first, second = history(session, Release, 1)
    assert previous_version(session, second) is first
    assert next_version(session, first) is second
    assert previous_version(session, first) is None
    assert changes(first, second) == {"version": Change("1.0", "1.1")}
    assert "v1 insert" in repr(first)
    assert first.transaction.id == first.chronicle_transaction_id  # type: ignore[attr-defined]


def test_schema_qualified_history_lives_in_the_schema() -> None:
    assert Shelf.__history__.__table__.schema == Shelf.__table__.schema  # type: ignore[attr-defined]
    assert Animal.__history__.__table__.name == "animal_history"  # type: ignore[attr-defined]


def test_engine_has_every_shape(db: Engine) -> None:
    for shape in SHAPES:
        assert inspect(db).has_table(
            shape.model.__table__.name, schema=shape.model.__table__.schema
        )


# -- refused at class definition ----------------------------------------------------------------


@pytest.mark.parametrize("name", LIBRARY_COLUMNS)
def test_a_column_named_like_a_library_column_is_refused_naming_the_fix(name: str) -> None:
    class Other(DeclarativeBase):
        pass

    with pytest.raises(ConfigurationError, match=rf"configure\(columns=\{{'{name}'"):

        class Clash(Versioned, Other):
            __tablename__ = "clash"
            id: Mapped[int] = mapped_column(primary_key=True)
            value: Mapped[str | None] = mapped_column(name, String(10))


def test_an_attribute_or_an_excluded_column_named_like_a_library_column_is_refused() -> None:
    class Other(DeclarativeBase):
        pass

    with pytest.raises(ConfigurationError, match="an attribute named 'valid_to'"):

        class ByAttribute(Versioned, Other):
            __tablename__ = "by_attribute"
            id: Mapped[int] = mapped_column(primary_key=True)
            valid_to: Mapped[str | None] = mapped_column("ends", String(10))

    with pytest.raises(ConfigurationError, match="a column named 'operation'"):

        class Excluded(Versioned, Other):
            __tablename__ = "excluded"
            __versioned__ = {"exclude": ["operation"]}
            id: Mapped[int] = mapped_column(primary_key=True)
            operation: Mapped[str | None] = mapped_column(String(10))


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"revision": "x"}, r"unknown columns \['revision'\]"),
        ({"version": ""}, "non-empty string"),
        ({"version": 3}, "non-empty string"),
        ({"version": "valid_from"}, r"several library columns the name \['valid_from'\]"),
        (["version"], "takes a mapping"),
    ],
)
def test_bad_column_names_are_refused_and_change_nothing(columns: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        configure(columns=columns)
    with pytest.raises(ConfigurationError, match=message):

        class Other(DeclarativeBase):
            pass

        class Bad(Versioned, Other):
            __tablename__ = "bad"
            __versioned__ = {"columns": columns}
            id: Mapped[int] = mapped_column(primary_key=True)

    class Fine(DeclarativeBase):
        pass

    class Good(Versioned, Fine):
        __tablename__ = "good"
        id: Mapped[int] = mapped_column(primary_key=True)

    assert [c.name for c in Good.__history__.__table__.c][1:] == list(LIBRARY_COLUMNS)  # type: ignore[attr-defined]


def test_configured_names_apply_to_classes_declared_afterwards() -> None:
    class Other(DeclarativeBase):
        pass

    class Before(Versioned, Other):
        __tablename__ = "before"
        id: Mapped[int] = mapped_column(primary_key=True)

    configure(columns={"version": "revision_no", "valid_from": "since"})
    try:

        class After(Versioned, Other):
            __tablename__ = "after"
            __versioned__ = {"columns": {"valid_from": "starts"}}
            id: Mapped[int] = mapped_column(primary_key=True)
            version: Mapped[int]

    finally:
        configure(columns=None)
    assert {"version", "valid_from"} <= set(Before.__history__.__table__.c.keys())  # type: ignore[attr-defined]
    after = After.__history__.__table__  # type: ignore[attr-defined]
    assert (after.c["version"].name, after.c["valid_from"].name) == ("revision_no", "starts")
    assert after.c[f"{COPIED_PREFIX}version"].name == "version"
    assert After.__history__.version.property.columns == [after.c[f"{COPIED_PREFIX}version"]]
    assert After.__history__.revision_no.property.columns == [after.c["version"]]  # type: ignore[attr-defined]


def test_a_hierarchy_chooses_its_column_names_once() -> None:
    class Other(DeclarativeBase):
        pass

    class Parent(Versioned, Other):
        __tablename__ = "parent"
        __versioned__ = {"columns": {"version": "rev"}}
        id: Mapped[int] = mapped_column(primary_key=True)
        kind: Mapped[str] = mapped_column(String(10))
        __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "p"}

    with pytest.raises(ConfigurationError, match="chosen once per hierarchy"):

        class Child(Parent):
            __versioned__ = {"columns": {"version": "other"}}
            __mapper_args__ = {"polymorphic_identity": "c"}


def test_bad_history_table_names_are_refused() -> None:
    class Other(DeclarativeBase):
        pass

    class Parent(Versioned, Other):
        __tablename__ = "parent"
        id: Mapped[int] = mapped_column(primary_key=True)
        kind: Mapped[str] = mapped_column(String(10))
        __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "p"}

    with pytest.raises(ConfigurationError, match="single-table subclass shares"):

        class Single(Parent):
            __versioned__ = {"table": "single_history"}
            __mapper_args__ = {"polymorphic_identity": "s"}

    with pytest.raises(ConfigurationError, match="must be a non-empty table name"):

        class Unnamed(Versioned, Other):
            __tablename__ = "unnamed"
            __versioned__ = {"table": ""}
            id: Mapped[int] = mapped_column(primary_key=True)

    with pytest.raises(ConfigurationError, match=r"already has a table of that name; choose"):

        class Taken(Versioned, Other):
            __tablename__ = "taken"
            __versioned__ = {"table": "parent"}
            id: Mapped[int] = mapped_column(primary_key=True)


# -- association tables (secondary=) --------------------------------------------------------------


def test_links_through_an_association_table_have_a_past(
    session: Session, clock: FrozenClock
) -> None:
    """``team_member`` is versioned by itself: Member.teams goes through the Table object."""
    link = versioned_table(team_member)
    assert link.__history__.__table__.name == "team_member_history"  # type: ignore[attr-defined]
    Member.registry.configure()  # cascade=False: the link class's registry is not tied to it
    team_a, team_b = Team(id=1, name="a"), Team(id=2, name="b")
    t1 = clock.advance(seconds=1)
    member = Member(id=7, name="m", teams=[team_a])
    session.add_all([member, team_b])
    session.commit()
    t2 = clock.advance(seconds=1)
    member.teams = [team_b, team_a]
    session.commit()
    t3 = clock.advance(seconds=1)
    member.teams.remove(team_a)
    session.commit()
    t4 = clock.advance(seconds=1)
    session.delete(member)
    session.commit()
    session.expunge_all()

    expected = {t1: ["a"], t2: ["a", "b"], t3: ["b"], t4: None}
    for when, names in expected.items():
        with as_of(session, when) as past:
            then = past.get(Member, 7)
            assert ([team.name for team in then.teams] if then else None) == names
            joined = past.scalars(select(Team.name).join(Member.teams).order_by(Team.id)).all()
            assert joined == (names or [])

    operation = link.__history__.__chronicle_columns__.operation
    to_a = [getattr(v, operation) for v in history(session, link, (7, 1))]
    to_b = [getattr(v, operation) for v in history(session, link, (7, 2))]
    assert (to_a, to_b) == (["insert", "delete"], ["insert", "delete"])
    logged = session.execute(
        select(ChangeLog.event_type, ChangeLog.row_id)
        .where(ChangeLog.table_name == "team_member")
        .order_by(ChangeLog.id)
    ).all()
    assert [tuple(row) for row in logged] == [
        ("INSERT", format_row_id((7, 1))),
        ("INSERT", format_row_id((7, 2))),
        ("DELETE", format_row_id((7, 1))),
        ("DELETE", format_row_id((7, 2))),
    ]

    clock.advance(seconds=1)
    session.add(Member(id=7, name="back"))
    session.flush()
    assert restore_all(session, link, as_of=t2).inserted == 2  # the links, set-based
    session.commit()
    session.expunge_all()
    assert [team.name for team in session.get_one(Member, 7).teams] == ["a", "b"]
    to_a = [getattr(v, operation) for v in history(session, link, (7, 1))]
    assert to_a == ["insert", "delete", "restore"]


def test_an_association_table_the_library_cannot_see_is_warned_of() -> None:
    class Other(DeclarativeBase):
        pass

    class Left(Versioned, Other):
        __tablename__ = "left_side"
        id: Mapped[int] = mapped_column(primary_key=True)
        rights: Mapped[list[Right]] = relationship(secondary=lambda: pairing)

    class Right(Versioned, Other):
        __tablename__ = "right_side"
        id: Mapped[int] = mapped_column(primary_key=True)

    pairing = Table(
        "pairing",
        Other.metadata,
        Column("left_id", ForeignKey("left_side.id"), primary_key=True),
        Column("right_id", ForeignKey("right_side.id"), primary_key=True),
    )
    with pytest.warns(UnversionedTableWarning, match=r"Left.rights goes through .*'pairing'"):
        Other.registry.configure()
    assert "pairing_history" not in Other.metadata.tables
    versioned_table(pairing)
    assert "pairing_history" in Other.metadata.tables


def test_versioned_table_refuses_what_it_cannot_version() -> None:
    metadata = MetaData()
    keyless = Table("keyless", metadata, Column("a", Integer), Column("b", Integer))
    with pytest.raises(ConfigurationError, match="has no primary key"):
        versioned_table(keyless)
    with pytest.raises(ConfigurationError, match="takes a Table"):
        versioned_table("team_member")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="versioned already"):
        versioned_table(Enrollment.__table__)  # type: ignore[arg-type]
    assert versioned_table(team_member) is versioned_table(team_member)


def test_a_joined_hierarchy_with_renamed_library_columns(db: Engine, clock: FrozenClock) -> None:
    """Subclass tables three levels deep, their columns named like library columns renamed."""

    class Other(DeclarativeBase):
        pass

    class Doc(Versioned, Other):
        __tablename__ = "shape_doc"
        __versioned__ = {"columns": {"version": "rev", "valid_from": "since", "operation": "op"}}
        id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
        kind: Mapped[str] = mapped_column(String(10))
        operation: Mapped[str] = mapped_column(String(10))
        __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "doc"}

    class Memo(Doc):
        __tablename__ = "shape_memo"
        __versioned__ = {"table": "shape_memo_versions"}
        id: Mapped[int] = mapped_column(ForeignKey("shape_doc.id"), primary_key=True)
        version: Mapped[int]
        __mapper_args__ = {"polymorphic_identity": "memo"}

    class Note(Memo):
        __tablename__ = "shape_note"
        id: Mapped[int] = mapped_column(ForeignKey("shape_memo.id"), primary_key=True)
        valid_from: Mapped[str] = mapped_column(String(10))
        __mapper_args__ = {"polymorphic_identity": "note"}

    def read(row: Any) -> tuple[Any, ...]:
        return (row.id, row.operation, row.version, row.valid_from)

    memo_history = Memo.__history__.__table__  # type: ignore[attr-defined]
    assert (memo_history.name, memo_history.c["version"].name) == ("shape_memo_versions", "rev")

    Other.metadata.create_all(db)
    try:
        with Session(db) as session:
            times = [clock.now]
            times.append(clock.advance(seconds=1))
            note = Note(id=1, operation="o1", version=10, valid_from="vf1")
            session.add(note)
            session.commit()
            times.append(clock.advance(seconds=1))
            note.operation, note.version, note.valid_from = "o2", 11, "vf2"
            session.commit()
            times.append(clock.advance(seconds=1))
            session.delete(note)
            session.commit()
            states = [None, (1, "o1", 10, "vf1"), (1, "o2", 11, "vf2"), None]
            for when, state in zip(times, states, strict=True):
                found = session.scalars(query_as_of(Note, when)).all()
                assert [read(row) for row in found] == ([state] if state else [])
                with as_of(session, when) as past:
                    then = past.get(Note, 1)
                    assert (read(then) if then else None) == state
            versions = history(session, Note, 1)
            assert [(v.rev, v.op, v.version) for v in versions] == [  # type: ignore[attr-defined]
                (1, "insert", 10),
                (2, "update", 11),
                (3, "delete", 11),
            ]
            assert [v.since for v in versions] == times[1:]  # type: ignore[attr-defined]
            clock.advance(seconds=1)
            restore(session, Note, 1, as_of=times[2])
            session.commit()
            session.expunge_all()
            assert read(session.get_one(Note, 1)) == states[2]
    finally:
        ours = [table for table in Other.metadata.sorted_tables if table.name.startswith("shape_")]
        Other.metadata.drop_all(db, tables=ours)


def test_core_statements_on_an_association_table_through_the_session_are_versioned(
    session: Session, clock: FrozenClock
) -> None:
    """``insert(team_member)`` and ``delete(team_member)``: the table has no class of the
    application's to write it through, so its Core statements are versioned."""
    link = versioned_table(team_member)
    session.add_all([Member(id=1, name="m"), Team(id=1, name="a"), Team(id=2, name="b")])
    session.commit()
    clock.advance(seconds=1)
    session.execute(insert(team_member).values(member_id=1, team_id=1))
    session.execute(insert(team_member), [{"member_id": 1, "team_id": 2}])
    session.commit()
    clock.advance(seconds=1)
    session.execute(delete(team_member).where(team_member.c.team_id == 1))
    session.commit()
    to_a = [v.operation for v in history(session, link, (1, 1))]
    to_b = [v.operation for v in history(session, link, (1, 2))]
    assert (to_a, to_b) == (["insert", "delete"], ["insert"])


def test_the_history_viewer_reads_renamed_library_columns(
    session: Session, clock: FrozenClock
) -> None:
    from sqlalchemy_chronicle.viewer.core import HistoryViewer

    release = Release(id=1, version="1.0", operation="ship")
    session.add(release)
    session.commit()
    shipped = clock.now
    clock.advance(seconds=1)
    release.version = "1.1"
    session.commit()
    viewer = HistoryViewer([Release], page_size=10)
    page = viewer.timeline(session, Release, (1,))
    assert [(e.version, e.operation, e.changed) for e in page.entries] == [
        (2, "update", ("version",)),
        (1, "insert", ("id", "version", "operation")),
    ]
    assert (page.latest, page.deleted) == (2, False)
    then = viewer.as_of(session, Release, (1,), shipped)
    assert dict(then.values)["version"] == "1.0"
    assert [
        (f.name, f.old, f.new)
        for f in viewer.diff(session, Release, (1,), 1, 2).fields
        if f.changed
    ] == [("version", "1.0", "1.1")]
