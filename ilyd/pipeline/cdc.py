"""Change Data Capture events into inbox entries: what to skip, what to read, what to
catch up (https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_event_fields_header.htm).

- An event whose `changeOrigin` names ilyd's client (`Sforce-Call-Options: client=…`,
  sent with every call) is ilyd's own write: dropped, counted as `own_write`.
- An UPDATE whose `changedFields` hold none of the object's input fields cannot change
  its Ily values: dropped, counted as `no_input_change`.
- CREATE and UNDELETE carry every non-null field, so absent inputs are null; an UPDATE
  carries only the changed ones, and the others are read, one SOQL query per 200 ids.
- GAP_* events carry ids and no fields: their records are read the same way.
  GAP_OVERFLOW carries no ids: the object is caught up on SystemModstamp.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ilyd.provision.spec import PUSH_TOPICS
from ilyd.salesforce.rest import RestClient
from ilyd.salesforce.soql import identifier, soql
from ilyd.store.inbox import InboxEntry

__all__ = ["CDC_CHANNELS", "SOURCES", "CdcBatch",
           "input_fields", "is_own_write", "read_inputs", "triage"]

SOURCES = ("cdc", "pushtopic", "polling")
CDC_CHANNELS = {"Account": "/data/AccountChangeEvent", "Lead": "/data/LeadChangeEvent"}
_READ_CHUNK = 200  # ids per `Id IN (…)` query: long enough, and well under SOQL's length


def input_fields(sobject: str) -> tuple[str, ...]:
    """The fields ilyd reads from a record of `sobject` (its PushTopic's, without Id)."""
    return tuple(f for f in PUSH_TOPICS[sobject].fields if f != "Id")


def is_own_write(header: Mapping[str, Any], client: str) -> bool:
    """Whether `changeOrigin` (`com/salesforce/api/rest/62.0;client=NAME`) names `client`."""
    origin = str(header.get("changeOrigin") or "")
    return any(part.strip() == f"client={client}" for part in origin.split(";")[1:])


def _stamp(header: Mapping[str, Any]) -> datetime | None:
    value = header.get("commitTimestamp")
    return datetime.fromtimestamp(value / 1000.0, UTC) if isinstance(value, int | float) else None


@dataclass
class CdcBatch:
    """One delivery's change events, sorted: entries ready for the inbox, entries whose
    other inputs must be read, records to re-read (gap events), objects to catch up."""

    entries: list[InboxEntry] = field(default_factory=list)
    partial: list[InboxEntry] = field(default_factory=list)
    reread: dict[str, dict[str, datetime | None]] = field(default_factory=dict)
    overflow: list[tuple[str, datetime | None]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        """Count one dropped event."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def triage(payloads: Iterable[Mapping[str, Any]], client: str,
           objects: Sequence[str]) -> CdcBatch:
    """Sort change event payloads (`data.payload`) of the configured `objects`."""
    batch = CdcBatch()
    for payload in payloads:
        header = payload.get("ChangeEventHeader")
        if not isinstance(header, Mapping):
            continue
        entity = str(header.get("entityName") or "")
        if entity not in objects or entity not in PUSH_TOPICS:
            continue
        kind = str(header.get("changeType") or "")
        ids = [str(i) for i in header.get("recordIds") or [] if "*" not in str(i)]
        stamp = _stamp(header)
        if kind == "GAP_OVERFLOW":
            batch.overflow.append((entity, stamp))
            continue
        if kind.startswith("GAP_"):
            if kind != "GAP_DELETE":
                batch.reread.setdefault(entity, {}).update(dict.fromkeys(ids, stamp))
            continue
        if is_own_write(header, client):
            batch.skip("own_write")
            continue
        if kind == "DELETE":
            continue
        inputs = input_fields(entity)
        if kind == "UPDATE":
            changed = {str(f).split(".", 1)[0] for f in header.get("changedFields") or []}
            if not changed & set(inputs):
                batch.skip("no_input_change")
                continue
            carried = {f: payload[f] for f in inputs if f in payload}
            complete = len(carried) == len(inputs)
            change_type = "updated"
        else:  # CREATE and UNDELETE carry every non-null field
            carried = {f: payload.get(f) for f in inputs}
            complete = True
            change_type = "created" if kind == "CREATE" else "undeleted"
        for record_id in ids:
            entry = InboxEntry(entity, record_id, {"Id": record_id, **carried}, change_type,
                               stamp)
            (batch.entries if complete else batch.partial).append(entry)
    return batch


def read_inputs(rest: RestClient, sobject: str, ids: Sequence[str]
                ) -> dict[str, dict[str, Any]]:
    """The input fields of records by id, one SOQL query per 200 ids (deleted records
    are absent)."""
    select = ", ".join(identifier(f) for f in ("Id", *input_fields(sobject)))
    found: dict[str, dict[str, Any]] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _READ_CHUNK):
        chunk = unique[start:start + _READ_CHUNK]
        query = soql(f"SELECT {select} FROM {identifier(sobject)} WHERE Id IN {{ids}}",  # noqa: S608
                     ids=chunk)
        for row in rest.query(query):
            record_id = str(row["Id"])
            found[record_id] = {f: row.get(f) for f in input_fields(sobject)}
            found[record_id]["Id"] = record_id
    return found
