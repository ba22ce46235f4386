"""PushTopic and Change Data Capture event building from devorg's change feed.

PushTopic semantics (Streaming API Developer Guide, "Notifications":
https://developer.salesforce.com/docs/atlas.en-us.api_streaming.meta/api_streaming/notifications.htm):
NotifyForOperation* pick
the change types; on update NotifyForFields decides which changed fields count —
All (any), Referenced (SELECT or WHERE fields), Select, Where — and in every case the
record must match the WHERE clause. The event's `sobject` holds the SELECT fields.
WHERE is evaluated by devorg's own SOQL engine over the one changed record.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ilyd.devorg import soql
from ilyd.devorg.changes import Change
from ilyd.devorg.cometd_cdc import nest_fields, payload_names
from ilyd.devorg.cometd_log import RENDERERS
from ilyd.devorg.org import OrgState
from ilyd.devorg.soql import nodes
from ilyd.devorg.soql.binder import Binder
from ilyd.devorg.values import to_json

__all__ = ["CompiledTopic", "TopicCache", "cdc_compact", "cdc_data", "cdc_render",
           "iso_z", "pushtopic_data"]

_CDC_SKIPPED = frozenset({"id", "isdeleted", "systemmodstamp"})
_CDC_TYPES = {"created": "CREATE", "updated": "UPDATE", "deleted": "DELETE",
              "undeleted": "UNDELETE"}
_OPERATION_FIELD = {"created": "NotifyForOperationCreate", "updated": "NotifyForOperationUpdate",
                    "deleted": "NotifyForOperationDelete",
                    "undeleted": "NotifyForOperationUndelete"}


_TOPIC_KEYS = ("Name", "Query", "NotifyForFields", "IsActive", *_OPERATION_FIELD.values())
_last_iso: tuple[dt.datetime | None, str] = (None, "")


def iso_z(ts: dt.datetime) -> str:
    """Streaming API time format (API 37.0+): milliseconds and a trailing Z (remembered
    for the last timestamp: a commit's events share one)."""
    global _last_iso
    last = _last_iso
    if last[0] is ts:
        return last[1]
    utc = ts.astimezone(dt.UTC)
    if utc.year >= 1000:  # isoformat pads years to 4 digits, strftime's %Y does not
        # "…T12:34:56.789+00:00" -> "…T12:34:56.789Z"; isoformat is several times faster
        text = utc.isoformat(timespec="milliseconds")[:-6] + "Z"
    else:
        text = utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    _last_iso = (ts, text)
    return text


def _where_fields(cond: nodes.Condition | None) -> Iterator[str]:
    if cond is None:
        return
    if isinstance(cond, nodes.And | nodes.Or):
        for item in cond.items:
            yield from _where_fields(item)
    elif isinstance(cond, nodes.Not):
        yield from _where_fields(cond.item)
    else:
        yield cond.field.text.lower()


@dataclass(frozen=True)
class CompiledTopic:
    """An active PushTopic, parsed once."""

    name: str
    sobject: str
    query: soql.Query
    notify_for_fields: str
    operations: frozenset[str]
    select_fields: frozenset[str]
    where_fields: frozenset[str]

    def fields_qualify(self, changed: Iterable[str]) -> bool:
        """Whether an update of `changed` fields counts under NotifyForFields."""
        changed_lower = {f.lower() for f in changed}
        mode = self.notify_for_fields
        if mode == "All":
            return bool(changed_lower)
        if mode == "Select":
            watched = self.select_fields
        elif mode == "Where":
            watched = self.where_fields
        else:  # Referenced (the default)
            watched = self.select_fields | self.where_fields
        return bool(changed_lower & (watched - {"id"}))


class _OneRecord:
    """A soql DataSource holding just the changed record."""

    def __init__(self, sobject: str, record: Mapping[str, object]) -> None:
        self._sobject = sobject
        self._record = record

    def scan(self, sobject: str) -> list[Mapping[str, object]]:
        return [self._record] if sobject.lower() == self._sobject.lower() else []

    def get(self, sobject: str, record_id: str) -> Mapping[str, object] | None:
        return self._record if self._record.get("Id") == record_id else None


class TopicCache:
    """Active PushTopics of one org, recompiled when their records change."""

    def __init__(self, org: OrgState) -> None:
        self._org = org
        self._lock = threading.Lock()
        # by record id: (the row compiled, its key fields, the compiled topic)
        self._compiled: dict[str, tuple[Mapping[str, object], tuple[object, ...],
                                        CompiledTopic | None]] = {}

    def active(self) -> list[CompiledTopic]:
        """Every active PushTopic whose query compiles."""
        topics = []
        rows = list(self._org.tables["PushTopic"].live.values())
        with self._lock:
            seen = set()
            for row in rows:
                rid = str(row["Id"])
                seen.add(rid)
                cached = self._compiled.get(rid)
                # Committed records are replaced, never mutated (OrgState): the same row
                # object (kept alive here, so its identity is not reused) is unchanged.
                if cached is None or cached[0] is not row:
                    key = tuple(row.get(k) for k in _TOPIC_KEYS)
                    if cached is None or cached[1] != key:
                        cached = (row, key, _compile(row))
                    else:
                        cached = (row, key, cached[2])
                    self._compiled[rid] = cached
                if cached[2] is not None and row.get("IsActive", True):
                    topics.append(cached[2])
            for rid in set(self._compiled) - seen:
                del self._compiled[rid]
        return topics

    def by_name(self, name: str) -> CompiledTopic | None:
        """The active topic named `name` (channel `/topic/<name>`)."""
        return next((t for t in self.active() if t.name == name), None)


def _compile(row: Mapping[str, object]) -> CompiledTopic | None:
    try:
        query = soql.parse(str(row.get("Query") or ""))
    except soql.SoqlError:
        return None
    select = frozenset(i.text.lower() for i in query.select if isinstance(i, nodes.FieldPath))
    ops = frozenset(op for op, fname in _OPERATION_FIELD.items() if row.get(fname, True))
    return CompiledTopic(
        name=str(row["Name"]), sobject=query.sobject, query=query,
        notify_for_fields=str(row.get("NotifyForFields") or "Referenced"),
        operations=ops, select_fields=select, where_fields=frozenset(_where_fields(query.where)),
    )


def pushtopic_data(org: OrgState, topic: CompiledTopic, change: Change,
                   schema: soql.Schema) -> dict[str, Any] | None:
    """The event data `{event, sobject}` minus the replay id, or None if no notification."""
    if change.sobject.lower() != topic.sobject.lower():
        return None
    if change.change_type not in topic.operations:
        return None
    if change.change_type == "updated" and not topic.fields_qualify(change.changed_fields):
        return None
    names = _projection(topic, schema)
    if names is _UNBOUND:
        return None  # the query does not bind for this user (as execute would raise)
    if names is not None:
        get = change.record.get
        sobject = {name: to_json(get(name)) for name in names}
    else:
        try:
            result = soql.execute(topic.query, schema,
                                  _OneRecord(change.sobject, change.record), all_rows=True)
            rows = list(result.records)
        except soql.SoqlError:
            return None
        if not rows:
            return None  # the record does not match WHERE
        sobject = {k: to_json(v) for k, v in rows[0].items() if k != "attributes"}
    return {"event": {"createdDate": iso_z(change.timestamp), "type": change.change_type},
            "sobject": sobject}


_UNBOUND: tuple[str, ...] = ("<the query does not bind>",)  # a marker, compared by identity


def _projection(topic: CompiledTopic, schema: soql.Schema) -> tuple[str, ...] | None:
    """For a topic whose query is a plain `SELECT f1, f2 … FROM X` (no WHERE, ORDER BY,
    LIMIT, OFFSET, relationship or aggregate), the field names execute would output for
    the one changed record, in order — remembered per schema (an OrgSchema is one user's
    view at one permissions version), so an event costs no binding. `_UNBOUND` when
    binding fails (execute would raise); None when the query needs the engine."""
    memo = getattr(schema, "memo", None)
    if memo is None:
        return None
    cached = memo.get(id(topic))
    if cached is not None and cached[0] is topic:
        return cached[1]  # type: ignore[no-any-return]
    query = topic.query
    names: tuple[str, ...] | None = None
    if (query.where is None and not query.order_by and query.limit is None
            and query.offset is None
            and all(isinstance(item, nodes.FieldPath) for item in query.select)):
        binder = Binder(schema, query.text, query.alias)
        try:
            bound = binder.sobject(query.sobject, query.sobject_pos)
            resolved = [binder.resolve(bound, item) for item in query.select]
        except soql.SoqlError:
            names = _UNBOUND
        else:
            keys = [r.canonical.lower() for r in resolved]
            if not any(r.hops for r in resolved) and len(set(keys)) == len(keys):
                names = tuple(r.info.name for r in resolved)
            # else: relationships or a duplicate (execute's error) — the engine's work
    memo[id(topic)] = (topic, names)  # the topic kept, so its id is not reused
    return names


def cdc_compact(change: Change, commit_number: int, transaction_key: str, sequence: int,
                names_cache: dict[frozenset[str], tuple[str, ...]] | None = None,
                *, origin: str = "") -> tuple[Any, ...]:
    """A Change Data Capture event as a tuple of plain values (see `cdc_render`).

    The changes of one transaction share `transaction_key` and `commit_number` and are
    numbered by `sequence` from 1, as Salesforce's ChangeEventHeader does; `origin` is
    the writing call's `changeOrigin` (ilyd/devorg/changes.py). `names_cache`
    (per commit) shares the changed-field names of records that changed the same fields.
    Values are kept as stored (records are never mutated) and formatted on delivery."""
    kind = _CDC_TYPES[change.change_type]
    record = change.record
    if kind == "DELETE":
        changed: tuple[str, ...] = ()
        names: tuple[str, ...] = ()
    elif kind == "UPDATE":
        cached = names_cache.get(change.changed_fields) if names_cache is not None else None
        if cached is None:
            wanted = {f for f in change.changed_fields if f.lower() not in _CDC_SKIPPED}
            wanted.add("LastModifiedDate")
            cached = tuple(sorted(wanted))
            if names_cache is not None:
                names_cache[change.changed_fields] = cached
        changed = names = cached
    else:
        changed = ()
        kept = _CDC_KEPT
        names = tuple([k for k, v in record.items() if v is not None and (
            kept[k] if k in kept else _cdc_kept(k))])
    get = record.get
    return (change.sobject, change.record_id, kind, changed, names,
            tuple([get(f) for f in names]), transaction_key, sequence,
            _epoch_ms(change.timestamp), commit_number, change.user_id, origin)


# Field name -> whether a CDC payload carries it (not Id, IsDeleted, SystemModstamp),
# decided once per name instead of lower-casing every field of every created record.
_CDC_KEPT: dict[str, bool] = {}


def _cdc_kept(name: str) -> bool:
    kept = _CDC_KEPT[name] = name.lower() not in _CDC_SKIPPED
    return kept


_last_epoch: tuple[dt.datetime | None, int] = (None, 0)


def _epoch_ms(ts: dt.datetime) -> int:
    """Milliseconds since the epoch (remembered for the last timestamp: a commit's
    changes share one)."""
    global _last_epoch
    last = _last_epoch
    if last[0] is ts:
        return last[1]
    ms = int(ts.timestamp() * 1000)
    _last_epoch = (ts, ms)
    return ms


def cdc_render(compact: tuple[Any, ...], replay_id: int | None) -> dict[str, Any]:
    """The CometD `data` of a compact CDC event; without replay id, minus `event`.

    `record_id` is one id, or a tuple of them for gap events (empty for GAP_OVERFLOW).
    The header lists `nulledFields` (an UPDATE's fields set to null, which the payload
    carries as null) and `diffFields` (always empty: CometD delivers whole values), as
    the guide's examples show them."""
    (sobject, record_id, kind, changed, names, values, transaction_key, sequence,
     commit_ts, commit_number, user_id) = compact[:11]
    origin = compact[11] if len(compact) > 11 else ""
    nulled = (payload_names(sobject, [f for f, v in zip(names, values, strict=True)
                                      if v is None]) if kind == "UPDATE" else [])
    header = {
        "entityName": sobject,
        "recordIds": list(record_id) if isinstance(record_id, tuple) else [record_id],
        "changeType": kind, "changeOrigin": origin,
        "transactionKey": transaction_key, "sequenceNumber": sequence,
        "commitTimestamp": commit_ts, "commitNumber": commit_number, "commitUser": user_id,
        "nulledFields": nulled, "diffFields": [],
        "changedFields": payload_names(sobject, changed),
    }
    payload: dict[str, Any] = {"ChangeEventHeader": header}
    nest_fields(sobject, ((f, to_json(v)) for f, v in zip(names, values, strict=True)), payload)
    data: dict[str, Any] = {"schema": f"devorg-{sobject}-v1", "payload": payload}
    if replay_id is not None:
        data["event"] = {"replayId": replay_id}
    return data


RENDERERS["cdc"] = cdc_render


def cdc_data(change: Change, commit_number: int, *, transaction_key: str | None = None,
             sequence: int = 1) -> dict[str, Any]:
    """Change Data Capture event data (CometD JSON shape) minus the replay id."""
    return cdc_render(cdc_compact(change, commit_number, transaction_key or str(uuid.uuid4()),
                                  sequence), None)
