"""What the history viewer shows, whatever admin framework shows it.

The adapters (:mod:`.sqladmin`, :mod:`.flask_admin`) only route requests, check permissions and
wrap pages in their framework's layout; every page is computed and rendered here, by a
:class:`HistoryViewer` holding the versioned classes it shows:

* **the change log** of a class's table (:meth:`HistoryViewer.change_log`), newest first, filtered
  by actor, operation and time range, a page at a time by keyset on the entry's id (a page after
  the first names the last id of the previous one, ``before=``);
* **a row's timeline** (:meth:`HistoryViewer.timeline`): every version, newest first, with its
  time, operation, actor, reason and the fields it changed, a page at a time; versions are
  numbered 1, 2, ... per row, so page ``n`` is a range of version numbers read through the history
  table's primary key;
* **a diff** of any two versions of a row (:meth:`HistoryViewer.diff`), field by field;
* **the row as of a time** (:meth:`HistoryViewer.as_of`), through
  :func:`~sqlalchemy_chronicle.query_as_of`;
* **a restore** of a version (:meth:`HistoryViewer.restore_preview`, then
  :meth:`HistoryViewer.restore`), which shows the diff it will apply before it applies it through
  :func:`~sqlalchemy_chronicle.restore`.

Every query reads through an index (the history table's primary key ``(<key>, version)``, the
change log's primary key, its timestamp index, the transaction's primary key), with a limit: no
page loads a whole table or a whole history.

Request parameters arrive as text and are checked here: a class, key, version, page or time that
does not fit raises a :class:`ViewerError` (or another
:class:`~sqlalchemy_chronicle.ChronicleError`) whose message is shown to the user, with the HTTP
status :func:`status_of` gives it, before any SQL runs where that can be told beforehand.

Times are shown and read in UTC: the date-time pickers (``<input type="datetime-local">``) send
a time without an offset, which the viewer reads as UTC; an ISO-8601 time with an offset is read
as given.
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pendulum
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import Column, ColumnElement, func, select
from sqlalchemy.orm import Session, with_polymorphic

from ..capture.attribution import changes_by
from ..errors import (
    ChronicleError,
    InvalidKeyError,
    InvalidTimeError,
    RestoreError,
)
from ..instants import parse_time
from ..read.query import changes, check_key, normalize_key, query_as_of, spec_of
from ..recovery.api import restore
from ..schema.columns import stamp
from ..schema.history import HistorySpec, Version
from ..schema.tables import INTEGER_TEXT, ChangeLog, Transaction, format_row_id, parse_row_id

__all__ = [
    "CSRF_FIELD",
    "OPERATIONS",
    "PAGES",
    "AsOfView",
    "ChangeLogEntry",
    "ChangeLogFilters",
    "ChangeLogPage",
    "Diff",
    "FieldDiff",
    "HistoryViewer",
    "Link",
    "Page",
    "PageNotFound",
    "RestoreForbidden",
    "RestoreOutcome",
    "TimelineEntry",
    "TimelinePage",
    "ViewerError",
    "status_of",
]

OPERATIONS: Final = ("INSERT", "UPDATE", "DELETE", "RESTORE")
"""The change log's event types, which its operation filter takes."""

CSRF_FIELD: Final = "csrf_token"
"""The restore form's field that carries the CSRF token (see :meth:`HistoryViewer.respond`)."""

MAX_VERSION: Final = 2**31 - 1
"""The largest version number a history table holds (an ``INTEGER`` column)."""
MAX_ID: Final = 2**63 - 1
"""The largest id the change log holds (a ``BIGINT`` column)."""

Link = Callable[..., str]
"""Builds the URL of a viewer page: ``link(name, model=..., **query)``, given by the adapter.

``name`` is one of :data:`PAGES` and must be positional-only, since ``page`` is also a query
parameter (the timeline's page number).
"""


class ViewerError(ChronicleError):
    """A request the history viewer cannot answer: bad input, shown to the user as its message.

    :attr:`status` is the HTTP status of the page that says so (400 unless a subclass says else).
    """

    status: int = 400


