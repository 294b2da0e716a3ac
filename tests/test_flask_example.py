"""``examples/flask_app.py``: every request's changes are attributed to its user, on every database.

The application runs against each database of the run through Flask's test client; its tables,
``flask_article`` and ``flask_article_history``, are its own, dropped after each test with the
library rows it wrote. One test runs it as a script, as a reader would, and talks to it over HTTP.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import ChangeLog, Transaction

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "flask_app.py"


def _load_example() -> ModuleType:
    """Import the example once per process (its classes can be declared only once)."""
    name = "chronicle_flask_example"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # SQLAlchemy resolves the annotations through the module
        spec.loader.exec_module(module)
    return sys.modules[name]


example = _load_example()
Article = example.Article


def _drop_example(engine: Engine) -> None:
    """Drop the example's tables and the library rows it wrote into the shared ones."""
    with engine.begin() as connection:
        if engine.dialect.has_table(connection, "chronicle_changelog"):
            ours = select(ChangeLog.transaction_id).where(ChangeLog.table_name == "flask_article")
            ids = list(connection.scalars(ours))
            connection.execute(delete(ChangeLog).where(ChangeLog.table_name == "flask_article"))
            connection.execute(delete(Transaction).where(Transaction.id.in_(ids)))
    own = [Article.__history__.__table__, Article.__table__]
    example.Base.metadata.drop_all(engine, tables=own)


@pytest.fixture
def app(engine: Engine) -> Iterator[Flask]:
    _drop_example(engine)
    app = example.create_app(engine.url.render_as_string(hide_password=False))
    app.testing = True
    yield app
    app.extensions["chronicle_example"]["engine"].dispose()
    _drop_example(engine)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def as_user(user: str | None, reason: str | None = None) -> dict[str, str]:
    headers = {}
    if user is not None:
        headers["X-User"] = user
    if reason is not None:
        headers["X-Reason"] = reason
    return headers


def create(client: FlaskClient, user: str, title: str) -> int:
    response = client.post("/articles", json={"title": title}, headers=as_user(user))
    assert response.status_code == 201, response.json
    article_id: int = response.json["id"]  # type: ignore[index]
    return article_id


