"""A sqladmin (Starlette) admin with the history viewer: one line on an existing admin.

Two versioned classes, authors and books, get sqladmin's ordinary list and edit pages; the line
``add_history_views(admin, [Author, Book], can_restore=True)`` adds the "History" pages: each
table's change log, each row's timeline, diffs of any two versions, the row as of a time, and
restores (switched on here; the viewer is read-only by default).

Run it (the extra ``sqladmin`` brings sqladmin and uvicorn) on a SQLite file in the current
directory, or on the database named by ``CHRONICLE_EXAMPLE_URL``; it creates its tables
(``sa_author``, ``sa_book``, their history tables and the library's two) and a little history
if they are empty, and serves http://127.0.0.1:8000/admin/history::

    pip install -e '.[sqladmin]'
    python examples/sqladmin_app.py
    export CHRONICLE_EXAMPLE_URL=postgresql+psycopg://user@localhost/mydb
    python examples/sqladmin_app.py

Its starting history comes from ``chronicle_example_seed.py``, next to it. Tests build it with
``create_app(database_url)`` and serve it with uvicorn in a thread.
"""

from __future__ import annotations

import os
import secrets
from typing import ClassVar

import uvicorn
from chronicle_example_seed import seed_library
from sqladmin import Admin, ModelView
from sqlalchemy import ForeignKey, Numeric, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from starlette.applications import Starlette
from starlette.requests import Request

from sqlalchemy_chronicle import Versioned, use_sqlite_savepoints
from sqlalchemy_chronicle.viewer.sqladmin import HistoryView, add_history_views

DEFAULT_URL = "sqlite:///sqladmin_example.db"


class Base(DeclarativeBase):
    pass


class Author(Versioned, Base):
    __tablename__ = "sa_author"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class Book(Versioned, Base):
    __tablename__ = "sa_book"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    isbn: Mapped[str] = mapped_column(String(20), unique=True)
    price: Mapped[float] = mapped_column(Numeric(8, 2))
    author_id: Mapped[int] = mapped_column(ForeignKey("sa_author.id"))


class AuthorAdmin(ModelView, model=Author):
    column_list: ClassVar = [Author.id, Author.name]


class BookAdmin(ModelView, model=Book):
    column_list: ClassVar = [Book.id, Book.title, Book.isbn, Book.price]


class ExampleHistoryView(HistoryView):
    """Restores are attributed to the admin; a real application names its logged-in user."""

    def actor_of(self, request: Request) -> str | None:
        return "admin"


def create_app(database_url: str | None = None) -> Starlette:
    """The application on ``database_url`` (default: ``CHRONICLE_EXAMPLE_URL`` or SQLite)."""
    url = database_url or os.environ.get("CHRONICLE_EXAMPLE_URL", DEFAULT_URL)
    engine = create_engine(url)
    use_sqlite_savepoints(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        seed_library(session, Author, Book)
    app = Starlette()
    admin = Admin(app, engine, title="Library admin")
    admin.add_view(AuthorAdmin)
    admin.add_view(BookAdmin)
    add_history_views(
        admin,
        [Author, Book],
        can_restore=True,
        view_class=ExampleHistoryView,
        # signs the restore form's CSRF cookie: the same in every process that serves the admin
        secret_key=os.environ.get("CHRONICLE_EXAMPLE_SECRET") or secrets.token_hex(32),
    )
    app.state.engine = engine
    return app


if __name__ == "__main__":
    uvicorn.run(create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