class PageNotFound(ViewerError, LookupError):
    """The class, row, version or page asked for does not exist (HTTP 404)."""

    status = 404


class RestoreForbidden(ViewerError, PermissionError):
    """Restoring is not allowed to this user, or not switched on for this viewer (HTTP 403)."""

    status = 403


def status_of(error: ChronicleError) -> int:
    """The HTTP status of the page that shows ``error``."""
    if isinstance(error, ViewerError):
        return error.status
    if isinstance(error, RestoreError):
        return 409
    return 400


# -- what the pages show -----------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    """One version of a row, as the timeline lists it."""

    version: int
    valid_from: pendulum.DateTime
    valid_to: pendulum.DateTime | None
    operation: str
    actor: str | None
    reason: str | None
    restored_from: int | None
    changed: tuple[str, ...]
    """The fields this version changed from the one before (all of them for the first)."""


@dataclass(frozen=True)
class TimelinePage:
    """One page of a row's timeline, newest version first."""

    model: str
    key: str
    entries: list[TimelineEntry]
    page: int
    pages: int
    latest: int
    """The number of the row's newest version."""
    deleted: bool
    """Whether the row's newest version is a delete marker (the row is deleted now)."""


@dataclass(frozen=True)
class FieldDiff:
    """One field in two versions."""

    name: str
    old: Any
    new: Any
    changed: bool


@dataclass(frozen=True)
class Diff:
    """Two states of a row side by side; a side is None where the row did not exist."""

    model: str
    key: str
    old: TimelineEntry | None
    new: TimelineEntry | None
    fields: list[FieldDiff]

    @property
    def changed(self) -> list[str]:
        """The names of the fields that differ."""
        return [f.name for f in self.fields if f.changed]


@dataclass(frozen=True)
class AsOfView:
    """A row as it was at one time; :attr:`entry` is None when it did not exist then."""

    model: str
    key: str
    when: pendulum.DateTime
    entry: TimelineEntry | None
    values: list[tuple[str, Any]]


@dataclass(frozen=True)
class ChangeLogFilters:
    """The change log's filters, checked; None where the filter is not used."""

    actor: str | None = None
    operation: str | None = None
    since: pendulum.DateTime | None = None
    until: pendulum.DateTime | None = None
    before: int | None = None
    """Show entries older than this id (the keyset cursor of the pages after the first)."""

    def query(self) -> dict[str, str]:
        """The filters as the query parameters that ask for them (the cursor left out)."""
        found = {
            "actor": self.actor,
            "operation": self.operation,
            "since": _picker_value(self.since) if self.since else None,
            "until": _picker_value(self.until) if self.until else None,
        }
        return {name: value for name, value in found.items() if value}


@dataclass(frozen=True)
class ChangeLogEntry:
    """One change-log entry of the table, with its transaction's attribution."""

    id: int
    timestamp: pendulum.DateTime
    operation: str
    row_id: str
    actor: str | None
    reason: str | None
    changed: tuple[str, ...]


@dataclass(frozen=True)
class ChangeLogPage:
    """One page of a table's change log, newest first."""

    model: str
    entries: list[ChangeLogEntry]
    filters: ChangeLogFilters
    next_before: int | None
    """The cursor of the next (older) page, None on the last page."""


@dataclass(frozen=True)
class RestoreOutcome:
    """What a restore did: the row's new version, or the conflict that stopped it."""

    model: str
    key: str
    restored: int
    """The number of the version that was asked to be brought back."""
    new_version: int | None
    error: str | None


@dataclass(frozen=True)
class Page:
    """A page to send: its HTTP status, its title and its content (the framework adds the rest)."""

    status: int
    title: str
    body: Markup


PAGES: Final = ("index", "changelog", "timeline", "diff", "as_of", "restore")
"""The viewer's pages, by the names adapters route and :data:`Link` builds."""

