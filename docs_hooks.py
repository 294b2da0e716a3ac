"""MkDocs hooks of the documentation site (``mkdocs.yml``): outside links and docstring roles.

The pages link to the example scripts and the changelog by their place in the repository
(``../examples/flask_app.py``, ``../CHANGELOG.md``), which works where the Markdown is read as it
is; the site has them on its own pages (``examples.md``, ``changelog.md``, which include the
files), and :func:`on_page_markdown` points those links there.

The docstrings name objects with Sphinx roles (``:func:`history```, ``:class:`~sqlalchemy.orm.
Session```), which the API reference would show as written; :func:`on_page_content` renders
them as code, the name shortened to its last part where a ``~`` asks for it.
"""

from __future__ import annotations

import re
from typing import Any

_EXAMPLE = re.compile(r"\]\(\.\./examples/(?P<name>\w+)\.py\)")
_CHANGELOG = re.compile(r"\]\(\.\./CHANGELOG\.md\)")
_ROLE = re.compile(
    r":(?:func|class|meth|attr|mod|data|exc|obj):<code>(?P<tilde>~?)(?P<name>[^<]*)</code>"
)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Point the links to ``../examples/<name>.py`` and ``../CHANGELOG.md`` at the site's pages."""
    markdown = _EXAMPLE.sub(lambda m: f"](examples.md#{m['name']})", markdown)
    return _CHANGELOG.sub("](changelog.md)", markdown)


def on_page_content(html: str, **kwargs: Any) -> str:
    """Render the Sphinx roles of the docstrings as code."""

    def as_code(match: re.Match[str]) -> str:
        name = match["name"].rsplit(".", 1)[-1] if match["tilde"] else match["name"]
        return f"<code>{name}</code>"

    return _ROLE.sub(as_code, html)
