"""The history viewer without a browser: its pages' contents and its HTTP answers.

The shared logic (:class:`~sqlalchemy_chronicle.viewer.HistoryViewer`) is checked against a
model of a row's history built by hypothesis: random edits, deletes and re-inserts by random
actors, then every timeline page, diffs of random pairs of versions, the row as of each
version's start and the restore preview must say what the model says. The change log's filters
and keyset pages are checked against the same filters applied in Python to every entry. The two
adapters are then driven through their frameworks' test clients (Starlette's ``TestClient``,
Flask's test client) on the example applications: every page answers, bad input answers 4xx with
its message and no stack trace, a restore is refused when not allowed, a conflicting restore
shows ``RestoreConflictError``'s message and changes nothing, an allowed one writes a
``"restore"`` version attributed to the admin's user.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import (
    ChangeLog,
    ConfigurationError,
    InvalidKeyError,
    InvalidTimeError,
    Transaction,
    changes_by,
)
from sqlalchemy_chronicle.viewer import HistoryViewer, PageNotFound, ViewerError
from sqlalchemy_chronicle.viewer.core import CSRF_FIELD, ChangeLogFilters

from .viewer_apps import EXAMPLES, KINDS, SEED, ExampleApp, example_app, load_example

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

FIELDS = ("id", "title", "isbn", "price", "author_id")


@pytest.fixture(scope="module")
def library(engine: Engine) -> Iterator[ExampleApp]:
    """The sqladmin example on the test database, for the tests that only read or add rows."""
    with example_app("sqladmin", engine) as example:
        yield example


# -- the shared logic against a model ------------------------------------------------------------


@dataclass
class Expected:
    operation: str
    actor: str | None
    values: dict[str, Any]


Step = tuple[str, Any, str | None]
steps = st.lists(
    st.tuples(
        st.sampled_from(["title", "price", "same", "delete"]),
        st.integers(0, 3),
        st.sampled_from(["alice", "bob", None]),
    ),
    min_size=1,
    max_size=8,
)
_keys = itertools.count(1000)


def _play(session: Session, example: ExampleApp, plan: list[Step]) -> tuple[int, list[Expected]]:
    """Carry out ``plan`` on a new book; return its key and the versions it must have."""
    Book = example.module.Book
    key = next(_keys)
    values = {
        "id": key,
        "title": "t0",
        "isbn": f"isbn-{key}",
        "price": Decimal("1.00"),
        "author_id": 1,
    }
    with changes_by(actor="creator"):
        session.add(Book(**values))
        session.commit()
    expected = [Expected("insert", "creator", dict(values))]
    for what, number, actor in plan:
        with changes_by(actor=actor):
            book = session.get(Book, key)
            if book is None:
                session.add(Book(**values))
                session.commit()
                expected.append(Expected("insert", actor, dict(values)))
                continue
            if what == "delete":
                session.delete(book)
                session.commit()
                expected.append(Expected("delete", actor, dict(values)))
                continue
            if what == "title":
                values["title"] = f"t{number}"
            elif what == "price":
                values["price"] = Decimal(number) + Decimal("0.50")
            book.title, book.price = values["title"], values["price"]
            session.commit()
            if values != expected[-1].values:
                expected.append(Expected("update", actor, dict(values)))
    return key, expected


def _changed(old: Expected | None, new: Expected) -> set[str]:
    """The fields the timeline says ``new`` changed from ``old``."""
    if new.operation == "delete":
        return set()
    if old is None:
        return {name for name in FIELDS if new.values[name] is not None}
    return {name for name in FIELDS if old.values[name] != new.values[name]}


def _shown(entry: Expected) -> dict[str, Any]:
    return {} if entry.operation == "delete" else entry.values


@settings(max_examples=15)
@given(plan=steps, page_size=st.integers(1, 4), data=st.data())
def test_pages_say_what_the_model_says(
    library: ExampleApp, plan: list[Step], page_size: int, data: st.DataObject
) -> None:
    Book = library.module.Book
    viewer = HistoryViewer([Book], page_size=page_size)
    with library.session() as session:
        key, expected = _play(session, library, plan)

        pages = []
        page = viewer.timeline(session, Book, (key,), 1)
        pages.append(page)
        while page.page < page.pages:
            page = viewer.timeline(session, Book, (key,), page.page + 1)
            pages.append(page)
        entries = [entry for p in pages for entry in p.entries]
        newest_first = list(reversed(expected))
        assert [(e.version, e.operation, e.actor) for e in entries] == [
            (len(expected) - i, x.operation, x.actor) for i, x in enumerate(newest_first)
        ]
        assert pages[0].deleted == (expected[-1].operation == "delete")
        for number, entry in zip(range(len(expected), 0, -1), entries, strict=True):
            before = expected[number - 2] if number > 1 else None
            assert set(entry.changed) == _changed(before, expected[number - 1])
        with pytest.raises(PageNotFound):
            viewer.timeline(session, Book, (key,), len(pages) + 1)

        a = data.draw(st.integers(1, len(expected)))
        b = data.draw(st.integers(1, len(expected)))
        diff = viewer.diff(session, Book, (key,), a, b)
        old, new = _shown(expected[a - 1]), _shown(expected[b - 1])
        assert set(diff.changed) == {
            name
            for name in FIELDS
            if (name in old) != (name in new) or old.get(name) != new.get(name)
        }
        assert {f.name: f.new for f in diff.fields if new} == dict(new)

        for number, entry in enumerate(reversed(entries), start=1):
            view = viewer.as_of(session, Book, (key,), entry.valid_from)
            if expected[number - 1].operation == "delete":
                assert view.entry is None
            else:
                assert view.entry is not None and view.entry.version == number
                assert dict(view.values) == expected[number - 1].values

        target = data.draw(st.integers(1, len(expected)))
        if expected[target - 1].operation == "delete":
            with pytest.raises(ViewerError, match="delete marker"):
                viewer.restore_preview(session, Book, (key,), target)
        else:
            preview = viewer.restore_preview(session, Book, (key,), target)
            now = _shown(expected[-1])
            assert (preview.old is None) == (expected[-1].operation == "delete")
            assert set(preview.changed) == {
                name for name in FIELDS if now.get(name) != expected[target - 1].values[name]
            }


def test_the_change_log_filters_and_pages_like_python(library: ExampleApp) -> None:
    Author = library.module.Author
    viewer = HistoryViewer([Author], page_size=3)
    with library.session() as session:
        for number in range(7):
            with changes_by(actor=["carol", "dan"][number % 2]):
                author = Author(id=100 + number, name=f"a{number}")
                session.add(author)
                session.commit()
                author.name = f"b{number}"
                session.commit()
                if number % 3 == 0:
                    session.delete(author)
                    session.commit()
        table = Author.__table__.name
        everything = session.execute(
            select(ChangeLog, Transaction)
            .join(Transaction, Transaction.id == ChangeLog.transaction_id)
            .where(ChangeLog.table_name == table)
            .order_by(ChangeLog.id.desc())
        ).all()
        times = sorted({entry.timestamp for entry, _ in everything})
        middle = times[len(times) // 3], times[2 * len(times) // 3]
        for actor, operation, since, until in itertools.product(
            [None, "carol", "dan", "nobody"],
            [None, "INSERT", "UPDATE", "DELETE"],
            [None, middle[0]],
            [None, middle[1]],
        ):
            wanted = [
                entry.id
                for entry, transaction in everything
                if (actor is None or transaction.actor == actor)
                and (operation is None or entry.event_type == operation)
                and (since is None or entry.timestamp >= since)
                and (until is None or entry.timestamp < until)
            ]
            filters = ChangeLogFilters(actor, operation, since, until)
            seen: list[int] = []
            while True:
                page = viewer.change_log(session, Author, filters)
                assert len(page.entries) <= 3
                seen += [entry.id for entry in page.entries]
                if page.next_before is None:
                    break
                filters = ChangeLogFilters(actor, operation, since, until, page.next_before)
            assert seen == wanted


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"operation": "MERGE"}, ViewerError, "operation must be one of"),
        ({"since": "yesterday"}, InvalidTimeError, "not an ISO-8601 date and time"),
        ({"until": "2024-13-01T00:00"}, InvalidTimeError, "not an ISO-8601 date and time"),
        ({"before": "-3"}, ViewerError, "between 1 and"),
        ({"before": "x"}, ViewerError, "whole number"),
        ({"since": "2024-02-01T00:00", "until": "2024-01-01T00:00"}, ViewerError, "ends before"),
    ],
)
def test_bad_filters_are_refused(
    params: dict[str, str], error: type[Exception], message: str
) -> None:
    viewer = HistoryViewer([])
    with pytest.raises(error, match=message):
        viewer.parse_filters(params)


def test_filters_read_picker_times_as_utc_and_offsets_as_given() -> None:
    filters = HistoryViewer([]).parse_filters(
        {"since": "2024-03-05T14:30", "until": "2024-03-05T16:30:00.250+01:00", "actor": " "}
    )
    assert filters.since == dt.datetime(2024, 3, 5, 14, 30, tzinfo=dt.timezone.utc)
    assert filters.until == dt.datetime(2024, 3, 5, 15, 30, 0, 250000, tzinfo=dt.timezone.utc)
    assert filters.actor is None
    assert filters.query() == {
        "since": "2024-03-05T14:30:00.000",
        "until": "2024-03-05T15:30:00.250",
    }


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", InvalidKeyError),
        ("abc", InvalidKeyError),
        ("1.5", InvalidKeyError),
        ("²", InvalidKeyError),
        ("--5", InvalidKeyError),
        ("99999999999999999999999", PageNotFound),
    ],
)
def test_bad_keys_are_refused(library: ExampleApp, text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        HistoryViewer([library.module.Book]).parse_key(library.module.Book, text)


# -- the adapters over HTTP ------------------------------------------------------------------------


class Client:
    """A framework's test client with one way to ask for a page and read its message."""

    def __init__(self, example: ExampleApp) -> None:
        self.example = example
        if example.kind == "sqladmin":
            from starlette.testclient import TestClient

            self.client: Any = TestClient(example.app)
        else:
            example.app.testing = True
            self.client = example.app.test_client()

    def get(self, name: str, model: str | None = None, **query: Any) -> tuple[int, str]:
        response = self.client.get(self.example.url(name, model, **query))
        return response.status_code, response.text

    def post(self, name: str, model: str | None = None, **query: Any) -> tuple[int, str]:
        """Post the form of page ``name`` as a browser does: with the token the page gave."""
        url = self.example.url(name, model, **query)
        token = csrf_token(self.client.get(url).text)
        response = self.client.post(url, data={CSRF_FIELD: token})
        return response.status_code, response.text


