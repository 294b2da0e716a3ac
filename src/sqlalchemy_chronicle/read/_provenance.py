"""The library's columns of as-of rows, loaded on first use.

The rows of a :func:`~sqlalchemy_chronicle.query_as_of` statement leave out the library's columns
but ``version`` (:data:`DEFERRED_COLUMNS`), with one loader option (:class:`Deferral`) that the
statement carries; reading any of them loads all of them, one statement for that object.
``query_as_of(..., provenance=True)`` reads them with the rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from sqlalchemy.orm import ColumnProperty, Load
from sqlalchemy.orm.interfaces import LoaderStrategy
from sqlalchemy.sql.elements import BindParameter

from ..schema.history import INTERVAL_COLUMNS

__all__ = ["DEFERRED_COLUMNS", "Deferral"]

DEFERRED_COLUMNS: Final = tuple(key for key in INTERVAL_COLUMNS if key != "version")
"""The library columns (by default name) that the rows of an as-of query load on first access.

A snapshot reads many versions and most applications read only the model's values from them:
these six columns are half of what the database sends per row and a third of what the ORM sets up
per object, for values (``valid_from``, ``operation``, ...) that a version's ``repr()`` or a look
at its provenance needs, one object at a time. ``version`` stays, being part of the identity."""


@ColumnProperty.strategy_for(chronicle_unloaded=True)
class _UnloadedColumnLoader(LoaderStrategy):
    """The loading of a column attribute left out of a statement's rows, to be read on first use.

    Each object is given the attribute as *expired*, as ``Session.expire()`` would leave it, so
    that reading any of the attributes left out loads all of them, in one statement for that
    object, and a statement that refreshes an object already in the session
    (``populate_existing``) drops its stale value. SQLAlchemy's own :func:`~sqlalchemy.orm.defer`
    does neither: it sets a loader per object and attribute, which loads that attribute alone,
    and leaves a value loaded before in place.
    """

    __slots__ = ()

    def setup_query(
        self,
        compile_state: Any,
        query_entity: Any,
        path: Any,
        loadopt: Any,
        adapter: Any,
        **kw: Any,
    ) -> None:
        """Select nothing; in a subquery of the statement (``.subquery()``), the column."""
        prop = self.parent_property
        if compile_state.compile_options._render_for_subquery:
            loader = prop._get_strategy((("deferred", False), ("instrument", True)))
            loader.setup_query(compile_state, query_entity, path, loadopt, adapter, **kw)
            return
        # A column absent from the rows: the ORM then asks create_row_processor(), once per
        # compiled statement, what to do with the attribute.
        kw["memoized_populators"][prop] = prop.columns[0]

    def create_row_processor(
        self,
        context: Any,
        query_entity: Any,
        path: Any,
        loadopt: Any,
        mapper: Any,
        result: Any,
        adapter: Any,
        populators: dict[str, list[Any]],
    ) -> None:
        """Expire the attribute of each object loaded (see the class documentation)."""
        populators["expire"].append((self.key, True))


class Deferral(Load):
    """The loading of :data:`DEFERRED_COLUMNS` on first use, on an as-of query's entity.

    One loader option (:class:`_UnloadedColumnLoader` for each column) whose cache key is computed
    once: SQLAlchemy computes the key of a statement at each execution, options included, and
    walking the option took as long as the rest of a point lookup's key. The option never
    changes, so its key does not either; a copy that SQLAlchemy makes of it (an as-of query's
    ``adapt()`` does, to rewrite a statement) computes its own. Its only bound parameter is the
    time, in the entity's snapshot, which every statement carrying the option reports where it
    selects that entity.
    """

    __slots__ = ("_key",)
    inherit_cache = True
    _key: tuple[Any, ...]

    @classmethod
    def of(cls, entity: Any, attributes: Iterable[Any]) -> Deferral:
        """The deferral of ``attributes`` of ``entity``."""
        loader = Load(entity)._set_column_strategy(tuple(attributes), {"chronicle_unloaded": True})
        made = cls.__new__(cls)
        made.path = loader.path
        made.propagate_to_loaders = loader.propagate_to_loaders
        made.context = loader.context
        made.additional_source_entities = loader.additional_source_entities
        found = loader._generate_cache_key()
        assert found is not None
        made._key = found.key
        return made

    def _gen_cache_key(self, anon_map: Any, bindparams: list[BindParameter[Any]]) -> Any:
        """The key computed once (see the class documentation)."""
        key = getattr(self, "_key", None)
        if key is None:
            return super()._gen_cache_key(anon_map, bindparams)
        return key
