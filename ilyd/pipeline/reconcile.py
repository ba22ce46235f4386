"""The reconciliation sweep: records whose inputs changed but that ilyd never enriched.

A CometD session can stay connected, its long polls returning, while events stop
arriving (a silent stall); a replay id a server reuses after a restart skips events
without an error. The client cannot see either. So every `reconcile_interval` one SOQL
query per object reads the records whose SystemModstamp lies in the window
[watermark, now - settle) and compares their input fields (Website, Email…) with the
inputs ilyd last enriched each of them from (`record_inputs`, ilyd/store/writes.py).
A record whose inputs differ, that is not waiting in the inbox, and whose last change
is not a complete sync's write (that path keeps the values written, not the inputs)
was missed: it goes into the inbox, is counted in
`ilyd_reconciled_records_total{org,sobject}`, and the window is logged. The watermark
then moves to the window's end, in the state database.

Why the inputs and not `Ily_Last_Enriched__c`: ilyd's own write moves SystemModstamp and
LastModifiedDate past that timestamp, and SOQL cannot compare two fields, so on a real
org the timestamp cannot tell a person's later edit from ilyd's write. The inputs can
(they are what keeps the poller from taking ilyd's writes for new work too).

`settle`: changes younger than this wait for the next sweep, so an event still on its
way is not counted as missed; it also absorbs that much clock difference between the
org and this host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from ilyd import metrics
from ilyd.enrich.domain import source_fields
from ilyd.pipeline.poller import changes_query, parse_modstamp
from ilyd.pipeline.work import inputs_hash
from ilyd.salesforce.rest import RestClient
from ilyd.store.inbox import Inbox, InboxEntry
from ilyd.store.record_hashes import RecordHashStore
from ilyd.store.watermarks import WatermarkStore
from ilyd.store.writes import WriteStateStore

__all__ = ["Reconciler", "SweepReport", "settle_for"]

log = structlog.get_logger(__name__)

_MAX_SETTLE = 60.0
_NEVER = 0.0  # `swept_at` of a watermark set at the first start, before any sweep


def settle_for(interval: float) -> float:
    """How far behind now a sweep's window ends: a minute, or half a short interval."""
    return min(_MAX_SETTLE, interval / 2)


@dataclass(frozen=True)
class SweepReport:
    """What one sweep found, per object, and when it ran."""

    found: dict[str, int]
    swept_at: datetime

    @property
    def total(self) -> int:
        """Records found over every object."""
        return sum(self.found.values())


def _second(ts: datetime) -> datetime:
    # SOQL compares datetimes to the second: whole-second bounds make the windows of
    # consecutive sweeps meet exactly, neither overlapping nor leaving a gap.
    return ts.replace(microsecond=0)


class Reconciler:
    """Sweeps one org's objects for changed records that were never enriched."""

    def __init__(
        self,
        org: str,
        rest: RestClient,
        *,
        inbox: Inbox,
        state: WriteStateStore,
        hashes: RecordHashStore,
        watermarks: WatermarkStore,
        objects: tuple[str, ...],
        interval: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.org = org
        self.rest = rest
        self.inbox = inbox
        self.state = state
        self.hashes = hashes
        self.watermarks = watermarks
        self.objects = objects
        self.interval = interval
        self.settle = timedelta(seconds=settle_for(interval))
        self._clock = clock
        for sobject in objects:
            metrics.RECONCILED_RECORDS.labels(org=org, sobject=sobject)

    def start(self) -> None:
        """Set the watermark of objects never swept to now: what changed before ilyd first
        ran is the complete sync's work (`ilyd ctl resync`), not the sweep's."""
        until = _second(self._clock() - self.settle)
        for sobject in self.objects:
            if self.watermarks.get(self.org, sobject) is None:
                self.watermarks.advance(self.org, sobject, until, 0, swept_at=_NEVER)

    def last(self) -> tuple[float, int] | None:
        """When the last sweep ran (Unix time) and what it found, from the state store;
        None before the first sweep."""
        marks = [m for m in (self.watermarks.get(self.org, s) for s in self.objects)
                 if m and m.swept_at != _NEVER]
        if not marks:
            return None
        return max(m.swept_at for m in marks), sum(m.found for m in marks)

    def sweep(self) -> SweepReport:
        """One sweep of every object (one SOQL query each); raises SalesforceError and
        the like as the client does, leaving that object's watermark where it was."""
        now = self._clock()
        until = _second(now - self.settle)
        found = {sobject: self.sweep_object(sobject, until) for sobject in self.objects}
        return SweepReport(found, now)

    def sweep_object(self, sobject: str, until: datetime) -> int:
        """Reconcile one object's window [watermark, until); returns how many records
        went into the inbox."""
        mark = self.watermarks.get(self.org, sobject)
        since = _second(mark.watermark) if mark else until
        if until <= since:  # nothing old enough yet: a sweep all the same
            self.watermarks.advance(self.org, sobject, since, 0)
            return 0
        inputs = source_fields(sobject)
        rows = list(self.rest.query(changes_query(sobject, since, until)))
        ids = [str(r["Id"]) for r in rows]
        known = self.state.inputs(self.org, sobject, ids)
        waiting = self.inbox.waiting(self.org, sobject, ids)
        written = self.hashes.get_many(self.org, sobject, ids)
        margin = self.settle.total_seconds()
        entries = []
        for row in rows:
            record_id = str(row["Id"])
            fields = {name: row.get(name) for name in inputs}
            if record_id in waiting or known.get(record_id) == inputs_hash(sobject, fields):
                continue  # on its way, or enriched from these very inputs
            stamp = parse_modstamp(row["SystemModstamp"])
            last = written.get(record_id)
            if (last is not None and last.source == "resync"
                    and last.written_at >= stamp.timestamp() - margin):
                continue  # the complete sync's write is the record's last change
            entries.append(InboxEntry(sobject, record_id, fields, "updated", stamp))
        if entries:
            self.inbox.put(self.org, entries, source=f"reconcile:{sobject}")
            metrics.RECONCILED_RECORDS.labels(org=self.org, sobject=sobject).inc(len(entries))
            log.warning("reconcile_found_unenriched", sobject=sobject, found=len(entries),
                        checked=len(rows), window_start=since.isoformat(),
                        window_end=until.isoformat())
        self.watermarks.advance(self.org, sobject, until, len(entries))
        return len(entries)
