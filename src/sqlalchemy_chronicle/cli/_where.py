"""``restore --all --where``: a SQL condition typed on a command line, as a condition on a class.

:func:`~sqlalchemy_chronicle.restore_all` reads its criteria against the rows as they were at the
time restored to, which it can do only with expressions on the class's columns, not with SQL
text. So the command line reads a small part of SQL and builds that expression:

- ``column OP value`` with ``=``, ``!=``, ``<>``, ``<``, ``<=``, ``>``, ``>=``;
- ``column [NOT] LIKE 'pattern'``, ``column IS [NOT] NULL``, ``column [NOT] IN (v1, v2, ...)``;
- joined with ``AND``, ``OR``, ``NOT`` and parentheses.

A column is named by its name in the table (or its attribute's name); a value is a number,
a string in single quotes (``''`` for a quote), ``TRUE`` or ``FALSE``. NULL is tested with
``IS [NOT] NULL`` only: a comparison with it is never true in SQL, which a condition typed in a
hurry rarely means, so ``= NULL`` is refused. Anything else (functions, subqueries, other
tables) is refused with a message that says where.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import Any, Final

from sqlalchemy import ColumnElement, and_, inspect, not_, null, or_

from ._reflect import CommandError

__all__ = ["parse_where"]

_TOKEN: Final = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
    r"|(?P<op><=|>=|<>|!=|=|<|>)|(?P<punct>[(),])|(?P<name>[A-Za-z_][A-Za-z0-9_]*|\"[^\"]+\"))"
)
_KEYWORDS: Final = frozenset({"and", "or", "not", "is", "null", "in", "like", "true", "false"})
_COMPARE: Final = {
    "=": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
    "<>": lambda c, v: c != v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
}


def parse_where(cls: type[Any], text: str) -> ColumnElement[bool]:
    """``text`` (see the module documentation) as a condition on ``cls``'s columns.

    :raises CommandError: ``text`` is not such a condition, or names no column of ``cls``.
    """
    return _Parser(cls, text).parse()


class _Parser:
    def __init__(self, cls: type[Any], text: str) -> None:
        self.cls = cls
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        position = 0
        while position < len(text):
            if not text[position:].strip():
                break
            match = _TOKEN.match(text, position)
            if match is None or match.lastgroup is None:
                skipped = len(text[position:]) - len(text[position:].lstrip())
                self.fail(position + skipped, "")
                raise AssertionError  # pragma: no cover - fail() raises
            kind = match.lastgroup
            value, start = match.group(kind), match.start(kind)
            if kind == "name" and value.lower() in _KEYWORDS:
                kind, value = "keyword", value.lower()
            self.tokens.append((kind, value, start))
            position = match.end()
        self.index = 0

    def fail(self, position: int, expected: str) -> None:
        shown = self.text[position : position + 20] or "the end"
        raise CommandError(
            f"--where {self.text!r}: cannot read it at {shown!r}"
            + (f", expected {expected}" if expected else "")
            + "; write conditions such as \"status = 'draft' AND id IN (1, 2)\""
        )

    def peek(self) -> tuple[str, str, int]:
        if self.index < len(self.tokens):
            return self.tokens[self.index]
        return ("end", "", len(self.text))

    def take(self, kind: str, value: str | None = None, expected: str = "") -> str:
        token_kind, token_value, position = self.peek()
        if token_kind != kind or (value is not None and token_value != value):
            self.fail(position, expected or (value or kind))
        self.index += 1
        return token_value

    def accept(self, kind: str, value: str) -> bool:
        token_kind, token_value, _ = self.peek()
        if token_kind == kind and token_value == value:
            self.index += 1
            return True
        return False

    def parse(self) -> ColumnElement[bool]:
        condition = self.disjunction()
        self.take("end", expected="AND, OR or the end")
        return condition

    def disjunction(self) -> ColumnElement[bool]:
        terms = [self.conjunction()]
        while self.accept("keyword", "or"):
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else or_(*terms)

    def conjunction(self) -> ColumnElement[bool]:
        factors = [self.factor()]
        while self.accept("keyword", "and"):
            factors.append(self.factor())
        return factors[0] if len(factors) == 1 else and_(*factors)

    def factor(self) -> ColumnElement[bool]:
        if self.accept("keyword", "not"):
            return not_(self.factor())
        if self.accept("punct", "("):
            inner = self.disjunction()
            self.take("punct", ")", "')'")
            return inner
        return self.comparison()

    def comparison(self) -> ColumnElement[bool]:
        name = self.take("name", expected="a column name").strip('"')
        if self.peek()[:2] == ("punct", "("):
            self.fail(self.peek()[2] - len(name), "a column (functions are not supported)")
        column = self.column(name)
        kind, value, position = self.peek()
        if kind == "op":
            self.index += 1
            return _COMPARE[value](column, self.value(column))  # type: ignore[no-any-return]
        negated = self.accept("keyword", "not")
        if self.accept("keyword", "like"):
            pattern = self.value(column)
            return column.not_like(pattern) if negated else column.like(pattern)  # type: ignore[no-any-return]
        if self.accept("keyword", "in"):
            self.take("punct", "(", "'('")
            values = [self.value(column)]
            while self.accept("punct", ","):
                values.append(self.value(column))
            self.take("punct", ")", "')'")
            return column.not_in(values) if negated else column.in_(values)  # type: ignore[no-any-return]
        if not negated and self.accept("keyword", "is"):
            negated = self.accept("keyword", "not")
            self.take("keyword", "null", "NULL")
            return column.is_not(null()) if negated else column.is_(null())  # type: ignore[no-any-return]
        self.fail(position, "a comparison (=, <, LIKE, IN, IS NULL, ...)")
        raise AssertionError  # pragma: no cover - fail() raises

    def column(self, name: str) -> Any:
        mapper = inspect(self.cls)
        for prop in mapper.column_attrs:
            if prop.key == name or any(getattr(c, "name", None) == name for c in prop.columns):
                return getattr(self.cls, prop.key)
        raise CommandError(
            f"--where {self.text!r}: {self.cls.__name__} has no column {name!r}; its columns "
            f"are {', '.join(p.key for p in mapper.column_attrs)}"
        )

    def value(self, column: Any) -> Any:
        kind, text, position = self.peek()
        self.index += 1
        if kind == "string":
            return _typed(column, text[1:-1].replace("''", "'"))
        if kind == "number":
            return decimal.Decimal(text) if "." in text or "e" in text.lower() else int(text)
        if kind == "keyword" and text in {"true", "false"}:
            return text == "true"
        if kind == "keyword" and text == "null":
            raise CommandError(
                f"--where {self.text!r}: a comparison with NULL is never true in SQL; write "
                "column IS NULL or column IS NOT NULL"
            )
        self.index -= 1
        self.fail(position, "a value: a number, 'text', TRUE or FALSE")
        raise AssertionError  # pragma: no cover - fail() raises


def _typed(column: Any, text: str) -> Any:
    """A quoted value as the column's type takes it (a date from its ISO text, for example)."""
    try:
        wanted = column.type.python_type
    except NotImplementedError:
        return text
    try:
        if wanted is dt.datetime:
            return dt.datetime.fromisoformat(text)
        if wanted is dt.date:
            return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--where: {text!r} is not a {wanted.__name__} (ISO 8601)") from None
    return text
