"""`EnricherComponent`: the org's part around `ilyd.pipeline.enricher.Enricher`.

It runs rounds in messages to itself (through the org's actor): claim → enrich → tell
the writer, and at once another round while a full claim may have left rows. A round
whose lookups wait on the network hands them to the process's lookup threads and
returns: their results come back as a message (`_Looked`), handed to the writer then, so
the org's thread never waits on a vendor and its polls, flushes, asks and stop go on
meanwhile; with a round's worth of rows out it claims no more until results come back,
and results that arrive once the org stopped are dropped (their rows come back after
their lease). With nothing to claim it never blocks the org's mailbox: it sleeps until
the org's `Wake` fires — the subscriber, poller or writer put rows — or until the
earliest leased or delayed row comes due, or at the latest `FALLBACK_SECONDS` (rows
put by another process), each a call on the shared `TIMERS` thread. Wake-ups that
arrive while a round is queued join it, so a burst costs one round, and a booked timer
is kept rather than re-booked per round. While the org is throttled it claims nothing;
work waits in the inbox and the budget is probed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from ilyd import metrics
from ilyd.actors.component import Component, ComponentRef
from ilyd.actors.context import OrgContext
from ilyd.actors.writer import tell_enriched
from ilyd.pipeline.enricher import Enricher, Looked, looks_up_inline
from ilyd.pipeline.lookups import pool_for
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.pipeline.wakeup import TIMERS, Timer

log = structlog.get_logger(__name__)

# An idle org looks at its inbox this often even unwoken (rows put by another process;
# in-process puts wake it). Each look costs every idle org a read and the shared timers
# thread a wake-up, so more often shows in idle CPU at many orgs (bench/daemon_idle.py).
FALLBACK_SECONDS = 30.0
_THROTTLED_EVERY = 1.0  # a throttled org asks its budget at most this often
_DEPTH_EVERY = 1.0  # seconds between ilyd_inbox_records updates


@dataclass(frozen=True)
class _Round:
    """Internal: run one round."""


@dataclass(frozen=True)
class _Looked:
    """Internal: a round's lookups ended (told from a lookup thread)."""

    looked: Looked


class EnricherComponent(Component):
    """Enriches one org's pending records, `workers` lookups at a time on the process's
    lookup pool."""

    def __init__(self, context: OrgContext, pipeline: OrgPipeline,
                 writer: ComponentRef) -> None:
        self._context = context
        self._pipeline = pipeline
        self._enricher = Enricher(
            context.name, pipeline.inbox, pipeline.provider,
            lambda items: tell_enriched(writer, items),
            state=pipeline.state, workers=context.config.workers,
            lookups=pool_for(pipeline.database),
            inline=looks_up_inline(context.config.enrich),
        )
        self._stopping = False
        self._depth_at = 0.0
        self._depth = metrics.INBOX_RECORDS.labels(org=context.name)
        # A round is queued (or running and not yet past its start): wake-ups coalesce.
        # What the wake-ups since the last round's start said, taken by the next round:
        # new rows were stored (`_stored`), or anything else changed (`_changed`).
        # Wake-ups come from other threads (the stream's, the timers'): hence the lock.
        self._queued = False
        self._stored = False
        self._changed = True  # the first round reads the inbox
        self._lock = threading.Lock()
        self._timer: Timer | None = None

    def on_start(self) -> None:
        """Listen for new rows and run the first round."""
        self._pipeline.wake.listen(self._on_wake)
        self._kick()

    def on_stop(self) -> None:
        """Stop listening and the enricher (the process's lookup pool runs on)."""
        with self._lock:
            self._stopping = True
        self._pipeline.wake.unlisten(self._on_wake)
        self._cancel_timer()
        self._enricher.close()
        self._pipeline.release()

    def on_receive(self, message: Any) -> Any:
        """One round, then the next at once, or a wake-up scheduled; a round's results
        handed on, then the next round."""
        if isinstance(message, _Looked):
            if not self._stopping:
                self._enricher.finish(message.looked)
                self._step()
            return None
        if not isinstance(message, _Round):
            raise TypeError(f"EnricherComponent got an unexpected message: "
                            f"{type(message).__name__}")
        with self._lock:
            self._queued = False  # a wake-up from now on queues another round
            stored, self._stored = self._stored, False
            changed, self._changed = self._changed, False
        if self._stopping:
            return None
        if changed:
            self._enricher.rows_changed()
        if stored:
            # Rows handed over by their puts are taken without reading the inbox; rows
            # stored without (the poller's, a catch-up's) are claimed from it.
            handed, complete = self._pipeline.wake.take_handed()
            if handed:
                self._enricher.rows_handed(handed)
            if not complete:
                self._enricher.rows_stored()
        self._step()
        return None

    def _step(self) -> None:
        """Claim and enrich if rows are claimable, else sleep until they may be."""
        self._export_depth()
        budget = self._pipeline.budget
        if budget.throttled and not budget.allow():
            # The wake-up's news stays with the enricher for the round after the throttle.
            self._sleep(min(_THROTTLED_EVERY, budget.probe_interval))
            return
        due = self._enricher.next_due()
        if due == 0.0:
            if self._enricher.full():
                return  # the results of the rows out bring the next round
            claimed = self._enricher.start_round(self._tell_looked).claimed
            due = self._enricher.next_due()
            if due == 0.0:
                if claimed:  # a full claim may have left rows, or a retry came due meanwhile
                    self._kick()
                    return
                due = None  # claimable by the read yet not by the claim: no spinning on it
        # Nothing more claimable: sleep until woken, the next lease ends, or the fallback.
        self._sleep(FALLBACK_SECONDS if due is None else min(FALLBACK_SECONDS, due + 0.01))

    def _tell_looked(self, looked: Looked) -> None:
        """A round's lookups ended (a lookup thread): back to the org's thread. Once the
        org stopped they are dropped; the rows come back after their lease."""
        with contextlib.suppress(pykka.ActorDeadError):
            self.ref.tell(_Looked(looked))

    def _on_wake(self, stored: int | None = None) -> None:
        """The org's `Wake`: `stored` new rows (claimable now), or None: something else
        changed (rows given back, leases), so the round reads the inbox again."""
        with self._lock:
            if stored is None:
                self._changed = True
            else:
                self._stored = True
        self._kick()

    def _on_timer(self) -> None:
        # A lease or delay ended, or the fallback look: either way, read the inbox.
        self._on_wake(None)

    def _kick(self) -> None:
        """Queue a round unless one is queued already (any thread; never blocks)."""
        with self._lock:
            if self._queued or self._stopping:
                return
            self._queued = True
        with contextlib.suppress(pykka.ActorDeadError):
            self.ref.tell(_Round())

    def _sleep(self, seconds: float) -> None:
        """Look again in `seconds` at the latest: a booked look that comes first is
        kept (an early look costs a cheap read; re-booking per round costs the timers
        thread a wake-up for every cancelled call)."""
        now = time.monotonic()
        timer = self._timer
        if timer is not None and not timer.cancelled and now < timer.when <= now + seconds:
            return
        self._cancel_timer()
        self._timer = TIMERS.call_later(seconds, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _export_depth(self) -> None:
        now = time.monotonic()
        if now - self._depth_at >= _DEPTH_EVERY:
            self._depth_at = now
            self._depth.set(self._pipeline.inbox.depth(self._context.name))
