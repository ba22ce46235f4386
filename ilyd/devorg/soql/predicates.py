"""Compile a WHERE condition into one Python closure, checked and bound once per query.

Per row the evaluator then only calls closures: no AST walk, no schema look-up.
Null is an ordinary value in SOQL filters: ``F = null`` holds for empty fields,
``F != 'x'`` holds for empty ones too, and ordering comparisons never hold for null.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Callable, Mapping

from ilyd.devorg.soql.binder import ID_TYPES, TEXT_TYPES, Binder, Resolved
from ilyd.devorg.soql.dates import as_datetimes, date_range
from ilyd.devorg.soql.lexer import ESCAPES
from ilyd.devorg.soql.nodes import (
    And,
    Comparison,
    Condition,
    Includes,
    InList,
    InSubquery,
    Literal,
    LiteralKind,
    Not,
    Or,
    Query,
)

Row = Mapping[str, object]
Predicate = Callable[[Row], bool]
Getter = Callable[[Row], object]


def id15(value: object) -> object:
    """Ids compare by their case-sensitive 15-character form (18-char suffix is derived)."""
    if isinstance(value, str) and len(value) == 18:
        return value[:15]
    return value


def _fold(value: object) -> object:
    return value.casefold() if isinstance(value, str) else value


def _aware(value: object) -> object:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def normalizer(field_type: str) -> Callable[[object], object]:
    """How values of ``field_type`` are made comparable (case folding, id form, UTC)."""
    if field_type in ID_TYPES:
        return id15
    if field_type in TEXT_TYPES:
        return _fold
    if field_type == "datetime":
        return _aware
    return _same


def _same(value: object) -> object:
    return value


def like_regex(raw: str) -> re.Pattern[str]:
    """A LIKE pattern (as written, escapes undecoded) as a case-insensitive regex."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        char = raw[i]
        if char == "\\" and i + 1 < len(raw):
            code = raw[i + 1]
            if code in "uU":
                out.append(re.escape(chr(int(raw[i + 2 : i + 6], 16))))
                i += 6
                continue
            out.append(re.escape(ESCAPES.get(code, code)))
            i += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


