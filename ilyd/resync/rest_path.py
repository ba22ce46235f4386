"""The resync of a small object: REST query, then sObject Collections (≤ 200 a call).

Salesforce's advice below ~2,000 records: a Bulk job's fixed cost (create, upload,
close, polls) buys nothing there. The object's checkpoint is only "done": a killed run
reads it again, and the comparison with the values read finds nothing to change in
what was already written.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from ilyd.enrich.provider import Provider
from ilyd.enrich.values import EnrichmentOutcome, enrich_records
from ilyd.pipeline.history import outcome_json
from ilyd.pipeline.policy import FieldPolicy
from ilyd.resync.budget import Budget, Cancelled
from ilyd.resync.checkpoint import ResyncStore
from ilyd.resync.compare import changed_values, json_value, sent_values, values_to_write
from ilyd.resync.plan import ObjectPlan
from ilyd.resync.progress import ResyncProgress
from ilyd.resync.report import DryRunReport, value_rows
from ilyd.resync.writer import RETRYABLE
from ilyd.salesforce.rest import MAX_COLLECTION_SIZE, RestClient
from ilyd.store.field_state import digests_json
from ilyd.store.history import HistoryStore
from ilyd.store.inbox import Inbox
from ilyd.store.record_hashes import RecordHashStore

__all__ = ["RestPath"]

T = TypeVar("T")


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


class RestPath:
    """One object's resync through REST query and sObject Collections."""

    def __init__(self, org: str, rest: RestClient, provider: Provider, *, store: ResyncStore,
                 hashes: RecordHashStore, policy: FieldPolicy, inbox: Inbox | None,
                 progress: ResyncProgress,
                 budget: Budget, settings: Any, cancelled: threading.Event,
                 report: DryRunReport | None = None,
                 history: HistoryStore | None = None) -> None:
        self.org = org
        self.rest = rest
        self.provider = provider
        self.store = store
        self.hashes = hashes
        self.policy = policy
        self.inbox = inbox
        self.progress = progress
        self.budget = budget
        self.settings = settings  # ResyncSettings (lock_retries, lock_retry_delay)
        self.cancelled = cancelled
        self.report = report  # a dry run: rows instead of writes
        self._lines: dict[str, list[Any]] = {}
        self.history = history  # what is written goes into ilyd ctl history
        self._entries: dict[str, str] = {}
        self._sent: dict[str, dict[str, object]] = {}  # what differs, by record id

    def run(self, plan: ObjectPlan) -> None:
        """Read, enrich and write every record of `plan` (checkpointed when done)."""
        progress = self.progress
        assert progress is not None
        counts: Counter[str] = Counter()
        failures: Counter[str] = Counter()
        pending: list[tuple[str, dict[str, object], str]] = []
        for chunk in _batched(self.rest.query(plan.query()), MAX_COLLECTION_SIZE):
            self.budget.check_cancel()
            rows: list[dict[str, Any]] = chunk
            raw = enrich_records(plan.sobject, rows, self.provider)
            policed = self.policy.police_rows(plan.sobject, rows, raw,
                                              count=self.report is None)
            outcomes: list[EnrichmentOutcome] = policed[0]
            counts["read"] += len(rows)
            progress.add("read", len(rows))
            for row, outcome, whole in zip(rows, outcomes, raw, strict=True):
                if self.report is not None and not outcome.retryable:
                    self._note(plan, row, outcome, whole, policed[1])
                if outcome.retryable:
                    counts["skipped"] += 1
                    progress.add("skipped")
                    continue
                counts["enriched"] += 1
                progress.add("enriched")
                decided = values_to_write(plan, row, outcome)
                if decided is not None:
                    values, changed = decided
                    if changed:
                        counts["changed"] += 1
                        progress.add("changed")
                    self._sent[str(row["Id"])] = sent_values(plan, row, values)
                    if self.history is not None:
                        self._entries[str(row["Id"])] = outcome_json(
                            outcome, values, row, policed[1].get(str(row["Id"]), {}))
                    pending.append((str(row["Id"]), values, outcome.fingerprint()))
            while len(pending) >= MAX_COLLECTION_SIZE:
                self._collection_write(plan, pending[:MAX_COLLECTION_SIZE], counts, failures)
                del pending[:MAX_COLLECTION_SIZE]
        if pending:
            self._collection_write(plan, pending, counts, failures)
        self._sent.clear()  # what records left to the real-time path would have sent
        self.store.object_done(self.org, plan.sobject, {**counts})
        if failures:
            self.store.add_counts(self.org, {}, dict(failures))

    def _note(self, plan: ObjectPlan, row: dict[str, Any], outcome: EnrichmentOutcome,
              whole: EnrichmentOutcome, left_out: dict[str, dict[str, str]]) -> None:
        """A dry run's rows of one record: kept until its batch is decided (a record
        that changes), or reported at once (only values the policies keep)."""
        assert self.report is not None
        record_id = str(row["Id"])
        values = changed_values(plan, row, outcome)
        lines = value_rows(plan.sobject, record_id, row, written=values, kept=whole.values,
                           left_out=left_out.get(record_id, {}), source=outcome.source)
        if values is None:
            self.report.add(lines)
        elif lines:
            self._lines[record_id] = lines

    def _collection_write(self, plan: ObjectPlan, items: list[tuple[str, dict[str, object], str]],
                          counts: Counter[str], failures: Counter[str]) -> None:
        progress = self.progress
        assert progress is not None
        excluded = self.hashes.written_since(self.org, plan.sobject, "realtime",
                                             progress.started, [i for i, _, _ in items])
        if self.inbox is not None:
            excluded |= {item.record_id for item in self.inbox.pending(self.org)
                         if item.sobject == plan.sobject}
        if excluded:
            kept = [item for item in items if item[0] not in excluded]
            counts["skipped"] += len(items) - len(kept)
            progress.add("skipped", len(items) - len(kept))
            items = kept
        if self.report is not None:
            # A dry run: the rows of what would be sent, nothing written.
            self.report.add(line for rid, _, _ in items for line in self._lines.pop(rid, ()))
            return
        attempt = 0
        while items:
            self.budget.wait()
            records = [{"Id": rid, **{k: json_value(v)
                                      for k, v in self._sent.get(rid, values).items()}}
                       for rid, values, _ in items]
            results = self.rest.update_collection(plan.sobject, records)
            retry, written, digests = [], {}, []
            for item, result in zip(items, results, strict=True):
                if result.success:
                    written[item[0]] = item[2]
                    digests.append((item[0], digests_json(item[1])))
                    continue
                code = result.errors[0].status_code if result.errors else "UNKNOWN"
                if code in RETRYABLE and attempt < self.settings.lock_retries:
                    retry.append(item)
                else:
                    failures[code] += 1
                    progress.add_failures({code: 1})
            counts["written"] += len(written)
            counts["failed"] = sum(failures.values())
            progress.add("written", len(written))
            self.hashes.put_many(self.org, plan.sobject, written, "resync")
            self.policy.fields.remember(self.org, plan.sobject, digests)
            if self.history is not None and digests:
                now = time.time()
                with self.history.db.transaction() as tx:
                    HistoryStore.insert_rows(tx, [
                        (self.org, rid, now, self.store.kind, self._entries.pop(rid, "{}"))
                        for rid, _ in digests])
            again = {r for r, _, _ in retry}
            for rid, _, _ in items:
                if rid not in again:
                    self._sent.pop(rid, None)
            items, attempt = retry, attempt + 1
            if items and self.cancelled.wait(self.settings.lock_retry_delay * attempt):
                raise Cancelled
