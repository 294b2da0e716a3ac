"""The documentation runs: the quickstart example on every database, and every Python block.

The code blocks of ``README.md`` and ``docs/*.md`` run page by page, in order, each page in a
namespace of its own (see :mod:`tests.docblocks`); they use in-memory SQLite, so they run once
whatever ``--db`` says. The example runs as a script, as a reader would run it, on each database
of the run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

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
    configure(clock=None, strict=False, changelog=True, columns=None)
    yield
    configure(clock=None, strict=False, changelog=True, columns=None)


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=_page_id)
def test_page_code_blocks_run(page: Path, library_defaults: None) -> None:
    module = "docs_" + re.sub(r"\W", "_", page.stem.lower())
    run_page(page, module)


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
