"""PostgreSQL: one row-level ``plpgsql`` trigger function per versioned table.

``AFTER INSERT OR UPDATE OR DELETE .. FOR EACH ROW`` runs ``chronicle_capture_<table>()``, which
applies the rules of :mod:`sqlalchemy_chronicle.capture.database` to the row. The transaction's
identity is a transaction-local setting: the first row the transaction versions inserts the
``chronicle_transaction`` row and records its id and time with ``set_config('chronicle.tx', ..,
true)``; a rolled-back savepoint rolls the setting back with the row. The time is the library's
clock when the library sent one in ``chronicle.context`` (see :mod:`._context`), else
``clock_timestamp()`` at that first row, the default clock of ORM mode.

Per row, the function reads the row's newest version once, by its primary key, and decides from
it alone: nothing to write (it is open and holds the row's values), this transaction's version
to rewrite or drop, or another version to close before the new one is inserted. The change-log
entry is built from the trigger's row and the version read, never read back: an update costs
the read, the close, the insert and the entry; an insert the read, the version and the entry.

PostgreSQL fires the row triggers of a statement once the whole statement is done. With a
deferrable primary key, one statement may move a row onto the key another row of it leaves
(``SET id = id + 1``), and the row that arrives may be versioned first: a key-changing update
therefore writes the old key's delete marker only when no live row holds that key afterwards
(the arriving row's version then tells the key's change).

Row-level triggers, not statement-level ones with transition tables: the rules are per row, and
a row trigger applies them with plain branches, reading each row's newest version by its
primary key. The ORM's flushes write one row per statement, where a statement-level trigger
saves little (it builds the transition tables besides); set-based statements would pay off for
statements of many rows, which the standard workload does not have.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    Uuid,
)

from ._common import CONCURRENT_MESSAGE, CapturedTable, Names, TriggerText, options_comment

__all__ = ["create_statements", "drop_statements"]

# "This transaction's entry of the row" is written ``transaction_id + 0 = ch_tx``: the planner
# then finds it by the row's key, never by the index on ``transaction_id`` (all the entries of
# the transaction, a cost that grows with the transaction).

_MAX_PAIRS = 40
"""Key-value pairs per ``jsonb_build_object`` call (a function takes at most 100 arguments)."""


def drop_statements(spec: CapturedTable, dialect: Dialect) -> list[str]:
    """Drop the trigger's function; the trigger goes with it (and with its table)."""
    names = Names(spec, dialect)
    return [f"DROP FUNCTION IF EXISTS {names.function}() CASCADE"]


def create_statements(spec: CapturedTable, dialect: Dialect) -> list[str]:
    """The function and the trigger that version ``spec``'s table."""
    names = Names(spec, dialect)
    body = _Body(spec, dialect, names)
    old_keys, new_keys = body.keys("OLD"), body.keys("NEW")
    function = f"""CREATE OR REPLACE FUNCTION {names.function}() RETURNS trigger
LANGUAGE plpgsql AS $chronicle$
{options_comment(spec)}
DECLARE
  ch_tx bigint; ch_ts timestamptz; ch_f timestamptz; ch_ctx jsonb;
  ch_last record; ch_prior record; ch_op text; ch_doc jsonb; ch_rid text;
  ch_had_own boolean; ch_has_prior boolean; ch_kept boolean; ch_gone boolean;
BEGIN
  ch_gone := TG_OP = 'DELETE';
  IF TG_OP = 'UPDATE' AND ({old_keys}) IS DISTINCT FROM ({new_keys}) THEN
    ch_gone := NOT EXISTS (SELECT FROM {names.live} AS ch_now WHERE {body.live_key("OLD")});
  END IF;
  IF ch_gone THEN
{body.delete("OLD")}
  END IF;
  IF TG_OP = 'INSERT' OR TG_OP = 'UPDATE' THEN
{body.present("NEW")}
  END IF;
  RETURN NULL;
END
$chronicle$"""
    trigger = (
        f"CREATE TRIGGER {names.trigger} AFTER INSERT OR UPDATE OR DELETE ON {names.live} "
        f"FOR EACH ROW EXECUTE FUNCTION {names.function}()"
    )
    return [*drop_statements(spec, dialect), function, trigger]


