"""The enricher: claims inbox rows, computes each record's Ily values, hands them on.

Lookups of a source across the network (a vendor's HTTP API, DNS) block, so a round
never waits for them: `start_round` claims rows and hands their lookups to the
process's lookup pool (`ilyd.pipeline.lookups`), at most `workers` (from config) of the
org's in flight at once, and returns; the round's results come back through the
function it was given (from a lookup thread) and are finished by `finish` in the
thread that runs rounds. Only a source in memory (the dataset) is looked up inline,
with no hand-off. A retryable provider failure puts the row back in the inbox with a
delay; nothing is written for it meanwhile.

A claim is a write transaction, the costliest step of a record's way through, so the
enricher claims only when it knows rows are claimable: told so (`rows_stored`), or read
so in one cheap query, which also tells when the earliest leased or delayed row comes
due. It keeps that time up to date with its own claims and retries, so the query is
needed again only when someone else changed leases (`rows_changed`) or the time came.
Rows the subscriber's puts hand over (`rows_handed`, `ilyd.store.inbox.Handed`) are taken
without reading them back.
"""

from __future__ import annotations

import queue
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from ilyd.backoff import Backoff
from ilyd.config.enrich import EnrichConfig
from ilyd.enrich.provider import Provider
from ilyd.enrich.values import EnrichmentOutcome, enrich_record
from ilyd.pipeline.lookups import LookupPool, LookupsClosedError
from ilyd.pipeline.work import WorkItem, inputs_hash
from ilyd.store.inbox import Handed, Inbox, InboxItem
from ilyd.store.writes import WriteStateStore

__all__ = ["Enricher", "Looked", "RoundReport", "looks_up_inline"]

log = structlog.get_logger(__name__)

# Rows claimed per round, and at most out on the lookup pool at once: a Collections
# call's worth.
ROUND_SIZE = 200
# Sources answered from memory: looked up in the round's own thread, since a hand-off
# to a lookup thread and back would cost more than the lookup. Any other source may wait
# on the network (a cached one too, on a miss), so it never runs in that thread.
_INLINE_TYPES = frozenset({"dataset"})
# Waits of a record whose source failed for now, by its claims so far, unless the source
# said how long (Retry-After): up to 5 s, 10 s, 20 s ... 5 minutes.
RETRY_BACKOFF = Backoff(initial=5.0, cap=300.0)


@dataclass(frozen=True)
class RoundReport:
    """What one round did."""

    claimed: int = 0
    handed_on: int = 0
    retrying: int = 0
    deleted: int = 0
    looking: int = 0  # handed to the lookup pool; `finish` reports on them


@dataclass(frozen=True)
class Looked:
    """A round's lookups ended: its rows with their outcomes in the same order, or the
    error that ended them (`LookupsClosedError`: the process is stopping)."""

    items: tuple[InboxItem, ...]
    outcomes: tuple[EnrichmentOutcome, ...] = ()
    error: BaseException | None = None


def looks_up_inline(enrich: EnrichConfig) -> bool:
    """Whether every source of `enrich` answers from memory (see `Enricher`'s `inline`)."""
    return bool(enrich.providers) and all(spec.type in _INLINE_TYPES
                                          for spec in enrich.providers)