_ERROR_TITLES: Final = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict"}


# -- parsing request parameters ---------------------------------------------------------------


def _bounded_int(text: str | None, what: str, *, low: int, high: int) -> int:
    if text is None or not INTEGER_TEXT.fullmatch(text.strip()):
        raise ViewerError(f"{what} must be a whole number; got {text!r}")
    value = int(text.strip())
    if not low <= value <= high:
        raise ViewerError(f"{what} must be between {low} and {high}; got {value}")
    return value


def _optional(text: str | None) -> str | None:
    return text.strip() or None if text is not None else None


def _request_time(text: str, what: str = "the time") -> pendulum.DateTime:
    """A time from a request parameter (see :func:`~sqlalchemy_chronicle.instants.parse_time`).

    Without an offset, as the date-time picker sends it, the time is UTC.
    """
    return parse_time(text, dt.timezone.utc, what=what)


def _picker_value(when: dt.datetime) -> str:
    """``when`` as the value of an ``<input type="datetime-local">`` (UTC, to the millisecond)."""
    utc = when.astimezone(dt.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}"


# -- the viewer ---------------------------------------------------------------------------------


def _library(entity: Any, root: HistorySpec, default: str) -> Any:
    """The attribute of ``entity`` for the library column called ``default`` by default."""
    return getattr(entity, root.columns.name(default))


