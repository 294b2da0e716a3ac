"""The history viewer in Flask-Admin: one line on an existing admin.

::

    from sqlalchemy_chronicle.viewer.flask_admin import HistoryView

    admin.add_view(HistoryView([Book, Author], session=db_session))

adds a "History" entry to the admin's menu with the change log of each class's table, each
row's timeline, diffs, the row as of a time and, when switched on, restores
(``HistoryView([Book], session=..., can_restore=True)``). ``session`` is where the pages read:
an :class:`~sqlalchemy.Engine`, a :class:`~sqlalchemy.orm.sessionmaker`, or a
``scoped_session`` such as Flask-SQLAlchemy's ``db.session``; each request opens a session and
closes it. The pages are computed by :class:`~sqlalchemy_chronicle.viewer.core.HistoryViewer`;
this module routes them under the view's URL (``/admin/history/<table>/...``) and wraps them in
Flask-Admin's layout.

Permissions are Flask-Admin's: every page is gated by :meth:`HistoryView.is_accessible`
(override it in a subclass, as for any Flask-Admin view), and restoring is read-only by default:
it needs ``can_restore=True`` and then :meth:`HistoryView.can_restore_for` to allow the request.
:meth:`HistoryView.actor_of` names the user a restore is attributed to.

The restore form carries a CSRF token kept in Flask's ``session`` (so the application needs a
``secret_key``, as Flask-Admin's own forms do: without one, the restore page raises
:class:`~sqlalchemy_chronicle.errors.ConfigurationError`; it is checked at the request, as Flask
takes the key until the first one), and a restore posted without it, or with another, answers 403
and changes nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar, cast

from flask import request, session, url_for
from flask.sessions import NullSession
from flask_admin import Admin, BaseView, expose
from jinja2 import BaseLoader, ChoiceLoader, PackageLoader
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ..errors import ConfigurationError
from .core import CSRF_FIELD, HistoryViewer

__all__ = ["HistoryView"]

_CSRF_KEY: Final = "_chronicle_csrf"
"""Where Flask's session keeps the restore form's CSRF token."""

_View = TypeVar("_View", bound=Callable[..., Any])
route = cast("Callable[..., Callable[[_View], _View]]", expose)
"""Flask-Admin's ``expose``, typed (Flask-Admin ships no type information)."""


class HistoryView(BaseView):  # type: ignore[misc]
    """The history pages of ``models`` (versioned classes) as one Flask-Admin view.

    :param session: an engine, a session maker or a scoped session to read (and restore) with.
    :param can_restore: switch restores on (they are still asked of :meth:`can_restore_for`
        per request); off, the viewer only reads.
    :param page_size: versions or change-log entries per page.

    The other keyword arguments are Flask-Admin's (``name``, ``category``, ``endpoint``, ``url``,
    ...); the defaults are "History", ``chronicle_history`` and ``/admin/history``.
    """

    def __init__(
        self,
        models: Sequence[type[Any]],
        *,
        session: Engine | Callable[[], Session],
        can_restore: bool = False,
        page_size: int = 50,
        name: str = "History",
        endpoint: str = "chronicle_history",
        url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, endpoint=endpoint, url=url or "history", **kwargs)
        self.viewer = HistoryViewer(models, page_size=page_size)
        self.can_restore = can_restore
        self._sessions: Callable[[], Session] = (
            (lambda: Session(session)) if isinstance(session, Engine) else session
        )

    def can_restore_for(self) -> bool:
        """Whether the current request may restore; by default ``can_restore``."""
        return bool(self.can_restore)

    def actor_of(self) -> str | None:
        """Who a restore made by the current request is attributed to; by default nobody."""
        return None

    def create_blueprint(self, admin: Admin) -> Any:
        """Flask-Admin's blueprint, which also finds the viewer's templates."""
        blueprint = super().create_blueprint(admin)
        loaders: list[BaseLoader] = [PackageLoader("sqlalchemy_chronicle.viewer", "templates")]
        if blueprint.jinja_loader is not None:
            loaders.insert(0, blueprint.jinja_loader)
        blueprint.jinja_loader = ChoiceLoader(loaders)
        return blueprint

    @route("/")
    def index(self) -> Any:
        """The list of the classes shown."""
        return self._answer("index")

    @route("/<model>/")
    def changelog(self, model: str) -> Any:
        """A table's change log."""
        return self._answer("changelog", model)

    @route("/<model>/timeline")
    def timeline(self, model: str) -> Any:
        """A row's timeline."""
        return self._answer("timeline", model)

    @route("/<model>/diff")
    def diff(self, model: str) -> Any:
        """Two versions of a row side by side."""
        return self._answer("diff", model)

    @route("/<model>/as-of")
    def as_of(self, model: str) -> Any:
        """A row as of a time."""
        return self._answer("as_of", model)

    @route("/<model>/restore", methods=("GET", "POST"))
    def restore(self, model: str) -> Any:
        """The confirmation of a restore (GET) and the restore (POST)."""
        return self._answer("restore", model)

    def _answer(self, page: str, model: str | None = None) -> Any:
        params: dict[str, str | None] = {**request.args.to_dict(), "model": model}
        post = request.method == "POST"
        can_restore = self.can_restore_for()
        restoring = page == "restore" and can_restore
        database = self._sessions()
        try:
            answer = self.viewer.respond(
                database,
                page,
                params,
                self._link,
                can_restore=can_restore,
                post=post,
                actor=self.actor_of(),
                csrf_token=_csrf_token(create=not post) if restoring else None,
                sent_token=request.form.get(CSRF_FIELD) if post else None,
            )
        finally:
            database.close()
        html = self.render("chronicle/flask_admin.html", title=answer.title, body=answer.body)
        return html, answer.status

    def _link(self, target: str, /, model: str | None = None, **query: Any) -> str:
        shown = {name: value for name, value in query.items() if value is not None}
        if model is not None:
            shown["model"] = model
        return str(url_for(f"{self.endpoint}.{target}", **shown))


def _csrf_token(*, create: bool) -> str | None:
    """The user's CSRF token, from Flask's session; made there (``create``) when it has none.

    :raises ConfigurationError: Flask has no session, as the application has no ``secret_key``.
    """
    if isinstance(session, NullSession):
        raise ConfigurationError(
            "restoring in the history viewer keeps its CSRF token in Flask's session, which "
            "needs the application's secret_key (app.secret_key = ...)"
        )
    token: str | None = session.get(_CSRF_KEY)
    if token is None and create:
        token = session[_CSRF_KEY] = secrets.token_urlsafe(32)
    return token
