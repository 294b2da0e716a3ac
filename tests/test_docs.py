"""The documentation runs: the quickstart example on every database, and every Python block.

The code blocks of ``README.md`` and ``docs/*.md`` run page by page, in order, each page in a
namespace of its own (see :mod:`tests.docblocks`); they use in-memory SQLite, so they run once
whatever ``--db`` says. The example runs as a script, as a reader would run it, on each database
of the run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from sqlalchemy_chronicle import configure

from .docblocks import python_blocks, run_page

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "quickstart.py"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLE_TABLES = ("quickstart_article_history", "quickstart_article")


def _page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.fixture
def library_defaults() -> Iterator[None]:
    """Whatever a page configures, the next test finds the library's defaults."""
    configure(clock=None, strict=False, changelog=True)
    yield
    configure(clock=None, strict=False, changelog=True)


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=_page_id)
def test_page_code_blocks_run(page: Path, library_defaults: None) -> None:
    module = "docs_" + re.sub(r"\W", "_", page.stem.lower())
    run_page(page, module)


def test_the_pages_that_teach_have_code() -> None:
    for name in ("README.md", "docs/quickstart.md", "docs/concepts.md"):
        assert python_blocks(ROOT / name), f"{name} has no python blocks (or the parser broke)"


def test_quickstart_example_runs(engine: Engine, tmp_path: Path) -> None:
    if engine.dialect.name == "sqlite":
        url = f"sqlite:///{tmp_path / 'quickstart.db'}"
    else:
        url = engine.url.render_as_string(hide_password=False)
    try:
        result = subprocess.run(
            [sys.executable, str(EXAMPLE), url],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            check=False,
        )
    finally:
        if engine.dialect.name != "sqlite":
            with engine.begin() as connection:
                for table in EXAMPLE_TABLES:
                    connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("History of article ")
    rows = [line.split()[:2] for line in lines[2:6]]
    assert rows == [["1", "insert"], ["2", "update"], ["3", "delete"], ["4", "insert"]]
    assert "(current)" in lines[5]
    assert "Transactions that wrote them:" in lines
    assert len([line for line in lines if " at " in line]) == 4