def csrf_token(html: str) -> str:
    found = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', html)
    assert found is not None, "the form carries no CSRF token"
    return found.group(1)


def message(html: str) -> str:
    found = re.findall(r'class="(?:message|success)"[^>]*>(.*?)</p>', html, re.S)
    return " ".join(found).replace("&#39;", "'")


@pytest.fixture(params=KINDS)
def client(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Client]:
    """A client of a freshly seeded example, for the tests that restore."""
    with example_app(request.param, engine) as example:
        yield Client(example)


@pytest.fixture(params=KINDS, scope="module")
def reader(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Client]:
    """A client of an example shared by the tests that change nothing."""
    with example_app(request.param, engine) as example:
        yield Client(example)


def test_every_page_answers(reader: Client) -> None:
    client = reader
    book = client.example.book
    status, html = client.get("index")
    assert status == 200 and client.example.url("changelog", book) in html
    status, html = client.get("changelog", book, actor="bob")
    assert status == 200
    assert html.count('class="entry"') == 3
    status, html = client.get("timeline", book, key=1)
    assert status == 200 and html.count('class="version"') == 4
    assert 'type="datetime-local"' in html and "typo in the title" in html
    status, html = client.get("diff", book, key=1, a=1, b=2)
    assert status == 200
    assert re.findall(r'class="field changed" data-field="(\w+)"', html) == ["title"]
    status, html = client.get("as_of", book, key=3, when="2999-01-01T00:00")
    assert status == 200 and "did not exist" in message(html)
    status, html = client.get("restore", book, key=1, version=2)
    assert status == 200 and 'id="chronicle-restore-form"' in html


