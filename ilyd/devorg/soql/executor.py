"""Run a parsed query against a Schema and a DataSource, streaming.

Rows flow scan → filter (one compiled closure) → [sort | heap of OFFSET+LIMIT] →
OFFSET/LIMIT → shape, lazily. Memory stays flat unless ORDER BY without LIMIT forces a
full sort. ``Id = '…'`` / ``Id IN (…)`` / ``Id IN (SELECT …)`` in the top-level AND use
``DataSource.get`` instead of a scan.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping

from ilyd.devorg.soql.binder import ID_TYPES, TEXT_TYPES, Binder, Resolved
from ilyd.devorg.soql.errors import located
from ilyd.devorg.soql.nodes import (
    And,
    Comparison,
    Condition,
    CountAll,
    CountField,
    FieldPath,
    InList,
    InSubquery,
    LiteralKind,
    Query,
)
from ilyd.devorg.soql.ordering import SortKey, make_key
from ilyd.devorg.soql.predicates import Compiler, Predicate, id15, normalizer
from ilyd.devorg.soql.records import Parents, Shape, id18, make_getter
from ilyd.devorg.soql.schema import DataSource, QueryResult, Schema

Row = Mapping[str, object]
# Above this many ids a semi-join scans instead of fetching each id.
_FETCH_LIMIT = 10_000


def _sort_value(field_type: str, get: Callable[[Row], object]) -> Callable[[Row], object]:
    if field_type in ID_TYPES:
        return get
    if field_type in TEXT_TYPES or field_type == "datetime":
        norm = normalizer(field_type)
        return lambda row: norm(get(row))
    if field_type == "boolean":
        return lambda row: None if (v := get(row)) is None else int(bool(v))
    return get


class _Plan:
    """Everything bound for one (sub-)query: object, predicate, order, window."""

    def __init__(
        self, query: Query, binder: Binder, source: DataSource, *, parents: Parents,
        all_rows: bool, today: dt.date,
    ) -> None:
        self.query = query
        self.binder = binder
        self.source = source
        self.parents = parents
        self.all_rows = all_rows
        self.today = today
        self.sobject = binder.sobject(query.sobject, query.sobject_pos)
        # Filter and fast path share one run of each semi-join (keyed by node identity).
        self._subqueries: dict[int, Callable[[], frozenset[object]]] = {}
        self.compiler = Compiler(binder, self.sobject, self.getter, self.subquery, today)
        self.where: Predicate | None = (
            self.compiler.compile(query.where) if query.where is not None else None
        )
        self.fetch_ids = self._fetch_ids(query.where)
        keys = []
        for order in query.order_by:
            field = binder.resolve(self.sobject, order.field)
            binder.check_sortable(field)
            nulls_last = order.descending if order.nulls_last is None else order.nulls_last
            keys.append(SortKey(_sort_value(field.info.type, self.getter(field)),
                                order.descending, nulls_last))
        self.sort_key = make_key(keys) if keys else None

    def getter(self, field: Resolved) -> Callable[[Row], object]:
        return make_getter(field, self.parents)

    def subquery(self, query: Query, outer: Resolved) -> Callable[[], frozenset[object]]:
        """Bind a semi-join's query now; run it once, when first needed."""
        if id(query) in self._subqueries:
            return self._subqueries[id(query)]
        binder = Binder(self.binder.schema, query.text, query.alias)
        plan = _Plan(query, binder, self.source, parents=self.parents, all_rows=False,
                     today=self.today)
        items = query.select
        if len(items) != 1 or not isinstance(items[0], FieldPath):
            raise located("MALFORMED_QUERY", query.text, query.sobject_pos,
                          "semi join sub-selects must select exactly one field")
        inner = binder.resolve(plan.sobject, items[0])
        get = self.getter(inner)
        norm = normalizer(outer.info.type if outer.info.type in ID_TYPES else inner.info.type)
        cache: list[frozenset[object]] = []

        def values() -> frozenset[object]:
            if not cache:
                cache.append(frozenset(
                    v for v in (norm(get(row)) for row in plan.rows()) if v is not None
                ))
            return cache[0]

        self._subqueries[id(query)] = values
        return values

    def _fetch_ids(self, where: Condition | None) -> Callable[[], list[str] | None] | None:
        """Ids to fetch with ``get`` when the top-level AND pins Id (None: scan instead)."""
        if where is None or self.all_rows:
            return None
        for cond in where.items if isinstance(where, And) else (where,):
            if not isinstance(cond, Comparison | InList | InSubquery):
                continue
            field = self.binder.resolve(self.sobject, cond.field)
            if field.hops or field.info.type != "id":
                continue
            if isinstance(cond, Comparison) and cond.op == "=" and (
                cond.value.kind is LiteralKind.STRING
            ):
                ids = [str(cond.value.value)]
                return lambda ids=ids: ids
            if isinstance(cond, InList) and not cond.negated and all(
                v.kind is LiteralKind.STRING for v in cond.values
            ):
                ids = [str(v.value) for v in cond.values]
                return lambda ids=ids: ids
            if isinstance(cond, InSubquery) and not cond.negated:
                values = self.subquery(cond.subquery, field)

                def from_subquery(
                    values: Callable[[], frozenset[object]] = values,
                ) -> list[str] | None:
                    found = values()
                    return [str(v) for v in found] if len(found) <= _FETCH_LIMIT else None

                return from_subquery
        return None

    def candidates(self) -> Iterable[Row]:
        ids = self.fetch_ids() if self.fetch_ids is not None else None
        if ids is not None:
            seen: set[object] = set()
            out = []
            for record_id in ids:
                if id15(record_id) in seen or len(record_id) not in (15, 18):
                    continue
                seen.add(id15(record_id))
                row = self.source.get(self.sobject, id18(record_id[:15]))
                if row is not None:
                    out.append(row)
            return out
        return self.source.scan(self.sobject)

    def filtered(self) -> Iterator[Row]:
        rows = iter(self.candidates())
        if not self.all_rows:
            rows = (row for row in rows if not row.get("IsDeleted"))
        if self.where is not None:
            rows = filter(self.where, rows)
        return rows

    def rows(self) -> Iterator[Row]:
        """Matching rows in order, OFFSET and LIMIT applied."""
        offset = self.query.offset or 0
        limit = self.query.limit
        rows: Iterable[Row] = self.filtered()
        if self.sort_key is not None:
            if limit is not None:
                rows = heapq.nsmallest(offset + limit, rows, key=self.sort_key)
            else:
                rows = sorted(rows, key=self.sort_key)
        stop = None if limit is None else offset + limit
        return itertools.islice(rows, offset, stop)


