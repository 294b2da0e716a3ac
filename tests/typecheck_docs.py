"""Type-check the Python blocks of the README and ``docs/*.md`` with ``mypy --strict``.

``python -m tests.typecheck_docs`` (CI runs it): each page's blocks, which the test suite runs in
order in one namespace (:mod:`tests.docblocks`), become one module, each block at its own line
numbers, written under ``build/docs-typecheck/``, and mypy checks them all with the project's
settings and :data:`PAGE_FLAGS`; its messages name the page and line
(``docs/querying.md:120: error: ...``). The exit status is mypy's.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .docblocks import python_blocks

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def page_module(page: Path) -> str:
    """The page's Python blocks as one module's source, each block at the page's line numbers."""
    lines: list[str] = []
    for block in python_blocks(page):
        lines.extend([""] * (block.line - 1 - len(lines)))
        lines.extend(block.source.splitlines())
    return "\n".join(lines) + "\n"


PAGE_FLAGS = ["--allow-redefinition-new", "--local-partial-types"]
"""A page is one long script that reuses names (``query = ...`` for one query, then another);
each assignment may give the name a new type. Otherwise ``--strict`` as for the package."""

SCRATCH = ROOT / "build" / "docs-typecheck"
"""Where the pages' modules are written."""


def main() -> int:
    SCRATCH.mkdir(parents=True, exist_ok=True)
    pages: dict[str, Path] = {}
    for page in PAGES:
        if not python_blocks(page):
            continue
        name = "docs_" + re.sub(r"\W", "_", page.stem.lower())
        path = SCRATCH / f"{name}.py"
        path.write_text(page_module(page), encoding="utf-8")
        pages[str(path.relative_to(ROOT))] = page
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", *PAGE_FLAGS, "--no-incremental", *pages],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    out = checked.stdout
    for written, page in pages.items():
        out = out.replace(written, str(page.relative_to(ROOT)))
    sys.stdout.write(out)
    sys.stderr.write(checked.stderr)
    return checked.returncode


if __name__ == "__main__":
    sys.exit(main())
