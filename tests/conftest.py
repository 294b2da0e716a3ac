"""One test suite for every database.

The databases come from ``--db`` (repeatable) or the ``CHRONICLE_TEST_DATABASES`` environment
variable (comma-separated): a short name from :data:`KNOWN` or a full SQLAlchemy URL. SQLite alone
is the default. A database that was asked for and cannot be reached fails the run; it is never
skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from sqlalchemy_chronicle import configure, use_sqlite_savepoints

from . import (  # noqa: F401 - their tables on Base
    models_capture,
    models_columns,
    models_shapes,
    models_travel,
)
from .models import Base
from .support import FrozenClock, StatementCounter, attach_schema

KNOWN = {
    "sqlite": "sqlite:///{tmp}/chronicle-test.db",
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
}

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def _requested(config: pytest.Config) -> list[str]:
    names: list[str] = list(config.getoption("--db"))
    if not names:
        names = [n.strip() for n in os.environ.get("CHRONICLE_TEST_DATABASES", "").split(",")]
        names = [n for n in names if n]
    return names or ["sqlite"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_url" in metafunc.fixturenames:
        names = _requested(metafunc.config)
        metafunc.parametrize("db_url", names, ids=[_label(n) for n in names], scope="session")


def _label(name: str) -> str:
    return name if name in KNOWN else make_url(name).get_backend_name()


@pytest.fixture(scope="session")
def engine(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = KNOWN.get(db_url, db_url).format(tmp=tmp_path_factory.mktemp("sqlite"))
    engine = create_engine(url)
    use_sqlite_savepoints(engine)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        pytest.fail(
            f"database {db_url!r} was asked for but cannot be reached: {exc}", pytrace=False
        )
    _create_schema(engine, tmp_path_factory)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


def _create_schema(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Make the schema of the schema-qualified test models (models_shapes.SCHEMA) exist."""
    if engine.dialect.name == "sqlite":
        attach_schema(engine, tmp_path_factory.mktemp("schema") / "schema.db")
        return
    quoted = engine.dialect.identifier_preparer.quote_schema(models_shapes.SCHEMA)
    what = "SCHEMA" if engine.dialect.name == "postgresql" else "DATABASE"
    with engine.begin() as connection:
        connection.execute(text(f"CREATE {what} IF NOT EXISTS {quoted}"))


def _clear(engine: Engine) -> None:
    """Empty every table; twice, as the triggers of database-mode tables write history, change
    log and transaction rows while the first pass deletes their rows."""
    with engine.begin() as connection:
        for _ in range(2):
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())


@pytest.fixture
def clock() -> Iterator[FrozenClock]:
    """A frozen clock installed as the library's clock; tests move it explicitly."""
    frozen = FrozenClock()
    configure(clock=frozen)
    yield frozen
    configure(clock=None, strict=False, changelog=True, ledger=False)


@pytest.fixture
def db(engine: Engine, clock: FrozenClock) -> Iterator[Engine]:
    """The engine, with empty tables and a frozen clock (which the emptying did not read)."""
    _clear(engine)
    clock.readings.clear()  # database capture mode reads it for the DELETE of its tables
    yield engine


@pytest.fixture
def session(db: Engine) -> Iterator[Session]:
    with Session(db) as session:
        yield session


@pytest.fixture
def statements(db: Engine) -> Iterator[StatementCounter]:
    counter = StatementCounter()
    event.listen(db, "before_cursor_execute", counter)
    yield counter
    event.remove(db, "before_cursor_execute", counter)


def dialect_name(engine: Engine) -> str:
    return engine.dialect.name


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """Run the slow hypothesis tests last, so that quick failures show first."""
    items.sort(key=lambda item: "stateful" in item.nodeid)
