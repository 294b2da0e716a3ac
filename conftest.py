"""Command-line options of the test suite (they must be known before ``tests/`` is collected)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        action="append",
        default=[],
        help="database to test on: sqlite, postgresql, mariadb or a SQLAlchemy URL (repeatable); "
        "default: $CHRONICLE_TEST_DATABASES, else sqlite",
    )
