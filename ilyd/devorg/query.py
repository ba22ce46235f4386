"""SOQL over REST: /query, /queryAll and queryMore locators (the engine reads the org
through query_schema's adapters)."""

from __future__ import annotations

import itertools
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ilyd.devorg import soql
from ilyd.devorg.org import OrgState
from ilyd.devorg.query_schema import OrgSchema, OrgSource
from ilyd.devorg.rest import V, context
from ilyd.devorg.values import to_json
from ilyd.devorg.web import ApiError, Request, Response, Router, json_response

if TYPE_CHECKING:
    from ilyd.devorg.app import DevOrg

_BATCH_RE = re.compile(r"batchSize\s*=\s*(\d+)", re.I)
_LOCATOR_TTL = 15 * 60  # Salesforce drops idle query cursors after 15 minutes
_MAX_LOCATORS = 2000


@dataclass
class Cursor:
    """An open query: the remaining records and where the next page starts."""

    records: Iterator[dict[str, Any]]
    total: int
    offset: int
    touched: float
    org: OrgState


class Cursors:
    """Open queryMore cursors, bounded and expiring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: OrderedDict[str, Cursor] = OrderedDict()

    def put(self, cursor: Cursor) -> str:
        """Store a cursor; returns its locator id (`01g…`)."""
        locator = "01g" + secrets.token_hex(8)[:15]
        with self._lock:
            self._open[locator] = cursor
            now = time.time()
            while self._open and (len(self._open) > _MAX_LOCATORS or
                                  next(iter(self._open.values())).touched < now - _LOCATOR_TTL):
                self._open.popitem(last=False)
        return locator

    def take(self, locator: str) -> Cursor | None:
        """Remove and return a cursor (it is put back if more pages remain)."""
        with self._lock:
            return self._open.pop(locator, None)


def register(router: Router, dev: DevOrg) -> None:
    """Add /query, /queryAll and their Tooling twin."""
    cursors = Cursors()
    for prefix, tooling in ((V, False), (V + "/tooling", True)):
        for name, all_rows in (("query", False), ("queryAll", True)):
            router.add("GET", prefix + "/" + name,
                       _bind(run_query, cursors, all_rows, tooling), name)
            router.add("GET", prefix + "/" + name + r"/(?P<locator>01g\w+)-(?P<offset>\d+)",
                       _bind(query_more, cursors, all_rows, tooling), name + ".more")


def _bind(fn: Any, *args: object) -> Any:
    return lambda request: fn(request, *args)


def _batch_size(request: Request, org: OrgState) -> int:
    m = _BATCH_RE.search(request.headers.get("Sforce-Query-Options", ""))
    size = int(m.group(1)) if m else org.settings.query_batch_size
    return max(200, min(2000, size)) if m else size


def run_query(request: Request, cursors: Cursors, all_rows: bool, tooling: bool) -> Response:
    """GET /query?q=…"""
    org, user_id, _ = context(request)
    text = request.arg("q")
    if not text:
        raise ApiError(400, "MALFORMED_QUERY", "A query string must be provided.")
    try:
        query = soql.parse(text)
        result = soql.execute(query, OrgSchema(org, user_id, tooling=tooling),
                              OrgSource(org, all_rows=all_rows, user_id=user_id),
                              all_rows=all_rows)
    except soql.SoqlError as exc:
        raise ApiError(400, exc.error_code, exc.message) from None
    if tooling and result.total_size > 1 and _selects_metadata(query):
        # Tooling serves FullName and Metadata one row per query, whatever the LIMIT says:
        # https://developer.salesforce.com/docs/atlas.en-us.api_tooling.meta/api_tooling/tooling_api_objects_customfield.htm
        raise ApiError(400, "MALFORMED_QUERY",
                       "When retrieving results with Metadata or FullName fields, the query"
                       " qualifications must specify no more than one row for retrieval."
                       f" Result size: {result.total_size}")
    cursor = Cursor(iter(result.records), result.total_size, 0, time.time(), org)
    return _page(request, cursors, cursor, _batch_size(request, org), tooling=tooling,
                 resource="queryAll" if all_rows else "query")


def _selects_metadata(query: Any) -> bool:
    """Whether a query selects FullName or Metadata of its own object."""
    return any(len(getattr(item, "parts", ())) == 1 and item.parts[0].lower() in
               ("fullname", "metadata") for item in query.select)


def query_more(request: Request, cursors: Cursors, all_rows: bool, tooling: bool) -> Response:
    """GET /query/01g…-N"""
    org, _, _ = context(request)
    locator = request.params["locator"]
    cursor = cursors.take(locator)
    if cursor is None or cursor.org is not org or cursor.offset != int(request.params["offset"]):
        raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    return _page(request, cursors, cursor, _batch_size(request, org), tooling=tooling,
                 resource="queryAll" if all_rows else "query")


def _page(request: Request, cursors: Cursors, cursor: Cursor, size: int, *, tooling: bool,
          resource: str) -> Response:
    version = request.params["version"]
    base = f"/services/data/v{version}/{'tooling/' if tooling else ''}"
    records = [_render(r, base) for r in itertools.islice(cursor.records, size)]
    cursor.offset += len(records)
    body: dict[str, object] = {"totalSize": cursor.total}
    done = cursor.offset >= cursor.total or len(records) < size
    body["done"] = done
    if not done:
        cursor.touched = time.time()
        locator = cursors.put(cursor)
        body["nextRecordsUrl"] = f"{base}{resource}/{locator}-{cursor.offset}"
    body["records"] = records
    return json_response(body)


def _render(rec: Mapping[str, Any], base: str) -> dict[str, Any]:
    """Format values (datetimes) and add attributes.url, recursively for parents."""
    out: dict[str, Any] = {}
    for key, value in rec.items():
        if key == "attributes" and isinstance(value, Mapping):
            attrs = dict(value)
            if "url" not in attrs and rec.get("Id"):
                attrs["url"] = f"{base}sobjects/{attrs.get('type')}/{rec['Id']}"
            out[key] = attrs
        elif isinstance(value, Mapping):
            out[key] = _render(value, base)
        else:
            out[key] = to_json(value)
    return out
