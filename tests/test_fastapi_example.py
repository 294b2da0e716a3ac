"""``examples/fastapi_app.py`` on every database, through FastAPI's ``TestClient``.

The application runs on an ``AsyncSession`` with the async driver of each database of the run
(aiosqlite on the same SQLite file, psycopg's async mode, aiomysql); its tables,
``fastapi_book`` and ``fastapi_book_history``, are its own, dropped after each test with the
library rows it wrote.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select

from sqlalchemy_chronicle import ChangeLog, Transaction

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi_app.py"
ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}


def _load_example() -> ModuleType:
    """Import the example once per process (its classes can be declared only once)."""
    name = "chronicle_fastapi_example"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # SQLAlchemy resolves the annotations through the module
        spec.loader.exec_module(module)
    return sys.modules[name]


example = _load_example()
Book = example.Book


def async_url(engine: Engine) -> str:
    """The URL of ``engine``'s database with an async driver."""
    url = engine.url
    driver = ASYNC_DRIVERS.get(url.get_backend_name(), "mysql+aiomysql")
    return url.set(drivername=driver).render_as_string(hide_password=False)


def _drop_example(engine: Engine) -> None:
    """Drop the example's tables and the library rows it wrote into the shared ones."""
    with engine.begin() as connection:
        if engine.dialect.has_table(connection, "chronicle_changelog"):
            ours = select(ChangeLog.transaction_id).where(ChangeLog.table_name == "fastapi_book")
            ids = list(connection.scalars(ours))
            connection.execute(delete(ChangeLog).where(ChangeLog.table_name == "fastapi_book"))
            connection.execute(delete(Transaction).where(Transaction.id.in_(ids)))
    own = [t for t in example.Base.metadata.sorted_tables if t.name.startswith("fastapi_")]
    example.Base.metadata.drop_all(engine, tables=own)


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    _drop_example(engine)
    with TestClient(example.create_app(async_url(engine))) as client:
        yield client
    _drop_example(engine)


def as_user(user: str, reason: str | None = None) -> dict[str, str]:
    return {"X-User": user} | ({"X-Reason": reason} if reason is not None else {})


def create(client: TestClient, user: str, title: str, author: str) -> int:
    response = client.post("/books", json={"title": title, "author": author}, headers=as_user(user))
    assert response.status_code == 201, response.json()
    book_id: int = response.json()["id"]
    return book_id


def history_of(client: TestClient, book_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/books/{book_id}/history")
    assert response.status_code == 200, response.json()
    versions: list[dict[str, Any]] = response.json()
    return versions


def test_each_users_changes_are_in_the_history(client: TestClient) -> None:
    book_id = create(client, "alice", "Emma", "Austen")
    response = client.patch(
        f"/books/{book_id}", json={"author": "Jane Austen"}, headers=as_user("bob", "full name")
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {"id": book_id, "title": "Emma", "author": "Jane Austen"}
    assert client.delete(f"/books/{book_id}", headers=as_user("carol")).status_code == 204
    assert client.get(f"/books/{book_id}").status_code == 404

    versions = history_of(client, book_id)  # a deleted book's history is still there
    assert [
        (v["version"], v["operation"], v["actor"], v["reason"], v["title"], v["author"])
        for v in versions
    ] == [
        (1, "insert", "alice", None, "Emma", "Austen"),
        (2, "update", "bob", "full name", "Emma", "Jane Austen"),
        (3, "delete", "carol", None, "Emma", "Jane Austen"),
    ]
    assert versions[0]["valid_to"] == versions[1]["valid_from"]
    assert versions[2]["valid_from"] == versions[2]["valid_to"]


def test_the_book_as_it_was(client: TestClient) -> None:
    book_id = create(client, "alice", "Emma", "Austen")
    client.patch(f"/books/{book_id}", json={"title": "Persuasion"}, headers=as_user("bob"))
    first, second = history_of(client, book_id)
    then = client.get(f"/books/{book_id}/as-of", params={"at": first["valid_from"]})
    assert then.status_code == 200, then.json()
    assert then.json()["title"] == "Emma"
    now = client.get(f"/books/{book_id}/as-of", params={"at": second["valid_from"]})
    assert now.json()["title"] == "Persuasion"
    before = client.get(f"/books/{book_id}/as-of", params={"at": "1999-01-01T00:00:00Z"})
    assert before.status_code == 404


def test_writes_need_a_user_and_bad_times_are_refused(client: TestClient) -> None:
    response = client.post("/books", json={"title": "Anonymous", "author": "?"})
    assert response.status_code == 401
    book_id = create(client, "alice", "Emma", "Austen")
    assert client.patch(f"/books/{book_id}", json={"title": "x"}).status_code == 401
    assert [v["actor"] for v in history_of(client, book_id)] == ["alice"]
    naive = client.get(f"/books/{book_id}/as-of", params={"at": "2030-01-01T00:00:00"})
    assert naive.status_code == 400
    assert "naive" in naive.json()["detail"]
    assert client.get("/books/999/history").status_code == 404
