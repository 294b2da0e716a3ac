"""Attribution: who makes the changes a session flushes, and why.

``with changes_by(actor="alice", reason="..."):`` attributes the changes flushed in the block (a
context variable, so each thread and asyncio task has its own); :func:`attribute_session` gives
one session an attribution of its own, which wins. The writer records the values on the
transaction's :class:`~sqlalchemy_chronicle.Transaction` row when it first writes history.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.orm import Session

from ..errors import ConfigurationError
from ..schema.tables import ACTOR_LENGTH

__all__ = [
    "ATTRIBUTION_KEY",
    "Attribution",
    "attribute_session",
    "changes_by",
    "current_attribution",
]


@dataclass(frozen=True)
class Attribution:
    """Who makes the changes of a transaction, and why.

    What the database would refuse, or store differently from one database to another, is
    refused here, with :class:`~sqlalchemy_chronicle.ConfigurationError`, rather than at the
    flush: an ``actor`` or ``reason`` that is not a string (or None), an ``actor`` longer than
    :data:`ACTOR_LENGTH`, and ``meta`` values that JSON cannot hold (objects, sets, bytes, NaN
    and infinite floats).
    """

    actor: str | None = None
    reason: str | None = None
    meta: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        for name in ("actor", "reason"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigurationError(
                    f"{name}={value!r}: the {name} is a string (or None); write "
                    f"{name}={str(value)!r}, or put other values in meta"
                )
        if self.meta is not None:
            try:
                json.dumps(self.meta, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(
                    f"meta {self.meta!r} cannot be stored as JSON ({exc}); give strings, "
                    "numbers, booleans, None, and lists and dicts of them"
                ) from exc
        if self.actor is not None and len(self.actor) > ACTOR_LENGTH:
            raise ConfigurationError(
                f"the actor {self.actor[:40]!r}... has {len(self.actor)} characters; a "
                f"transaction records up to {ACTOR_LENGTH} (put the rest in reason or meta)"
            )


_NOBODY: Final = Attribution()
_attribution: ContextVar[Attribution] = ContextVar("chronicle_attribution")
ATTRIBUTION_KEY: Final = "chronicle.attribution"
"""``session.info`` key of a per-session :class:`Attribution`, which wins over the context's."""


@contextmanager
def changes_by(
    actor: str | None = None, reason: str | None = None, **meta: Any
) -> Iterator[Attribution]:
    """Attribute the changes flushed inside the block to ``actor``, for ``reason``.

    ::

        with changes_by(actor="alice", reason="fix typo"):
            article.title = "Fixed"
            session.commit()

    The values live in a :class:`contextvars.ContextVar`, so each thread and each asyncio task
    has its own; blocks nest, an inner block's values winning. They are recorded on the
    :class:`Transaction` row when the transaction first writes history, and updated if a later
    flush of the same transaction runs under other values. Keyword arguments other than ``actor``
    and ``reason`` go to ``Transaction.meta``.

    :raises ConfigurationError: on entering the block, when ``actor`` or ``reason`` is not a
        string or a ``meta`` value cannot be stored as JSON (see :class:`Attribution`); the
        attribution in force is left as it was.
    """
    outer = _attribution.get(_NOBODY)
    current = Attribution(
        actor=actor if actor is not None else outer.actor,
        reason=reason if reason is not None else outer.reason,
        meta={**(outer.meta or {}), **meta} or None,
    )
    token = _attribution.set(current)
    try:
        yield current
    finally:
        _attribution.reset(token)


def attribute_session(
    session: Session, actor: str | None = None, reason: str | None = None, **meta: Any
) -> None:
    """Attribute every change ``session`` flushes from now on, whatever the context says.

    Stored in ``session.info`` under :data:`ATTRIBUTION_KEY`; call with no arguments to clear.
    Refuses the values :func:`changes_by` refuses, with
    :class:`~sqlalchemy_chronicle.ConfigurationError`, leaving the session's attribution as it was.
    """
    if actor is None and reason is None and not meta:
        session.info.pop(ATTRIBUTION_KEY, None)
    else:
        session.info[ATTRIBUTION_KEY] = Attribution(actor, reason, meta or None)


def current_attribution(session: Session | None) -> Attribution:
    """The attribution that applies to ``session`` now: its own, else the context's.

    Without a session (a statement on a plain connection): the context's.
    """
    own: Attribution | None = session.info.get(ATTRIBUTION_KEY) if session is not None else None
    return own if own is not None else _attribution.get(_NOBODY)
