"""REST API client for one org: query, describe, sObject CRUD, Collections, Tooling, limits.

Plain and thread-safe; transport, token refresh, retries and error translation live in
`ilyd.salesforce.http.OrgHttp`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote as urlquote

import requests

from ilyd.salesforce.auth import TokenProvider
from ilyd.salesforce.http import OrgHttp, RetryPolicy
from ilyd.salesforce.limits import Usage
from ilyd.salesforce.token import Token
from ilyd.salesforce.versions import DEFAULT_API_VERSION

__all__ = ["MAX_COLLECTION_SIZE", "RecordError", "RecordIterator", "RestClient", "SaveResult",
           "form_quote"]

# A query string's bytes as `urllib.parse.urlencode` writes them (form encoding: letters,
# digits and "_.-~" as they are, a space as "+", any other byte as %XX). urlencode quotes
# byte by byte in Python, and a writer's query of a batch is hundreds of bytes, made on
# every flush; a lookup table does the same in one pass.
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_FORM = [chr(b) if b in _SAFE else "+" if b == 0x20 else f"%{b:02X}" for b in range(256)]
_SAFE_CHARS = frozenset(map(chr, _SAFE))


def form_quote(text: str) -> str:
    """`text` quoted for a query string, as `urlencode` quotes a value."""
    if not text.isascii():
        return "".join(map(_FORM.__getitem__, text.encode()))
    # A SOQL query holds a handful of distinct characters to quote: one replace each,
    # "%" first (the others bring in "%"), the space last (it becomes "+", itself quoted).
    unsafe = set(text) - _SAFE_CHARS
    if "%" in unsafe:
        text = text.replace("%", "%25")
        unsafe.discard("%")
    space = " " in unsafe
    unsafe.discard(" ")
    for char in unsafe:
        text = text.replace(char, _FORM[ord(char)])
    return text.replace(" ", "+") if space else text


# sObject Collections accept at most 200 records per request.
MAX_COLLECTION_SIZE = 200
# A mixed-type Collections request is processed in chunks, one per run of one type;
# Salesforce refuses more than this many in one request.
MAX_COLLECTION_CHUNKS = 10


@dataclass(frozen=True)
class RecordError:
    """One per-record error of a Collections call (Salesforce's `statusCode`, not errorCode)."""

    status_code: str
    message: str
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class SaveResult:
    """The outcome for one record of a Collections call, in request order."""

    id: str | None
    success: bool
    errors: tuple[RecordError, ...] = ()

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> SaveResult:
        """Build from one element of Salesforce's SaveResult array."""
        if not item.get("errors"):
            return cls(id=item.get("id"), success=bool(item.get("success")))
        return cls(
            id=item.get("id"),
            success=bool(item.get("success")),
            errors=tuple(
                RecordError(
                    status_code=str(err.get("statusCode") or err.get("errorCode") or ""),
                    message=str(err.get("message", "")),
                    fields=tuple(err.get("fields") or ()),
                )
                for err in item.get("errors") or ()
            ),
        )


class RecordIterator(Iterator[dict[str, Any]]):
    """Records of a query, fetched page by page over `nextRecordsUrl`.

    The first page is fetched on construction, so a bad query fails at the call site;
    `total_size` is Salesforce's `totalSize` (the count, for COUNT() queries).
    """

    def __init__(self, http: OrgHttp, op: str, first: Mapping[str, Any],
                 headers: Mapping[str, str]) -> None:
        self._http = http
        self._op = op
        self._headers = dict(headers)
        self.total_size: int = int(first.get("totalSize", 0))
        self.pages = 1
        self._records: Iterator[dict[str, Any]] = iter(first.get("records") or ())
        self._next: str | None = None if first.get("done", True) else first.get("nextRecordsUrl")

    def __iter__(self) -> RecordIterator:
        return self

    def __next__(self) -> dict[str, Any]:
        while True:
            try:
                return next(self._records)
            except StopIteration:
                if not self._next:
                    raise
            page = self._http.json(self._op, "GET", self._next, headers=self._headers,
                                   what=f"{self._op} (next page)")
            self.pages += 1
            self._records = iter(page.get("records") or ())
            self._next = None if page.get("done", True) else page.get("nextRecordsUrl")


class RestClient:
    """The REST API of one org (`org` is ilyd's config name for it)."""

    def __init__(
        self,
        org: str,
        token_provider: TokenProvider,
        api_version: str = DEFAULT_API_VERSION,
        ca_file: str | Path | None = None,
        *,
        timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        export_usage: bool = True,
    ) -> None:
        self.org = org
        self.http = OrgHttp(org, token_provider, api_version=api_version, ca_file=ca_file,
                            timeout=timeout, retry=retry, session=session,
                            export_usage=export_usage)
        self._describe_lock = threading.Lock()
        self._describes: dict[str, dict[str, Any]] = {}

    @property
    def api_version(self) -> str:
        """The API version in use, e.g. "62.0"."""
        return self.http.api_version

    @property
    def token(self) -> Token:
        """The org's current access token (identity: `.org_id`, `.user_id`)."""
        return self.http.tokens.token()

    @property
    def api_usage(self) -> Usage | None:
        """(used, max) from the last `Sforce-Limit-Info` header, None before any call."""
        return self.http.usage.current

    def close(self) -> None:
        """Close the session's connections and drop the org's usage series."""
        self.http.close()
        self.http.usage.forget()

    # --- query -------------------------------------------------------------------------

    def query(self, soql: str, *, batch_size: int | None = None,
              include_deleted: bool = False, tooling: bool = False) -> RecordIterator:
        """Run a SOQL query; iterate its records across all pages.

        `batch_size` (200–2000) asks for smaller pages; `include_deleted` uses queryAll
        (deleted and archived records too); `tooling` queries the Tooling API
        (CustomField, …). Build `soql` with `ilyd.salesforce.soql` when it contains values.
        """
        if tooling:
            return self._query("tooling/query", soql, batch_size, op="tooling_query")
        return self._query("queryAll" if include_deleted else "query", soql, batch_size)

    def _query(self, resource: str, soql: str, batch_size: int | None,
               op: str = "query") -> RecordIterator:
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else {}
        # The query string as `params={"q": soql}` would send it, quoted here in one pass.
        first = self.http.json(op, "GET", f"{resource}/?q={form_quote(soql)}",
                               headers=headers, what=op)
        return RecordIterator(self.http, op, first, headers)

    # --- describe ----------------------------------------------------------------------

    def describe(self, sobject: str, *, refresh: bool = False) -> dict[str, Any]:
        """The sObject's describe, cached. Describe is FLS-filtered: after granting field
        access, pass `refresh=True` (or call `forget_describe`) to see the new fields.

        A refreshed describe replaces a cached one but is not kept otherwise: callers that
        always refresh keep what they need themselves, and a full describe is large (every
        field's metadata), kept per object and per org — bench/daemon_idle.py.
        """
        key = sobject.lower()
        with self._describe_lock:
            cached = self._describes.get(key)
        if cached is not None and not refresh:
            return cached
        body = self.http.json("describe", "GET", f"sobjects/{urlquote(sobject)}/describe/",
                              what=f"describe of {sobject}")
        if cached is not None or not refresh:
            with self._describe_lock:
                self._describes[key] = body
        return body

    def forget_describe(self, sobject: str | None = None) -> None:
        """Drop the cached describe of `sobject` (of every object when None)."""
        with self._describe_lock:
            if sobject is None:
                self._describes.clear()
            else:
                self._describes.pop(sobject.lower(), None)

    def describe_global(self) -> dict[str, Any]:
        """The org's object list (`GET /sobjects`)."""
        return self.http.json("describe", "GET", "sobjects/", what="describeGlobal")

    # --- sObject CRUD, on the data API or (`tooling=True`) the Tooling API -------------

    def get(self, sobject: str, record_id: str, fields: Sequence[str] | None = None, *,
            tooling: bool = False) -> dict[str, Any]:
        """One record by id (only `fields` if given); a Tooling record (e.g. a CustomField
        with its Metadata) with `tooling`."""
        params = {"fields": ",".join(fields)} if fields else None
        op, path, what = _crud("get", sobject, record_id, tooling)
        return self.http.json(op, "GET", path, params=params, what=what)

    def create(self, sobject: str, body: Mapping[str, Any], *, tooling: bool = False) -> str:
        """Create a record (a Tooling record, one CustomField per call, with `tooling`);
        return its id. Never retried: a retry could create it twice."""
        op, path, what = _crud("create", sobject, None, tooling)
        return str(self.http.json(op, "POST", path, json=dict(body), what=what)["id"])

    def update(self, sobject: str, record_id: str, body: Mapping[str, Any], *,
               tooling: bool = False) -> None:
        """Update fields of one record (204 No Content); a Tooling CustomField takes its
        full Metadata."""
        op, path, what = _crud("update", sobject, record_id, tooling)
        self.http.request(op, "PATCH", path, json=dict(body), what=what)

    def delete(self, sobject: str, record_id: str, *, tooling: bool = False) -> None:
        """Delete one record."""
        op, path, what = _crud("delete", sobject, record_id, tooling)
        self.http.request(op, "DELETE", path, what=what)

    # --- sObject Collections -----------------------------------------------------------

    def update_collection(self, sobject: str, records: Sequence[Mapping[str, Any]],
                          all_or_none: bool = False, *,
                          assignment_rules: bool = False) -> list[SaveResult]:
        """Update up to 200 records in one call; one SaveResult per record, in order.

        Each record needs its `Id`. A well-formed request succeeds even when records
        fail: look at each result. Retried on 5xx: the same values written twice leave
        the records as written once. Lead/Case assignment rules stay off unless
        `assignment_rules` (an enrichment write must not reassign a lead).
        """
        return self.update_mixed([(sobject, r) for r in records], all_or_none=all_or_none,
                                 assignment_rules=assignment_rules)

    def update_mixed(self, records: Sequence[tuple[str, Mapping[str, Any]]], *,
                     all_or_none: bool = False,
                     assignment_rules: bool = False) -> list[SaveResult]:
        """`update_collection` for records of several sObjects in one call: (sObject,
        record) pairs, one SaveResult per record, in order.

        Salesforce processes a mixed list in chunks, a new chunk wherever the type changes,
        and refuses more than 10 chunks: the records are sent as given, so callers group
        them by type (`MAX_COLLECTION_CHUNKS` runs at most).
        """
        runs = sum(1 for i, (sobject, _) in enumerate(records)
                   if i == 0 or records[i - 1][0] != sobject)
        if runs > MAX_COLLECTION_CHUNKS:
            raise ValueError(f"a Collections call takes at most {MAX_COLLECTION_CHUNKS} runs of"
                             f" one sObject type, got {runs}: group the records by type")
        body = {"allOrNone": all_or_none,
                "records": [self._collection_record(sobject, r, need_id=True)
                            for sobject, r in records]}
        headers = {} if assignment_rules else {"Sforce-Auto-Assign": "FALSE"}
        kinds = "+".join(dict.fromkeys(sobject for sobject, _ in records))
        return self._collection("collections_update", "PATCH", body, kinds, headers)

    def create_collection(self, sobject: str, records: Sequence[Mapping[str, Any]],
                          all_or_none: bool = False) -> list[SaveResult]:
        """Create up to 200 records in one call (never retried: it could create twice)."""
        body = {"allOrNone": all_or_none,
                "records": [self._collection_record(sobject, r, need_id=False) for r in records]}
        return self._collection("collections_create", "POST", body, sobject)

    def _collection(self, op: str, method: str, body: dict[str, Any], sobject: str,
                    headers: Mapping[str, str] | None = None) -> list[SaveResult]:
        count = len(body["records"])
        if not 0 < count <= MAX_COLLECTION_SIZE:
            raise ValueError(f"a Collections call takes 1 to {MAX_COLLECTION_SIZE} records, "
                             f"got {count}")
        results = self.http.json(op, method, "composite/sobjects", json=body,
                                 headers=headers, what=f"{op} of {count} {sobject}")
        return [SaveResult.from_json(item) for item in results]

    @staticmethod
    def _collection_record(sobject: str, record: Mapping[str, Any], *,
                           need_id: bool) -> dict[str, Any]:
        out = dict(record)
        out.pop("attributes", None)
        if need_id and not (out.get("Id") or out.get("id")):
            raise ValueError(f"a {sobject} record to update has no Id: {sorted(out)}")
        out["attributes"] = {"type": sobject}
        return out

    # --- limits ------------------------------------------------------------------------

    def limits(self) -> dict[str, Any]:
        """The org's limits (`GET /limits`), e.g. `["DailyApiRequests"]["Remaining"]`."""
        body = self.http.json("limits", "GET", "limits/", what="limits")
        daily = body.get("DailyApiRequests") or {}
        if "Max" in daily and "Remaining" in daily:
            self.http.usage.record(Usage(int(daily["Max"]) - int(daily["Remaining"]),
                                         int(daily["Max"])))
        return body


_CRUD_WHAT = {"get": "read", "create": "create", "update": "update", "delete": "delete"}


def _crud(verb: str, sobject: str, record_id: str | None,
          tooling: bool) -> tuple[str, str, str]:
    """(op, path, what) of a CRUD call: the metrics' op (`tooling_…` for the Tooling API),
    the resource path and the words naming the call in errors."""
    path = f"sobjects/{urlquote(sobject)}/{urlquote(record_id) if record_id else ''}"
    what = f"{_CRUD_WHAT[verb]} of {sobject}" + (f" {record_id}" if record_id else "")
    if tooling:
        return f"tooling_{verb}", f"tooling/{path}", f"tooling {what}"
    return verb, path, what