@pytest.mark.parametrize(
    ("page", "query", "status", "text"),
    [
        ("changelog", {"model": "nope"}, 404, "shows no table 'nope'"),
        ("timeline", {"key": 4242}, 404, "no such row was ever recorded"),
        ("timeline", {"key": "abc"}, 400, "takes an integer"),
        ("timeline", {}, 400, "the key is missing"),
        ("timeline", {"key": 1, "page": 7}, 404, "there is no page 7"),
        ("timeline", {"key": 1, "page": "two"}, 400, "page number must be a whole number"),
        ("timeline", {"key": 1, "page": "²"}, 400, "page number must be a whole number"),
        ("timeline", {"key": 1, "page": 0}, 400, "between 1 and"),
        ("diff", {"key": 1, "a": 1, "b": 9}, 404, "Book 1 has no version 9"),
        ("diff", {"key": 2, "a": 1, "b": 4}, 404, "Book 2 has no version 4"),
        ("diff", {"key": 1, "a": "x", "b": 2}, 400, "first version (a) must be a whole number"),
        ("diff", {"key": 1, "a": 1, "b": 99999999999}, 400, "between 1 and"),
        ("as_of", {"key": 1, "when": "last tuesday"}, 400, "is not an ISO-8601 date and time"),
        ("as_of", {"key": 1, "when": "2024-02-30T10:00"}, 400, "is not an ISO-8601 date and time"),
        ("as_of", {"key": 1}, 400, "the time (when) is missing"),
        ("changelog", {"since": "soon"}, 400, "is not an ISO-8601 date and time"),
        ("changelog", {"before": "0"}, 400, "page cursor must be between"),
        ("restore", {"key": 3, "version": 2}, 400, "is a delete marker"),
        ("restore", {"key": 1, "version": 77}, 404, "has no version 77"),
    ],
)
def test_bad_input_answers_4xx_with_its_message(
    reader: Client, page: str, query: dict[str, Any], status: int, text: str
) -> None:
    client = reader
    query = dict(query)
    model = query.pop("model", client.example.book)
    got, html = client.get(page, model, **query)
    assert (got, text) == (status, text) and text in message(html), message(html)
    assert "Traceback" not in html


