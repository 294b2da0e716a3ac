"""The package's layout: the data path runs one way, and no module imports in a circle.

The layers, in the order data flows through them (see ``docs/concepts.md``, "Architecture"):
the foundations, ``schema`` (declare), ``capture``, ``write``, ``read``, ``recovery`` (restore)
and ``operate``; the package's ``__init__`` and ``mixin`` put them together, and ``asyncio``
mirrors the API for ``AsyncSession``; ``viewer``, the history viewer for admin frameworks, sits
above them all, and ``cli`` (with ``__main__``), the command line, above it. A module imports
only from its own layer and the layers before it, and every import counts, the ones under
``TYPE_CHECKING`` included.

Importing the package loads no SQLAlchemy dialect: an application pays for the dialect it
connects with, as it would without the library.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import sqlalchemy_chronicle

PACKAGE = Path(sqlalchemy_chronicle.__file__).parent
NAME = "sqlalchemy_chronicle"

LAYERS = [
    "foundation",
    "schema",
    "capture",
    "write",
    "read",
    "recovery",
    "operate",
    "top",
    "viewer",
    "cli",
]
FOUNDATION = {"errors", "config", "instants", "types"}
TOP = {"__init__", "asyncio", "mixin"}
COMMAND_LINE = {"__main__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    head = module.split(".")[0]
    if head in FOUNDATION:
        return LAYERS.index("foundation")
    if head in TOP:
        return LAYERS.index("top")
    if head in COMMAND_LINE:
        return LAYERS.index("cli")
    return LAYERS.index(head)


def imports_of(path: Path, module: str) -> set[str]:
    """The package's modules that ``module`` imports, ``TYPE_CHECKING`` blocks included."""
    if module == "__init__":
        package: list[str] = []
    elif path.name == "__init__.py":
        package = module.split(".")
    else:
        package = module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module == NAME:
                target = ""
            elif node.module and node.module.startswith(NAME + "."):
                target = node.module[len(NAME) + 1 :]
            else:
                continue
            for alias in node.names:
                child = f"{target}.{alias.name}" if target else alias.name
                found.add(child if child in MODULES else target or "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(NAME + "."):
                    found.add(alias.name[len(NAME) + 1 :])
    return {name for name in found if name in MODULES and name != module}


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}
GRAPH = {module: imports_of(path, module) for module, path in MODULES.items()}


def test_every_module_belongs_to_a_layer() -> None:
    assert all(layer_of(module) >= 0 for module in MODULES)


def test_modules_import_only_from_their_layer_and_the_layers_before_it() -> None:
    upward = sorted(
        f"{module} ({LAYERS[layer_of(module)]}) imports {target} ({LAYERS[layer_of(target)]})"
        for module, targets in GRAPH.items()
        for target in targets
        if layer_of(target) > layer_of(module)
    )
    assert upward == []


def test_no_import_cycles() -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert cycles == []


def test_importing_the_package_loads_no_dialect() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, sqlalchemy_chronicle; "
            "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy.dialects.')))",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert loaded == "[]"
