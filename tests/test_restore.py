"""Restore: rows and tables put back to a time, as new versions that the history keeps.

A model-based test drives random change sequences under the frozen clock, then restores random
rows (by time, by version) and whole tables (all rows, or a selection) to random times, and
checks the live state against the model and the history against the rules. The edges follow:
un-delete, a reused primary key, related rows, constraints, excluded columns, inheritance,
composite keys, bad input, and the statement count of a large restore_all().
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, func, insert, select
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import (
    ChangeLog,
    ConfigurationError,
    InvalidKeyError,
    InvalidTimeError,
    NotVersionedError,
    NoVersionAt,
    RestoreConflictError,
    RestoreResult,
    Transaction,
    UnsupportedStatementError,
    history,
    restore,
    restore_all,
)
from sqlalchemy_chronicle.write import sql as chronicle_sql

from .models import Article, Base, Car, Employee, Manager, Note, Tag, Vehicle
from .models_travel import Order, OrderLine, Product
from .support import START, FrozenClock, StatementCounter, assert_well_formed, attach_schema

History = Article.__history__
IDS = (1, 2, 3, 4)
State = dict[int, tuple[str, str | None]]

STEP = st.tuples(
    st.sampled_from(["insert", "update", "delete"]),
    st.sampled_from(IDS),
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from([None, "x"]),
    st.sampled_from([None, "h1", "h2"]),
)
TRANSACTIONS = st.lists(st.lists(STEP, min_size=1, max_size=3), min_size=1, max_size=6)
MODES = ["all", "all_title", "all_ids", "key", "version"]
RESTORE = st.tuples(st.integers(0, 1000), st.booleans(), st.sampled_from(IDS))
FOLLOW_UPS = st.lists(st.tuples(st.sampled_from(MODES), RESTORE), max_size=1)


def clear(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in (ChangeLog.__table__, Transaction.__table__, History.__table__):
            connection.execute(table.delete())
        connection.execute(Article.__table__.delete())


def live(session: Session) -> dict[int, tuple[str, str | None, str | None]]:
    rows = session.execute(select(Article.id, Article.title, Article.body, Article.cached_html))
    return {row.id: (row.title, row.body, row.cached_html) for row in rows}


def raw_history(session: Session) -> list[Any]:
    return list(
        session.execute(
            select(
                History.id,
                History.version,
                History.operation,
                History.title,
                History.body,
                History.valid_from,
                History.valid_to,
                History.restored_from,
                History.transaction_id,
            ).order_by(History.id, History.version)
        )
    )


def current_at(rows: list[Any], id: int, when: dt.datetime) -> Any | None:
    """The version of row ``id`` whose interval holds ``when``, read from raw history rows."""
    for row in rows:
        if row.id != id or row.operation == "delete" or row.valid_from > when:
            continue
        if row.valid_to is None or row.valid_to > when:
            return row
    return None


def state_at(states: list[tuple[dt.datetime, State]], when: dt.datetime) -> State:
    found: State = {}
    for at, state in states:
        if at <= when:
            found = state
    return found


def apply(session: Session, state: State, cached: dict[int, str | None], step: tuple) -> None:
    kind, id, title, body, html = step
    obj = session.get(Article, id)
    if kind == "insert" and obj is None:
        session.add(Article(id=id, title=title, body=body, cached_html=html))
        state[id], cached[id] = (title, body), html
    elif kind == "update" and obj is not None:
        obj.title, obj.body, obj.cached_html = title, body, html
        state[id], cached[id] = (title, body), html
    elif kind == "delete" and obj is not None:
        session.delete(obj)
        del state[id], cached[id]
    session.flush()


@pytest.mark.parametrize("mode", MODES)
def test_restores_follow_the_model(db: Engine, clock: FrozenClock, mode: str) -> None:
    """Restore ``mode`` first (all rows, rows by title, rows by id, one row by time, one row to a
    version), then maybe another restore of any kind."""

    @settings(settings(), max_examples=min(settings().max_examples, 25))
    @given(transactions=TRANSACTIONS, first=RESTORE, follow_ups=FOLLOW_UPS)
    def check(
        transactions: list[list[tuple]],
        first: tuple[int, bool, int],
        follow_ups: list[tuple[str, tuple[int, bool, int]]],
    ) -> None:
        clear(db)
        clock.now = START
        with Session(db) as session:
            state: State = {}
            cached: dict[int, str | None] = {}
            states: list[tuple[dt.datetime, State]] = []
            for steps in transactions:
                for step in steps:
                    apply(session, state, cached, step)
                session.commit()
                states.append((clock.now, dict(state)))
                clock.advance(seconds=1)
            for kind, (pick, between, id) in [(mode, first), *follow_ups]:
                run_restore(session, clock, states, cached, kind, pick, between, id)

    check()


def run_restore(
    session: Session,
    clock: FrozenClock,
    states: list[tuple[dt.datetime, State]],
    cached: dict[int, str | None],
    mode: str,
    pick: int,
    between: bool,
    id: int,
) -> None:
    before_history = raw_history(session)
    before = live(session)
    index = pick % (len(states) + 1)
    if index == len(states):
        when = states[0][0] - dt.timedelta(seconds=1)
    else:
        when = states[index][0] + dt.timedelta(milliseconds=500 if between else 0)
    then = state_at(states, when)
    for key, values in then.items():  # the model and the history agree
        version = current_at(before_history, key, when)
        assert version is not None and (version.title, version.body) == values
    start = min((row.valid_from for row in before_history), default=None)
    version_of: dict[int, int] = {}
    expected = {key: values[:2] for key, values in before.items()}
    if mode in ("all", "all_title", "all_ids"):
        where = {"all": None, "all_title": Article.title == "a", "all_ids": Article.id <= 2}[mode]
        if start is None or when < start:
            with pytest.raises(NoVersionAt):
                restore_all(session, Article, as_of=when, where=where)
            return
        selected = set(then) | set(before)
        if mode == "all_title":  # matching now, or matching then
            selected = {k for k, v in then.items() if v[0] == "a"}
            selected |= {k for k, v in before.items() if v[0] == "a"}
        elif mode == "all_ids":
            selected = {k for k in selected if k <= 2}
        result = restore_all(session, Article, as_of=when, where=where)
        assert isinstance(result, RestoreResult)
        for key in selected:
            if key in then:
                expected[key] = then[key]
                version_of[key] = current_at(before_history, key, when).version
            else:
                expected.pop(key, None)
    elif mode == "key":
        if not any(row.id == id for row in before_history):
            with pytest.raises(NoVersionAt):
                restore(session, Article, id, as_of=when, allow_delete=True)
            return
        obj = restore(session, Article, id, as_of=when, allow_delete=True)
        if id in then:
            assert obj is not None and (obj.title, obj.body) == then[id]
            expected[id] = then[id]
            version_of[id] = current_at(before_history, id, when).version
        else:
            assert obj is None
            expected.pop(id, None)
    else:
        mine = [row for row in before_history if row.id == id]
        if not mine:
            return
        row = mine[pick % len(mine)]
        version = session.get(History, (row.id, row.version))
        assert version is not None
        obj = restore(session, version, allow_delete=True)
        if row.operation == "delete":
            assert obj is None
            expected.pop(id, None)
        else:
            assert obj is not None
            expected[id] = (row.title, row.body)
            version_of[id] = row.version
    session.commit()
    restored_at = clock.now
    clock.advance(seconds=1)

    after = live(session)
    assert {k: v[:2] for k, v in after.items()} == expected
    for key, values in after.items():  # excluded columns keep their values, or start empty
        assert values[2] == (before[key][2] if key in before else None)
    cached.clear()
    cached.update({k: v[2] for k, v in after.items()})

    after_history = raw_history(session)
    assert_well_formed(
        [(r.id, r.version, r.operation, r.valid_from, r.valid_to) for r in after_history]
    )
    changed = {
        k for k in set(before) | set(after) if before.get(k, (0,))[:2] != after.get(k, (0,))[:2]
    }
    log = {
        int(entry.row_id): entry.event_type
        for entry in session.scalars(select(ChangeLog).where(ChangeLog.timestamp == restored_at))
    }
    for key in IDS:
        old = [r for r in before_history if r.id == key]
        new = [r for r in after_history if r.id == key]
        if key not in changed:
            assert new == old, key
            continue
        assert len(new) == len(old) + 1, (key, old, new)
        assert new[: len(old) - 1] == old[:-1]  # history is not rewritten, only closed
        if old:
            assert new[len(old) - 1][:6] == old[-1][:6]
        last = new[-1]
        assert last.valid_from == restored_at
        if key in after:
            assert (last.operation, last.restored_from) == ("restore", version_of[key])
            assert log[key] == "RESTORE"
        else:
            assert last.operation == "delete"
            assert log[key] == "DELETE"
    assert set(log) == changed
    states.append((restored_at, {k: v[:2] for k, v in after.items()}))


# -- one row ---------------------------------------------------------------------------------


def test_undelete(session: Session, clock: FrozenClock) -> None:
    session.add(Article(id=1, title="kept", body="text", slug="s1"))
    session.commit()
    t0 = clock.now
    clock.advance(seconds=1)
    session.delete(session.get(Article, 1))
    session.commit()
    clock.advance(seconds=1)
    first, marker = history(session, Article, 1)
    with pytest.raises(NoVersionAt, match="delete marker"):
        restore(session, marker)
    article = restore(session, first)
    session.commit()
    assert (article.id, article.title, article.body, article.slug) == (1, "kept", "text", "s1")
    versions = history(session, Article, 1)
    assert [(v.version, v.operation, v.restored_from) for v in versions] == [
        (1, "insert", None),
        (2, "delete", None),
        (3, "restore", 1),
    ]
    assert versions[2].valid_from == clock.now and versions[2].valid_to is None
    assert versions[1].valid_to == versions[1].valid_from == t0 + dt.timedelta(seconds=1)
    entry = session.scalars(
        select(ChangeLog).where(ChangeLog.row_id == "1").order_by(ChangeLog.id)
    ).all()[-1]
    assert entry.event_type == "RESTORE"


def test_restore_across_a_reused_primary_key(session: Session, clock: FrozenClock) -> None:
    session.add(Article(id=1, title="first life"))
    session.commit()
    t0 = clock.now
    clock.advance(seconds=1)
    session.delete(session.get(Article, 1))
    session.commit()
    clock.advance(seconds=1)
    session.add(Article(id=1, title="second life"))
    session.commit()
    clock.advance(seconds=1)
    article = restore(session, Article, 1, as_of=t0)
    session.commit()
    assert article is session.get(Article, 1)
    assert article.title == "first life"
    assert [(v.operation, v.restored_from, v.title) for v in history(session, Article, 1)] == [
        ("insert", None, "first life"),
        ("delete", None, "first life"),
        ("insert", None, "second life"),
        ("restore", 1, "first life"),
    ]
    # between the lives the row did not exist: restoring to then deletes it, when asked
    gap = t0 + dt.timedelta(milliseconds=1500)
    with pytest.raises(NoVersionAt, match="had been deleted"):
        restore(session, Article, 1, as_of=gap)
    assert restore(session, Article, 1, as_of=gap, allow_delete=True) is None
    session.commit()
    assert session.get(Article, 1) is None
    assert history(session, Article, 1)[-1].operation == "delete"


def test_excluded_columns_keep_their_values(session: Session, clock: FrozenClock) -> None:
    session.add(Article(id=1, title="a", cached_html="<p>a</p>"))
    session.commit()
    first = history(session, Article, 1)[0]
    clock.advance(seconds=1)
    article = session.get(Article, 1)
    article.title, article.cached_html = "b", "<p>b</p>"
    session.commit()
    clock.advance(seconds=1)
    restore(session, first)
    session.commit()
    assert (article.title, article.cached_html) == ("a", "<p>b</p>")


def test_a_restore_that_changes_nothing_writes_nothing(
    session: Session, clock: FrozenClock
) -> None:
    session.add(Article(id=1, title="a"))
    session.commit()
    clock.advance(seconds=1)
    (only,) = history(session, Article, 1)
    assert restore(session, only) is session.get(Article, 1)
    result = restore_all(session, Article, as_of=clock.now)
    session.commit()
    assert result == RestoreResult(inserted=0, updated=0, deleted=0, unchanged=1)
    assert len(history(session, Article, 1)) == 1
    assert session.scalar(select(func.count()).select_from(Transaction)) == 1


def test_restore_in_the_same_transaction_undoes_the_change(
    session: Session, clock: FrozenClock
) -> None:
    session.add(Article(id=1, title="a"))
    session.commit()
    clock.advance(seconds=1)
    (first,) = history(session, Article, 1)
    session.get(Article, 1).title = "oops"
    session.flush()
    restore(session, first)
    session.commit()
    assert session.get(Article, 1).title == "a"
    assert [v.operation for v in history(session, Article, 1)] == ["insert"]


def test_the_objects_of_the_session_show_the_restored_rows(
    session: Session, clock: FrozenClock
) -> None:
    session.add_all([Article(id=1, title="a"), Article(id=2, title="a")])
    session.commit()
    t0 = clock.now
    clock.advance(seconds=1)
    one, two = session.get(Article, 1), session.get(Article, 2)
    one.title = "b"
    session.add(Article(id=3, title="new"))
    session.commit()
    clock.advance(seconds=1)
    three = session.get(Article, 3)
    assert one.title == "b"
    restore_all(session, Article, as_of=t0)
    assert one.title == "a" and two.title == "a"
    assert three not in session
    assert session.get(Article, 3) is None


# -- related rows ----------------------------------------------------------------------------


def shop(session: Session, clock: FrozenClock) -> dt.datetime:
    """Two products, order 1 with lines 1-2, order 2 with line 3; then a day of changes."""
    session.add_all([Product(id=1, name="pen", price=100), Product(id=2, name="ink", price=50)])
    session.add_all([Order(id=1, status="new"), Order(id=2, status="new")])
    session.flush()
    session.add_all(
        [
            OrderLine(id=1, order_id=1, product_id=1, quantity=2),
            OrderLine(id=2, order_id=1, product_id=2, quantity=1),
            OrderLine(id=3, order_id=2, product_id=1, quantity=5),
        ]
    )
    session.commit()
    t0 = clock.now
    clock.advance(seconds=1)
    order = session.get(Order, 1)
    order.status = "paid"
    order.lines[0].quantity = 7
    order.lines.remove(order.lines[1])  # delete-orphan
    order.lines.append(OrderLine(id=4, product_id=2, quantity=9))
    session.get(OrderLine, 3).order_id = 1  # moved to order 1
    session.get(Product, 1).price = 120
    session.commit()
    clock.advance(seconds=1)
    return t0


def lines(session: Session) -> list[tuple[int, int, int, int]]:
    query = select(OrderLine.id, OrderLine.order_id, OrderLine.product_id, OrderLine.quantity)
    return [tuple(row) for row in session.execute(query.order_by(OrderLine.id))]


@pytest.mark.parametrize(
    "include",
    [[Order.lines, (Order.lines, OrderLine.product)], ["lines.product"]],
    ids=["attributes", "dotted"],
)
def test_restore_an_order_with_its_lines_and_their_products(
    session: Session, clock: FrozenClock, include: list[Any]
) -> None:
    t0 = shop(session, clock)
    order = restore(session, Order, 1, as_of=t0, include=include)
    session.commit()
    assert order.status == "new"
    assert [line.id for line in order.lines] == [1, 2]
    assert lines(session) == [(1, 1, 1, 2), (2, 1, 2, 1), (3, 2, 1, 5)]
    assert session.get(Product, 1).price == 100
    operations = {
        (type(v).__name__, v.id): (v.operation, v.restored_from)
        for cls in (Order, OrderLine, Product)
        for v in session.scalars(
            select(cls.__history__).where(cls.__history__.valid_from == clock.now)
        )
    }
    assert operations == {
        ("OrderHistory", 1): ("restore", 1),
        ("OrderLineHistory", 1): ("restore", 1),
        ("OrderLineHistory", 2): ("restore", 1),
        ("OrderLineHistory", 3): ("restore", 1),
        ("OrderLineHistory", 4): ("delete", None),
        ("ProductHistory", 1): ("restore", 1),
    }


def test_related_rows_are_restored_only_when_included(session: Session, clock: FrozenClock) -> None:
    t0 = shop(session, clock)
    order = restore(session, Order, 1, as_of=t0)
    session.commit()
    assert order.status == "new"
    assert [line.id for line in order.lines] == [1, 3, 4]
    restore(session, Order, 1, as_of=t0, include=[Order.lines])
    session.commit()
    assert lines(session) == [(1, 1, 1, 2), (2, 1, 2, 1), (3, 2, 1, 5)]
    assert session.get(Product, 1).price == 120


def test_an_order_deleted_with_its_lines_comes_back_with_them(
    session: Session, clock: FrozenClock
) -> None:
    shop(session, clock)
    session.delete(session.get(Order, 1))  # the cascade deletes its lines
    session.commit()
    clock.advance(seconds=1)
    before_delete = clock.now - dt.timedelta(seconds=2)
    with pytest.raises(RestoreConflictError, match="order"):  # a line alone: its order is gone
        restore(session, OrderLine, 1, as_of=before_delete)
    order = restore(session, Order, 1, as_of=before_delete, include=[Order.lines])
    session.commit()
    assert (order.status, [line.id for line in order.lines]) == ("paid", [1, 3, 4])


def test_restore_a_line_with_the_product_it_refers_to(session: Session, clock: FrozenClock) -> None:
    t0 = shop(session, clock)
    product, line = session.get(Product, 2), session.get(OrderLine, 4)
    session.delete(product)  # line 2 (deleted) referred to it, and line 4
    session.delete(line)
    session.commit()
    clock.advance(seconds=1)
    with pytest.raises(RestoreConflictError, match=r"OrderLine \(2,\).*product") as raised:
        restore(session, OrderLine, 2, as_of=t0)
    assert raised.value.model is OrderLine and raised.value.key == (2,)
    assert "order_line(product_id)" in str(raised.value.constraint)
    assert session.get(OrderLine, 2) is None  # nothing changed, the session still works
    line = restore(session, OrderLine, 2, as_of=t0, include=[OrderLine.product])
    session.commit()
    assert (line.product.name, line.order.status) == ("ink", "paid")


def test_restore_all_does_not_delete_rows_that_others_refer_to(
    session: Session, clock: FrozenClock
) -> None:
    t0 = shop(session, clock)
    session.add(Product(id=3, name="pad", price=10))
    session.flush()
    session.get(OrderLine, 4).product_id = 3
    session.commit()
    clock.advance(seconds=1)
    with pytest.raises(RestoreConflictError, match=r"Product \(3,\).*order_line") as raised:
        restore_all(session, Product, as_of=t0)
    assert raised.value.key == (3,)
    assert session.get(Product, 3) is not None and session.get(Product, 1).price == 120
    result = restore_all(session, Product, as_of=t0, where=Product.id != 3)
    session.commit()
    assert result == RestoreResult(inserted=0, updated=1, deleted=0, unchanged=1)


def test_many_to_many_and_foreign_paths_are_refused(session: Session) -> None:
    with pytest.raises(ConfigurationError, match="many-to-many"):
        restore(session, Order, 1, as_of=START, include=[Order.labels])
    with pytest.raises(ConfigurationError, match="not of Order"):
        restore(session, Order, 1, as_of=START, include=[OrderLine.product])
    with pytest.raises(ConfigurationError, match="no relationship 'nope'"):
        restore(session, Order, 1, as_of=START, include=["lines.nope"])


# -- constraints -----------------------------------------------------------------------------


def test_a_reinsert_that_breaks_a_unique_constraint_fails_and_changes_nothing(
    session: Session, clock: FrozenClock
) -> None:
    session.add(Article(id=1, title="a", slug="same"))
    session.commit()
    t0 = clock.now
    clock.advance(seconds=1)
    session.delete(session.get(Article, 1))
    session.flush()
    session.add(Article(id=2, title="b", slug="same"))
    session.commit()
    clock.advance(seconds=1)
    session.add(Note(id=1, text="pending work of the session"))
    for attempt in (
        lambda: restore(session, Article, 1, as_of=t0),
        lambda: restore_all(session, Article, as_of=t0, where=Article.id == 1),
    ):
        with pytest.raises(RestoreConflictError, match=r"Article \(1,\).*slug_column") as raised:
            attempt()
        assert raised.value.key == (1,) and "slug_column" in str(raised.value.constraint)
    session.commit()  # the transaction is still usable
    assert session.get(Note, 1) is not None and session.get(Article, 1) is None
    assert len(history(session, Article, 1)) == 2
    # restoring both rows puts the value back where it was
    result = restore_all(session, Article, as_of=t0)
    session.commit()
    assert result == RestoreResult(inserted=1, updated=0, deleted=1, unchanged=0)
    assert session.get(Article, 1).slug == "same" and session.get(Article, 2) is None


# -- inheritance, composite keys -------------------------------------------------------------


def test_inheritance(session: Session, clock: FrozenClock) -> None:
    session.add_all([Car(id=1, name="car", doors=3), Manager(id=1, name="m", budget=5)])
    session.add(Employee(id=2, name="e"))
    session.commit()
    t0 = clock.now
    clock.advance(seconds=1)
    session.get(Car, 1).doors = 5
    session.delete(session.get(Employee, 1))
    session.get(Employee, 2).name = "changed"
    session.commit()
    clock.advance(seconds=1)
    car = restore(session, Vehicle, 1, as_of=t0)
    assert isinstance(car, Car) and car.doors == 3
    with pytest.raises(UnsupportedStatementError, match="joined-inheritance"):
        restore_all(session, Vehicle, as_of=t0)
    result = restore_all(session, Manager, as_of=t0)
    session.commit()
    assert result == RestoreResult(inserted=1, updated=0, deleted=0, unchanged=0)
    manager = session.get(Employee, 1)
    assert isinstance(manager, Manager) and manager.budget == 5
    assert session.get(Employee, 2).name == "changed"  # not a manager: not selected
    assert [v.operation for v in history(session, Car, 1)] == ["insert", "update", "restore"]


def test_composite_keys(session: Session, clock: FrozenClock) -> None:
    session.add_all([Tag(owner="o", code=1, label="a"), Tag(owner="o", code=2, label="b")])
    session.commit()
    t0 = clock.now
    clock.advance(seconds=1)
    session.get(Tag, ("o", 1)).label = "x"
    session.delete(session.get(Tag, ("o", 2)))
    session.commit()
    clock.advance(seconds=1)
    assert restore(session, Tag, ("o", 1), as_of=t0).label == "a"
    assert restore_all(session, Tag, as_of=t0) == RestoreResult(1, 0, 0, 1)
    session.commit()
    assert session.get(Tag, {"owner": "o", "code": 2}).label == "b"


# -- bad input -------------------------------------------------------------------------------


def test_bad_input_gets_clear_errors(session: Session, clock: FrozenClock) -> None:
    session.add(Article(id=1, title="a"))
    session.add(Tag(owner="o", code=1, label="a"))
    session.commit()
    clock.advance(seconds=1)
    (version,) = history(session, Article, 1)
    with pytest.raises(InvalidKeyError, match="version of Article, not of Tag"):
        restore(session, Tag, version)
    with pytest.raises(NoVersionAt, match="was ever recorded"):
        restore(session, Article, 99, as_of=clock.now)
    with pytest.raises(NoVersionAt, match="created later"):
        restore(session, Article, 1, as_of=START - dt.timedelta(days=1))
    with pytest.raises(NoVersionAt, match="before the history of article begins"):
        restore_all(session, Article, as_of=START - dt.timedelta(days=1))
    with pytest.raises(InvalidTimeError):
        restore(session, Article, 1, as_of=dt.datetime(2030, 1, 1))
    with pytest.raises(InvalidKeyError):
        restore(session, Tag, 1, as_of=clock.now)
    with pytest.raises(NotVersionedError):
        restore(session, Note, 1, as_of=clock.now)
    with pytest.raises(NotVersionedError):
        restore(session, Note(id=1, text="x"), as_of=clock.now)
    with pytest.raises(TypeError, match="as_of"):
        restore(session, Article, 1)
    with pytest.raises(TypeError, match="no as_of"):
        restore(session, version, as_of=clock.now)  # type: ignore[call-overload]
    live_obj = session.get(Article, 1)
    assert restore(session, live_obj, as_of=clock.now) is live_obj


def test_a_row_from_before_its_history_cannot_be_restored_to_then(
    session: Session, clock: FrozenClock
) -> None:
    session.add(Article(id=1, title="a"))
    session.commit()
    clock.advance(seconds=1)
    t_gap = clock.now
    clock.advance(seconds=1)
    # a row written around the library (a Core statement on the table is not versioned)
    session.execute(insert(Article.__table__).values(id=2, title="raw"))
    session.commit()
    with pytest.raises(NoVersionAt, match="has no history"):
        restore(session, Article, 2, as_of=t_gap)
    session.get(Article, 2).title = "versioned"  # its first version is an update
    session.commit()
    with pytest.raises(NoVersionAt, match="unknown"):
        restore(session, Article, 2, as_of=t_gap, allow_delete=True)
    with pytest.raises(NoVersionAt, match="existed before their history"):
        restore_all(session, Article, as_of=t_gap)
    result = restore_all(session, Article, as_of=t_gap, where=Article.id == 1)
    assert result.unchanged == 1


# -- many rows -------------------------------------------------------------------------------


def seed(engine: Engine, clock: FrozenClock, rows: int) -> tuple[dt.datetime, RestoreResult]:
    """``rows`` articles at t0; at t1 a third changed, a third deleted, a third as many new.

    The rows and their history are written directly, as the library would have written them, so
    that setting up 10,000 rows takes no time; the restore is what is measured.
    """
    t0 = clock.now
    t1 = clock.advance(seconds=1)
    clock.advance(seconds=1)
    with engine.begin() as connection:
        first_id, second_id = (
            connection.execute(insert(Transaction).values(timestamp=at)).inserted_primary_key[0]
            for at in (t0, t1)
        )
        live, versions = [], []
        for i in range(rows):
            first = {
                "id": i,
                "title": "a",
                "views": 0,
                "version": 1,
                "valid_from": t0,
                "valid_to": None,
            }
            versions.append({**first, "operation": "insert", "transaction_id": first_id})
            if i % 3 == 1:
                versions[-1]["valid_to"] = t1
                marker = {**first, "version": 2, "valid_from": t1, "valid_to": t1}
                versions.append({**marker, "operation": "delete", "transaction_id": second_id})
                continue
            if i % 3 == 0:
                versions[-1]["valid_to"] = t1
                changed = {**first, "title": "b", "version": 2, "valid_from": t1}
                versions.append({**changed, "operation": "update", "transaction_id": second_id})
            live.append({"id": i, "title": versions[-1]["title"]})
        for i in range(rows, rows + rows // 3):
            live.append({"id": i, "title": "n"})
            new = {
                "id": i,
                "title": "n",
                "views": 0,
                "version": 1,
                "valid_from": t1,
                "valid_to": None,
            }
            versions.append({**new, "operation": "insert", "transaction_id": second_id})
        connection.execute(insert(Article.__table__), live)
        connection.execute(insert(History.__table__), versions)
    changed, deleted = len(range(0, rows, 3)), len(range(1, rows, 3))
    return t0, RestoreResult(deleted, changed, rows // 3, rows - changed - deleted)


def shape(statement: str) -> str:
    """A statement with its lists of bound values collapsed, so that chunks look alike."""
    text = re.sub(r"%\(\w+\)s|%s|\?", "?", statement)
    text = re.sub(r"= -?\d+\b", "= ?", text)  # MariaDB: integer keys are sent as SQL text
    text = re.sub(r"\?::\w+", "?", re.sub(r"\s+", " ", text))
    text = re.sub(r"anon_\d+", "anon", text)
    text = re.sub(
        r"(?: UNION ALL SELECT \? AS anon(?:, \? AS anon)*)+", " UNION ALL SELECT ?", text
    )
    previous = None
    while previous != text:
        previous = text
        text = re.sub(r"\(\?(?:, \?)+\)", "(?)", text)
        text = re.sub(r"\(\?\)(?:, \(\?\))+", "(?)", text)
        text = re.sub(r"(\b[\w.`\"]+ = \? AND [\w.`\"]+ = \?)(?: OR \1)+", r"\1", text)
        text = re.sub(r"([\w.`\"]+ = \?)(?: OR \1)+", r"\1", text)
        text = re.sub(r"(\([^()]*\))(?: OR \1)+", r"\1", text)
    return text


def test_restore_all_of_many_rows_takes_a_fixed_number_of_statements(
    db: Engine, clock: FrozenClock, statements: StatementCounter
) -> None:
    # The same statements for 100 and for 10,000 rows. Lists of keys are sent CHUNK (2,000) at a
    # time, as the writer does, so a statement may repeat once per CHUNK keys; nothing runs once
    # per row.
    shapes: dict[int, Counter[str]] = {}
    for rows in (100, 10_000):
        clear(db)
        t0, expected = seed(db, clock, rows)
        with Session(db) as session:
            statements.reset()
            assert restore_all(session, Article, as_of=t0) == expected
            session.commit()
            shapes[rows] = Counter(shape(statement) for statement in statements.statements)
            check_many(session, clock, rows, expected)
        clock.advance(seconds=1)
    assert set(shapes[100]) == set(shapes[10_000])
    repeats = math.ceil(2 * 10_000 / chronicle_sql.CHUNK)
    for statement, count in shapes[10_000].items():
        assert count <= shapes[100][statement] * repeats, statement
    assert sum(shapes[10_000].values()) < 100


def check_many(session: Session, clock: FrozenClock, rows: int, expected: RestoreResult) -> None:
    assert session.scalar(select(func.count()).select_from(Article)) == rows
    assert session.scalars(select(Article.title).distinct()).all() == ["a"]
    operations = dict(
        session.execute(
            select(History.operation, func.count())
            .where(History.valid_from == clock.now)
            .group_by(History.operation)
        ).all()
    )
    assert operations == {"restore": expected.inserted + expected.updated, "delete": rows // 3}


def test_sqlite_without_the_savepoint_recipe_gets_a_warning(tmp_path: Any) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'plain.db'}")  # the driver's own transactions
    attach_schema(engine)
    Base.metadata.create_all(engine)
    try:
        with Session(engine) as session:
            session.add(Article(id=1, title="a"))
            session.commit()
            with pytest.warns(RuntimeWarning, match="savepoint recipe"):
                restore(session, Article, 1, as_of="2100-01-01T00:00:00+00:00")
    finally:
        engine.dispose()
