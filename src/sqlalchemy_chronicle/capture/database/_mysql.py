"""MariaDB and MySQL: three row triggers per versioned table.

``AFTER INSERT``, ``AFTER UPDATE`` and ``AFTER DELETE`` apply the rules of
:mod:`sqlalchemy_chronicle.capture.database` to the row, with local variables and ``IF``.

**Which transaction.** MariaDB shows no transaction id a trigger could rely on
(``information_schema.innodb_trx`` is a cache refreshed at most every 100 ms). The transaction's
row id and time live in user variables (``@chronicle_tx_id``, ``@chronicle_ts``):

- the library sets ``@chronicle_context`` and clears ``@chronicle_tx_id`` before the first write
  of each transaction, and clears both before the commit (see :mod:`._context`). With
  ``@chronicle_context`` set, the triggers trust ``@chronicle_tx_id`` without reading
  ``chronicle_transaction``: after what may have taken the row back (a rolled-back savepoint, a
  failed statement, textual SQL such as ``ROLLBACK TO SAVEPOINT``) the library checks, once,
  that the row still exists, and clears the variable if not;
- on a connection without ``@chronicle_context`` (another client), a statement whose start time
  (``NOW(6)``, the same for every row of the statement) differs from the last one's begins a new
  ``chronicle_transaction`` row. So a write from another client gets one transaction row per
  statement, with no actor and ``UTC_TIMESTAMP(6)``; their triggers check that the row of
  ``@chronicle_tx_id`` still exists at every row. Remembering the InnoDB transaction id
  instead would not be sound: right after a commit, ``innodb_trx`` still shows the connection's
  finished transaction, and the next one would reuse its row.

**Reads.** Under REPEATABLE READ a plain read in a trigger sees the transaction's snapshot, which
misses a version a concurrent transaction committed since. The row's newest version is therefore
read with a locking read of its exact primary key (``FOR UPDATE``), which sees the newest
committed data and locks that record only: a range read would take InnoDB's next-key locks, and
writers of neighbouring rows would wait for each other (see :meth:`_Body.find_latest`). The
change-log entry is inserted with ``VALUES``, since an ``INSERT .. SELECT`` takes shared
next-key locks on what it reads. A row's first entry in the transaction (the common case) is
built from the row and the document of the update computed by the locking read itself; only a
later statement on the row reads the transaction's version again, with a plain read.

**Cost.** Each statement in a trigger costs about as much as the row write that fired it, so
the common path runs few: the version number, the locking read, closing the version before,
the new version, the entry.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Dialect, Float, Integer, Numeric

from ._common import CONCURRENT_MESSAGE, CapturedTable, Names, TriggerText, options_comment

__all__ = ["create_statements", "drop_statements"]

# "This transaction's version of the row" is written ``transaction_id + 0 = ch_tx``: the planner
# then finds it by the primary key, never by the index on ``transaction_id`` (all the versions
# of the transaction, a cost that grows with the transaction).

_EVENTS = ("insert", "update", "delete")


def drop_statements(spec: CapturedTable, dialect: Dialect) -> list[str]:
    """Drop the table's triggers (they also go with the table)."""
    names = Names(spec, dialect)
    return [f"DROP TRIGGER IF EXISTS {names.qualified(e)}" for e in _EVENTS]


def create_statements(spec: CapturedTable, dialect: Dialect) -> list[str]:
    """The triggers that version ``spec``'s table."""
    names = Names(spec, dialect)
    body = _Body(spec, dialect)
    quote = dialect.identifier_preparer.quote
    moved = " OR ".join(
        f"NOT (OLD.{quote(live.name)} <=> NEW.{quote(live.name)})" for live, _ in body.key
    )

    def trigger(event: str, steps: str) -> str:
        return (
            f"CREATE TRIGGER {names.qualified(event)} AFTER {event.upper()} ON "
            f"{names.live} FOR EACH ROW\nBEGIN\n{options_comment(spec)}\n{_DECLARE}\n{steps}\nEND"
        )

    update = f"""
  IF {moved} THEN
{body.delete("OLD")}
{body.present("NEW", "'insert'")}
  ELSE
{body.present("NEW", "'update'")}
  END IF;"""
    return [
        *drop_statements(spec, dialect),
        trigger("insert", body.present("NEW", "'insert'")),
        trigger("update", update),
        trigger("delete", body.delete("OLD")),
    ]


