"""Alembic integration: migrations that autogenerate renders, runs and checks as they are.

Alembic loads this module by itself, through the package's ``alembic.plugins`` entry point, named
``alembic.autogenerate.sqlalchemy_chronicle`` so that autogenerate's default plugin list
(``alembic.autogenerate.*``) takes it: an ``env.py`` needs nothing but ``target_metadata``. (An
``env.py`` that lists ``autogenerate_plugins`` itself must list this one too.)

It renders the library's column types (:mod:`sqlalchemy_chronicle.types`) with the import they
need, so that a generated migration runs as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from alembic.util import DispatchPriority, PriorityDispatchResult

from .. import types

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext
    from alembic.operations.ops import UpgradeOps
    from alembic.runtime.plugins import Plugin

__all__ = ["setup"]

def setup(plugin: Plugin) -> None:
    """Register the autogenerate hooks with Alembic (called by Alembic for the entry point)."""
    plugin.add_autogenerate_comparator(_hook_rendering, "schema", priority=DispatchPriority.LAST)


def _hook_rendering(
    autogen_context: AutogenContext, upgrade_ops: UpgradeOps, schemas: Any
) -> PriorityDispatchResult:
    """Render the library's types with their import, around the ``render_item`` of ``env.py``.

    A comparison function is the one hook autogenerate calls without configuration; the
    rendering that follows uses the same options, so the hook is installed in them here.
    """
    opts = autogen_context.opts
    user_render = opts.get("render_item")
    if not getattr(user_render, "_chronicle", False):
        opts["render_item"] = _renderer(user_render)
    return PriorityDispatchResult.CONTINUE


def _renderer(user_render: Callable[..., Any] | None) -> Callable[..., Any]:
    def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> Any:
        if user_render is not None:
            rendered = user_render(type_, obj, autogen_context)
            if rendered is not False:
                return rendered
        if type_ == "type" and type(obj).__module__ == types.__name__:
            autogen_context.imports.add(f"import {types.__name__}")
            return f"{types.__name__}.{obj!r}"
        return False

    render_item._chronicle = True  # type: ignore[attr-defined]
    return render_item