def execute(
    query: Query, schema: Schema, source: DataSource, *, all_rows: bool = False,
    now: dt.datetime | None = None,
) -> QueryResult:
    """Bind ``query`` to ``schema`` (raising SoqlError now) and return its lazy result.

    ``all_rows`` includes deleted records (queryAll). ``now`` fixes the clock for TODAY,
    LAST_N_DAYS:n … (default: the current UTC time).
    """
    today = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date()
    binder = Binder(schema, query.text, query.alias)
    parents = Parents(source)
    plan = _Plan(query, binder, source, parents=parents, all_rows=all_rows, today=today)
    items = query.select
    if isinstance(items[0], CountAll):
        return QueryResult(iter(()), (), lambda: sum(1 for _ in plan.rows()))
    resolved: list[Resolved] = []
    seen: set[str] = set()
    for item in items:
        path = item.field if isinstance(item, CountField) else item
        field = binder.resolve(plan.sobject, path)
        if not isinstance(item, CountField):
            if field.canonical.lower() in seen:
                raise located("INVALID_FIELD", query.text, path.pos,
                              f"duplicate field selected: {field.info.name}",
                              len(path.text))
            seen.add(field.canonical.lower())
        resolved.append(field)
    if any(isinstance(item, CountField) for item in items):
        return _aggregate(plan, items, resolved)
    shape = Shape()
    for field in resolved:
        shape.add(field)
    sobject = plan.sobject
    cached: list[list[Row]] = []

    def matching() -> Iterable[Row]:
        # With ORDER BY the sorted rows are kept once, so counting them does not sort twice.
        if plan.sort_key is None:
            return plan.rows()
        if not cached:
            cached.append(list(plan.rows()))
        return cached[0]

    def records() -> Iterator[dict]:
        for row in matching():
            yield shape.build(sobject, row, parents)

    def count() -> int:
        return sum(1 for _ in matching())

    return QueryResult(records(), tuple(f.canonical for f in resolved), count)


def _aggregate(plan: _Plan, items: tuple, resolved: list[Resolved]) -> QueryResult:
    """``SELECT COUNT(f) [alias], …`` without GROUP BY: one AggregateResult row."""
    for item, field in zip(items, resolved, strict=True):
        if not isinstance(item, CountField):
            raise located("MALFORMED_QUERY", plan.query.text, item.pos,
                          f"Field must be grouped or aggregated: {field.info.name}",
                          len(item.text))
    names = []
    for index, item in enumerate(items):
        names.append(item.alias or f"expr{index}")
    getters = [make_getter(field, plan.parents) for field in resolved]

    def records() -> Iterator[dict]:
        counts = [0] * len(getters)
        for row in plan.filtered():
            for index, get in enumerate(getters):
                if get(row) is not None:
                    counts[index] += 1
        out: dict[str, object] = {"attributes": {"type": "AggregateResult"}}
        out.update(zip(names, counts, strict=True))
        yield out

    return QueryResult(records(), tuple(names), lambda: 1)
