"""The documentation runs: every Python block and the quickstart example, on every database.

The code blocks of ``README.md`` and ``docs/*.md`` run page by page, in order, each page in a
namespace of its own (see :mod:`tests.docblocks`), on each database of the run. A page's engine
is in-memory SQLite as written (``engine = create_engine("sqlite://")``, or its async form); on a
server the test points it at a database of its own instead, emptied before and after each page
(a PostgreSQL schema on the search path, a MariaDB database next to the test one), so that a
page's tables meet neither the suite's nor another page's. Other engines a page makes (a scratch
SQLite database, say) stay as written. The example runs as a script, as a reader would run it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import URL, Engine

from sqlalchemy_chronicle import configure

from .docblocks import python_blocks, run_page
from .support import run_example

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLE_TABLES = ["quickstart_article_history", "quickstart_article"]


def _page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.fixture
def library_defaults() -> Iterator[None]:
    """Whatever a page configures, the next test finds the library's defaults."""
    configure(clock=None, strict=False, changelog=True)
    yield
    configure(clock=None, strict=False, changelog=True)


PAGE_ENGINE = 'engine = create_engine("sqlite://")'
PAGE_ASYNC_ENGINE = 'engine = create_async_engine("sqlite+aiosqlite://")'
DOCS_NAMESPACE = "chronicle_docs"


@pytest.fixture
def page_database(engine: Engine) -> Iterator[tuple[URL, URL] | None]:
    """The (sync, async) URLs of an empty database for one page on ``engine``'s server.

    None on SQLite, where a page runs on its own in-memory database as written.
    """
    if engine.dialect.name == "sqlite":
        yield None
        return
    if engine.dialect.name == "postgresql":
        create = f"CREATE SCHEMA {DOCS_NAMESPACE}"
        drop = f"DROP SCHEMA IF EXISTS {DOCS_NAMESPACE} CASCADE"
        url = engine.url.update_query_dict({"options": f"-csearch_path={DOCS_NAMESPACE}"})
        async_url = url
    else:
        database = f"{engine.url.database}_docs"
        create = f"CREATE DATABASE {database}"
        drop = f"DROP DATABASE IF EXISTS {database}"
        url = engine.url.set(database=database)
        async_url = url.set(drivername="mysql+aiomysql")
    with engine.begin() as connection:
        connection.exec_driver_sql(drop)
        connection.exec_driver_sql(create)
    try:
        yield url, async_url
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(drop)


def on_database(urls: tuple[URL, URL] | None) -> Callable[[str], str] | None:
    """The rewrite that points a page's engine at ``urls``, or None to run it as written."""
    if urls is None:
        return None
    sync_url, async_url = (u.render_as_string(hide_password=False) for u in urls)

    def rewrite(source: str) -> str:
        source = source.replace(PAGE_ENGINE, f"engine = create_engine({sync_url!r})")
        return source.replace(PAGE_ASYNC_ENGINE, f"engine = create_async_engine({async_url!r})")

    return rewrite


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=_page_id)
def test_page_code_blocks_run(
    page: Path, page_database: tuple[URL, URL] | None, library_defaults: None
) -> None:
    module = "docs_" + re.sub(r"\W", "_", page.stem.lower())
    run_page(page, module, on_database(page_database))


def test_every_page_that_uses_a_database_makes_the_engine_the_test_replaces() -> None:
    """A page with an engine has one named as the rewrite expects, so no page stays SQLite-only."""
    for page in PAGES:
        code = "".join(block.source for block in python_blocks(page))
        if "create_engine(" in code or "create_async_engine(" in code:
            assert PAGE_ENGINE in code or PAGE_ASYNC_ENGINE in code, page


def test_the_pages_that_teach_have_code() -> None:
    for name in ("README.md", "docs/quickstart.md", "docs/concepts.md"):
        assert python_blocks(ROOT / name), f"{name} has no python blocks (or the parser broke)"


def test_quickstart_example_runs(engine: Engine, tmp_path: Path) -> None:
    result = run_example(engine, tmp_path, "quickstart.py", EXAMPLE_TABLES)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("History of article ")
    rows = [line.split()[:2] for line in lines[2:6]]
    assert rows == [["1", "insert"], ["2", "update"], ["3", "delete"], ["4", "insert"]]
    assert "(current)" in lines[5]
    assert "Transactions that wrote them:" in lines
    assert len([line for line in lines if " at " in line]) == 4
