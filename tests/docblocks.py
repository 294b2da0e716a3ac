"""Find the Python code blocks of a Markdown page and run them, in order, in one namespace.

A block is a fenced block whose info string is ``python``. The blocks of one page share a
namespace, so that a page can build up an example step by step; each page starts with a fresh one.
The code is compiled with the page's path and real line numbers, so that a failing block points at
its line in the page.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

__all__ = ["Block", "python_blocks", "run_page"]

_FENCE = re.compile(
    r"^(?P<fence>```+|~~~+)[ \t]*(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True)
class Block:
    """One fenced Python block of a page."""

    path: Path
    line: int
    """The line number of the block's first line of code, counting from 1."""
    source: str


def python_blocks(path: Path) -> list[Block]:
    """Every ``python`` block of the page at ``path``, in order."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in _FENCE.finditer(text):
        info = match.group("info").strip().split()
        if info and info[0] == "python":
            line = text.count("\n", 0, match.start("body")) + 1
            blocks.append(Block(path, line, match.group("body")))
    return blocks


def run_page(
    path: Path, module_name: str, rewrite: Callable[[str], str] | None = None
) -> ModuleType:
    """Run the page's Python blocks in order in a new module named ``module_name``.

    The module is registered in :data:`sys.modules`, as an imported module would be, because
    SQLAlchemy resolves a mapped class's annotations through its module; it is returned.
    ``rewrite``, given, changes each block's source before it runs (line for line, so that the
    line numbers stay the page's).
    """
    module = ModuleType(module_name, f"The Python blocks of {path.name}.")
    module.__file__ = str(path)
    sys.modules[module_name] = module
    for block in python_blocks(path):
        source = block.source if rewrite is None else rewrite(block.source)
        padded = "\n" * (block.line - 1) + source
        exec(compile(padded, str(block.path), "exec"), module.__dict__)
    return module