class Compiler:
    """Turns conditions into predicates for one object of one query."""

    def __init__(
        self,
        binder: Binder,
        sobject: str,
        getter: Callable[[Resolved], Getter],
        subquery: Callable[[Query, Resolved], Callable[[], frozenset[object]]],
        today: dt.date,
    ) -> None:
        self.binder = binder
        self.sobject = sobject
        self.getter = getter
        self.subquery = subquery
        self.today = today

    def field(self, node: Comparison | InList | InSubquery | Includes) -> Resolved:
        field = self.binder.resolve(self.sobject, node.field)
        self.binder.check_filterable(field)
        return field

    def compile(self, cond: Condition) -> Predicate:
        """The predicate for ``cond``; raises SoqlError for type or field problems."""
        if isinstance(cond, And | Or):
            # Pairwise closures: cheaper per row than all()/any() over a generator.
            parts = [self.compile(item) for item in cond.items]
            combined = parts[0]
            for part in parts[1:]:
                combined = _both(combined, part) if isinstance(cond, And) else _either(
                    combined, part)
            return combined
        if isinstance(cond, Not):
            inner = self.compile(cond.item)
            return lambda row: not inner(row)
        if isinstance(cond, Comparison):
            return self.comparison(cond)
        if isinstance(cond, InList):
            return self.in_list(cond)
        if isinstance(cond, InSubquery):
            return self.semi_join(cond)
        return self.includes(cond)

    def comparison(self, cond: Comparison) -> Predicate:
        field = self.field(cond)
        self.binder.check_operator(field, cond.op)
        self.binder.check_literal(field, cond.value)
        get = self.getter(field)
        literal = cond.value
        if cond.op == "LIKE":
            match = like_regex(literal.raw).fullmatch
            return lambda row: isinstance(v := get(row), str) and match(v) is not None
        if literal.kind is LiteralKind.DATE_KEYWORD:
            return self.date_keyword(field, cond.op, literal, get)
        if literal.kind is LiteralKind.NULL:
            if cond.op == "=":
                return lambda row: get(row) is None
            if cond.op == "!=":
                return lambda row: get(row) is not None
            return lambda row: False
        norm = normalizer(field.info.type)
        target = norm(literal.value)
        if norm is _same:
            return _ordered(cond.op, get, target)
        return _ordered(cond.op, lambda row: norm(get(row)), target)

    def date_keyword(self, field: Resolved, op: str, literal: Literal, get: Getter) -> Predicate:
        keyword, n = literal.value  # type: ignore[misc]
        span: tuple[object, object] = date_range(keyword, n, self.today)
        norm: Callable[[object], object] = lambda value: value  # noqa: E731
        if field.info.type == "datetime":
            span, norm = as_datetimes(span), _aware  # type: ignore[arg-type]
        start, end = span

        def within(row: Row) -> bool:
            value = norm(get(row))
            return value is not None and start <= value < end  # type: ignore[operator]

        if op == "=":
            return within
        if op == "!=":
            return lambda row: not within(row)
        bound = {"<": start, ">=": start, "<=": end, ">": end}[op]
        # "<= LAST_WEEK" means before the end of last week: [.., end) — so strict "<".
        effective = {"<": "<", ">=": ">=", "<=": "<", ">": ">="}[op]
        return _ordered(effective, lambda row: norm(get(row)), bound)

    def in_list(self, cond: InList) -> Predicate:
        field = self.field(cond)
        for literal in cond.values:
            self.binder.check_literal(field, literal)
        get = self.getter(field)
        if any(v.kind is LiteralKind.DATE_KEYWORD for v in cond.values):
            parts = tuple(self.comparison(Comparison(cond.field, "=", v, cond.pos))
                          for v in cond.values)
            if cond.negated:
                return lambda row: not any(part(row) for part in parts)
            return lambda row: any(part(row) for part in parts)
        norm = normalizer(field.info.type)
        members = frozenset(norm(v.value) for v in cond.values)
        if cond.negated:
            return lambda row: norm(get(row)) not in members
        return lambda row: norm(get(row)) in members

    def semi_join(self, cond: InSubquery) -> Predicate:
        field = self.field(cond)
        get = self.getter(field)
        norm = normalizer(field.info.type)
        values = self.subquery(cond.subquery, field)
        if cond.negated:
            return lambda row: norm(get(row)) not in values()
        return lambda row: norm(get(row)) in values()

    def includes(self, cond: Includes) -> Predicate:
        field = self.field(cond)
        self.binder.check_operator(field, "EXCLUDES" if cond.excludes else "INCLUDES")
        for literal in cond.values:
            self.binder.check_literal(field, literal)
        get = self.getter(field)
        wanted = tuple(
            frozenset(p.strip().casefold() for p in str(v.value).split(";"))
            for v in cond.values if v.value is not None
        )

        def includes(row: Row) -> bool:
            value = get(row)
            if not isinstance(value, str):
                return False
            present = {p.strip().casefold() for p in value.split(";")}
            return any(w <= present for w in wanted)

        if cond.excludes:
            return lambda row: not includes(row)
        return includes


def _both(first: Predicate, second: Predicate) -> Predicate:
    return lambda row: first(row) and second(row)


def _either(first: Predicate, second: Predicate) -> Predicate:
    return lambda row: first(row) or second(row)


_TESTS: dict[str, Callable[[object, object], bool]] = {
    "<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge,
}


def _ordered(op: str, value: Callable[[Row], object], target: object) -> Predicate:
    if op == "=":
        return lambda row: value(row) == target
    if op == "!=":
        return lambda row: value(row) != target
    test = _TESTS[op]

    def compare(row: Row) -> bool:
        current = value(row)
        if current is None:
            return False
        try:
            return test(current, target)
        except TypeError:
            # Stored data of another type than the field's (bad seed data) never matches.
            return False

    return compare
