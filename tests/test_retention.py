"""Retention: pruning keeps every answer at or after the horizon and refuses the ones before it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, Integer, String, event, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sqlalchemy_chronicle import (
    ChangeLog,
    ConfigurationError,
    HistoryPrunedError,
    Horizon,
    InvalidTimeError,
    LedgerEntry,
    NotVersionedError,
    NoVersionAt,
    PruneResult,
    Versioned,
    apply_retention,
    as_of,
    changelog_between,
    changelog_for,
    history,
    previous_version,
    prune_history,
    query_as_of,
    restore,
    restore_all,
    seal_history,
    verify_history,
)

from .conftest import _clear
from .models import Article, Base, Car, Tag
from .support import FrozenClock

TICK = dt.timedelta(microseconds=1)


class Kept(Versioned, Base):
    """A class with a retention policy."""

    __tablename__ = "retention_kept"
    __versioned__ = {"retain": dt.timedelta(days=30)}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(50))


def count(session: Session, entity: Any) -> int:
    return session.scalar(select(func.count()).select_from(entity)) or 0


# -- the property: every answer at or after the horizon is kept --------------------------------

ROW_IDS = st.integers(1, 3)
OPERATIONS = st.lists(
    st.tuples(ROW_IDS, st.one_of(st.none(), st.sampled_from(["a", "b", "c"]))),
    min_size=1,
    max_size=3,
)
TRANSACTIONS = st.lists(OPERATIONS, min_size=1, max_size=8)
_EXAMPLES = min(settings.default.max_examples, 25)


def _titles(session: Session, when: Any) -> dict[int, str]:
    return {v.id: v.title for v in session.scalars(query_as_of(Article, when))}


@settings(
    parent=settings.default,
    max_examples=_EXAMPLES,
    suppress_health_check=[
        *settings.default.suppress_health_check,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(transactions=TRANSACTIONS, data=st.data())
def test_pruning_keeps_every_answer_at_or_after_the_horizon(
    db: Engine, clock: FrozenClock, transactions: list[Any], data: st.DataObject
) -> None:
    _clear(db)
    world: dict[int, str] = {}
    timeline: list[tuple[Any, dict[int, str]]] = []
    with Session(db) as session:
        for operations in transactions:
            clock.advance(seconds=1)
            for row_id, title in operations:
                row = session.get(Article, row_id)
                if title is None and row is not None:
                    session.delete(row)
                    world.pop(row_id)
                elif title is not None and row is None:
                    session.add(Article(id=row_id, title=title))
                    world[row_id] = title
                elif title is not None and row is not None:
                    row.title = title
                    world[row_id] = title
                session.flush()
            session.commit()
            timeline.append((clock.now, dict(world)))

    clock.advance(seconds=1)
    times = [t + delta for t, _ in timeline for delta in (-TICK, dt.timedelta(0), TICK)]
    horizon = data.draw(st.sampled_from(times), label="horizon")
    batch_size = data.draw(st.integers(1, 4), label="batch_size")

    def expected(when: Any) -> dict[int, str]:
        state: dict[int, str] = {}
        for committed_at, world_then in timeline:
            if committed_at <= when:
                state = world_then
        return state

    restore_times = data.draw(
        st.lists(st.sampled_from([t for t in times if t >= horizon]), max_size=2), label="restores"
    )

    def restores(session: Session) -> list[Any]:
        """What restoring the table to each of ``restore_times`` does; nothing is kept."""
        outcomes: list[Any] = []
        for when in restore_times:
            try:
                outcomes.append(restore_all(session, Article, as_of=when))
            except NoVersionAt as error:
                outcomes.append(type(error))
            session.rollback()
        return outcomes

    with Session(db) as session:
        seal_history(session, [Article])
        session.commit()
        restored_before = restores(session)
        HistoryClass = Article.__history__
        versions = [(v.id, v.version, v.valid_to) for v in session.scalars(select(HistoryClass))]
        kept = {(i, n) for i, n, end in versions if end is None or end > horizon}
        calls: list[tuple[int, int]] = []
        result = prune_history(
            session,
            horizon,
            classes=[Article],
            batch_size=batch_size,
            progress=lambda done, total: calls.append((done, total)),
        )
        assert result.versions == len(versions) - len(kept)
        assert {(v.id, v.version) for v in session.scalars(select(HistoryClass))} == kept
        if calls:
            assert [done for done, _ in calls] == sorted({done for done, _ in calls})
            assert calls[-1][0] == calls[-1][1] == result.versions + result.changelog
        assert (
            session.scalar(
                select(func.max(ChangeLog.timestamp)).where(ChangeLog.timestamp < horizon)
            )
            is None
        )
        assert verify_history(session, [Article]).findings == []
        assert restores(session) == restored_before

        for when in [t for t in times if t >= horizon] + [clock.now.add(days=1)]:
            assert _titles(session, when) == expected(when), when
            with as_of(session, when) as past:
                found = {a.id: a.title for a in past.scalars(select(Article))}
                assert found == expected(when), when
        if not versions:  # a table without history gets no horizon: nothing was pruned
            assert result.horizons == {}
            assert all(_titles(session, when) == {} for when in times)
            return
        for when in [t for t in times if t < horizon]:
            with pytest.raises(HistoryPrunedError) as raised:
                _titles(session, when)
            assert raised.value.horizon == horizon and raised.value.table == "article"
            with as_of(session, when) as past, pytest.raises(HistoryPrunedError):
                past.get(Article, 1)
            with pytest.raises(HistoryPrunedError):
                restore_all(session, Article, as_of=when)
        for row_id in (1, 2, 3):
            try:
                found_versions = history(session, Article, row_id)
            except HistoryPrunedError:
                continue
            assert found_versions and found_versions[0].version == 1


# -- what pruning refuses, records and keeps --------------------------------------------------


def _three_versions(session: Session, clock: FrozenClock) -> list[Any]:
    """Article 1 in three versions and article 2 deleted; the times of the commits."""
    times = [clock.now]
    session.add_all([Article(id=1, title="a"), Article(id=2, title="x")])
    session.commit()
    times.append(clock.advance(minutes=1))
    session.get(Article, 1).title = "b"
    session.commit()
    times.append(clock.advance(minutes=1))
    session.get(Article, 1).title = "c"
    session.delete(session.get(Article, 2))
    session.commit()
    times.append(clock.advance(minutes=1))
    return times


def test_reads_before_the_horizon_name_it(session: Session, clock: FrozenClock) -> None:
    t0, t1, t2, _ = _three_versions(session, clock)
    prune_history(session, t2, classes=[Article])
    assert session.get(Horizon, "article").horizon == t2
    with pytest.raises(HistoryPrunedError, match="pruned before 2030-01-01T00:02:00"):
        session.scalars(query_as_of(Article, t1)).all()
    with pytest.raises(HistoryPrunedError, match="first versions"):
        history(session, Article, 1)
    with pytest.raises(HistoryPrunedError, match="every version"):
        history(session, Article, 2)  # deleted before the horizon: gone entirely
    with pytest.raises(HistoryPrunedError):
        restore(session, Article, 1, as_of=t0)
    (first_left,) = session.scalars(select(Article.__history__).where(Article.__history__.id == 1))
    with pytest.raises(HistoryPrunedError):
        previous_version(session, first_left)
    assert restore(session, Article, 1, as_of=t2).title == "c"
    assert [v.title for v in session.scalars(query_as_of(Article, t2))] == ["c"]
    # Other tables are not affected.
    session.add(Tag(owner="o", code=1, label="l"))
    session.commit()
    assert session.scalars(query_as_of(Tag, t0)).all() == []


def test_pruned_at_is_the_library_clocks_time(session: Session, clock: FrozenClock) -> None:
    """The horizon records when it was pruned by the configured clock, as every stamp is."""
    _, t1, t2, _ = _three_versions(session, clock)
    pruned = clock.advance(days=2)
    prune_history(session, t1, classes=[Article])
    assert session.get(Horizon, "article").pruned_at == pruned
    moved = clock.advance(days=1)
    prune_history(session, t2, classes=[Article])
    session.expire_all()
    assert session.get(Horizon, "article").pruned_at == moved


@pytest.mark.parametrize("keep_changelog", [False, True])
def test_changelog_between_refuses_a_range_from_before_the_horizon(
    session: Session, clock: FrozenClock, keep_changelog: bool
) -> None:
    """As every read of the time before a horizon, whether or not the entries were kept."""
    t0, t1, t2, t3 = _three_versions(session, clock)
    prune_history(session, t2, classes=[Article], keep_changelog=keep_changelog)
    for target in (Article, "article"):
        with pytest.raises(HistoryPrunedError, match="pruned before 2030-01-01T00:02:00") as error:
            session.scalars(changelog_between(target, t0, t3)).all()
        assert (error.value.table, error.value.horizon) == ("article", t2)
        with pytest.raises(HistoryPrunedError):
            session.scalars(changelog_between(target, t1, t2)).all()
        entries = session.scalars(changelog_between(target, t2, t3)).all()
        assert sorted((e.row_id, e.event_type) for e in entries) == [
            ("1", "UPDATE"),
            ("2", "DELETE"),
        ]
    session.add(Tag(owner="o", code=1, label="l"))
    session.commit()
    assert len(session.scalars(changelog_between(Tag, t0, clock.advance(days=1))).all()) == 1
    kept = session.scalars(changelog_for(Article, 1)).all()  # asks about no time
    assert len(kept) == (3 if keep_changelog else 1)


def test_an_earlier_horizon_changes_nothing(session: Session, clock: FrozenClock) -> None:
    _, t1, t2, _ = _three_versions(session, clock)
    prune_history(session, t2, classes=[Article])
    again = prune_history(session, t1, classes=["article"])
    assert again.horizons == {"article": t2}
    assert (again.versions, again.changelog) == (0, 0)
    assert session.get(Horizon, "article").horizon == t2


def test_dry_run_counts_and_changes_nothing(session: Session, clock: FrozenClock) -> None:
    _, _, t2, _ = _three_versions(session, clock)
    before = count(session, Article.__history__), count(session, ChangeLog)
    result = prune_history(session, t2, classes=[Article], dry_run=True)
    assert result == PruneResult({"article": t2}, 4, 3, 0, dry_run=True)
    assert (count(session, Article.__history__), count(session, ChangeLog)) == before
    assert session.get(Horizon, "article") is None
    assert prune_history(session, t2, classes=[Article]).versions == 4


def test_keep_changelog(session: Session, clock: FrozenClock) -> None:
    _, _, t2, _ = _three_versions(session, clock)
    entries = count(session, ChangeLog)
    result = prune_history(session, t2, classes=[Article], keep_changelog=True)
    assert result.changelog == 0 and count(session, ChangeLog) == entries


def test_joined_inheritance_prunes_both_tables(session: Session, clock: FrozenClock) -> None:
    session.add(Car(id=1, name="car", doors=3))
    session.commit()
    clock.advance(minutes=1)
    session.get(Car, 1).doors = 5
    session.commit()
    horizon = clock.advance(minutes=1)
    result = prune_history(session, horizon, classes=[Car])
    assert result.versions == 1
    car_history = Car.__history__.__table__
    assert count(session, car_history) == 1
    assert [(c.doors, c.version) for c in session.scalars(query_as_of(Car, horizon))] == [(5, 2)]


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"batch_size": 0}, ConfigurationError),
        ({"batch_size": True}, ConfigurationError),
        ({"classes": ["no_such_table"]}, ConfigurationError),
        ({"classes": [int]}, NotVersionedError),
    ],
    ids=repr,
)
def test_bad_arguments_change_nothing(
    session: Session, clock: FrozenClock, arguments: dict[str, Any], error: type[Exception]
) -> None:
    _, _, t2, _ = _three_versions(session, clock)
    with pytest.raises(error):
        prune_history(session, t2, **{"classes": [Article], **arguments})
    assert count(session, Article.__history__) == 5
    with pytest.raises(InvalidTimeError):
        prune_history(session, "yesterday", classes=[Article])
    with pytest.raises(ConfigurationError, match="later than now"):
        prune_history(session, clock.now + TICK, classes=[Article])
    session.add(Article(id=9, title="pending"))
    with pytest.raises(ConfigurationError, match="pending"):
        prune_history(session, t2, classes=[Article])
    session.rollback()
    assert count(session, Article.__history__) == 5
    assert session.get(Horizon, "article") is None


def test_a_failed_batch_leaves_the_database_as_before_it(
    db: Engine, session: Session, clock: FrozenClock
) -> None:
    _, _, t2, _ = _three_versions(session, clock)
    seal_history(session, [Article])
    session.commit()
    before = {(v.id, v.version) for v in session.scalars(select(Article.__history__))}
    ledger_deletes = 0

    def fail_in_second_batch(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        nonlocal ledger_deletes
        if sql.startswith("DELETE FROM chronicle_ledger"):
            ledger_deletes += 1
            if ledger_deletes == 2:
                raise RuntimeError("the database went away")

    event.listen(db, "before_cursor_execute", fail_in_second_batch)
    try:
        with pytest.raises(RuntimeError, match="went away"):
            prune_history(session, t2, classes=[Article], batch_size=1)
    finally:
        event.remove(db, "before_cursor_execute", fail_in_second_batch)
    after = {(v.id, v.version) for v in session.scalars(select(Article.__history__))}
    assert len(before - after) == 1 and after < before  # the first batch only
    assert session.get(Horizon, "article").horizon == t2  # recorded before any batch
    sealed = select(func.count()).where(LedgerEntry.table_name == "article")
    assert session.scalar(sealed) == len(after)
    assert verify_history(session, [Article]).ok
    result = prune_history(session, t2, classes=[Article], batch_size=1)
    assert result.versions == 3
    assert verify_history(session, [Article]).ok


# -- the retention policy ---------------------------------------------------------------------


def test_apply_retention_prunes_to_now_minus_retain(session: Session, clock: FrozenClock) -> None:
    session.add(Kept(id=1, name="a"))
    session.commit()
    clock.advance(days=10)
    session.get(Kept, 1).name = "b"
    session.commit()
    clock.advance(days=40)
    session.get(Kept, 1).name = "c"
    session.commit()
    clock.advance(days=10)
    result = apply_retention(session)
    assert result.horizons == {"retention_kept": clock.now - dt.timedelta(days=30)}
    assert result.versions == 1
    assert [v.name for v in session.scalars(select(Kept.__history__))] == ["b", "c"]


@pytest.mark.parametrize(
    "retain",
    [5, "30 days", dt.timedelta(0), -dt.timedelta(days=1)],
    ids=repr,
)
def test_retain_is_checked_when_the_class_is_declared(retain: Any) -> None:
    class Other(DeclarativeBase):
        pass

    with pytest.raises(ConfigurationError, match="retain"):

        class Bad(Versioned, Other):
            __tablename__ = "bad_retain"
            __versioned__ = {"retain": retain}
            id: Mapped[int] = mapped_column(primary_key=True)


def test_restores_after_the_horizon_answer_as_before(session: Session, clock: FrozenClock) -> None:
    """A row deleted before the horizon and inserted again after it: gone then, known to be."""
    session.add_all([Article(id=1, title="a"), Article(id=2, title="x")])
    session.commit()
    clock.advance(minutes=1)
    session.delete(session.get_one(Article, 1))
    session.commit()
    horizon = clock.advance(minutes=1)
    clock.advance(minutes=1)
    session.get_one(Article, 2).title = "y"
    session.commit()
    clock.advance(minutes=1)
    session.add(Article(id=1, title="back"))
    session.commit()
    clock.advance(minutes=1)
    with pytest.raises(NoVersionAt, match="allow_delete"):
        restore(session, Article, 1, as_of=horizon)
    session.rollback()

    prune_history(session, horizon, classes=[Article])
    assert [v.version for v in session.scalars(select(Article.__history__).filter_by(id=1))] == [3]
    with pytest.raises(NoVersionAt, match="allow_delete"):
        restore(session, Article, 1, as_of=horizon)
    assert restore(session, Article, 1, as_of=horizon, allow_delete=True) is None
    session.rollback()
    result = restore_all(session, Article, as_of=horizon)
    assert (result.deleted, result.updated) == (1, 1)
    assert [(a.id, a.title) for a in session.scalars(select(Article))] == [(2, "x")]


def test_a_table_whose_history_left_begins_after_the_horizon(
    session: Session, clock: FrozenClock
) -> None:
    session.add(Article(id=1, title="a"))
    session.commit()
    clock.advance(minutes=1)
    session.delete(session.get_one(Article, 1))
    session.commit()
    horizon = clock.advance(minutes=1)
    clock.advance(minutes=1)
    session.add(Article(id=1, title="back"))
    session.commit()
    clock.advance(minutes=1)
    prune_history(session, horizon, classes=[Article])
    result = restore_all(session, Article, as_of=horizon)
    assert (result.deleted, result.inserted, result.updated) == (1, 0, 0)
    assert session.scalars(select(Article)).all() == []
