"""History entries of the real-time writer's decisions (`ilyd.store.history`).

Built from what the writer already holds: the outcome (domain, status, providers), the
values sent, the record's values from the batched read (old values; unknown — null —
for a field that read did not cover) and the fields the overwrite policies or the org
left out. No extra query.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from ilyd.enrich.fields import LAST_ENRICHED
from ilyd.enrich.values import EnrichmentOutcome
from ilyd.pipeline.work import WorkItem
from ilyd.resync.compare import normalise

__all__ = ["OUT_OF_SCOPE", "UNCHANGED", "UNWRITABLE", "entry_json", "entry_row",
           "outcome_json"]

UNCHANGED = "unchanged"
UNWRITABLE = "unwritable"
OUT_OF_SCOPE = "out_of_scope"


def entry_json(work: WorkItem, values: Mapping[str, Any] | None,
               old: Mapping[str, Any] | None, kept: Mapping[str, str],
               note: str | None = None) -> str:
    """One entry: the input seen, each field written (old → new, provider) and each
    field left alone with why; `note` for a record decided as a whole (unchanged
    since ilyd's last write, out of scope)."""
    return outcome_json(work.outcome, values, old, kept, note)


def outcome_json(outcome: EnrichmentOutcome, values: Mapping[str, Any] | None,
                 old: Mapping[str, Any] | None, kept: Mapping[str, str],
                 note: str | None = None) -> str:
    """`entry_json` from the outcome itself (the resync has no work item)."""
    written: dict[str, list[Any]] = {}
    skipped = dict(kept)
    for name, value in (values or {}).items():
        if name == LAST_ENRICHED.api_name:
            continue
        if old is None or name not in old:
            written[name] = [None, value]
            continue
        before = old[name]
        # A blank value normalises to "" and nothing else does: two blanks are the same.
        if (value is None or value == "") if before is None or before == "" \
                else normalise(name, before) == normalise(name, value):
            skipped[name] = UNCHANGED
        else:
            written[name] = [before, value]
    body: dict[str, Any] = {
        "domain": outcome.domain, "domain_source": outcome.domain_source,
        "status": str(outcome.status) if outcome.status is not None else None,
        "source": outcome.source, "written": written, "skipped": skipped}
    if note:
        body["note"] = note
    return _ENCODER.encode(body)


# One encoder for every entry (json.dumps builds one per call for these options); an
# entry is built here of plain values and holds no cycle to look for.
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"), check_circular=False)


def entry_row(org: str, work: WorkItem, values: Mapping[str, Any] | None = None,
              old: Mapping[str, Any] | None = None, kept: Mapping[str, str] | None = None,
              *, note: str | None = None) -> tuple[str, str, float, str, str]:
    """The `ilyd.store.history` row of a real-time decision (see `entry_json`)."""
    return (org, work.record_id, time.time(), "realtime",
            entry_json(work, values, old, kept or {}, note))
