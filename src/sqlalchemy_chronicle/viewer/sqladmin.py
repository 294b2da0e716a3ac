"""The history viewer in sqladmin (Starlette and FastAPI): one line on an existing admin.

::

    from sqlalchemy_chronicle.viewer.sqladmin import add_history_views

    add_history_views(admin, [Book, Author])

adds a "History" entry to the admin's menu with the change log of each class's table, each
row's timeline, diffs, the row as of a time and, when switched on, restores
(``add_history_views(admin, [Book], can_restore=True)``). The pages are computed by
:class:`~sqlalchemy_chronicle.viewer.core.HistoryViewer`; this module routes them under the admin
(``/admin/history/<table>/...``), reads the database through the admin's own session maker
(a synchronous one in a worker thread, an async one through ``run_sync``) and wraps them in
sqladmin's layout.

Permissions are sqladmin's: every page of the view is gated by :meth:`HistoryView.is_accessible`
(like any sqladmin view; subclass :class:`HistoryView` and pass ``view_class=`` to change it), and
restoring is read-only by default: it needs ``can_restore=True`` and then
:meth:`HistoryView.can_restore_for` to allow the request. :meth:`HistoryView.actor_of` names the
user a restore is attributed to.

The restore form carries a CSRF token, kept in the request's session where the application has
Starlette's ``SessionMiddleware`` (as sqladmin's authentication has), else in a cookie of its own
(``SameSite=Strict``, ``HttpOnly``) signed with the ``secret_key`` given to
:func:`add_history_views`: a cookie another site planted (a sibling subdomain can) has no valid
signature. A restore posted without the token, or with another, answers 403 and changes nothing;
restoring without a session and without a secret key is refused as a configuration error.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from typing import Any, ClassVar, Final
from urllib.parse import urlencode

from jinja2 import BaseLoader, ChoiceLoader, PackageLoader
from sqladmin import Admin, BaseView, expose
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..errors import ConfigurationError
from .core import CSRF_FIELD, HistoryViewer, Link, Page

__all__ = ["HistoryView", "add_history_views"]

_CSRF_KEY: Final = "_chronicle_csrf"
"""The name of the restore form's CSRF token in the session, or of its cookie."""


class HistoryView(BaseView):
    """The history pages as one sqladmin view; made by :func:`add_history_views`."""

    name = "History"
    icon = "fa-solid fa-clock-rotate-left"

    viewer: ClassVar[HistoryViewer]
    can_restore: ClassVar[bool] = False
    """Whether restoring is switched on at all (off: the viewer is read-only)."""
    secret_key: ClassVar[bytes | None] = None
    """The key that signs the CSRF cookie, where the request has no session."""

    def can_restore_for(self, request: Request) -> bool:
        """Whether this request may restore; by default :attr:`can_restore`."""
        return self.can_restore

    def actor_of(self, request: Request) -> str | None:
        """Who a restore made by this request is attributed to; by default nobody."""
        return None

    @expose("/history", identity="chronicle-index")
    async def history_index(self, request: Request) -> Response:
        """The list of the classes shown."""
        return await self._answer(request, "index")

    @expose("/history/{model}", identity="chronicle-changelog")
    async def history_changelog(self, request: Request) -> Response:
        """A table's change log."""
        return await self._answer(request, "changelog")

    @expose("/history/{model}/timeline", identity="chronicle-timeline")
    async def history_timeline(self, request: Request) -> Response:
        """A row's timeline."""
        return await self._answer(request, "timeline")

    @expose("/history/{model}/diff", identity="chronicle-diff")
    async def history_diff(self, request: Request) -> Response:
        """Two versions of a row side by side."""
        return await self._answer(request, "diff")

    @expose("/history/{model}/as-of", identity="chronicle-as_of")
    async def history_as_of(self, request: Request) -> Response:
        """A row as of a time."""
        return await self._answer(request, "as_of")

    @expose("/history/{model}/restore", methods=["GET", "POST"], identity="chronicle-restore")
    async def history_restore(self, request: Request) -> Response:
        """The confirmation of a restore (GET) and the restore (POST)."""
        return await self._answer(request, "restore")

    async def _answer(self, request: Request, page: str) -> Response:
        params: dict[str, str | None] = {**request.query_params, **request.path_params}
        link = _linker(request)
        can_restore = self.can_restore_for(request)
        post = request.method == "POST"
        actor = self.actor_of(request)
        restoring = page == "restore" and can_restore
        cookie_key = _cookie_key(request, self.secret_key) if restoring else None
        kept = _kept_token(request, cookie_key) if restoring else None
        made = secrets.token_urlsafe(32) if restoring and not post and not kept else None
        sent = (await request.form()).get(CSRF_FIELD) if post else None

        def work(session: Session) -> Page:
            return self.viewer.respond(
                session,
                page,
                params,
                link,
                can_restore=can_restore,
                post=post,
                actor=actor,
                csrf_token=kept or made,
                sent_token=sent if isinstance(sent, str) else None,
            )

        admin = self._admin_ref
        if admin.is_async:
            async with admin.session_maker() as async_session:
                answer: Page = await async_session.run_sync(work)
        else:

            def in_thread() -> Page:
                with admin.session_maker() as session:
                    return work(session)

            answer = await run_in_threadpool(in_thread)
        response = await self.templates.TemplateResponse(
            request,
            "chronicle/sqladmin.html",
            {"title": answer.title, "subtitle": "History", "body": answer.body},
            status_code=answer.status,
        )
        if made is not None:
            _keep_token(request, response, made, cookie_key)
        return response


