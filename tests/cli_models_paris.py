"""The command-line test models of :mod:`tests.cli_models`, by a module that sets the default
timezone when it is imported (as an application's models module may)."""

from __future__ import annotations

from sqlalchemy_chronicle import set_default_timezone

from .cli_models import Base

__all__ = ["Base"]

set_default_timezone("Europe/Paris")
