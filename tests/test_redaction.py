"""Redaction: the columns asked for are scrubbed from a row's history, and nothing else changes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, Table, select
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import (
    ChangeLog,
    ChronicleError,
    InvalidKeyError,
    NotVersionedError,
    Redaction,
    RedactionError,
    RedactionResult,
    changes_by,
    redact,
)

from .conftest import _clear
from .models import Article, Car, Note, Tag
from .support import FrozenClock


def snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the history tables and library tables a redaction may touch."""
    tables: list[Table] = [
        Article.__history__.__table__,  # type: ignore[attr-defined]
        Tag.__history__.__table__,  # type: ignore[attr-defined]
        Car.__history__.__table__,  # type: ignore[attr-defined]
        ChangeLog.__table__,  # type: ignore[list-item]
        Redaction.__table__,  # type: ignore[list-item]
    ]
    found: dict[str, list[tuple[Any, ...]]] = {}
    for table in tables:
        rows = session.execute(select(table).order_by(*table.primary_key.columns))
        found[table.name] = [tuple(row) for row in rows]
    return found


def _write(session: Session, clock: FrozenClock, titles: list[tuple[str, str | None]]) -> None:
    """Article 1 through the given (title, body) states, article 2 alongside, one per commit."""
    session.add(Article(id=2, title="other", body="keep"))
    for number, (title, body) in enumerate(titles):
        article = session.get(Article, 1)
        if article is None:
            session.add(Article(id=1, title=title, body=body, views=number))
        else:
            article.title, article.body, article.views = title, body, number
        session.commit()
        clock.advance(minutes=1)


TEXTS = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=8)
STATES = st.lists(st.tuples(TEXTS, st.one_of(st.none(), TEXTS)), min_size=1, max_size=5)
_EXAMPLES = min(settings.default.max_examples, 20)


