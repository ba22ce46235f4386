"""The complete database sync of one org: read, enrich, compare, write, settle.

`Resync` is a plain class; `run()` blocks until the sync ends and is safe to call again
after a crash (it continues from the checkpoint). Per object:

1. COUNT() decides the path: REST query + sObject Collections below
   `rest_threshold` records, Bulk 2.0 otherwise.
2. Bulk: one query job; its result pages (sized by `ilyd.resync.pacing`: a handful per
   object) stream through enrichment in chunks; records whose Ily values differ from
   what Salesforce holds are spooled; a batch of pages is handed to the sender thread
   (`ilyd.resync.sender`), which sends it as one ingest job while the next is enriched.
3. Before a batch is sent, records changed since the read by someone else, written by
   the real-time path since, or waiting in the real-time inbox are left out: the
   real-time path has (or will have) newer values, which the sync must not clobber.
4. Settling waits for the jobs, re-sends rows that hit a row lock, counts the rest.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from ilyd.config.enrich import DEFAULT_ENRICH, EnrichConfig
from ilyd.enrich.provider import Provider
from ilyd.enrich.values import enrich_records
from ilyd.errors import RequestLimitError, SalesforceError, SalesforceUnavailableError
from ilyd.pipeline.history import outcome_json
from ilyd.pipeline.policy import FieldPolicy
from ilyd.resync import reader
from ilyd.resync.budget import Budget, Cancelled, Gate
from ilyd.resync.checkpoint import ObjectCheckpoint, ResyncStore, RunState
from ilyd.resync.compare import ChangeDetector
from ilyd.resync.pacing import PagePlan
from ilyd.resync.plan import ObjectPlan, build_plan, parse_since
from ilyd.resync.progress import Phase, ResyncProgress
from ilyd.resync.report import DryRunReport, value_rows
from ilyd.resync.rest_path import RestPath
from ilyd.resync.sender import BatchSender
from ilyd.resync.writer import BulkWriter, IngestSpool
from ilyd.salesforce.bulk import BulkClient, PollPolicy
from ilyd.salesforce.rest import RestClient
from ilyd.store.field_state import FieldStateStore, digests_json
from ilyd.store.history import HistoryStore
from ilyd.store.inbox import Inbox
from ilyd.store.record_hashes import RecordHashStore

__all__ = ["Resync", "ResyncRequest", "ResyncSettings"]

log = structlog.get_logger(__name__)
T = TypeVar("T")

# A transient failure (Salesforce unavailable) restarts the run from its checkpoint
# this many times before the run fails.
_TRANSIENT_ATTEMPTS = 5


@dataclass(frozen=True)
class ResyncSettings:
    """Tunables; the defaults suit production, tests shrink the waits."""

    page_size: int = 500_000  # most rows per Bulk result page (maxRecords)
    jobs_per_object: int = 3  # pages (≈ ingest jobs) below 3 × page_size records
    rest_threshold: int = 2_000  # below this many records: REST + Collections
    chunk: int = 2_000  # rows enriched together (one provider lookup_many)
    # Salesforce takes 150 MB per job (base64: ~100 MB of CSV); pages are sized so a
    # job's CSV stays under 3/4 of this.
    max_upload_bytes: int = 80 * 1024 * 1024
    # Short first polls; later ones timed from the job's progress (ilyd.resync.pacing).
    poll: PollPolicy = field(default_factory=lambda: PollPolicy(initial=0.2, factor=2.0,
                                                                max_interval=30.0))
    budget_ratio: float = 0.5
    budget_probe_seconds: float = 60.0
    lock_retries: int = 3
    lock_retry_delay: float = 2.0
    transient_delay: float = 5.0


@dataclass(frozen=True)
class ResyncRequest:
    """What the operator asked for."""

    objects: tuple[str, ...]
    since: str | None = None
    report: str | None = None  # a dry run: write nothing, report here (ilyd.resync.report)
    # A refresh: only records whose Last Enriched is older than this (ISO 8601), each
    # written (Last Enriched at least) even when no other value changed.
    stale_before: str | None = None


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


class Resync:
    """One org's resync: start or resume a run, run it to the end, cancel it."""

    def __init__(self, org: str, rest: RestClient, provider: Provider, *, store: ResyncStore,
                 hashes: RecordHashStore, settings: ResyncSettings | None = None,
                 inbox: Inbox | None = None, integration_user_id: str | None = None,
                 export_metrics: bool = True, enrich: EnrichConfig | None = None,
                 scope: tuple[tuple[str, str], ...] = (), gate: Gate | None = None) -> None:
        self.org = org
        self.rest = rest
        self.bulk = BulkClient(rest, max_upload_bytes=(settings or ResyncSettings())
                               .max_upload_bytes)
        self.provider = provider
        self.store = store
        self.hashes = hashes
        # The overwrite policies hold for the resync as for the real-time path.
        self.fields = FieldStateStore(hashes.db)
        self.history = HistoryStore(hashes.db)  # ilyd ctl history: what a resync wrote
        self.policy = FieldPolicy(org, enrich or DEFAULT_ENRICH, self.fields, hashes,
                                  lambda: integration_user_id or rest.token.user_id)
        self.scope = scope  # [org.scope]: only matching records are read
        self.gate = gate  # a share of the API allowance of the run's own (the refresh's)
        self.settings = settings or ResyncSettings()
        self.inbox = inbox
        self._user_id = integration_user_id
        self._export = export_metrics
        self._cancel = threading.Event()
        self._stopping = False
        self.progress: ResyncProgress | None = None
        self._report: DryRunReport | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def begin(self, request: ResyncRequest) -> ResyncProgress:
        """Record a new run (the previous one is forgotten); `run()` then performs it."""
        parse_since(request.since)  # refuse a bad --since before anything is stored
        run_id = uuid.uuid4().hex[:12]
        parse_since(request.stale_before)
        self.store.begin(self.org, run_id, request.objects, request.since, request.report,
                         stale_before=request.stale_before)
        self.progress = ResyncProgress(self.org, run_id, request.objects, self._export)
        if request.report:
            self._report = DryRunReport(request.report, fresh=True)
            self.progress.report = request.report
        return self.progress

    def resumable(self) -> bool:
        """True when the store holds a run that was running when the daemon stopped."""
        run = self.store.run(self.org)
        return run is not None and run.state is RunState.RUNNING

    def resume(self) -> ResyncProgress:
        """Pick the stored running run up (counts restored from the checkpoint)."""
        run = self.store.run(self.org)
        assert run is not None
        self.progress = ResyncProgress(self.org, run.run_id, run.objects, self._export)
        self.progress.restore(run.counts, run.failures)
        if run.report:
            self._report = DryRunReport(run.report, fresh=False)
            self.progress.report = run.report
        return self.progress

    def cancel(self) -> None:
        """End the running sync at the next chunk or poll; it ends as cancelled."""
        self._cancel.set()

    def stop(self) -> None:
        """Interrupt the sync for a daemon stop: the run stays resumable."""
        self._stopping = True
        self._cancel.set()

    def run(self) -> ResyncProgress:
        """Perform the begun or resumed run to its end; never raises."""
        progress = self.progress
        assert progress is not None, "begin() or resume() first"
        run = self.store.run(self.org)
        assert run is not None
        budget = Budget(self.rest, self.settings.budget_ratio,
                        probe_seconds=self.settings.budget_probe_seconds,
                        cancelled=self._cancel, on_pause=self._paused, gate=self.gate)
        self._budget = budget
        self._writer = BulkWriter(
            self.org, self.bulk, store=self.store, hashes=self.hashes, fields=self.fields,
            history=self.history, budget=budget,
            progress=progress, poll=self.settings.poll, lock_retries=self.settings.lock_retries,
            lock_retry_delay=self.settings.lock_retry_delay, sleep=self._cancel.wait)
        transient = 0
        while True:
            try:
                self._run_once(run.objects, parse_since(run.since),
                               parse_since(run.stale_before))
            except Cancelled:
                if self._stopping:
                    log.info("resync_interrupted", org=self.org, run=self.store.kind)
                    return progress
                self._end(RunState.CANCELLED, Phase.CANCELLED)
            except RequestLimitError as exc:
                log.warning("resync_limit_reached", org=self.org, error=str(exc))
                try:
                    budget.wait(spent=True)
                except Cancelled:
                    if not self._stopping:
                        self._end(RunState.CANCELLED, Phase.CANCELLED)
                    return progress
                self._resume_counts()
                continue
            except SalesforceUnavailableError as exc:
                transient += 1
                if transient < _TRANSIENT_ATTEMPTS and not self._cancel.wait(
                        self.settings.transient_delay * transient):
                    log.warning("resync_retrying", org=self.org, error=str(exc))
                    self._resume_counts()
                    continue
                self._end(RunState.FAILED, Phase.FAILED, str(exc))
            except Exception as exc:
                if not isinstance(exc, SalesforceError):
                    log.exception("resync_crashed", org=self.org)
                self._end(RunState.FAILED, Phase.FAILED, str(exc))
            else:
                self._end(RunState.DONE, Phase.DONE)
            return progress

    def _resume_counts(self) -> None:
        # The work since the last checkpoint is redone: count from the checkpoint again.
        run = self.store.run(self.org)
        assert self.progress is not None
        assert run is not None
        self.progress.restore(run.counts, run.failures)

    def _end(self, state: RunState, phase: Phase, error: str | None = None) -> None:
        assert self.progress is not None
        if state is RunState.DONE and self._report is not None:
            self._report.finish()
        self.store.finish(self.org, state, error)
        self.progress.error = error
        self.progress.set_phase(phase, error)
        log.info("resync_finished", org=self.org, run=self.store.kind, state=str(state),
                 error=error,
                 **{k: v for k, v in self.progress.snapshot().items()
                    if k in ("read", "changed", "written", "failed", "skipped")})

    def _paused(self, reason: str | None) -> None:
        assert self.progress is not None
        if reason is None:
            self.progress.set_phase(self._phase_before_pause)
        else:
            if self.progress.phase is not Phase.PAUSED:
                self._phase_before_pause = self.progress.phase
            self.progress.set_phase(Phase.PAUSED, reason)

    # --- the run ------------------------------------------------------------------------

    def _run_once(self, objects: tuple[str, ...], since: Any, stale_before: Any = None) -> None:
        progress = self.progress
        assert progress is not None
        self._phase_before_pause = Phase.READING
        self._writer.recover()
        describes = {o: self.rest.describe(o, refresh=True) for o in objects}
        plans = {p.sobject: p for p in build_plan(describes, objects, since, self.scope,
                                                  stale_before=stale_before)}
        checkpoints = {c.sobject: c for c in self.store.objects(self.org)}
        progress.total = sum(c.total or 0 for c in checkpoints.values())
        for sobject in objects:
            self._budget.check_cancel()
            checkpoint = checkpoints[sobject]
            if checkpoint.read_done:
                continue
            plan = plans[sobject]
            progress.sobject = sobject
            if checkpoint.mode is None:
                progress.set_phase(Phase.COUNTING)
                total = reader.count_records(self.rest, plan)
                mode = "rest" if total < self.settings.rest_threshold else "bulk"
                self.store.set_object(self.org, sobject, mode=mode, total=total)
                progress.total += total
                checkpoint = next(c for c in self.store.objects(self.org)
                                  if c.sobject == sobject)
            progress.mode = checkpoint.mode
            progress.set_phase(Phase.READING)
            if checkpoint.mode == "rest":
                RestPath(self.org, self.rest, self.provider, store=self.store,
                         hashes=self.hashes, policy=self.policy, inbox=self.inbox,
                         progress=progress, report=self._report, history=self.history,
                         budget=self._budget, settings=self.settings,
                         cancelled=self._cancel).run(plan)
            else:
                self._bulk_object(plan, checkpoint)
        progress.set_phase(Phase.SETTLING)
        self._writer.settle()

    # --- Bulk 2.0 path ------------------------------------------------------------------

    def _bulk_object(self, plan: ObjectPlan, checkpoint: ObjectCheckpoint) -> None:
        read_started = checkpoint.read_started or time.time()
        read, created = reader.open_bulk_query(self.bulk, plan, checkpoint.query_job,
                                               self.settings.poll, checkpoint.total)
        started_sf = checkpoint.read_started_sf
        if created:
            started_sf = read.created
            self.store.set_object(self.org, plan.sobject, query_job=read.job_id,
                                  read_started=read_started, read_started_sf=started_sf)
        since_sf = reader.parse_sf_datetime(started_sf)
        # Rows modified in the second the query started or later: the only ones a
        # later "changed by someone else" check must compare modstamps for.
        recent_floor = since_sf.strftime("%Y-%m-%dT%H:%M:%S") if since_sf else None
        pages = PagePlan(total=checkpoint.total or 0, max_page=self.settings.page_size,
                         max_upload_bytes=self.settings.max_upload_bytes,
                         jobs=self.settings.jobs_per_object,
                         position=0 if not checkpoint.batch_locator else None)
        sender: BatchSender[_Batch] = BatchSender(
            lambda b: self._send_batch(plan, b, since_sf=since_sf, read_started=read_started),
            lambda b: b.spool.close(), name=f"resync-send-{self.org}")
        batch = _Batch(plan)
        try:
            for page in reader.bulk_pages(self.bulk, read, checkpoint.batch_locator,
                                          pages.next_size):
                read_before, changed_before = batch.counts["read"], batch.counts["changed"]
                bytes_before = batch.spool.size
                for chunk in _batched(page.rows, self.settings.chunk):
                    self._budget.check_cancel()
                    self._enrich_chunk(plan, chunk, batch, recent_floor)
                pages.consumed(batch.counts["read"] - read_before,
                               batch.counts["changed"] - changed_before,
                               batch.spool.size - bytes_before)
                batch.next_locator, batch.last = page.next_locator, page.next_locator is None
                if batch.last or pages.send_now(batch.spool.rows, batch.spool.size):
                    sender.put(batch)
                    batch = _Batch(plan)
                self._budget.wait()
        except BaseException:
            batch.spool.close()
            sender.abort()
            raise
        sender.finish()

    def _enrich_chunk(self, plan: ObjectPlan, rows: list[dict[str, str]], batch: _Batch,
                      recent_floor: str | None) -> None:
        progress = self.progress
        assert progress is not None
        raw = enrich_records(plan.sobject, rows, self.provider)
        outcomes, left_out = self.policy.police_rows(plan.sobject, rows, raw,
                                                     count=self._report is None)
        counts = batch.counts
        counts["read"] += len(rows)
        progress.add("read", len(rows))
        detector, spool, recent = batch.detector, batch.spool, batch.recent
        skipped = changed = 0
        digests: dict[int, str] = {}  # per prepared values (shared by records of a domain)
        for row, outcome, whole in zip(rows, outcomes, raw, strict=True):
            if outcome.retryable:
                skipped += 1
                continue
            prepared = detector.check(row, outcome)
            if self._report is not None:
                lines = value_rows(plan.sobject, row["Id"], row,
                                   written=prepared.values if prepared else None,
                                   kept=whole.values, left_out=left_out.get(row["Id"], {}),
                                   source=outcome.source)
                if lines:
                    batch.report[row["Id"]] = lines
            if prepared is None:
                continue
            changed += prepared.changed
            record_id = row["Id"]
            written = digests.get(id(prepared))
            if written is None:
                written = digests[id(prepared)] = digests_json(prepared.values)
            spool.add_prepared(record_id, prepared, written, outcome_json(
                outcome, prepared.values, row, left_out.get(record_id, {})))
            if recent_floor is not None:
                modstamp = row.get("SystemModstamp") or ""
                if modstamp[:19] >= recent_floor:
                    recent[record_id] = modstamp[:23]
        detector.reset()
        counts["skipped"] += skipped
        counts["enriched"] += len(rows) - skipped
        counts["changed"] += changed
        progress.add("skipped", skipped)
        progress.add("enriched", len(rows) - skipped)
        progress.add("changed", changed)

    def _send_batch(self, plan: ObjectPlan, batch: _Batch, *, since_sf: Any,
                    read_started: float) -> None:
        """Send one batch (on the sender thread): leave out what the real-time path
        owns, then one ingest job — or just the checkpoint when nothing changed."""
        assert self.progress is not None
        next_locator, last = batch.next_locator, batch.last
        spool = batch.spool
        excluded = self._changed_elsewhere(plan, spool.fingerprints(), batch.recent, since_sf,
                                           read_started)
        if excluded:
            before = spool.rows
            spool = spool.without(excluded)
            removed = before - spool.rows
            batch.counts["skipped"] += removed
            self.progress.add("skipped", removed)
            if removed:
                log.info("resync_left_to_realtime", org=self.org, sobject=plan.sobject,
                         records=removed)
        if self._report is not None:
            # A dry run: the rows of what would be sent, then the checkpoint, no job.
            self._report.add(line for record_id, lines in batch.report.items()
                             if record_id not in excluded for line in lines)
            spool.close()
            self.store.advance(self.org, plan.sobject, next_locator, last, batch.counts)
            return
        try:
            if spool.rows == 0:
                self.store.advance(self.org, plan.sobject, next_locator, last, batch.counts)
            else:
                self._writer.submit(plan.sobject, spool, next_locator=next_locator,
                                    read_done=last, counts=dict(batch.counts))
        finally:
            spool.close()

    def _changed_elsewhere(self, plan: ObjectPlan, rows: Iterable[tuple[str, str]],
                           recent: Mapping[str, str], since_sf: Any,
                           read_started: float) -> set[str]:
        """Ids to leave to the real-time path (see the module docstring, step 3)."""
        excluded: set[str] = set()
        if since_sf is not None and self._user_id:
            for record in self.rest.query(plan.modified_query(since_sf, self._user_id)):
                stamp = str(record.get("SystemModstamp") or "")[:23]
                if recent.get(str(record["Id"])) != stamp:
                    excluded.add(str(record["Id"]))
        # Streamed in chunks: a batch holds up to half a million ids.
        for chunk in _batched((record_id for record_id, _ in rows), 5000):
            excluded |= self.hashes.written_since(self.org, plan.sobject, "realtime",
                                                  read_started, chunk)
        if self.inbox is not None:
            excluded |= {item.record_id for item in self.inbox.pending(self.org)
                         if item.sobject == plan.sobject}
        return excluded

@dataclass
class _Batch:
    """Pages read since the last batch was sent: their changed rows and counts."""

    plan: ObjectPlan
    spool: IngestSpool = field(init=False)
    detector: ChangeDetector = field(init=False)
    counts: Counter[str] = field(default_factory=Counter)
    recent: dict[str, str] = field(default_factory=dict)
    report: dict[str, list[Any]] = field(default_factory=dict)  # a dry run's rows by Id
    next_locator: str | None = None  # where the page after the batch starts
    last: bool = False  # the batch ends the object's read

    def __post_init__(self) -> None:
        self.spool = IngestSpool(self.plan.ily_fields)
        self.detector = ChangeDetector(self.plan, self.plan.ily_fields)