def _versions(example: ExampleApp, key: int) -> list[tuple[int, str, int | None, str]]:
    History = example.module.Book.__history__
    with example.session() as session:
        return [
            (v.version, v.operation, v.restored_from, v.title)
            for v in session.scalars(
                select(History).where(History.id == key).order_by(History.version)
            )
        ]


def test_a_conflicting_restore_shows_the_conflict_and_changes_nothing(client: Client) -> None:
    before = _versions(client.example, 1)
    status, html = client.post("restore", client.example.book, key=1, version=1)
    assert status == 409
    assert "Nothing was changed" in message(html)
    assert "would break the unique constraint" in message(html)
    assert _versions(client.example, 1) == before
    with client.example.session() as session:
        book = session.get(client.example.module.Book, 1)
        assert book is not None and book.isbn == "978-0060512750"


def test_a_restore_writes_a_restore_version_attributed_to_the_user(client: Client) -> None:
    example = client.example
    status, html = client.post("restore", example.book, key=3, version=1)
    assert (status, message(html)) == (200, "Version 1 was restored as version 3.")
    assert _versions(example, 3)[-1] == (3, "restore", 1, "Mort")
    status, html = client.get("timeline", example.book, key=3)
    assert "restore of v1" in html and "restored version 1 in the history viewer" in html
    with example.session() as session:
        entry = session.scalars(
            select(ChangeLog)
            .where(ChangeLog.table_name == example.book)
            .order_by(ChangeLog.id.desc())
        ).first()
        assert entry is not None and entry.transaction.actor == "admin"


def _versions_shown(html: str) -> list[str]:
    return re.findall(r'class="version" data-version="(\d+)"', html)


def _older_link(html: str) -> str:
    found = re.search(r'rel="next" href="([^"]+)"', html)
    assert found is not None
    return found.group(1).replace("&amp;", "&")


def test_restores_are_read_only_by_default(engine: Engine) -> None:
    """Without ``can_restore`` the pages read, and restoring answers 403 and writes nothing."""
    with example_app("flask_admin", engine) as example:
        from flask import Flask
        from flask_admin import Admin

        from sqlalchemy_chronicle.viewer.flask_admin import HistoryView

        app = Flask(__name__)
        admin = Admin(app)
        admin.add_view(HistoryView([example.module.Book], session=example.engine, page_size=3))
        client = app.test_client()
        response = client.get("/admin/history/fa_book/timeline?key=1")
        assert response.status_code == 200
        assert 'class="restore"' not in response.text
        assert _versions_shown(response.text) == ["4", "3", "2"]
        older = _older_link(response.text)
        assert _versions_shown(client.get(older).text) == ["1"]
        before = _versions(example, 3)
        for send in (client.get, client.post):
            response = send("/admin/history/fa_book/restore?key=3&version=1")
            assert response.status_code == 403
            assert "read-only" in message(response.text)
        assert _versions(example, 3) == before


