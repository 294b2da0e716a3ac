"""Small SQL helpers shared by the writers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, tuple_

__all__ = ["CHUNK", "chunks", "key_in"]

CHUNK = 2000
"""Rows per IN-list; keeps every statement far below the drivers' parameter limits."""

T = TypeVar("T")


def chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    """``items`` in slices of at most :data:`CHUNK`."""
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def key_in(
    columns: Sequence[ColumnElement[Any]], keys: Sequence[tuple[Any, ...]]
) -> ColumnElement[bool]:
    """``(columns) IN keys``; a plain ``IN`` for one column."""
    if len(columns) == 1:
        return columns[0].in_([key[0] for key in keys])
    return tuple_(*columns).in_(keys)