class _Body(TriggerText):
    """The pieces of one table's trigger function.

    Its variables are prefixed ``ch_`` so that they never clash with a column name. Each
    branch reads the row's newest version once (``ch_last``) and decides from it: the open
    version holding the row's values (nothing to write), this transaction's version (to rewrite
    or drop), or another one (to close, after which the new version is inserted). The change-log
    entry is built from the trigger's row and the version before the transaction's
    (``ch_prior``), without reading the version just written back.
    """

    def __init__(self, spec: CapturedTable, dialect: Dialect, names: Names) -> None:
        super().__init__(spec, dialect, names.history)

    def object(self, pairs: list[tuple[str, str]]) -> str:
        """A ``jsonb`` object of (name, expression) pairs."""
        if not pairs:
            return "'{}'::jsonb"
        parts = []
        for start in range(0, len(pairs), _MAX_PAIRS):
            chunk = pairs[start : start + _MAX_PAIRS]
            args = ", ".join(f"{self.literal(name)}, {value}" for name, value in chunk)
            parts.append(f"jsonb_build_object({args})")
        return " || ".join(parts)

    def live_key(self, record: str) -> str:
        """The live row ``ch_now`` has the primary key of ``record``."""
        return " AND ".join(
            f"{self.field('ch_now', live)} = {self.field(record, live)}" for live, _ in self.key
        )

    def keys(self, record: str) -> str:
        return ", ".join(self.field(record, live) for live, _ in self.key)

    def same(self, version: str, record: str) -> str:
        """Version ``version`` holds the tracked values of live row ``record``."""
        parts = []
        for live, hist in self.columns:
            a, b = self.field(version, hist), self.field(record, live)
            if _is_plain_json(hist.type):
                a, b = f"{a}::jsonb", f"{b}::jsonb"
            parts.append(f"{a} IS NOT DISTINCT FROM {b}")
        return " AND ".join(parts)

    def ensure_transaction(self) -> str:
        return f"""
    ch_ctx := nullif(current_setting('chronicle.context', true), '')::jsonb;
    ch_tx := nullif(current_setting('chronicle.tx', true), '')::bigint;
    IF ch_tx IS NULL THEN
      ch_ts := coalesce((ch_ctx ->> 'clock')::timestamptz, clock_timestamp());
      INSERT INTO {self.transaction} ("timestamp", actor, reason, meta)
        VALUES (ch_ts, ch_ctx ->> 'actor', ch_ctx ->> 'reason', (ch_ctx -> 'meta')::json)
        RETURNING id INTO ch_tx;
      PERFORM set_config('chronicle.tx', ch_tx::text, true),
              set_config('chronicle.ts', ch_ts::text, true);
    ELSE
      ch_ts := current_setting('chronicle.ts')::timestamptz;
    END IF;"""

    @staticmethod
    def start() -> str:
        """``ch_f``: the new version's start, after ``ch_last`` (the concurrency policy)."""
        return f"""
      ch_f := greatest(ch_last.valid_from, coalesce(ch_last.valid_to, ch_last.valid_from));
      IF ch_f >= ch_ts THEN
        IF coalesce((ch_ctx ->> 'strict')::boolean, false) THEN
          RAISE EXCEPTION '{CONCURRENT_MESSAGE}: a version of this row starts at %, at or after '
            'this transaction''s time %', ch_f, ch_ts USING ERRCODE = '40001';
        END IF;
        ch_f := ch_f + interval '1 microsecond';
      ELSE
        ch_f := ch_ts;
      END IF;"""

    def last(self, record: str) -> str:
        """Read the newest version of ``record``'s row into ``ch_last``."""
        return (
            f"SELECT * INTO ch_last FROM {self.history} WHERE {self.where_key(record)} "
            "ORDER BY version DESC LIMIT 1;"
        )

    def at(self, record: str, version: str) -> str:
        """The version numbered ``version`` of ``record``'s row."""
        return f"{self.where_key(record)} AND version = {version}"

    def close_and_insert(self, record: str, end: str, operation: str) -> str:
        """Close ``ch_last`` when open and insert the version after it, of ``operation``."""
        h = self.history
        return f"""
{self.start()}
        IF ch_last.valid_to IS NULL THEN
          UPDATE {h} SET valid_to = ch_f WHERE {self.at(record, "ch_last.version")};
        END IF;
        ch_op := {operation};
        {self.insert(record, "ch_last.version + 1", "ch_f", end, "ch_op")}
        ch_prior := ch_last;
        ch_has_prior := ch_last.operation <> 'delete';"""

    def present(self, record: str) -> str:
        h = self.history
        moved = f"TG_OP = 'UPDATE' AND ({self.keys('OLD')}) IS DISTINCT FROM ({self.keys('NEW')})"
        return f"""
    {self.last(record)}
    IF NOT FOUND OR ch_last.valid_to IS NOT NULL OR NOT ({self.same("ch_last", record)}) THEN
{self.ensure_transaction()}
      ch_had_own := ch_last.transaction_id IS NOT DISTINCT FROM ch_tx;
      ch_kept := true;
      ch_has_prior := false;
      IF ch_had_own THEN
        SELECT * INTO ch_prior FROM {h} WHERE {self.at(record, "ch_last.version - 1")};
        ch_has_prior := FOUND AND ch_prior.operation <> 'delete';
        IF ch_has_prior AND ch_prior.valid_to = ch_last.valid_from
           AND {self.same("ch_prior", record)} THEN
          DELETE FROM {h} WHERE {self.at(record, "ch_last.version")};
          UPDATE {h} SET valid_to = NULL WHERE {self.at(record, "ch_prior.version")};
          ch_kept := false;
        ELSE
          ch_op := CASE WHEN ch_last.operation = 'delete' THEN 'update'
            ELSE ch_last.operation END;
          UPDATE {h} SET {self.assign(record)}, valid_to = NULL, operation = ch_op
            WHERE {self.at(record, "ch_last.version")};
        END IF;
      ELSIF ch_last.version IS NOT NULL THEN
{
            self.close_and_insert(
                record,
                "NULL",
                "CASE WHEN ch_last.operation <> 'delete' AND ch_last.valid_to IS NULL "
                "THEN 'update' ELSE 'insert' END",
            )
        }
      ELSE
        ch_op := CASE WHEN {moved} OR TG_OP = 'INSERT' THEN 'insert' ELSE 'update' END;
        {self.insert(record, "1", "ch_ts", "NULL", "ch_op")}
      END IF;
{self.log(record)}
    END IF;"""

    def delete(self, record: str) -> str:
        h = self.history
        return f"""
{self.ensure_transaction()}
    {self.last(record)}
    ch_had_own := ch_last.transaction_id IS NOT DISTINCT FROM ch_tx;
    ch_kept := true;
    ch_has_prior := false;
    ch_op := 'delete';
    IF ch_had_own THEN
      IF ch_last.operation = 'insert' THEN
        DELETE FROM {h} WHERE {self.at(record, "ch_last.version")};
        ch_kept := false;
      ELSIF ch_last.operation <> 'delete' THEN
        UPDATE {h} SET {self.assign(record)}, operation = 'delete', valid_to = valid_from
          WHERE {self.at(record, "ch_last.version")};
      END IF;
    ELSIF ch_last.version IS NOT NULL THEN
{self.close_and_insert(record, "ch_f", "'delete'")}
    ELSE
      {self.insert(record, "1", "ch_ts", "ch_ts", "'delete'")}
    END IF;
{self.log(record, deleted=True)}"""

    def row_id(self, record: str) -> str:
        if len(self.key) == 1:
            live, _ = self.key[0]
            return f"({_json(self.field(record, live), live.type)}) #>> '{{}}'"
        parts = " || ',' || ".join(
            f"({_json(self.field(record, live), live.type)})::text" for live, _ in self.key
        )
        return f"'[' || {parts} || ']'"

    def log(self, record: str, *, deleted: bool = False) -> str:
        """Write the row's change-log entry of this transaction, replacing an earlier one.

        The transaction's version (if ``ch_kept``) holds ``record``'s values and ``ch_op``
        (``'delete'`` when ``deleted``); the version before it is ``ch_prior`` when
        ``ch_has_prior``.
        """
        if not self.spec.changelog:
            return ""

        def now(live: Any, hist: Any) -> str:
            return _json(self.field(record, live), hist.type)

        every = self.object([(hist.name, now(live, hist)) for live, hist in self.columns])
        unknown = self.object(
            [
                (hist.name, f"jsonb_build_array(NULL::jsonb, {now(live, hist)})")
                for live, hist in self.columns
            ]
        )
        changed = []
        for live, hist in self.columns:
            cast = "::jsonb" if _is_plain_json(hist.type) else ""
            before, after = self.field("ch_prior", hist), self.field(record, live)
            prior = _json(before, hist.type)
            pair = f"jsonb_build_array({prior}, {now(live, hist)})"
            changed.append(
                f"          IF {before}{cast} IS DISTINCT FROM {after}{cast} THEN\n"
                f"            ch_doc := ch_doc || jsonb_build_object({self.literal(hist.name)}, "
                f"{pair});\n          END IF;"
            )
        changes = "\n".join(changed)
        document = (
            f"ch_doc := {every};"
            if deleted
            else f"""IF ch_op = 'insert' THEN
          ch_doc := {every};
        ELSIF ch_has_prior THEN
          ch_doc := '{{}}'::jsonb;
{changes}
        ELSE
          ch_doc := {unknown};
        END IF;"""
        )
        return f"""
    IF coalesce((ch_ctx ->> 'changelog')::boolean, true) THEN
      ch_rid := {self.row_id(record)};
      IF ch_had_own THEN  -- else this transaction has no entry of the row yet
        DELETE FROM {self.changelog}
          WHERE table_name = {self.table_name} AND row_id = ch_rid AND transaction_id + 0 = ch_tx;
      END IF;
      IF ch_kept THEN
        {document}
        INSERT INTO {self.changelog}
          (transaction_id, table_name, row_id, event_type, "timestamp", changes)
          VALUES (ch_tx, {self.table_name}, ch_rid, upper(ch_op), ch_ts, ch_doc);
      END IF;
    END IF;"""