_DECLARE = """  DECLARE ch_tx BIGINT;
  DECLARE ch_ts DATETIME(6);
  DECLARE ch_f DATETIME(6);
  DECLARE ch_n INT;
  DECLARE ch_tv INT;
  DECLARE ch_tv_op VARCHAR(8);
  DECLARE ch_tv_from DATETIME(6);
  DECLARE ch_base INT;
  DECLARE ch_base_op VARCHAR(8);
  DECLARE ch_base_from DATETIME(6);
  DECLARE ch_base_to DATETIME(6);
  DECLARE ch_base_tx BIGINT;
  DECLARE ch_v INT;
  DECLARE ch_same BOOLEAN;
  DECLARE ch_event VARCHAR(8);
  DECLARE ch_doc LONGTEXT;
  DECLARE ch_pairs LONGTEXT;
  DECLARE CONTINUE HANDLER FOR NOT FOUND BEGIN END;"""


class _Body(TriggerText):
    """The statements of one table's triggers."""

    def __init__(self, spec: CapturedTable, dialect: Dialect) -> None:
        super().__init__(spec, dialect, dialect.identifier_preparer.format_table(spec.base.history))

    def same(self, record: str) -> str:
        return " AND ".join(
            f"{self.quote(hist.name)} <=> {self.field(record, live)}" for live, hist in self.columns
        )

    def ensure_transaction(self) -> str:
        return f"""
    IF @chronicle_context IS NULL AND NOT (@chronicle_statement <=> NOW(6)) THEN
      SET @chronicle_tx_id = NULL, @chronicle_statement = NOW(6);
    END IF;
    SET ch_tx = @chronicle_tx_id;
    IF ch_tx IS NOT NULL AND @chronicle_context IS NULL THEN
      SELECT max(id) INTO ch_tx FROM {self.transaction} WHERE id = @chronicle_tx_id;
    END IF;
    IF ch_tx IS NULL THEN
      SET ch_ts = COALESCE(CAST(JSON_VALUE(@chronicle_context, '$.clock') AS DATETIME(6)),
                           UTC_TIMESTAMP(6));
      INSERT INTO {self.transaction} (`timestamp`, actor, reason, meta)
        VALUES (ch_ts, JSON_VALUE(@chronicle_context, '$.actor'),
                JSON_VALUE(@chronicle_context, '$.reason'),
                JSON_EXTRACT(@chronicle_context, '$.meta'));
      SET ch_tx = LAST_INSERT_ID();
      SET @chronicle_tx_id = ch_tx, @chronicle_ts = ch_ts;
    ELSE
      SET ch_ts = @chronicle_ts;
    END IF;"""

    def find_latest(self, record: str, existed: bool, present: bool = True) -> str:
        """``ch_base..``: the row's newest committed version, locked by its exact key.

        ``ch_same`` says whether it holds the values of ``record``; when ``present`` (and the
        change log is kept), ``ch_pairs`` is the change-log document of an update from it to
        ``record``, built in the same read.

        The number comes from the snapshot (``max(version)``, no lock); the version is then read
        with a locking read of its full primary key, which locks that record only and sees the
        newest committed data. A version closed since the snapshot is followed to the next
        number. Only a row that ``existed`` before the statement and has no version in the
        snapshot (its history was committed since) is read with a locking range read.
        """
        h, key = self.history, self.where_key(record)
        same = f"({self.same(record)})"
        columns = "version, operation, valid_from, valid_to, transaction_id"
        into = "ch_base, ch_base_op, ch_base_from, ch_base_to, ch_base_tx"
        if present and self.spec.changelog:
            same += f", {self.pairs(record)}"
            into = "ch_pairs, " + into
            columns = f"{self.pairs(record)}, " + columns
            same = f"({self.same(record)})"
        fallback = (
            f"""
    IF ch_v IS NULL THEN
      SELECT {columns}, {same} INTO {into}, ch_same FROM {h} WHERE {key}
        ORDER BY version DESC LIMIT 1 FOR UPDATE;
    END IF;"""
            if existed
            else ""
        )
        return f"""
    SET ch_base = NULL, ch_base_op = NULL, ch_base_from = NULL, ch_base_to = NULL,
        ch_base_tx = NULL, ch_v = NULL, ch_same = 0;
    SELECT max(version) INTO ch_v FROM {h} WHERE {key};{fallback}
    WHILE ch_v IS NOT NULL DO
      SET ch_base = NULL, ch_same = 0;
      SELECT {columns}, {same} INTO {into}, ch_same FROM {h}
        WHERE {key} AND version = ch_v FOR UPDATE;
      SET ch_v = NULL;
      IF ch_base IS NULL THEN
        SELECT {columns}, {same} INTO {into}, ch_same FROM {h} WHERE {key}
          ORDER BY version DESC LIMIT 1 FOR UPDATE;
      ELSEIF ch_base_to IS NOT NULL THEN
        SELECT version INTO ch_v FROM {h} WHERE {key} AND version = ch_base + 1 FOR UPDATE;
      END IF;
    END WHILE;
    SET ch_tv = NULL, ch_tv_op = NULL, ch_tv_from = NULL;"""

    def own(self) -> str:
        """``ch_tv..``: this transaction's version of the row, which is its newest if any."""
        return """
    IF ch_base_tx <=> ch_tx THEN
      SET ch_tv = ch_base, ch_tv_op = ch_base_op, ch_tv_from = ch_base_from;
    END IF;"""

    def start(self) -> str:
        """``ch_f``: the new version's start after ``ch_base``; closes ``ch_base`` if open."""
        h = self.history
        return f"""
      SET ch_f = GREATEST(ch_base_from, COALESCE(ch_base_to, ch_base_from));
      IF ch_f >= ch_ts THEN
        IF JSON_EXTRACT(@chronicle_context, '$.strict') = 'true' THEN
          SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{CONCURRENT_MESSAGE}: a version of this
            row starts at or after this transaction''s time';
        END IF;
        SET ch_f = ch_f + INTERVAL 1 MICROSECOND;
      ELSE
        SET ch_f = ch_ts;
      END IF;
      IF ch_base_to IS NULL THEN
        UPDATE {h} SET valid_to = ch_f WHERE {self.where_key("ch_rec")} AND version = ch_base;
      END IF;"""

    def present(self, record: str, kind: str) -> str:
        h, key = self.history, self.where_key(record)
        existed = kind == "'update'"
        return f"""
{self.find_latest(record, existed)}
  IF NOT (ch_base IS NOT NULL AND ch_base_to IS NULL AND ch_same) THEN
{self.ensure_transaction()}
{self.own()}
    IF ch_tv IS NOT NULL THEN
      SELECT count(*) INTO ch_n FROM {h} WHERE {key} AND version = ch_tv - 1
        AND operation <> 'delete' AND valid_to = ch_tv_from AND {self.same(record)};
      IF ch_n > 0 THEN
        DELETE FROM {h} WHERE {key} AND version = ch_tv;
        UPDATE {h} SET valid_to = NULL WHERE {key} AND version = ch_tv - 1;
      ELSE
        UPDATE {h} SET {self.assign(record)}, valid_to = NULL,
          operation = IF(operation = 'delete', 'update', operation)
          WHERE {key} AND version = ch_tv;
      END IF;
    ELSEIF ch_base IS NOT NULL THEN
{self.start().replace("ch_rec", record)}
      {
            self.insert(
                record,
                "ch_base + 1",
                "ch_f",
                "NULL",
                "IF(ch_base_op <> 'delete' AND ch_base_to IS NULL, 'update', 'insert')",
            )
        }
    ELSE
      {self.insert(record, "1", "ch_ts", "NULL", kind)}
    END IF;
{self.log(record, kind)}
  END IF;"""

    def delete(self, record: str) -> str:
        h, key = self.history, self.where_key(record)
        return f"""
{self.find_latest(record, True, present=False)}
{self.ensure_transaction()}
{self.own()}
    IF ch_tv IS NOT NULL THEN
      IF ch_tv_op = 'insert' THEN
        DELETE FROM {h} WHERE {key} AND version = ch_tv;
      ELSEIF ch_tv_op <> 'delete' THEN
        UPDATE {h} SET {self.assign(record)}, operation = 'delete', valid_to = valid_from
          WHERE {key} AND version = ch_tv;
      END IF;
    ELSEIF ch_base IS NOT NULL THEN
{self.start().replace("ch_rec", record)}
      {self.insert(record, "ch_base + 1", "ch_f", "ch_f", "'delete'")}
    ELSE
      {self.insert(record, "1", "ch_ts", "ch_ts", "'delete'")}
    END IF;
{self.log(record)}"""

    def row_id(self, record: str) -> str:
        if len(self.key) == 1:
            live, _ = self.key[0]
            return f"CAST({self.field(record, live)} AS CHAR)"
        parts = ", ".join(_json(self.field(record, live), live.type) for live, _ in self.key)
        return f"REPLACE(JSON_COMPACT(JSON_ARRAY({parts})), ', ', ',')"

    def pairs(self, record: str, prior: str | None = None, now_live: bool = True) -> str:
        """The change-log document of an update to ``record``: the changed columns' pairs.

        From ``prior``, or, when None, from the history row the statement reads; ``now_live``:
        ``record`` has the live table's column names. The object is written as text, one
        ``"name": [before, after]`` member per changed column joined by ``CONCAT_WS()`` (which
        skips the NULL of an unchanged one): MariaDB's JSON functions parse their document
        argument anew at each call, and a ``JSON_REMOVE()`` of the unchanged columns from a
        ``JSON_OBJECT()`` of all of them cost, at every updated row, about what a statement
        costs.
        """

        def prior_field(hist: Any) -> str:
            return self.field(prior, hist) if prior else self.quote(hist.name)

        def now(live: Any, hist: Any) -> str:
            return self.field(record, live if now_live else hist)

        members = ", ".join(
            f"IF({prior_field(hist)} <=> {now(live, hist)}, NULL, "
            f"CONCAT({self.literal(json.dumps(hist.name) + ': ')}, "
            f"JSON_ARRAY({_json(prior_field(hist), hist.type)}, "
            f"{_json(now(live, hist), hist.type)})))"
            for live, hist in self.columns
        )
        return f"CONCAT('{{', CONCAT_WS(', ', {members}), '}}')"

    def log(self, record: str, kind: str | None = None) -> str:
        """Write the row's change-log entry of this transaction.

        ``kind`` is the operation of a first version of an insert or an update, None for a
        delete.
        A row with no version in this transaction before this statement (``ch_tv`` is NULL,
        the common case) has no entry yet: its entry is built from ``record`` and, for an
        update, ``ch_pairs``. Otherwise the entry is rewritten from the transaction's version
        and the one before it, read again.
        """
        if not self.spec.changelog:
            return ""
        h = self.history
        on = " AND ".join(
            f"ch_prior.{self.quote(hist.name)} = ch_now.{self.quote(hist.name)}"
            for _, hist in self.key
        )

        def unknown(version: str) -> str:
            return "JSON_OBJECT({})".format(
                ", ".join(
                    f"{self.literal(hist.name)}, JSON_ARRAY(NULL, "
                    f"{_json(self.field(version, hist), hist.type)})"
                    for _, hist in self.columns
                )
            )

        every_now = "JSON_OBJECT({})".format(
            ", ".join(
                f"{self.literal(hist.name)}, {_json(self.field('ch_now', hist), hist.type)}"
                for _, hist in self.columns
            )
        )
        every_record = "JSON_OBJECT({})".format(
            ", ".join(
                f"{self.literal(hist.name)}, {_json(self.field(record, live), hist.type)}"
                for live, hist in self.columns
            )
        )
        unknown_record = "JSON_OBJECT({})".format(
            ", ".join(
                f"{self.literal(hist.name)}, JSON_ARRAY(NULL, "
                f"{_json(self.field(record, live), hist.type)})"
                for live, hist in self.columns
            )
        )
        if kind is None:
            first = f"SET ch_event = 'DELETE', ch_doc = {every_record};"
        else:
            first = f"""SET ch_event = IF(ch_base IS NULL, {kind},
          IF(ch_base_op <> 'delete' AND ch_base_to IS NULL, 'update', 'insert'));
        SET ch_doc = CASE WHEN ch_event = 'insert' THEN {every_record}
          WHEN ch_base IS NULL THEN {unknown_record} ELSE ch_pairs END;
        SET ch_event = UPPER(ch_event);"""
        enabled = "NOT (JSON_EXTRACT(@chronicle_context, '$.changelog') <=> 'false')"
        return f"""
    IF {enabled} THEN
      IF ch_tv IS NULL THEN  -- this transaction has no entry of the row yet
        {first}
      ELSE
        DELETE FROM {self.changelog} WHERE table_name = {self.table_name}
          AND row_id = {self.row_id(record)} AND transaction_id + 0 = ch_tx;
        SET ch_event = NULL, ch_doc = NULL;
        SELECT UPPER(ch_now.operation),
          CASE WHEN ch_now.operation IN ('insert', 'delete') THEN {every_now}
               WHEN ch_prior.version IS NULL THEN {unknown("ch_now")}
               ELSE {self.pairs("ch_now", "ch_prior", now_live=False)} END
        INTO ch_event, ch_doc
        FROM {h} AS ch_now LEFT JOIN {h} AS ch_prior ON {on}
          AND ch_prior.version = ch_now.version - 1 AND ch_prior.operation <> 'delete'
        WHERE {self.where_key(record, "ch_now")} AND ch_now.transaction_id + 0 = ch_tx LIMIT 1;
      END IF;
      IF ch_event IS NOT NULL THEN
        INSERT INTO {self.changelog}
          (transaction_id, table_name, row_id, event_type, `timestamp`, changes)
          VALUES (ch_tx, {self.table_name}, {self.row_id(record)}, ch_event, ch_ts, ch_doc);
      END IF;
    END IF;"""


