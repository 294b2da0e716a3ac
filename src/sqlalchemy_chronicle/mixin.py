"""The :class:`Versioned` mixin: inherit it and a mapped class keeps its full row history.

::

    class Article(Versioned, Base):
        __tablename__ = "article"
        __versioned__ = {"exclude": ["cached_html"]}

        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str]
        cached_html: Mapped[str | None]

Declaring the class is the whole set-up. As soon as its mapper exists, ``article_history`` and the
class ``ArticleHistory`` (``Article.__history__``) are created in the same ``MetaData``, next to
the library's own tables, and every :class:`~sqlalchemy.orm.Session` records the changes it
flushes (see :mod:`sqlalchemy_chronicle.capture`). This module is where the layers meet: it
connects what capture sees to the writer, which capture does not import.

Options, in ``__versioned__``:

``exclude``
    attribute (or column) names left out of history. They are not copied into the history table,
    and a change to excluded columns only writes no version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from sqlalchemy import event, inspect
from sqlalchemy.orm import Mapper

from . import capture, write
from .operate import ledger
from .schema.history import build_history

if TYPE_CHECKING:
    from .schema.history import Version

__all__ = ["Versioned"]

M = TypeVar("M")

if TYPE_CHECKING:

    class _HistoryClassOf:
        """How a type checker reads ``Model.__history__``: ``type[Version[Model]]``.

        Only a declaration: at run time each versioned class holds its history class itself.
        """

        def __get__(self, instance: object, owner: type[M]) -> type[Version[M]]: ...


class Versioned:
    """Mixin for declarative classes whose rows keep a history of every version."""

    if TYPE_CHECKING:
        __history__: _HistoryClassOf
        """The mapped history class, ``<Name>History`` on table ``<table>_history``.

        A type checker reads ``Article.__history__`` as ``type[Version[Article]]``.
        """

    __versioned__: ClassVar[dict[str, Any]] = {}
    """Per-class options: ``exclude``, attribute (or column) names left out of history;
    ``changelog``, False to write no change-log entries for the class."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _install()
        mapper = inspect(cls, raiseerr=False)
        if isinstance(mapper, Mapper) and mapper.class_ is cls:
            build_history(mapper)
        else:
            event.listen(cls, "after_mapper_constructed", _mapper_constructed)


def _install() -> None:
    """Hand what the session and bulk statements capture to the writer (once per process)."""
    capture.install(write.write_history)
    write.install()
    ledger.install()


def _mapper_constructed(mapper: Mapper[Any], cls: type[Any]) -> None:
    if mapper.class_ is cls:
        build_history(mapper)