def _is_plain_json(type_: Any) -> bool:
    from sqlalchemy.dialects import postgresql

    impl = getattr(type_, "impl", type_)
    return isinstance(impl, JSON) and not isinstance(impl, postgresql.JSONB)


def _json(expression: str, type_: Any) -> str:
    """The value as ``json_value()`` renders what Python reads back, as ``jsonb``.

    Integers, floats and booleans are JSON numbers and booleans (a non-finite float is the text
    ``"NaN"``, ``"Infinity"``, ``"-Infinity"``, as in ORM mode); decimals, UUIDs and text are
    strings; dates and naive date-times are ISO text (microseconds only when not zero, as
    Python's ``isoformat()``); bytes are base64 text; JSON is itself. Any other type is its
    PostgreSQL text (which may differ from Python's ``str()``: see the docs).
    """
    impl = getattr(type_, "impl", type_)
    if isinstance(impl, Boolean | Integer):
        return f"to_jsonb({expression})"
    if isinstance(impl, Float):
        return (
            f"CASE WHEN {expression} IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) "
            f"THEN to_jsonb({expression}::text) ELSE to_jsonb({expression}) END"
        )
    if isinstance(impl, Numeric):
        return f"to_jsonb({expression}::text)"
    if isinstance(impl, DateTime) and not getattr(impl, "timezone", False):
        return (
            f"to_jsonb(to_char({expression}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
            f"extract(microseconds FROM {expression})::bigint % 1000000 <> 0 THEN "
            f"to_char({expression}, '.US') ELSE '' END)"
        )
    if isinstance(impl, Date) and not isinstance(impl, DateTime):
        return f"to_jsonb(to_char({expression}, 'YYYY-MM-DD'))"
    if isinstance(impl, JSON):
        return f"to_jsonb({expression})"
    if isinstance(impl, LargeBinary):
        return f"to_jsonb(translate(encode({expression}, 'base64'), E'\\n', ''))"
    if isinstance(impl, Uuid):
        return f"to_jsonb({expression}::text)"
    return f"to_jsonb({expression}::text)"