def _cookie_key(request: Request, secret_key: bytes | None) -> bytes | None:
    """The key that signs the CSRF cookie; None where the token is kept in the session.

    :raises ConfigurationError: neither a session nor a secret key.
    """
    if "session" in request.scope:
        return None
    if secret_key is None:
        raise ConfigurationError(
            "restoring in the history viewer needs Starlette's SessionMiddleware or "
            "add_history_views(..., secret_key=...), which signs its CSRF cookie"
        )
    return secret_key


def _kept_token(request: Request, cookie_key: bytes | None) -> str | None:
    """The user's CSRF token: in the session where there is one, else in the signed cookie."""
    if cookie_key is None:
        found = request.session.get(_CSRF_KEY)
        return found if isinstance(found, str) and found else None
    token, _, signature = request.cookies.get(_CSRF_KEY, "").rpartition(".")
    if token and hmac.compare_digest(signature, _signature(cookie_key, token)):
        return token
    return None


def _keep_token(request: Request, response: Response, token: str, cookie_key: bytes | None) -> None:
    if cookie_key is None:
        request.session[_CSRF_KEY] = token
    else:
        path = str(request.url_for("admin:index").path)
        response.set_cookie(
            _CSRF_KEY,
            f"{token}.{_signature(cookie_key, token)}",
            path=path,
            httponly=True,
            samesite="strict",
            secure=request.url.is_secure,
        )


def _signature(secret_key: bytes, token: str) -> str:
    return hmac.new(secret_key, token.encode(), hashlib.sha256).hexdigest()


def _linker(request: Request) -> Link:
    def link(target: str, /, model: str | None = None, **query: Any) -> str:
        path = {"model": model} if model is not None else {}
        url = str(request.url_for(f"admin:view-chronicle-{target}", **path))
        shown = {name: value for name, value in query.items() if value is not None}
        return f"{url}?{urlencode(shown)}" if shown else url

    return link


def add_history_views(
    admin: Admin,
    models: Sequence[type[Any]],
    *,
    can_restore: bool = False,
    page_size: int = 50,
    view_class: type[HistoryView] = HistoryView,
    secret_key: str | bytes | None = None,
) -> type[HistoryView]:
    """Add the history viewer of ``models`` (versioned classes) to ``admin``; returns the view.

    :param can_restore: switch restores on (they are still asked of
        :meth:`HistoryView.can_restore_for` per request); off, the viewer only reads.
    :param page_size: versions or change-log entries per page.
    :param view_class: a subclass of :class:`HistoryView` whose ``is_accessible``,
        ``can_restore_for`` or ``actor_of`` say who may do what.
    :param secret_key: the server's secret that signs the restore form's CSRF cookie, needed to
        restore where the application has no ``SessionMiddleware`` (which keeps the token in
        the session instead); the same in every worker process of the application.
    """
    view = type(
        view_class.__name__,
        (view_class,),
        {
            "viewer": HistoryViewer(models, page_size=page_size),
            "can_restore": can_restore,
            "secret_key": secret_key.encode() if isinstance(secret_key, str) else secret_key,
            "__module__": view_class.__module__,
        },
    )
    environment = admin.templates.env
    loaders: list[BaseLoader] = [PackageLoader("sqlalchemy_chronicle.viewer", "templates")]
    if environment.loader is not None:
        loaders.insert(0, environment.loader)
    environment.loader = ChoiceLoader(loaders)
    admin.add_base_view(view)
    return view