def test_sqladmin_restores_are_read_only_by_default_and_gated(engine: Engine) -> None:
    """sqladmin: ``can_restore`` off answers 403; ``is_accessible`` False shuts every page."""
    from sqladmin import Admin
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.testclient import TestClient

    from sqlalchemy_chronicle.viewer.sqladmin import HistoryView, add_history_views

    class Closed(HistoryView):
        def is_accessible(self, request: Request) -> bool:
            return request.headers.get("X-Admin") == "yes"

    with example_app("sqladmin", engine) as example:
        app = Starlette()
        admin = Admin(app, example.engine)
        add_history_views(admin, [example.module.Book], view_class=Closed, page_size=3)
        client = TestClient(app)
        page = "/admin/history/sa_book/timeline?key=1"
        assert client.get(page).status_code == 403
        response = client.get(page, headers={"X-Admin": "yes"})
        assert response.status_code == 200
        assert _versions_shown(response.text) == ["4", "3", "2"]
        older = client.get(_older_link(response.text), headers={"X-Admin": "yes"})
        assert _versions_shown(older.text) == ["1"]
        before = _versions(example, 3)
        restore = "/admin/history/sa_book/restore?key=3&version=1"
        assert client.post(restore).status_code == 403
        response = client.post(restore, headers={"X-Admin": "yes"})
        assert response.status_code == 403 and "read-only" in message(response.text)
        assert _versions(example, 3) == before


ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+aiomysql",
}


def test_sqladmin_on_an_async_engine_reads_and_restores(engine: Engine) -> None:
    """An admin made with an async session maker: the pages run through ``run_sync``."""
    from sqladmin import Admin
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    from sqlalchemy.pool import NullPool
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from sqlalchemy_chronicle.viewer.sqladmin import add_history_views

    with example_app("sqladmin", engine) as example:
        url = example.engine.url.set(drivername=ASYNC_DRIVERS[engine.dialect.name])
        async_engine = create_async_engine(url, poolclass=NullPool)
        app = Starlette()
        admin = Admin(app, session_maker=async_sessionmaker(async_engine))
        add_history_views(admin, [example.module.Book], can_restore=True, secret_key="k")
        with TestClient(app) as client:
            response = client.get("/admin/history/sa_book/timeline?key=1")
            assert response.status_code == 200
            assert _versions_shown(response.text) == ["4", "3", "2", "1"]
            response = client.get("/admin/history/sa_book/timeline?key=nope")
            assert response.status_code == 400 and "takes an integer" in message(response.text)
            before = _versions(example, 1)
            restore = "/admin/history/sa_book/restore?key=1&version=1"
            token = csrf_token(client.get(restore).text)
            response = client.post(restore, data={CSRF_FIELD: token})
            assert response.status_code == 409 and "unique constraint" in message(response.text)
            assert _versions(example, 1) == before
            restore = "/admin/history/sa_book/restore?key=3&version=1"
            response = client.post(restore, data={CSRF_FIELD: token})
            assert response.status_code == 200
        assert _versions(example, 3)[-1] == (3, "restore", 1, "Mort")


@pytest.mark.parametrize("sent", [None, "", "forged"])
def test_a_restore_without_the_forms_token_is_refused(client: Client, sent: str | None) -> None:
    """A post that is not the viewer's own form (cross-site) answers 403 and changes nothing."""
    example = client.example
    url = example.url("restore", example.book, key=3, version=1)
    kept = csrf_token(client.client.get(url).text)
    before = _versions(example, 3)
    data = {} if sent is None else {CSRF_FIELD: sent}
    response = client.client.post(url, data=data)
    assert response.status_code == 403 and "CSRF token" in message(response.text)
    assert _versions(example, 3) == before
    fresh = type(client.client)(client.client.app) if example.kind == "sqladmin" else None
    if fresh is not None:  # another browser, with the first one's token: its cookie is missing
        response = fresh.post(url, data={CSRF_FIELD: kept})
    else:
        response = example.app.test_client().post(url, data={CSRF_FIELD: kept})
    assert response.status_code == 403
    assert _versions(example, 3) == before
    assert client.client.post(url, data={CSRF_FIELD: kept}).status_code == 200
    assert _versions(example, 3)[-1] == (3, "restore", 1, "Mort")


