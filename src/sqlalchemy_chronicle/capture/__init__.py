"""Capture: what changed, and who changed it.

- :mod:`.changes`: :class:`~.changes.RowChange`, one changed row, and :data:`~.changes.Writer`,
  the callable capture hands its changes to (the write layer's ``write_history``, installed by
  :mod:`sqlalchemy_chronicle.mixin`), so that this layer does not import the writer;
- :mod:`.session`: the flush listener that turns a flush into row changes;
- :mod:`.bulk`: the ``do_orm_execute`` hook that does the same for ORM bulk statements;
- :mod:`.legacy_bulk`: the refusal of the legacy ``Session.bulk_*`` methods, which no hook sees,
  for classes in ORM mode;
- :mod:`.attribution`: ``changes_by()`` and ``attribute_session()``, who and why;
- :mod:`.database`: database capture mode, whose triggers version every write.

The layer imports the foundations and ``schema`` only.
"""

from __future__ import annotations

from . import bulk, database, legacy_bulk, session
from .changes import Writer, use_writer

__all__ = ["database", "install"]


def install(writer: Writer) -> None:
    """Capture every flush and ORM bulk statement from now on, handing changes to ``writer``."""
    use_writer(writer)
    session.install()
    bulk.install()
    legacy_bulk.install()
