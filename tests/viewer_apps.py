"""The history viewer's two example applications, as the viewer's tests use them.

``examples/sqladmin_app.py`` and ``examples/flask_admin_app.py`` are imported once per process
(their classes can be declared only once). :class:`ExampleApp` builds one of them on a test
database, with its tables dropped first and after, and tells the URL of each viewer page, which
the two frameworks spell alike but for the change log's trailing slash.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Final
from urllib.parse import urlencode

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import ChangeLog, Transaction

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
KINDS = ("sqladmin", "flask_admin")


SEED: Final = "chronicle_example_seed"
"""The examples' shared module, which they import by this name as their sibling."""


def load_example(kind: str) -> ModuleType:
    """``examples/<kind>_app.py``, imported once per process.

    Its sibling :data:`SEED` is loaded by path first, so that the example's import of it finds
    it without ``examples/`` on ``sys.path`` (where the examples' names would be everyone's).
    """
    _load(SEED, EXAMPLES / f"{SEED}.py")
    return _load(f"chronicle_{kind}_example", EXAMPLES / f"{kind}_app.py")


def _load(name: str, path: Path) -> ModuleType:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def drop_example(module: ModuleType, engine: Engine) -> None:
    """Drop an example's tables and the library rows it wrote into the shared ones."""
    own = [
        table
        for model in (module.Book, module.Author)
        for table in (model.__history__.__table__, model.__table__)
    ]
    names = [model.__table__.name for model in (module.Book, module.Author)]
    with engine.begin() as connection:
        if engine.dialect.has_table(connection, "chronicle_changelog"):
            ours = select(ChangeLog.transaction_id).where(ChangeLog.table_name.in_(names))
            ids = list(connection.scalars(ours))
            connection.execute(delete(ChangeLog).where(ChangeLog.table_name.in_(names)))
            connection.execute(delete(Transaction).where(Transaction.id.in_(ids)))
    module.Base.metadata.drop_all(engine, tables=own)


@dataclass
class ExampleApp:
    """One example application on one database."""

    kind: str
    module: ModuleType
    app: Any
    engine: Engine
    """The application's own engine."""

    @property
    def book(self) -> str:
        """The slug of the example's books."""
        return str(self.module.Book.__table__.name)

    @property
    def author(self) -> str:
        """The slug of the example's authors."""
        return str(self.module.Author.__table__.name)

    def url(self, name: str, model: str | None = None, **query: Any) -> str:
        """The path of a viewer page, with its query."""
        if name == "index":
            path = "/admin/history" + ("/" if self.kind == "flask_admin" else "")
        elif name == "changelog":
            path = f"/admin/history/{model}" + ("/" if self.kind == "flask_admin" else "")
        else:
            path = f"/admin/history/{model}/{name.replace('_', '-')}"
        shown = {name: value for name, value in query.items() if value is not None}
        return f"{path}?{urlencode(shown)}" if shown else path

    def session(self) -> Session:
        return Session(self.engine)


@contextmanager
def example_app(kind: str, engine: Engine) -> Iterator[ExampleApp]:
    """The example ``kind`` on the database of ``engine``, freshly seeded, dropped afterwards."""
    module = load_example(kind)
    drop_example(module, engine)
    app = module.create_app(engine.url.render_as_string(hide_password=False))
    own = app.state.engine if kind == "sqladmin" else app.extensions["chronicle_example"]["engine"]
    try:
        yield ExampleApp(kind, module, app, own)
    finally:
        own.dispose()
        drop_example(module, engine)
