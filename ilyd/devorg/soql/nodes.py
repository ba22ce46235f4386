"""The frozen AST the parser produces and the evaluator consumes.

Every node keeps ``pos``, its character offset in the query text, so that errors found
later (against the schema) can still point their caret at the right place.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class LiteralKind(StrEnum):
    """What a literal value is, before it is checked against a field's type."""

    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    NULL = "null"
    DATE = "date"
    DATETIME = "datetime"
    DATE_KEYWORD = "date_keyword"  # TODAY, LAST_N_DAYS:7 …: value is (KEYWORD, n | None)


@dataclass(frozen=True)
class Literal:
    """A value on the right of a comparison.

    ``value`` is a str, int/float, bool, None, ``datetime.date``, tz-aware
    ``datetime.datetime`` or a (keyword, n) tuple; ``raw`` is the text as written
    (for strings: between the quotes, escapes undecoded; LIKE patterns are built from it).
    """

    kind: LiteralKind
    value: str | int | float | bool | dt.date | tuple[str, int | None] | None
    raw: str
    pos: int


@dataclass(frozen=True)
class FieldPath:
    """``Name`` or ``Owner.Profile.Name`` as written (case preserved)."""

    parts: tuple[str, ...]
    pos: int

    @property
    def text(self) -> str:
        """The path as written, dotted."""
        return ".".join(self.parts)


@dataclass(frozen=True)
class CountAll:
    """``COUNT()``: the query returns only a total."""

    pos: int


@dataclass(frozen=True)
class CountField:
    """``COUNT(field) [alias]``: an aggregate column."""

    field: FieldPath
    alias: str | None
    pos: int


SelectItem = FieldPath | CountAll | CountField


@dataclass(frozen=True)
class Comparison:
    """``field op literal`` with op one of = != < > <= >= LIKE (``<>`` is stored as ``!=``)."""

    field: FieldPath
    op: str
    value: Literal
    pos: int


@dataclass(frozen=True)
class InList:
    """``field [NOT] IN (literal, …)``."""

    field: FieldPath
    negated: bool
    values: tuple[Literal, ...]
    pos: int


@dataclass(frozen=True)
class InSubquery:
    """Semi-join ``field IN (SELECT …)`` or anti-join ``field NOT IN (SELECT …)``."""

    field: FieldPath
    negated: bool
    subquery: Query
    pos: int


@dataclass(frozen=True)
class Includes:
    """``multipicklist INCLUDES ('a;b', 'c')`` or ``EXCLUDES (…)``."""

    field: FieldPath
    excludes: bool
    values: tuple[Literal, ...]
    pos: int


@dataclass(frozen=True)
class And:
    """All of ``items`` hold."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    """Any of ``items`` holds."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    """``item`` does not hold."""

    item: Condition


Condition = Comparison | InList | InSubquery | Includes | And | Or | Not


@dataclass(frozen=True)
class OrderKey:
    """One ORDER BY key; ``nulls_last`` None means Salesforce's default for the direction."""

    field: FieldPath
    descending: bool
    nulls_last: bool | None


@dataclass(frozen=True)
class Query:
    """A parsed SELECT. ``text`` is the whole query text (sub-queries share it)."""

    text: str
    select: tuple[SelectItem, ...]
    sobject: str
    sobject_pos: int
    alias: str | None = None  # "FROM Account a": paths may start with "a."
    where: Condition | None = None
    order_by: tuple[OrderKey, ...] = ()
    limit: int | None = None
    offset: int | None = None
    offset_pos: int = 0