def changes_of(client: FlaskClient, article_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/articles/{article_id}/changes")
    assert response.status_code == 200, response.json
    entries: list[dict[str, Any]] = response.json  # type: ignore[assignment]
    return entries


def test_two_users_requests_are_attributed_to_each(client: FlaskClient) -> None:
    article_id = create(client, "alice", "Hello")
    response = client.patch(
        f"/articles/{article_id}", json={"title": "Hello, world"}, headers=as_user("bob", "typo")
    )
    assert response.status_code == 200
    assert response.json["title"] == "Hello, world"  # type: ignore[index]

    inserted, updated = changes_of(client, article_id)
    assert (inserted["event"], inserted["actor"], inserted["reason"]) == ("INSERT", "alice", None)
    assert inserted["request"] == "POST /articles"
    assert inserted["changes"]["title"] == "Hello"
    assert (updated["event"], updated["actor"], updated["reason"]) == ("UPDATE", "bob", "typo")
    assert updated["request"] == f"PATCH /articles/{article_id}"
    assert updated["changes"] == {"title": ["Hello", "Hello, world"]}
    assert updated["transaction"] != inserted["transaction"]


def test_the_history_carries_the_same_attribution(app: Flask, client: FlaskClient) -> None:
    article_id = create(client, "alice", "Hello")
    client.patch(f"/articles/{article_id}", json={"body": "text"}, headers=as_user("bob"))
    with Session(app.extensions["chronicle_example"]["engine"]) as session:
        History = Article.__history__
        versions = session.scalars(
            select(History).where(History.id == article_id).order_by(History.version)
        ).all()
        assert [(v.operation, v.transaction.actor) for v in versions] == [
            ("insert", "alice"),
            ("update", "bob"),
        ]


def test_writes_need_a_user(client: FlaskClient) -> None:
    response = client.post("/articles", json={"title": "Anonymous"})
    assert response.status_code == 401
    article_id = create(client, "alice", "Hello")
    assert client.patch(f"/articles/{article_id}", json={"title": "x"}).status_code == 401
    assert [entry["event"] for entry in changes_of(client, article_id)] == ["INSERT"]
    assert client.get(f"/articles/{article_id}").json["title"] == "Hello"  # type: ignore[index]


def test_the_attribution_ends_with_the_request(app: Flask, client: FlaskClient) -> None:
    """The test client serves the request in this thread: nothing of alice's may stay here."""
    article_id = create(client, "alice", "Hello")
    with Session(app.extensions["chronicle_example"]["engine"]) as session:
        session.get(Article, article_id).title = "changed outside any request"
        session.commit()
    _, outside = changes_of(client, article_id)
    assert (outside["actor"], outside["reason"], outside["request"]) == (None, None, None)


def test_bulk_update_is_attributed_and_logged_per_row(client: FlaskClient) -> None:
    first, second = create(client, "alice", "one"), create(client, "alice", "two")
    response = client.post(
        "/articles/archive", json={"ids": [first, second]}, headers=as_user("carol", "cleanup")
    )
    assert response.status_code == 200
    assert response.json == {"matched": 2}
    for article_id in (first, second):
        _, archived = changes_of(client, article_id)
        assert (archived["event"], archived["actor"], archived["reason"]) == (
            "UPDATE",
            "carol",
            "cleanup",
        )
        assert archived["changes"] == {"status": ["draft", "archived"]}

    again = client.post("/articles/archive", json={"ids": [first]}, headers=as_user("dave"))
    assert again.status_code == 200
    assert len(changes_of(client, first)) == 2  # archiving again changes nothing: no entry


def test_concurrent_requests_from_two_threads(app: Flask) -> None:
    """Two requests served at the same time, each in its thread, keep their own user.

    A hook that runs after the example's own waits until both requests are inside their
    attribution: had the actor been one global value, the second request would have overwritten
    the first's. (Flask takes new hooks only before its first request, so it is added first.)
    """
    barrier = threading.Barrier(2, timeout=30)
    together = threading.Event()

    @app.before_request
    def wait_for_the_other_request() -> None:
        if together.is_set():
            barrier.wait()

    setup = app.test_client()
    ids = {"alice": create(setup, "alice", "a"), "bob": create(setup, "bob", "b")}
    rounds = 3
    failures: list[BaseException] = []

    def edit(user: str) -> None:
        client = app.test_client()
        try:
            for n in range(rounds):
                response = client.patch(
                    f"/articles/{ids[user]}",
                    json={"title": f"{user} {n}"},
                    headers=as_user(user, f"round {n}"),
                )
                assert response.status_code == 200, response.json
        except BaseException as error:
            failures.append(error)
            barrier.abort()

    together.set()
    threads = [threading.Thread(target=edit, args=(user,)) for user in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    together.clear()
    assert not failures, failures
    assert not any(thread.is_alive() for thread in threads)

    for user, article_id in ids.items():
        entries = changes_of(setup, article_id)
        assert [(e["event"], e["actor"]) for e in entries] == [("INSERT", user)] + [
            ("UPDATE", user)
        ] * rounds
        assert [e["reason"] for e in entries[1:]] == [f"round {n}" for n in range(rounds)]
        assert entries[-1]["changes"]["title"][1] == f"{user} {rounds - 1}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _request(url: str, method: str = "GET", user: str | None = None, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **as_user(user)}
    with urllib.request.urlopen(
        urllib.request.Request(url, data=data, headers=headers, method=method), timeout=30
    ) as response:
        return json.loads(response.read())


def test_example_runs_as_a_script(engine: Engine, tmp_path: Path) -> None:
    if engine.dialect.name == "sqlite":
        url = f"sqlite:///{tmp_path / 'flask_example.db'}"
    else:
        url = engine.url.render_as_string(hide_password=False)
        _drop_example(engine)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, str(EXAMPLE), url, "--port", str(port)],
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _request(f"{base}/articles/1")
            except urllib.error.HTTPError:
                break  # 404: the server answers
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the example did not start serving:\n{log.read_text()}")
                time.sleep(0.2)
        article = _request(f"{base}/articles", "POST", "alice", {"title": "Hello"})
        _request(f"{base}/articles/{article['id']}", "PATCH", "bob", {"title": "Hello, world"})
        entries = _request(f"{base}/articles/{article['id']}/changes")
        assert [(e["event"], e["actor"]) for e in entries] == [
            ("INSERT", "alice"),
            ("UPDATE", "bob"),
        ]
    finally:
        server.terminate()
        server.wait(timeout=30)
        if engine.dialect.name != "sqlite":
            _drop_example(engine)
