"""The enricher: claims inbox rows, computes each record's Ily values, hands them on.

Provider lookups may block (HTTP, DNS), so a round's records are enriched on a small
thread pool (`workers` from config). A retryable provider failure puts the row back
in the inbox with a delay; nothing is written for it meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import structlog

from ilyd.enrich.provider import Provider
from ilyd.enrich.values import EnrichmentOutcome, enrich_record
from ilyd.pipeline.work import WorkItem, inputs_hash
from ilyd.store.inbox import Inbox, InboxItem
from ilyd.store.writes import WriteStateStore

__all__ = ["Enricher", "RoundReport"]

log = structlog.get_logger(__name__)

# Rows claimed per round: a Collections call's worth.
ROUND_SIZE = 200


@dataclass(frozen=True)
class RoundReport:
    """What one round did."""

    claimed: int = 0
    handed_on: int = 0
    retrying: int = 0
    deleted: int = 0


class Enricher:
    """Claims and enriches one org's pending records. `run_round` is called by one thread."""

    def __init__(
        self,
        org: str,
        inbox: Inbox,
        provider: Provider,
        sink: Callable[[Sequence[WorkItem]], None],
        *,
        state: WriteStateStore | None = None,
        workers: int = 4,
        round_size: int = ROUND_SIZE,
        worker_id: str | None = None,
    ) -> None:
        self.org = org
        self.inbox = inbox
        self.provider = provider
        self.sink = sink
        self.state = state
        self.round_size = round_size
        self.worker_id = worker_id or f"enricher-{org}-{id(self):x}"
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers),
                                        thread_name_prefix=f"enrich-{org}")

    def has_work(self) -> bool:
        """Cheap read: is any row of the org claimable now?"""
        row = self.inbox.db.connection().execute(
            "SELECT 1 FROM inbox WHERE org = ? AND (lease_until IS NULL OR lease_until <= ?)"
            " LIMIT 1", (self.org, time.time()),
        ).fetchone()
        return row is not None

    def next_due(self) -> float | None:
        """Seconds until a row of the org is claimable (0.0: now), None when none waits.

        Rows leased to a worker or put back with a delay count from their lease's end,
        so an idle enricher knows how long it may sleep without missing a retry.
        """
        row = self.inbox.db.connection().execute(
            "SELECT MIN(COALESCE(lease_until, 0)) FROM inbox WHERE org = ?", (self.org,),
        ).fetchone()
        if row is None or row[0] is None:
            return None
        return max(0.0, float(row[0]) - time.time())

    def run_round(self) -> RoundReport:
        """Claim up to `round_size` rows, enrich them, hand the results to the sink."""
        items = self.inbox.claim(self.org, self.round_size, worker=self.worker_id)
        if not items:
            return RoundReport()
        deleted = [i for i in items if i.change_type == "deleted"]
        if deleted:
            # A deleted record needs no values; its pending row is simply done.
            self.inbox.confirm(deleted)
            if self.state is not None:
                for item in deleted:
                    self.state.forget(self.org, item.sobject, [item.record_id])
        live = [i for i in items if i.change_type != "deleted"]
        # One record (the usual case at a few events per second): no hand-off to a worker.
        outcomes = ([self._enrich(live[0])] if len(live) == 1
                    else list(self._pool.map(self._enrich, live)))
        ready: list[WorkItem] = []
        retrying = 0
        for item, outcome in zip(live, outcomes, strict=True):
            if outcome.retryable:
                retrying += 1
                delay = outcome.retry_after or min(300.0, 5.0 * 2 ** max(0, item.attempts - 1))
                log.info("enrichment_deferred", sobject=item.sobject, record=item.record_id,
                         reason=outcome.error_reason, retry_in_s=round(delay, 1))
                self.inbox.release([item], delay=delay, error=outcome.error)
                continue
            ready.append(WorkItem(item, outcome, inputs_hash(item.sobject, item.fields)))
        if ready:
            self.sink(ready)
        return RoundReport(len(items), len(ready), retrying, len(deleted))

    def _enrich(self, item: InboxItem) -> EnrichmentOutcome:
        return enrich_record(item.sobject, item.fields, self.provider)

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=True, cancel_futures=True)