def _json(expression: str, type_: Any) -> str:
    """The value as ``json_value()`` renders what Python reads back, for ``JSON_OBJECT()``.

    Booleans (``TINYINT``) are JSON booleans; decimals are text; naive date-times are ISO text
    (microseconds only when not zero); JSON is itself; integers, floats and text as they are.
    """
    impl = getattr(type_, "impl", type_)
    if isinstance(impl, Boolean):
        return (
            f"IF({expression} IS NULL, NULL, IF({expression}, JSON_EXTRACT('true', '$'), "
            "JSON_EXTRACT('false', '$')))"
        )
    if isinstance(impl, Integer | Float):
        return expression
    if isinstance(impl, Numeric):
        return f"CAST({expression} AS CHAR)"
    if isinstance(impl, DateTime):
        return (
            f"IF(MICROSECOND({expression}) = 0, DATE_FORMAT({expression}, '%Y-%m-%dT%H:%i:%s'), "
            f"DATE_FORMAT({expression}, '%Y-%m-%dT%H:%i:%s.%f'))"
        )
    if isinstance(impl, Date):
        return f"DATE_FORMAT({expression}, '%Y-%m-%d')"
    if isinstance(impl, JSON):
        return f"JSON_EXTRACT({expression}, '$')"
    return expression
