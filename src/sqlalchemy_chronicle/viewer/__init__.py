"""The history viewer: pages in the admin frameworks SQLAlchemy applications already run.

A row's timeline, diffs of its versions, the row as of a time, a table's change log, restores.

:mod:`.core` computes and renders every page, whatever the framework; the adapters route the
pages and wrap them in their framework's layout: :mod:`.sqladmin` for sqladmin (Starlette and
FastAPI; the extra ``sqlalchemy-chronicle[sqladmin]``) and :mod:`.flask_admin` for Flask-Admin
(the extra ``sqlalchemy-chronicle[flask-admin]``). Import the adapter of your framework; this
package imports neither. See ``docs/viewer.md``.
"""

from __future__ import annotations

from .core import HistoryViewer, Page, PageNotFound, RestoreForbidden, ViewerError

__all__ = ["HistoryViewer", "Page", "PageNotFound", "RestoreForbidden", "ViewerError"]
