"""A Flask application whose every change is attributed to the user who asked for it.

Each request says who sends it in the header ``X-User`` (a real application takes the user from
its authentication) and, optionally, why in ``X-Reason``. A ``before_request`` hook enters
``changes_by()`` with those values and a ``teardown_request`` hook leaves it, so every change the
request's code flushes, through objects or through a bulk ``UPDATE``, is attributed to that user on
its ``chronicle_transaction`` row, which its history versions and change-log entries point to. The
values live in a context variable: requests served at the same time by different threads (or
asyncio tasks) do not mix.

Endpoints (JSON in, JSON out; writes need ``X-User``):

- ``POST /articles`` with ``{"title": ..., "body": ...}``: create an article;
- ``GET /articles/<id>``: read it;
- ``PATCH /articles/<id>`` with some of ``title``, ``body``: change it;
- ``POST /articles/archive`` with ``{"ids": [...]}``: archive several with one bulk ``UPDATE``;
- ``GET /articles/<id>/changes``: its change log, each entry with who, why and what changed.

Run it (Flask is the extra ``examples``) with a SQLite file in the current directory, or on a
database of your own; it serves on http://127.0.0.1:5000 and creates its tables,
``flask_article`` and ``flask_article_history``, and the library's two, if they are missing::

    pip install -e '.[examples]'
    python examples/flask_app.py                      # sqlite:///flask_example.db
    python examples/flask_app.py postgresql+psycopg://user@localhost/mydb --port 8000

and talk to it::

    curl -X POST -H 'X-User: alice' -H 'Content-Type: application/json' \\
         -d '{"title": "Hello", "body": "First post"}' http://127.0.0.1:5000/articles
    curl -X PATCH -H 'X-User: bob' -H 'X-Reason: typo' -H 'Content-Type: application/json' \\
         -d '{"title": "Hello, world"}' http://127.0.0.1:5000/articles/1
    curl http://127.0.0.1:5000/articles/1/changes

Tests use it through ``create_app(database_url)`` and Flask's test client.
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from typing import Any, cast

from flask import Flask, Response, g, jsonify, request
from sqlalchemy import CursorResult, String, Text, create_engine, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from sqlalchemy_chronicle import ChangeLog, Transaction, Versioned, changelog_for, changes_by


class Base(DeclarativeBase):
    pass


class Article(Versioned, Base):
    __tablename__ = "flask_article"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="draft")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "body": self.body, "status": self.status}


EDITABLE = ("title", "body")
READS = ("GET", "HEAD", "OPTIONS")


def create_app(database_url: str) -> Flask:
    """The application, on the database at ``database_url`` (its tables are created if missing)."""
    app = Flask(__name__)
    engine = create_engine(database_url)
    Base.metadata.create_all(engine)
    sessions = sessionmaker(engine)
    app.extensions["chronicle_example"] = {"engine": engine, "sessions": sessions}

    def session() -> Session:
        """The request's session, opened on first use and closed when the request ends."""
        if "session" not in g:
            g.session = sessions()
        return g.session  # type: ignore[no-any-return]

    # Attribution: from the start of each request to its end.

    @app.before_request
    def attribute_request() -> tuple[Response, int] | None:
        user = request.headers.get("X-User")
        if user is None and request.method not in READS:
            return jsonify(error="say who you are in the X-User header"), 401
        g.attribution = ExitStack()
        g.attribution.enter_context(
            changes_by(
                actor=user,
                reason=request.headers.get("X-Reason"),
                request=f"{request.method} {request.path}",
            )
        )
        return None

    @app.teardown_request
    def end_attribution(error: BaseException | None) -> None:
        attribution = g.pop("attribution", None)
        if attribution is not None:
            attribution.close()

    @app.teardown_appcontext
    def close_session(error: BaseException | None) -> None:
        opened = g.pop("session", None)
        if opened is not None:
            opened.close()

    # The endpoints: ordinary ORM code, no mention of who or why.

    @app.post("/articles")
    def create_article() -> tuple[Response, int]:
        data = request.get_json(silent=True) or {}
        if not isinstance(data.get("title"), str):
            return jsonify(error="a title is needed"), 400
        article = Article(title=data["title"], body=str(data.get("body", "")))
        session().add(article)
        session().commit()
        return jsonify(article.to_json()), 201

    @app.get("/articles/<int:article_id>")
    def read_article(article_id: int) -> tuple[Response, int]:
        article = session().get(Article, article_id)
        if article is None:
            return jsonify(error="no such article"), 404
        return jsonify(article.to_json()), 200

    @app.patch("/articles/<int:article_id>")
    def change_article(article_id: int) -> tuple[Response, int]:
        article = session().get(Article, article_id)
        if article is None:
            return jsonify(error="no such article"), 404
        data = request.get_json(silent=True) or {}
        for field in EDITABLE:
            if isinstance(data.get(field), str):
                setattr(article, field, data[field])
        session().commit()
        return jsonify(article.to_json()), 200

    @app.post("/articles/archive")
    def archive_articles() -> tuple[Response, int]:
        ids = (request.get_json(silent=True) or {}).get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            return jsonify(error="a list of ids is needed"), 400
        # A bulk statement: versioned and logged like object changes, attributed the same way.
        archive = update(Article).where(Article.id.in_(ids)).values(status="archived")
        result = cast("CursorResult[Any]", session().execute(archive))
        session().commit()
        return jsonify(matched=result.rowcount), 200

    @app.get("/articles/<int:article_id>/changes")
    def article_changes(article_id: int) -> tuple[Response, int]:
        query = (
            changelog_for(Article, article_id)
            .join(ChangeLog.transaction)
            .add_columns(Transaction.actor, Transaction.reason, Transaction.meta)
        )
        entries = [
            {
                "transaction": entry.transaction_id,
                "at": entry.timestamp.isoformat(),
                "event": entry.event_type,
                "actor": actor,
                "reason": reason,
                "request": (meta or {}).get("request"),
                "changes": entry.changes,
            }
            for entry, actor, reason, meta in session().execute(query)
        ]
        if not entries:
            return jsonify(error="no such article"), 404
        return jsonify(entries), 200

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url", nargs="?", default="sqlite:///flask_example.db")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    create_app(args.database_url).run(host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