@pytest.mark.parametrize("planted", ["planted", "planted.0123abcd"])
def test_sqladmin_refuses_a_cookie_it_did_not_sign(engine: Engine, planted: str) -> None:
    """A CSRF cookie set by another site (a sibling subdomain can), with the form's token to
    match, is not the viewer's: unsigned or signed with another key, it answers 403."""
    from starlette.testclient import TestClient

    with example_app("sqladmin", engine) as example:
        client = TestClient(example.app)
        restore = example.url("restore", example.book, key=3, version=1)
        before = _versions(example, 3)
        client.cookies.set("_chronicle_csrf", planted, path="/admin")
        response = client.post(restore, data={CSRF_FIELD: "planted"})
        assert response.status_code == 403 and "CSRF token" in message(response.text)
        assert _versions(example, 3) == before


def test_sqladmin_restores_only_with_a_session_or_a_secret_key(engine: Engine) -> None:
    from sqladmin import Admin
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from sqlalchemy_chronicle.viewer.sqladmin import add_history_views

    with example_app("sqladmin", engine) as example:
        app = Starlette()
        add_history_views(Admin(app, example.engine), [example.module.Book], can_restore=True)
        restore = "/admin/history/sa_book/restore?key=3&version=1"
        with pytest.raises(ConfigurationError, match=r"SessionMiddleware or .*secret_key"):
            TestClient(app).get(restore)


def test_flask_admin_restores_only_with_a_secret_key(engine: Engine) -> None:
    """Without ``secret_key`` Flask has no session to keep the CSRF token in: the restore page
    says so with the library's error, not Flask's bare ``RuntimeError``."""
    from flask import Flask
    from flask_admin import Admin

    from sqlalchemy_chronicle.viewer.flask_admin import HistoryView as FlaskHistoryView

    with example_app("flask_admin", engine) as example:
        app = Flask(__name__)
        app.testing = True
        view = FlaskHistoryView([example.module.Book], session=example.engine, can_restore=True)
        Admin(app).add_view(view)
        restore = "/admin/history/fa_book/restore?key=3&version=1"
        with pytest.raises(ConfigurationError, match="secret_key"):
            app.test_client().get(restore)
        with pytest.raises(ConfigurationError, match="secret_key"):
            app.test_client().post(restore, data={CSRF_FIELD: "forged"})


def test_the_examples_load_without_examples_on_sys_path() -> None:
    """The examples' sibling module has a name of its own and is loaded by path: ``examples/``
    never joins ``sys.path``, where its module names would shadow any other's."""
    for kind in KINDS:
        load_example(kind)
    assert str(EXAMPLES) not in sys.path
    assert sys.modules[SEED].__file__ == str(EXAMPLES / f"{SEED}.py")


def test_sqladmin_keeps_the_token_in_the_session_when_there_is_one(engine: Engine) -> None:
    from sqladmin import Admin
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.sessions import SessionMiddleware
    from starlette.testclient import TestClient

    from sqlalchemy_chronicle.viewer.sqladmin import add_history_views

    with example_app("sqladmin", engine) as example:
        app = Starlette(middleware=[Middleware(SessionMiddleware, secret_key="s")])
        admin = Admin(app, example.engine)
        add_history_views(admin, [example.module.Book], can_restore=True)
        client = TestClient(app)
        restore = "/admin/history/sa_book/restore?key=3&version=1"
        page = client.get(restore)
        token = csrf_token(page.text)
        assert "_chronicle_csrf" not in page.cookies and "session" in page.cookies
        before = _versions(example, 3)
        assert client.post(restore, data={CSRF_FIELD: "forged"}).status_code == 403
        assert _versions(example, 3) == before
        assert client.post(restore, data={CSRF_FIELD: token}).status_code == 200
        assert _versions(example, 3)[-1] == (3, "restore", 1, "Mort")
