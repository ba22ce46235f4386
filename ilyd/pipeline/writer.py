"""The writer: enriched records → sObject Collections updates → confirmed inbox rows.

Results are batched, up to 200 per call (Salesforce's Collections limit, one API call
per request), an org's Leads and Accounts in the same call (grouped by type: Salesforce
processes a mixed list in chunks, one per run of a type). A row leaves the inbox only
after Salesforce confirmed its record — or after its failure proved final (record
deleted, lead converted). A record whose inputs and values are what ilyd last wrote is
confirmed without a call.

Per-record errors (Collections answers 200 even when records fail):
STRING_TOO_LONG → cut the named fields to their described length, send again (text
longer than the described length is cut before sending: the error then only comes from
a field shortened since the last describe, whose stated length is remembered);
INVALID_FIELD_FOR_INSERT_UPDATE → remember the field as unwritable for the org, send
the others; INVALID_FIELD "No such column 'X' on sobject of type Y" (a field deleted or
hidden since the last describe) names the field in its message only, and fails the
whole call: the same, for the field the message names; UNABLE_TO_LOCK_ROW and unknown
codes → back to the inbox with a backoff;
ENTITY_IS_DELETED / NOT_FOUND / CANNOT_UPDATE_CONVERTED_LEAD → dropped, counted.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

import structlog

from ilyd import metrics
from ilyd.backoff import Backoff
from ilyd.config.enrich import EnrichConfig
from ilyd.errors import AuthError, RequestLimitError, SalesforceError
from ilyd.pipeline.budget import ApiBudget
from ilyd.pipeline.history import OUT_OF_SCOPE, UNCHANGED, UNWRITABLE, entry_row
from ilyd.pipeline.landed import by_short_id
from ilyd.pipeline.outcomes import DROP_REASONS, Action, action_for
from ilyd.pipeline.policy import FieldPolicy
from ilyd.pipeline.truncation import cut_to_stated, fit
from ilyd.pipeline.window import WriterWindow
from ilyd.pipeline.work import WorkItem
from ilyd.pipeline.writable import WritableFields
from ilyd.salesforce.composite import MAX_COMPOSITE_QUERIES, query_many
from ilyd.salesforce.rest import MAX_COLLECTION_SIZE, RecordError, RestClient, SaveResult
from ilyd.store.confirmations import Confirmation, confirm
from ilyd.store.field_state import FieldStateStore, RecordsState, digests_json
from ilyd.store.history import HistoryStore
from ilyd.store.inbox import Inbox, InboxItem
from ilyd.store.record_hashes import RecordHash, RecordHashStore
from ilyd.store.writes import WriteStateStore

__all__ = ["FlushReport", "Writer"]

log = structlog.get_logger(__name__)

# Resends within one flush for fixable errors (truncation, unwritable fields).
_MAX_ROUNDS = 4
# An org's Collections calls are at least this far apart unless a batch is full. At a
# few events per second per org the window alone sent one call per event or two, and a
# call is the writer's largest cost (CPU and API budget); an idle org's first record is
# not held back (its last call was long ago), and a busy org fills batches anyway.
MIN_CALL_INTERVAL = 0.5
# A record failing with an unknown error is given up after this many claims.
MAX_ATTEMPTS = 8
# An unknown (deleted, or no longer visible) column: Salesforce names it in the message
# only, with no `fields` list, and a Collections call (or a SOQL query: "on entity
# 'Account'") fails as a whole for it.
_NO_SUCH_COLUMN = re.compile(
    r"No such column '([^']+)' on (?:sobject of type (\w+)|entity '(\w+)')")


def unknown_column(code: str | None, message: str) -> tuple[str, str] | None:
    """(sobject, field) an INVALID_FIELD "No such column" error names, else None."""
    match = _NO_SUCH_COLUMN.search(message) if code == "INVALID_FIELD" else None
    return (match.group(2) or match.group(3), match.group(1)) if match else None


@dataclass
class FlushReport:
    """What one flush did."""

    calls: int = 0  # Collections calls
    reads: int = 0  # queries of the current values (the policies, the scope)
    written: int = 0
    skipped: int = 0
    retried: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    throttled: bool = False
    # Rows given back to the inbox (a retry later, or a newer version arrived meanwhile):
    # the enricher must look again.
    released: int = 0

    def drop(self, reason: str) -> None:
        """Count one dropped record."""
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


@dataclass(slots=True)
class _Send:
    work: WorkItem
    values: dict[str, Any]
    old: Mapping[str, Any] | None = None  # the values read before the write (history)
    kept: dict[str, str] = field(default_factory=dict)  # field -> why it is not sent
    # The digests JSON of `values` as last sent: the confirmation of that call stores it.
    digests: str | None = None


class _Plan(NamedTuple):
    """One sObject's ready records, as the policies' read and checks take them."""

    sends: list[_Send]
    wanted: list[tuple[str, dict[str, Any]]]  # (record id, values to send)
    unsure: set[str]  # the ids an earlier write may have reached unconfirmed


# Waits of a record given back after `attempts` claims: up to 0.5 s, 1 s, 2 s ... 60 s.
RETRY_BACKOFF = Backoff(initial=0.5, cap=60.0)


class Writer:
    """Batches enriched records of one org and writes them back. Not thread-safe: one
    owner (the writer actor) calls it."""

    def __init__(
        self,
        org: str,
        rest: RestClient,
        inbox: Inbox,
        state: WriteStateStore,
        hashes: RecordHashStore,
        *,
        enrich: EnrichConfig,
        budget: ApiBudget | None = None,
        batch_size: int = MAX_COLLECTION_SIZE,
        min_interval: float = MIN_CALL_INTERVAL,
        clock: Callable[[], float] = time.time,
        scope: Sequence[tuple[str, str]] = (),
    ) -> None:
        if hashes.db is not inbox.db or state.db is not inbox.db:
            # A confirmation writes all three in one transaction of the inbox's database.
            raise ValueError("the writer's hash and write-state stores must be on the"
                             " inbox's database")
        self.org = org
        self.rest = rest
        self.inbox = inbox
        self.state = state
        self.hashes = hashes
        self.enrich = enrich
        self.budget = budget
        self.batch_size = min(batch_size, MAX_COLLECTION_SIZE)
        self._clock = clock
        self._pending: dict[str, dict[str, WorkItem]] = {}
        self._first_at: float | None = None
        self.fields = WritableFields(org, rest, state, clock=clock)
        self.field_state = FieldStateStore(inbox.db)
        self.history = HistoryStore(inbox.db)
        self.policy = FieldPolicy(org, enrich, self.field_state, hashes,
                                  lambda: self.rest.token.user_id, scope=scope)
        self._given_back = 0
        self.min_interval = min_interval
        self._last_flush = float("-inf")
        self.window = WriterWindow(enrich.writer_window, enrich.writer_window_max,
                                   enrich.api_share, self._allowance, clock=clock)
        # The org's series, set on every flush (a label lookup each time otherwise).
        self._window_gauge = metrics.WRITER_WINDOW_SECONDS.labels(org=org)
        self._enriched = metrics.RECORDS_ENRICHED.labels(org=org)
        self._projected_gauge: metrics.Gauge | None = None
        self._window_gauge.set(self.window.current())

    # -- batching -----------------------------------------------------------------------

    def add(self, items: Iterable[WorkItem]) -> None:
        """Queue enriched records; a newer result for a queued record replaces it."""
        for work in items:
            self._pending.setdefault(work.sobject, {})[work.record_id] = work
            if self._first_at is None:
                self._first_at = self._clock()

    @property
    def pending(self) -> int:
        """Records queued and not yet sent."""
        return sum(len(batch) for batch in self._pending.values())

    def due_in(self) -> float | None:
        """Seconds until the next flush is due (0: now), None when nothing is queued.

        The first queued record waits `writer_window`, or longer while the calls would pass
        the org's `api_share` (`ilyd.pipeline.window`), never past `writer_window_max`. A
        full batch goes at once: holding it would not make its calls fewer."""
        if not self.pending or self._first_at is None:
            return None
        if self.pending >= self.batch_size:
            return 0.0
        now = self._clock()
        held = max(self._first_at + self.enrich.writer_window, now + self.window.hold())
        due = max(min(held, self._first_at + self.window.widest),
                  self._last_flush + self.min_interval)
        return max(0.0, due - now)

    def flush(self) -> FlushReport:
        """Send everything queued, in calls of up to `batch_size` records of any sObjects
        (one call for an org's Leads and Accounts together, grouped by type)."""
        report = FlushReport()
        self.history.prune_daily(self.enrich.history_days)
        given_back = self._given_back
        self._last_flush = self._clock()
        pending, self._pending, self._first_at = self._pending, {}, None
        sends: list[_Send] = []
        writables: dict[str, Mapping[str, int | None]] = {}
        # Every sObject's hashes and policy state in one statement.
        states = self.field_state.records_state(
            self.org, [(sobject, record_id) for sobject, batch in pending.items()
                       for record_id in batch])
        ready = {sobject: self._ready(sobject, list(batch.values()), writables, report,
                                      states[sobject].hashes)
                 for sobject, batch in pending.items()}
        plans = {sobject: _Plan(batch_sends, self._wanted(batch_sends),
                                self._unsure(batch_sends))
                 for sobject, batch_sends in ready.items() if batch_sends}
        read = self._read_together(plans, report)
        for sobject, plan in plans.items():
            sends.extend(self._police(sobject, plan, report, read.get(sobject),
                                      states[sobject]))
        for start in range(0, len(sends), self.batch_size):
            self._send(sends[start:start + self.batch_size], writables, report)
        report.released = self._given_back - given_back
        self.window.spent(report.calls + report.reads)
        self._window_gauge.set(self.window.current())
        projected = self.window.projected()
        if projected is not None:
            # Its series appears with the first projection (0 would be a false reading).
            if self._projected_gauge is None:
                self._projected_gauge = metrics.API_PROJECTED_DAILY_SHARE.labels(org=self.org)
            self._projected_gauge.set(projected)
        return report

    def _allowance(self) -> int | None:
        usage = self.rest.api_usage
        return usage.max if usage is not None else None

    def release_all(self, delay: float = 0.0, error: str | None = None) -> int:
        """Give every queued record back to the inbox (stopping, or throttled)."""
        items = [w.item for batch in self._pending.values() for w in batch.values()]
        self._pending, self._first_at = {}, None
        if items:
            self.inbox.release(items, delay=delay, error=error)
        return len(items)

    # -- one Collections call (and its resends) ------------------------------------------

    def _ready(self, sobject: str, works: list[WorkItem],
               writables: dict[str, Mapping[str, int | None]],
               report: FlushReport, stored: Mapping[str, RecordHash]) -> list[_Send]:
        """The records of one sObject that may need a call, with the values to send:
        unchanged ones (`stored`: the hashes of what ilyd last wrote) are confirmed here,
        values cut to their fields and limited to writable ones (the policies and the
        scope decide next, in `_police`)."""
        sends: list[_Send] = []
        for work in works:
            last = stored.get(work.record_id)
            # A write whose answer was lost may have left other values in the record than
            # the last confirmed ones: only the read below can tell it is unchanged.
            if (last is not None and last.hash == work.outcome.fingerprint()
                    and not self._outcome_unknown(work)):
                report.skipped += 1
                metrics.WRITES_SKIPPED_UNCHANGED.inc()
                # Its inputs were enriched all the same: the poller and the
                # reconciliation sweep must not take them for missed work.
                self._confirm_rows([work.item], inputs=[(work.sobject, work.record_id,
                                                         work.inputs_hash)],
                                   history=[entry_row(self.org, work, note=UNCHANGED)])
                continue
            values = work.outcome.values
            # An outcome's read-only mapping copies as a whole (dict() copies key by key).
            sends.append(_Send(work, values.copy() if isinstance(values, MappingProxyType)
                               else dict(values)))
        if not sends:
            return []
        try:
            writable = writables[sobject] = self.fields.of(sobject)
        except SalesforceError as exc:
            self._call_failed(exc, sends, report)
            return []
        for send in sends:
            if not send.values.keys() <= writable.keys():
                send.kept = dict.fromkeys(send.values.keys() - writable.keys(), UNWRITABLE)
                send.values = {k: v for k, v in send.values.items() if k in writable}
            fit(sobject, send.work.record_id, send.values, writable)
        return sends

    def _read_together(self, plans: Mapping[str, _Plan],
                       report: FlushReport) -> dict[str, Mapping[str, Any]]:
        """The current values of every sObject's batch in one Composite call (one API
        call instead of one per sObject), by sObject; an sObject whose query failed, or
        a flush of one sObject, is read on its own by `_police`."""
        if len(plans) < 2:
            return {}
        queries = {sobject: self.policy.read_query(sobject, plan.wanted, plan.unsure)
                   for sobject, plan in plans.items()}
        queries = {sobject: q for sobject, q in queries.items() if q is not None}
        if not 1 < len(queries) <= MAX_COMPOSITE_QUERIES:
            return {}
        report.reads += 1
        try:
            answers = query_many(self.rest, list(queries.values()))
        except SalesforceError as exc:
            # Each sObject is read on its own, where a refusal is handled as usual.
            log.info("writeback_read_together_failed", error=str(exc))
            return {}
        return {sobject: by_short_id(rows)
                for sobject, rows in zip(queries, answers, strict=True)
                if not isinstance(rows, SalesforceError)}

    def _wanted(self, sends: list[_Send]) -> list[tuple[str, dict[str, Any]]]:
        return [(s.work.record_id, s.values) for s in sends]

    def _unsure(self, sends: list[_Send]) -> set[str]:
        return {s.work.record_id for s in sends if self._outcome_unknown(s.work)}

    def _police(self, sobject: str, plan: _Plan, report: FlushReport,
                rows: Mapping[str, Any] | None, state: RecordsState) -> list[_Send]:
        """Of one sObject's ready records, those to send: the policies take out the values
        they refuse, records outside the scope and earlier writes that landed unconfirmed
        are confirmed here. `rows`: the batch's current values, when already read;
        `state`: the records' hashes and policy state."""
        sends = plan.sends
        try:
            read = self.policy.check_batch(
                self.rest, sobject, plan.wanted, plan.unsure,
                lambda exc: self._unknown_column(sobject, exc, sends), read=rows,
                state=state)
            done, outside = read.landed, read.outside
            report.reads += read.reads
            for send in sends:
                send.old = read.current.get(send.work.record_id[:15])
                send.kept.update(read.left_out.get(send.work.record_id, {}))
        except SalesforceError as exc:
            self._call_failed(exc, sends, report)
            return []
        if outside:
            # Outside [org.scope] (or deleted): enriched inputs, nothing written.
            log.info("writeback_out_of_scope", sobject=sobject, records=len(outside))
            report.skipped += len(outside)
            self._confirm_rows([s.work.item for s in sends if s.work.record_id in outside],
                               inputs=[(s.work.sobject, s.work.record_id, s.work.inputs_hash)
                                       for s in sends if s.work.record_id in outside],
                               history=[entry_row(self.org, s.work, note=OUT_OF_SCOPE)
                                        for s in sends if s.work.record_id in outside])
            sends = [s for s in sends if s.work.record_id not in outside]
        if done:
            # An earlier write of these values landed, unconfirmed: confirm it now.
            log.info("writeback_already_landed", sobject=sobject, records=len(done))
            report.skipped += len(done)
            metrics.WRITES_SKIPPED_UNCHANGED.inc(len(done))
            self._confirm([s for s in sends if s.work.record_id in done],
                          report, written=False)
            sends = [s for s in sends if s.work.record_id not in done]
        empty = [s for s in sends if not s.values]
        if empty:
            # Nothing the org lets us write (fields missing or refused): done with it.
            report.skipped += len(empty)
            self._confirm_rows([s.work.item for s in empty])
        return [s for s in sends if s.values]

    def _unknown_column(self, sobject: str, exc: SalesforceError,
                        sends: list[_Send]) -> str | None:
        """The column a read refused as unknown, once dropped from `sends`, else None."""
        column = unknown_column(exc.error_code, exc.message)
        if column and self._drop_column(sobject, column[1], exc.message, sends):
            return column[1]
        return None

    def _send(self, sends: list[_Send], writables: Mapping[str, Mapping[str, int | None]],
              report: FlushReport) -> None:
        """One Collections call for `sends` (grouped by type), and its resends."""
        for _ in range(_MAX_ROUNDS):
            if not sends:
                return
            if self.budget is not None and not self.budget.allow():
                report.throttled = True
                self._release(sends, self.budget.probe_interval, "throttled: API budget")
                return
            # Before the call: should its answer be lost, the values are still ilyd's.
            pending = []
            for send in sends:
                send.digests = digests_json(send.values)
                pending.append((send.work.sobject, send.work.record_id, send.digests))
            self.field_state.send_pending(self.org, pending)
            try:
                results = self.rest.update_mixed(
                    [(s.work.sobject, {"Id": s.work.record_id, **s.values}) for s in sends])
            except SalesforceError as exc:
                report.calls += 1
                column = unknown_column(exc.error_code, exc.message)
                if column is not None and self._drop_column(*column, exc.message, sends):
                    sends = self._without_empty(sends, report)
                    continue
                self._call_failed(exc, sends, report)
                return
            report.calls += 1
            sends = self._handle_results(sends, results, writables, report)
        if sends:  # still failing after every fix: try again later
            self._retry_later(sends, report, "unresolved after resends")

    def _handle_results(self, sends: list[_Send], results: list[SaveResult],
                        writables: Mapping[str, Mapping[str, int | None]],
                        report: FlushReport) -> list[_Send]:
        done: list[_Send] = []
        again: list[_Send] = []
        later: list[_Send] = []
        for send, result in zip(sends, results, strict=True):
            if result.success:
                done.append(send)
                continue
            sobject = send.work.sobject
            metrics.WRITEBACK_FAILURES.labels(org=self.org).inc()
            # Every error counts: a record may fail on several fields at once.
            actions = [(action_for(e), e) for e in result.errors]
            kinds = {action for action, _ in actions}
            if Action.DROP in kinds:
                first = next(e for action, e in actions if action is Action.DROP)
                self._drop([send], DROP_REASONS[first.status_code], report)
            elif Action.TRUNCATE in kinds or Action.DROP_FIELDS in kinds:
                for action, error in actions:
                    self._fix(sobject, send, action, error, writables[sobject])
                again.append(send)
            else:
                first = result.errors[0] if result.errors else RecordError("UNKNOWN", "")
                log.info("writeback_record_failed", sobject=sobject, record=send.work.record_id,
                         status_code=first.status_code, error=first.message)
                later.append(send)
        if done:
            self._confirm(done, report)
        if later:
            self._retry_later(later, report, "; ".join(
                e.status_code for r in results for e in r.errors)[:200])
        return again

    def _drop_column(self, sobject: str, name: str, message: str,
                     sends: list[_Send]) -> bool:
        """Mark a column the org says it lacks unwritable and take it out of every record
        of its sObject; False when no record carried it (nothing to fix here)."""
        carried = [s for s in sends if s.work.sobject == sobject and name in s.values]
        if not carried:
            return False
        log.warning("ily_field_unwritable", sobject=sobject, field=name, error=message)
        self.state.mark_unwritable(self.org, sobject, name, f"INVALID_FIELD: {message}")
        self.fields.forget_refused(sobject)
        for send in carried:
            send.values.pop(name, None)
        return True

    def _without_empty(self, sends: list[_Send], report: FlushReport) -> list[_Send]:
        """Confirm the records left with nothing to write; the others still go."""
        empty = [s for s in sends if not s.values]
        if empty:
            report.skipped += len(empty)
            self._confirm_rows([s.work.item for s in empty])
        return [s for s in sends if s.values]

    def _fix(self, sobject: str, send: _Send, action: Action, error: RecordError,
             writable: Mapping[str, int | None]) -> None:
        if action is Action.TRUNCATE:
            cut_to_stated(sobject, send.work.record_id, send.values, error,
                          writable=writable, fields=self.fields)
        elif action is Action.DROP_FIELDS:
            for name in error.fields:
                if name in send.values:
                    log.warning("ily_field_unwritable", sobject=sobject, field=name,
                                error=error.message)
                    self.state.mark_unwritable(self.org, sobject, name,
                                               f"{error.status_code}: {error.message}")
                    self.fields.forget_refused(sobject)
                    send.values.pop(name, None)

    # -- outcomes -----------------------------------------------------------------------

    def _outcome_unknown(self, work: WorkItem) -> bool:
        """Whether an earlier write of this record may have landed unconfirmed: its row
        was in the inbox when this process opened it (a previous run may have died after
        Salesforce's answer), or a claim before this one ended without a clear answer."""
        return work.item.seq <= self.inbox.recovered_through or work.item.attempts > 1

    def _confirm(self, sends: list[_Send], report: FlushReport, *,
                 written: bool = True) -> None:
        # The hashes, the inputs, the digests of the values written and the inbox rows
        # in one transaction: they cannot disagree after a crash.
        items: list[InboxItem] = []
        hashes: list[tuple[str, str, str]] = []
        inputs: list[tuple[str, str, str]] = []
        digests: list[tuple[str, str, str]] = []
        history: list[tuple[str, str, float, str, str]] = []
        for send in sends:
            work = send.work
            items.append(work.item)
            key = (work.sobject, work.record_id)
            hashes.append((*key, work.outcome.fingerprint()))
            inputs.append((*key, work.inputs_hash))
            digests.append((*key, digests_json(send.values) if send.digests is None
                            else send.digests))
            history.append(entry_row(self.org, work, send.values, send.old, send.kept))
        self._confirm_rows(items, hashes=hashes, inputs=inputs, digests=digests,
                           history=history)
        if not written:
            return
        now = self._clock()
        report.written += len(items)
        self._enriched.inc(len(items))
        for item in items:
            metrics.EVENT_TO_WRITE_SECONDS.observe(max(0.0, now - item.received_at))

    def _confirm_rows(self, items: list[InboxItem], *,
                      hashes: Sequence[tuple[str, str, str]] = (),
                      inputs: Sequence[tuple[str, str, str]] = (),
                      digests: Sequence[tuple[str, str, str]] = (),
                      history: Sequence[tuple[str, str, float, str, str]] = ()) -> None:
        """Confirm the rows (with the other orgs' confirmations queued meanwhile); a row
        replaced by a newer change meanwhile is released, not deleted."""
        if not items:
            return
        deleted = confirm(Confirmation(self.inbox, self.org, items, hashes=hashes,
                                       inputs=inputs, digests=digests, history=history,
                                       source="realtime",
                                       written_at=time.time()))
        self._given_back += len(items) - deleted

    def _drop(self, sends: list[_Send], reason: str, report: FlushReport) -> None:
        for send in sends:
            report.drop(reason)
            metrics.RECORDS_DROPPED.labels(reason=reason).inc()
            log.info("writeback_record_dropped", sobject=send.work.sobject,
                     record=send.work.record_id, reason=reason)
        self._confirm_rows([s.work.item for s in sends])
        for send in sends:
            self.state.forget(self.org, send.work.sobject, [send.work.record_id])
            self.field_state.forget(self.org, send.work.sobject, [send.work.record_id])

    def _retry_later(self, sends: list[_Send], report: FlushReport, error: str) -> None:
        keep = []
        for send in sends:
            if send.work.item.attempts >= MAX_ATTEMPTS:
                self._drop([send], "gave_up", report)
            else:
                keep.append(send)
        for send in keep:
            report.retried += 1
            self._given_back += 1
            self.inbox.release([send.work.item], delay=RETRY_BACKOFF.delay(send.work.item.attempts),
                               error=error)

    def _release(self, sends: list[_Send], delay: float, error: str) -> None:
        self._given_back += len(sends)
        self.inbox.release([s.work.item for s in sends], delay=delay, error=error)

    def _call_failed(self, exc: SalesforceError, sends: list[_Send], report: FlushReport) -> None:
        if isinstance(exc, RequestLimitError):
            report.throttled = True
            if self.budget is not None:
                self.budget.limit_exceeded(exc)
            delay = self.budget.probe_interval if self.budget is not None else 60.0
            self._release(sends, delay, str(exc))
            return
        log.warning("writeback_call_failed", error=str(exc), records=len(sends))
        attempts = max(s.work.item.attempts for s in sends)
        self._release(sends, RETRY_BACKOFF.delay(attempts), str(exc))
        if isinstance(exc, AuthError):
            raise exc