@dataclass
class HistoryViewer:
    """The pages of the history viewer for a set of versioned classes.

    ``models`` are the classes shown, each under a slug that URLs use: its table's name, or its
    class name when another class shown has the same table (single-table inheritance).
    ``page_size`` is the number of versions or change-log entries on one page.
    """

    models: Sequence[type[Any]]
    page_size: int = 50
    _by_slug: dict[str, type[Any]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_slug = {}
        for model in self.models:
            slug = spec_of(model).tables[-1].live.name
            if slug in self._by_slug:
                slug = model.__name__
            self._by_slug[slug] = model

    # -- parameters

    @property
    def slugs(self) -> list[tuple[str, str]]:
        """(slug, class name) of every class shown, in the order given."""
        return [(slug, model.__name__) for slug, model in self._by_slug.items()]

    def model(self, slug: str) -> type[Any]:
        """The class shown under ``slug``; :class:`PageNotFound` when there is none."""
        try:
            return self._by_slug[slug]
        except KeyError:
            raise PageNotFound(f"the history viewer shows no table {slug!r}") from None

    def parse_key(self, model: type[Any], text: str | None) -> tuple[Any, ...]:
        """A primary key from a URL, as the identity tuple of ``model``.

        The key is written as the change log's ``row_id`` (read by
        :func:`~sqlalchemy_chronicle.schema.tables.parse_row_id`): the value, or a JSON array
        for a composite key. An integer no database column holds is no row (:class:`PageNotFound`).
        """
        spec = spec_of(model)
        if text is None or text == "":
            raise InvalidKeyError(f"which {model.__name__}? the key is missing")
        columns = [column for column in spec.mapper.primary_key if isinstance(column, Column)]
        values = parse_row_id(text, columns, table=model.__name__)
        for column, value in zip(columns, values, strict=True):
            if isinstance(value, int) and not -MAX_ID - 1 <= value <= MAX_ID:
                raise PageNotFound(f"there is no row with {column.name} {value}")
        normalized = normalize_key(spec, values)
        check_key(spec, normalized)
        return normalized

    def parse_filters(self, params: Mapping[str, str | None]) -> ChangeLogFilters:
        """The change log's filters, from the query parameters of the same names.

        ``actor``, ``operation``, ``since``, ``until`` (times) and ``before`` (the page cursor).
        """
        operation = _optional(params.get("operation"))
        if operation is not None:
            operation = operation.upper()
            if operation not in OPERATIONS:
                raise ViewerError(
                    f"the operation must be one of {', '.join(OPERATIONS)}; got {operation!r}"
                )
        since = _optional(params.get("since"))
        until = _optional(params.get("until"))
        before = _optional(params.get("before"))
        filters = ChangeLogFilters(
            actor=_optional(params.get("actor")),
            operation=operation,
            since=_request_time(since, "the start of the range") if since else None,
            until=_request_time(until, "the end of the range") if until else None,
            before=_bounded_int(before, "the page cursor", low=1, high=MAX_ID) if before else None,
        )
        if filters.since and filters.until and filters.since > filters.until:
            raise ViewerError("the time range ends before it starts")
        return filters

    @staticmethod
    def parse_page(text: str | None) -> int:
        """A page number from a query parameter (1 when missing)."""
        if text is None or text == "":
            return 1
        return _bounded_int(text, "the page number", low=1, high=MAX_VERSION)

    @staticmethod
    def parse_version(text: str | None, what: str = "the version") -> int:
        """A version number from a query parameter."""
        return _bounded_int(text, what, low=1, high=MAX_VERSION)

    # -- reading

    def _history(self, model: type[Any]) -> tuple[HistorySpec, Any]:
        root = spec_of(model).root_spec
        return root, with_polymorphic(root.history_class, "*")

    def _row_criteria(
        self, model: type[Any], key: tuple[Any, ...]
    ) -> tuple[HistorySpec, Any, list[ColumnElement[bool]]]:
        root, entity = self._history(model)
        criteria = [
            getattr(entity, name) == value for name, value in zip(root.pk_keys, key, strict=True)
        ]
        return root, entity, criteria

    def _latest(self, session: Session, model: type[Any], key: tuple[Any, ...]) -> int:
        root, entity, criteria = self._row_criteria(model, key)
        number = _library(entity, root, "version")
        latest: int | None = session.scalar(select(func.max(number)).where(*criteria))
        if latest is None:
            raise PageNotFound(
                f"{model.__name__} {format_row_id(key)} has no history: no such row was ever "
                "recorded"
            )
        return latest

    def _versions(
        self,
        session: Session,
        model: type[Any],
        key: tuple[Any, ...],
        *criteria: ColumnElement[bool],
        limit: int,
    ) -> list[tuple[Version[Any], str | None, str | None]]:
        """Versions of one row with their actor and reason, newest first."""
        root, entity, row = self._row_criteria(model, key)
        transaction_id = _library(entity, root, "transaction_id")
        query = (
            select(entity, Transaction.actor, Transaction.reason)
            .outerjoin(Transaction, Transaction.id == transaction_id)
            .where(*row, *criteria)
            .order_by(_library(entity, root, "version").desc())
            .limit(limit)
            .execution_options(populate_existing=True)
        )
        return [(v, actor, reason) for v, actor, reason in session.execute(query)]

    def _version(
        self, session: Session, model: type[Any], key: tuple[Any, ...], number: int
    ) -> tuple[Version[Any], str | None, str | None]:
        root, entity, _ = self._row_criteria(model, key)
        found = self._versions(
            session, model, key, _library(entity, root, "version") == number, limit=1
        )
        if not found:
            latest = self._latest(session, model, key)
            raise PageNotFound(
                f"{model.__name__} {format_row_id(key)} has no version {number} "
                f"(its versions are 1 to {latest})"
            )
        return found[0]

    def _fields(self, model: type[Any]) -> list[str]:
        spec = spec_of(model)
        return [p.key for p in spec.mapper.column_attrs if p.key in spec.tracked_keys]

    def _entry(
        self,
        version: Version[Any],
        actor: str | None,
        reason: str | None,
        previous: Version[Any] | None,
        first: bool,
    ) -> TimelineEntry:
        changed: Iterable[str]
        if stamp(version, "operation") == "delete" or (previous is None and not first):
            changed = ()
        else:
            changed = changes(previous, version)
        return TimelineEntry(
            version=stamp(version, "version"),
            valid_from=stamp(version, "valid_from"),
            valid_to=stamp(version, "valid_to"),
            operation=stamp(version, "operation"),
            actor=actor,
            reason=reason,
            restored_from=stamp(version, "restored_from"),
            changed=tuple(changed),
        )

    def timeline(
        self, session: Session, model: type[Any], key: tuple[Any, ...], page: int = 1
    ) -> TimelinePage:
        """Page ``page`` of a row's versions, newest first.

        One more version than the page shows is read, to tell what the page's oldest one changed.
        """
        latest = self._latest(session, model, key)
        pages = max(1, math.ceil(latest / self.page_size))
        if page > pages:
            raise PageNotFound(
                f"the timeline of {model.__name__} {format_row_id(key)} has {pages} "
                f"page{'s' if pages != 1 else ''}; there is no page {page}"
            )
        root, entity, _ = self._row_criteria(model, key)
        top = latest - (page - 1) * self.page_size
        newest = _library(entity, root, "version") <= top
        rows = self._versions(session, model, key, newest, limit=self.page_size + 1)
        entries = []
        for index, (version, actor, reason) in enumerate(rows[: self.page_size]):
            previous = rows[index + 1][0] if index + 1 < len(rows) else None
            first = stamp(version, "version") == 1
            entries.append(self._entry(version, actor, reason, previous, first))
        return TimelinePage(
            model=model.__name__,
            key=format_row_id(key),
            entries=entries,
            page=page,
            pages=pages,
            latest=latest,
            deleted=bool(rows) and page == 1 and stamp(rows[0][0], "operation") == "delete",
        )

    def _values(self, model: type[Any], version: Version[Any] | None) -> dict[str, Any]:
        if version is None or stamp(version, "operation") == "delete":
            return {}
        return {name: getattr(version, name, None) for name in self._fields(model)}

    def _diff(
        self,
        model: type[Any],
        key: tuple[Any, ...],
        old: tuple[Version[Any], str | None, str | None] | None,
        new: tuple[Version[Any], str | None, str | None] | None,
    ) -> Diff:
        before = self._values(model, old[0] if old else None)
        after = self._values(model, new[0] if new else None)
        fields = [
            FieldDiff(
                name,
                before.get(name),
                after.get(name),
                (name in before) != (name in after) or before.get(name) != after.get(name),
            )
            for name in self._fields(model)
        ]
        return Diff(
            model=model.__name__,
            key=format_row_id(key),
            old=self._entry(old[0], old[1], old[2], None, False) if old else None,
            new=self._entry(new[0], new[1], new[2], None, False) if new else None,
            fields=fields,
        )

    def diff(
        self, session: Session, model: type[Any], key: tuple[Any, ...], old: int, new: int
    ) -> Diff:
        """Versions ``old`` and ``new`` of a row side by side (a delete marker shows as no row)."""
        return self._diff(
            model,
            key,
            self._version(session, model, key, old),
            self._version(session, model, key, new),
        )

    def as_of(
        self, session: Session, model: type[Any], key: tuple[Any, ...], when: pendulum.DateTime
    ) -> AsOfView:
        """The row as it was at ``when``."""
        self._latest(session, model, key)
        spec = spec_of(model)
        root = spec.root_spec
        query = query_as_of(model, when).where(
            *(getattr(model, name) == value for name, value in zip(root.pk_keys, key, strict=True))
        )
        version = session.scalars(query).first()
        entry = None
        if version is not None:
            entry = self._version(session, model, key, stamp(version, "version"))
        return AsOfView(
            model=model.__name__,
            key=format_row_id(key),
            when=when,
            entry=self._entry(entry[0], entry[1], entry[2], None, False) if entry else None,
            values=list(self._values(model, entry[0] if entry else None).items()),
        )

    def change_log(
        self, session: Session, model: type[Any], filters: ChangeLogFilters
    ) -> ChangeLogPage:
        """One page of the change log of ``model``'s table, newest first."""
        table = spec_of(model).root_spec.base.live.fullname
        query = (
            select(ChangeLog, Transaction.actor, Transaction.reason)
            .outerjoin(Transaction, Transaction.id == ChangeLog.transaction_id)
            .where(ChangeLog.table_name == table)
            .order_by(ChangeLog.id.desc())
            .limit(self.page_size + 1)
        )
        if filters.actor is not None:
            query = query.where(Transaction.actor == filters.actor)
        if filters.operation is not None:
            query = query.where(ChangeLog.event_type == filters.operation)
        if filters.since is not None:
            query = query.where(ChangeLog.timestamp >= filters.since)
        if filters.until is not None:
            query = query.where(ChangeLog.timestamp < filters.until)
        if filters.before is not None:
            query = query.where(ChangeLog.id < filters.before)
        rows = list(session.execute(query))
        entries = [
            ChangeLogEntry(
                id=entry.id,
                timestamp=entry.timestamp,
                operation=entry.event_type,
                row_id=entry.row_id,
                actor=actor,
                reason=reason,
                changed=tuple(entry.changes or ()),
            )
            for entry, actor, reason in rows[: self.page_size]
        ]
        more = len(rows) > self.page_size
        return ChangeLogPage(
            model=model.__name__,
            entries=entries,
            filters=filters,
            next_before=entries[-1].id if more else None,
        )

    # -- restoring

    def _current(
        self, session: Session, model: type[Any], key: tuple[Any, ...]
    ) -> tuple[Version[Any], str | None, str | None]:
        return self._version(session, model, key, self._latest(session, model, key))

    def restore_preview(
        self, session: Session, model: type[Any], key: tuple[Any, ...], number: int
    ) -> Diff:
        """What restoring version ``number`` would change: the row now beside that version."""
        target = self._version(session, model, key, number)
        if stamp(target[0], "operation") == "delete":
            raise ViewerError(
                f"version {number} of {model.__name__} {format_row_id(key)} is a delete marker; "
                "restoring it would delete the row, which the history viewer does not do"
            )
        current = self._current(session, model, key)
        if stamp(current[0], "operation") == "delete":
            return self._diff(model, key, None, target)
        return self._diff(model, key, current, target)

    def restore(
        self,
        session: Session,
        model: type[Any],
        key: tuple[Any, ...],
        number: int,
        *,
        actor: str | None = None,
    ) -> RestoreOutcome:
        """Restore version ``number`` of a row and commit; a conflict changes nothing.

        A :class:`~sqlalchemy_chronicle.RestoreConflictError` (or another
        :class:`~sqlalchemy_chronicle.RestoreError`) rolls the session back and is returned as
        :attr:`RestoreOutcome.error`, for the page to show.
        """
        self.restore_preview(session, model, key, number)
        target = self._version(session, model, key, number)[0]
        try:
            with changes_by(actor=actor, reason=f"restored version {number} in the history viewer"):
                restore(session, target)
                session.commit()
        except RestoreError as error:
            session.rollback()
            return RestoreOutcome(model.__name__, format_row_id(key), number, None, str(error))
        return RestoreOutcome(
            model.__name__, format_row_id(key), number, self._latest(session, model, key), None
        )

    # -- answering a request

    def respond(
        self,
        session: Session,
        page: str,
        params: Mapping[str, str | None],
        link: Link,
        *,
        can_restore: bool = False,
        post: bool = False,
        actor: str | None = None,
        csrf_token: str | None = None,
        sent_token: str | None = None,
    ) -> Page:
        """Answer one request for ``page`` (one of :data:`PAGES`) with query ``params``.

        ``params`` holds ``model`` (the slug) beside the page's own parameters. A restore is
        carried out only for ``post`` and ``can_restore``; without ``can_restore`` its pages
        answer 403. Bad input, a missing row or version, and a refused restore answer with an
        error page and a 4xx status; nothing is changed.

        ``csrf_token`` is the token the adapter keeps for the user (in the session or a cookie):
        the restore form carries it in its :data:`CSRF_FIELD`, and a restore is carried out only
        when the form sent it back (``sent_token``), so that another site cannot make a signed-in
        user's browser post a restore. Without it, or with another, the restore answers 403
        before any SQL runs.
        """
        try:
            return self._respond(
                session,
                page,
                params,
                link,
                can_restore,
                post,
                actor,
                (csrf_token, sent_token),
            )
        except ChronicleError as error:
            session.rollback()
            status = status_of(error)
            title = _ERROR_TITLES.get(status, "Bad request")
            body = self.render("error", link, title=title, message=str(error))
            return Page(status, title, body)

    def _respond(
        self,
        session: Session,
        page: str,
        params: Mapping[str, str | None],
        link: Link,
        can_restore: bool,
        post: bool,
        actor: str | None,
        tokens: tuple[str | None, str | None],
    ) -> Page:
        if page == "index":
            return Page(200, "History", self.render("index", link))
        if page not in PAGES:
            raise PageNotFound(f"the history viewer has no page {page!r}")
        slug = params.get("model") or ""
        model = self.model(slug)
        context: dict[str, Any] = {"slug": slug, "can_restore": can_restore}
        if page == "changelog":
            log = self.change_log(session, model, self.parse_filters(params))
            body = self.render("changelog", link, page=log, operations=OPERATIONS, **context)
            return Page(200, f"Change log of {model.__name__}", body)
        key = self.parse_key(model, params.get("key"))
        title = f"{model.__name__} {format_row_id(key)}"
        if page == "timeline":
            timeline = self.timeline(session, model, key, self.parse_page(params.get("page")))
            return Page(200, title, self.render("timeline", link, page=timeline, **context))
        if page == "diff":
            old = self.parse_version(params.get("a"), "the first version (a)")
            new = self.parse_version(params.get("b"), "the second version (b)")
            diff = self.diff(session, model, key, old, new)
            return Page(200, title, self.render("diff", link, diff=diff, **context))
        if page == "as_of":
            text = _optional(params.get("when"))
            if text is None:
                raise InvalidTimeError("as of when? the time (when) is missing")
            view = self.as_of(session, model, key, _request_time(text))
            return Page(200, title, self.render("as_of", link, view=view, **context))
        if not can_restore:
            raise RestoreForbidden(
                "restoring is not allowed here: the history viewer is read-only unless the "
                "admin view allows restores (can_restore) for this user"
            )
        number = self.parse_version(params.get("version"))
        kept, sent = tokens
        if not post:
            preview = self.restore_preview(session, model, key, number)
            body = self.render(
                "restore",
                link,
                diff=preview,
                version=number,
                csrf_field=CSRF_FIELD,
                csrf_token=kept,
                **context,
            )
            return Page(200, title, body)
        if not kept or not sent or not hmac.compare_digest(kept.encode(), sent.encode()):
            raise RestoreForbidden(
                "the restore was not sent by the viewer's own form (its CSRF token is missing or "
                "wrong): open the restore page again and confirm there"
            )
        outcome = self.restore(session, model, key, number, actor=actor)
        body = self.render("restored", link, outcome=outcome, **context)
        return Page(409 if outcome.error else 200, title, body)

    # -- rendering

    def render(self, template: str, link: Link, **context: Any) -> Markup:
        """The HTML of one page's content (without the framework's layout)."""
        return Markup(
            _environment()
            .get_template(f"chronicle/{template}.html")
            .render(link=link, viewer=self, **context)
        )


_ENVIRONMENT: list[Environment] = []


def _environment() -> Environment:
    if not _ENVIRONMENT:
        environment = Environment(
            loader=PackageLoader("sqlalchemy_chronicle.viewer", "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        environment.filters["time"] = _shown_time
        environment.filters["picker"] = _picker_value
        environment.filters["value"] = _shown_value
        _ENVIRONMENT.append(environment)
    return _ENVIRONMENT[0]


def _shown_time(when: dt.datetime | None) -> str:
    if when is None:
        return ""
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def _shown_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return value
    return repr(value) if isinstance(value, bytes) else str(value)
