"""A Flask-Admin admin with the history viewer: one line on an existing admin.

Two versioned classes, authors and books, get Flask-Admin's ordinary list and edit pages; the line
``admin.add_view(HistoryView([Author, Book], session=sessions, can_restore=True))`` adds the
"History" pages: each table's change log, each row's timeline, diffs of any two versions, the
row as of a time, and restores (switched on here; the viewer is read-only by default).

Run it (the extra ``flask-admin`` brings Flask-Admin) on a SQLite file in the current directory,
or on the database named by ``CHRONICLE_EXAMPLE_URL``; it creates its tables (``fa_author``,
``fa_book``, their history tables and the library's two) and a little history if they are empty,
and serves http://127.0.0.1:5000/admin/history/::

    pip install -e '.[flask-admin]'
    python examples/flask_admin_app.py
    export CHRONICLE_EXAMPLE_URL=postgresql+psycopg://user@localhost/mydb
    python examples/flask_admin_app.py

Its starting history comes from ``chronicle_example_seed.py``, next to it. Tests build it with
``create_app(database_url)`` and serve it with werkzeug in a thread.
"""

from __future__ import annotations

import os
import warnings

from chronicle_example_seed import seed_library
from flask import Flask
from flask_admin import Admin
from flask_admin.contrib.sqla import ModelView
from sqlalchemy import ForeignKey, Numeric, String, create_engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    scoped_session,
    sessionmaker,
)

from sqlalchemy_chronicle import Versioned, use_sqlite_savepoints
from sqlalchemy_chronicle.viewer.flask_admin import HistoryView

DEFAULT_URL = "sqlite:///flask_admin_example.db"


class Base(DeclarativeBase):
    pass


class Author(Versioned, Base):
    __tablename__ = "fa_author"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class Book(Versioned, Base):
    __tablename__ = "fa_book"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    isbn: Mapped[str] = mapped_column(String(20), unique=True)
    price: Mapped[float] = mapped_column(Numeric(8, 2))
    author_id: Mapped[int] = mapped_column(ForeignKey("fa_author.id"))


class ExampleHistoryView(HistoryView):
    """Restores are attributed to the admin; a real application names its logged-in user."""

    def actor_of(self) -> str | None:
        return "admin"


def create_app(database_url: str | None = None) -> Flask:
    """The application on ``database_url`` (default: ``CHRONICLE_EXAMPLE_URL`` or SQLite)."""
    url = database_url or os.environ.get("CHRONICLE_EXAMPLE_URL", DEFAULT_URL)
    engine = create_engine(url)
    use_sqlite_savepoints(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        seed_library(session, Author, Book)
    sessions = scoped_session(sessionmaker(engine))
    app = Flask(__name__)
    app.secret_key = "example"
    admin = Admin(app, name="Library admin")
    with warnings.catch_warnings():
        # Flask-Admin 2 prefers a Flask-SQLAlchemy object; a plain scoped session still works.
        warnings.filterwarnings("ignore", "Passing a session object", DeprecationWarning)
        admin.add_view(ModelView(Author, sessions))
        admin.add_view(ModelView(Book, sessions))
    admin.add_view(ExampleHistoryView([Author, Book], session=sessions, can_restore=True))

    @app.teardown_appcontext
    def remove_session(error: BaseException | None) -> None:
        sessions.remove()

    app.extensions["chronicle_example"] = {"engine": engine}
    return app


if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))