@settings(
    parent=settings.default,
    max_examples=_EXAMPLES,
    suppress_health_check=[
        *settings.default.suppress_health_check,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(states=STATES, columns=st.sampled_from([["body"], ["title", "body"], ["views"]]))
def test_redaction_changes_those_columns_and_nothing_else(
    db: Engine, clock: FrozenClock, states: list[tuple[str, str | None]], columns: list[str]
) -> None:
    _clear(db)
    with Session(db) as session:
        _write(session, clock, states)
        before = snapshot(session)
        with changes_by("dpo"):
            result = redact(session, Article, 1, columns, reason="erasure request")
        session.commit()
        after = snapshot(session)

        history = Article.__history__.__table__  # type: ignore[attr-defined]
        names = [c.name for c in history.columns]
        redacted = {names.index(c) for c in columns}
        expected = [
            tuple(None if i in redacted and row[0] == 1 else v for i, v in enumerate(row))
            for row in before["article_history"]
        ]
        assert after["article_history"] == expected
        assert after["tag_history"] == before["tag_history"]
        versions = sum(1 for row in before["article_history"] if row[0] == 1)
        assert result == RedactionResult(
            "article",
            "1",
            tuple(sorted(columns)),
            versions,
            result.changelog,
            0,
            result.redaction_id,
        )

        changelog_names = [c.name for c in ChangeLog.__table__.columns]  # type: ignore[attr-defined]
        changes_at = changelog_names.index("changes")
        scrubbed = 0
        for old, new in zip(
            before["chronicle_changelog"], after["chronicle_changelog"], strict=True
        ):
            if old[changelog_names.index("row_id")] != "1":
                assert new == old
                continue
            assert new[:changes_at] == old[:changes_at]
            old_changes, new_changes = old[changes_at], new[changes_at]
            assert set(old_changes) == set(new_changes)
            for key, value in old_changes.items():
                if key in columns:
                    assert new_changes[key] in (None, [None, None])
                else:
                    assert new_changes[key] == value
            scrubbed += any(key in columns for key in old_changes)
        assert result.changelog == scrubbed

        (record,) = session.scalars(select(Redaction))
        assert (record.table_name, record.row_id, record.columns) == (
            "article",
            "1",
            sorted(columns),
        )
        assert (record.reason, record.actor, record.versions) == (
            "erasure request",
            "dpo",
            versions,
        )
        assert record.redacted_at == clock.now


def test_a_marker_replaces_text_and_null_the_rest(session: Session, clock: FrozenClock) -> None:
    _write(session, clock, [("a", "secret"), ("b", "more secret")])
    redact(session, Article, 1, ["body", "views"], reason="r", marker="[redacted]")
    session.commit()
    values = session.execute(
        select(Article.__history__.body, Article.__history__.views).where(
            Article.__history__.id == 1
        )
    ).all()
    assert values == [("[redacted]", None), ("[redacted]", None)]
    # The live row is the application's business.
    assert session.get(Article, 1).body == "more secret"


def test_attributes_with_other_column_names_and_composite_keys(
    session: Session, clock: FrozenClock
) -> None:
    session.add(Article(id=1, title="a", slug="the-slug"))
    session.add(Tag(owner="acme", code=7, label="label"))
    session.commit()
    redact(session, Article, 1, ["slug"], reason="r")
    redact(session, Tag, ("acme", 7), ["label"], reason="r")
    redact(session, "tag", {"owner": "acme", "code": "7"}, ["label"], reason="again")
    redact(session, "article", "1", ["title"], reason="a key as the command line gives it")
    session.commit()
    assert session.scalars(select(Article.__history__.title)).all() == [None]
    assert session.scalars(select(Article.__history__.slug)).all() == [None]
    assert session.scalars(select(Tag.__history__.label)).all() == [None]


def test_joined_inheritance(session: Session, clock: FrozenClock) -> None:
    session.add(Car(id=1, name="car", doors=3))
    session.commit()
    result = redact(session, Car, 1, ["doors", "name"], reason="r")
    session.commit()
    assert result.columns == ("doors", "name")
    car = session.scalars(select(Car.__history__)).one()
    assert (car.doors, car.name, car.kind) == (None, None, "car")


@pytest.mark.parametrize(
    ("target", "key", "columns", "arguments", "error"),
    [
        (Article, 1, ["nope"], {}, RedactionError),
        (Article, 1, ["cached_html"], {}, RedactionError),  # excluded: history has none
        (Article, 1, ["id"], {}, RedactionError),
        (Tag, ("acme", 7), ["owner"], {}, RedactionError),
        (Article, 1, [], {}, RedactionError),
        (Article, 1, "body", {}, RedactionError),
        (Article, 1, ["body"], {"reason": " "}, RedactionError),
        (Article, 1, ["slug"], {"marker": "x" * 51}, RedactionError),
        (Article, 1, ["body"], {"marker": 5}, RedactionError),
        (Article, 99, ["body"], {}, RedactionError),
        (Article, "1", ["body"], {}, InvalidKeyError),
        (Tag, "acme", ["label"], {}, InvalidKeyError),
        (Note, 1, ["text"], {}, NotVersionedError),
        ("no_such_table", 1, ["x"], {}, ChronicleError),
        ("note", 1, ["text"], {}, NotVersionedError),
        ("article", "one", ["body"], {}, InvalidKeyError),
        ("article", "²", ["body"], {}, InvalidKeyError),
        ("tag", ("acme", 7, 1), ["label"], {}, InvalidKeyError),
    ],
    ids=repr,
)
def test_bad_input_changes_nothing(
    session: Session,
    clock: FrozenClock,
    target: Any,
    key: Any,
    columns: Any,
    arguments: dict[str, Any],
    error: type[Exception],
) -> None:
    _write(session, clock, [("a", "secret"), ("b", "secret")])
    session.add(Tag(owner="acme", code=7, label="l"))
    session.commit()
    before = snapshot(session)
    with pytest.raises(error):
        redact(session, target, key, columns, **{"reason": "r", **arguments})
    session.commit()
    assert snapshot(session) == before