class Enricher:
    """Claims and enriches one org's pending records. `start_round` and `finish` are
    called by one thread; `inline`: the provider answers from memory, so its lookups run
    in that thread (`looks_up_inline`)."""

    def __init__(
        self,
        org: str,
        inbox: Inbox,
        provider: Provider,
        sink: Callable[[Sequence[WorkItem]], None],
        *,
        state: WriteStateStore | None = None,
        workers: int = 4,
        lookups: LookupPool | None = None,
        round_size: int = ROUND_SIZE,
        worker_id: str | None = None,
        inline: bool = False,
    ) -> None:
        self.org = org
        self.inbox = inbox
        self.provider = provider
        self.sink = sink
        self.state = state
        self.round_size = round_size
        self.inline = inline
        self.worker_id = worker_id or f"enricher-{org}-{id(self):x}"
        # `workers` of the org's lookups in flight at once, on the process's pool; without
        # one (a test, a bench) on a pool of its own, which starts as many threads (a lane
        # leaves a pool one thread it never takes).
        self._own_pool: LookupPool | None = None
        if lookups is None:
            lookups = self._own_pool = LookupPool(workers + 1, name=f"enrich-{org}")
        self._lane = lookups.lane(workers)
        # What this enricher knows of the org's inbox without reading it: rows claimable
        # now (`_ready`); the earliest time (time.time()) a leased or delayed row comes
        # due (`_due_at`, None: none waits); `_fresh`: nobody else changed leases since
        # both were read, so they can be trusted without a query.
        self._ready = False
        self._due_at: float | None = None
        self._fresh = False
        self._out = 0  # rows whose lookups are on the pool, not yet finished
        # New rows their puts handed over (`rows_handed`): taken without a read.
        self._handed: list[Handed] = []

    def full(self) -> bool:
        """Whether a round's worth of rows is out on the lookup pool: claim no more until
        their results come back."""
        return self._out >= self.round_size

    def rows_stored(self) -> None:
        """New rows were put (claimable now): the next round claims without a look."""
        self._ready = True

    def rows_handed(self, handed: Sequence[Handed]) -> None:
        """New rows were put and handed over (`Inbox.put`): the next round takes them
        without reading the inbox (or claims from it, should that be needed anyway)."""
        self._handed.extend(handed)
        if sum(len(h.items) for h in self._handed) > self.round_size:
            # More than a round takes (a throttled org keeps them waiting): the inbox
            # holds them all, and a claim reads them from there.
            self._handed.clear()
            self._ready = True

    def rows_changed(self) -> None:
        """Rows were given back, put by another process, or leases may have run out: the
        next `next_due` reads the inbox again."""
        self._fresh = False

    def next_due(self) -> float | None:
        """Seconds until a row of the org is claimable (0.0: now), None when none waits.

        Rows leased to a worker or put back with a delay count from their lease's end,
        so an idle enricher knows how long it may sleep without missing a retry. Reads
        the inbox only when what the enricher knows may be out of date.
        """
        if self._ready or self._handed:
            return 0.0
        now = time.time()
        if not self._fresh or (self._due_at is not None and self._due_at <= now):
            self._read_due()
            if self._ready:
                return 0.0
        return None if self._due_at is None else max(0.0, self._due_at - now)

    def _read_due(self) -> None:
        self._ready, self._due_at = self.inbox.due(self.org)
        self._fresh = True

    def _due_by(self, when: float) -> None:
        """A row of the org becomes claimable at `when` (a lease or a retry delay ends)."""
        if self._due_at is None or when < self._due_at:
            self._due_at = when

    def start_round(self, deliver: Callable[[Looked], None]) -> RoundReport:
        """Claim rows (up to `round_size` out at once), confirm the deleted ones, and
        enrich the rest: inline, handing them on at once, or on the lookup pool, without
        waiting; `deliver` is then called once, from a lookup thread (or this one if the
        pool is shut down), with their `Looked`, for `finish` in this thread."""
        limit = self.round_size - self._out
        if limit <= 0:
            return RoundReport()
        lease_end = time.time() + self.inbox.lease_seconds
        items = self._take_handed(limit) if self._handed and not self._ready else None
        if items is None:
            self._handed.clear()  # a claim reads them (or they were claimed already)
            items = self.inbox.claim(self.org, limit, worker=self.worker_id)
            # A short claim took every claimable row; a full one may have left some.
            self._ready = len(items) >= limit
        if not items:
            return RoundReport()
        self._due_by(lease_end)  # unless confirmed before, the rows come back then
        deleted = [i for i in items if i.change_type == "deleted"]
        if deleted:
            # A deleted record needs no values; its pending row is simply done.
            self.inbox.confirm(deleted)
            if self.state is not None:
                for item in deleted:
                    self.state.forget(self.org, item.sobject, [item.record_id])
        live = tuple(i for i in items if i.change_type != "deleted")
        if not live:
            return RoundReport(len(items), deleted=len(deleted))
        if self.inline:
            done = self._finish(Looked(live, tuple(self._enrich(i) for i in live)))
            return RoundReport(len(items), done.handed_on, done.retrying, len(deleted))
        self._out += len(live)

        def looked(outcomes: list[EnrichmentOutcome] | BaseException) -> None:
            deliver(Looked(live, error=outcomes) if isinstance(outcomes, BaseException)
                    else Looked(live, tuple(outcomes)))

        self._lane.submit(self._enrich, live, looked)
        return RoundReport(len(items), deleted=len(deleted), looking=len(live))

    def _take_handed(self, limit: int) -> list[InboxItem] | None:
        """Up to `limit` of the handed rows, leased; None (and the next claim reads the
        inbox) when the org's rows were claimed since one of them was put."""
        taken: list[InboxItem] = []
        while self._handed and len(taken) < limit:
            handed = self._handed[0]
            room = limit - len(taken)
            if len(handed.items) > room:
                self._handed[0] = Handed(handed.org, handed.epoch, handed.items[room:])
                handed = Handed(handed.org, handed.epoch, handed.items[:room])
            else:
                self._handed.pop(0)
            got = self.inbox.take(handed, worker=self.worker_id)
            if got is None:
                self._handed.clear()
                self._ready = True
                return taken or None
            taken.extend(got)
        return taken

    def finish(self, looked: Looked) -> RoundReport:
        """Hand on the rows of a round whose lookups ended, and put back those to retry;
        raises the error of a lookup that failed other than by the pool shutting down."""
        self._out = max(0, self._out - len(looked.items))
        return self._finish(looked)

    def _finish(self, looked: Looked) -> RoundReport:
        if isinstance(looked.error, LookupsClosedError):
            # The process is stopping: the rows stay in the inbox, leased to this
            # enricher, and the org's next start claims them again at once.
            log.info("enrichment_abandoned", records=len(looked.items),
                     reason="process_stopping")
            return RoundReport()
        if looked.error is not None:
            raise looked.error
        ready: list[WorkItem] = []
        # Retries by (delay, error): a source that is down fails a whole round alike, and
        # gets it back in one transaction rather than one per record.
        # One jitter draw per round keeps that: records failed alike wait alike.
        retries: dict[tuple[float, str | None], list[InboxItem]] = {}
        draw = random.random()
        for item, outcome in zip(looked.items, looked.outcomes, strict=True):
            if outcome.retryable:
                delay = outcome.retry_after or RETRY_BACKOFF.delay(item.attempts, draw)
                log.info("enrichment_deferred", sobject=item.sobject, record=item.record_id,
                         reason=outcome.error_reason, retry_in_s=round(delay, 1))
                retries.setdefault((delay, outcome.error), []).append(item)
                continue
            ready.append(WorkItem(item, outcome, inputs_hash(item.sobject, item.fields)))
        for (delay, error), batch in retries.items():
            self.inbox.release(batch, delay=delay, error=error)
            self._due_by(time.time() + delay)
        if ready:
            self.sink(ready)
        retrying = sum(len(batch) for batch in retries.values())
        return RoundReport(handed_on=len(ready), retrying=retrying)

    def run_round(self) -> RoundReport:
        """One round, waiting in this thread for its lookups: for a caller that may block
        (a tool, a test), never an org's thread."""
        results: queue.SimpleQueue[Looked] = queue.SimpleQueue()
        started = self.start_round(results.put)
        if not started.looking:
            return started
        done = self.finish(results.get())
        return RoundReport(started.claimed, done.handed_on, done.retrying, started.deleted)

    def _enrich(self, item: InboxItem) -> EnrichmentOutcome:
        return enrich_record(item.sobject, item.fields, self.provider)

    def close(self) -> None:
        """Stop the enricher's own lookup threads, if it has any; the process's pool is
        the process's to shut down, and other orgs' lookups run on."""
        if self._own_pool is not None:
            self._own_pool.shutdown()
