"""`EnricherActor`: the thin shell around `ilyd.pipeline.enricher.Enricher`.

It runs rounds in messages to itself: claim → enrich on the worker pool → tell the
writer. With nothing to claim it waits — briefly at first, longer while the inbox stays
empty (a cheap read each time), or until the poller signals new rows. While the org is
throttled it claims nothing; work waits in the inbox and the budget is probed.
"""

from __future__ import annotations

import time
import types
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from ilyd import metrics
from ilyd.actors.org import OrgContext
from ilyd.actors.writer import tell_enriched
from ilyd.pipeline.enricher import Enricher
from ilyd.pipeline.runtime import OrgPipeline

log = structlog.get_logger(__name__)

_IDLE_MIN, _IDLE_MAX = 0.01, 0.2
_DEPTH_EVERY = 1.0  # seconds between ilyd_inbox_records updates


@dataclass(frozen=True)
class _Round:
    """Internal: run one round."""


class EnricherActor(pykka.ThreadingActor):
    """Enriches one org's pending records with `workers` threads."""

    def __init__(self, context: OrgContext, pipeline: OrgPipeline,
                 writer: pykka.ActorRef[Any]) -> None:
        super().__init__()
        self._context = context
        self._pipeline = pipeline
        self._enricher = Enricher(
            context.name, pipeline.inbox, pipeline.provider,
            lambda items: tell_enriched(writer, items),
            state=pipeline.state, workers=context.config.workers,
        )
        self._idle = _IDLE_MIN
        self._stopping = False
        self._depth_at = 0.0

    def on_start(self) -> None:
        """Start the round loop."""
        self._context.bind_log_context()
        self.actor_ref.tell(_Round())

    def on_stop(self) -> None:
        """Stop the worker threads."""
        self._stopping = True
        self._enricher.close()
        self._pipeline.release()

    def on_failure(self, exception_type: type[BaseException] | None,
                   exception_value: BaseException | None,
                   traceback: types.TracebackType | None) -> None:
        """A round crashed: the org restarts; claimed rows return after their lease."""
        self.on_stop()
        self._context.fail(exception_value or "enricher crashed")

    def on_receive(self, message: Any) -> Any:
        """One round, then schedule the next."""
        if not isinstance(message, _Round):
            raise TypeError(f"EnricherActor got an unexpected message: {type(message).__name__}")
        self._export_depth()
        budget = self._pipeline.budget
        if budget.throttled and not budget.allow():
            self._wait(min(1.0, budget.probe_interval))
        elif self._enricher.has_work() and self._enricher.run_round().claimed:
            self._idle = _IDLE_MIN
        else:
            self._wait(self._idle)
            self._idle = min(_IDLE_MAX, self._idle * 2)
        if not self._stopping:
            self.actor_ref.tell(_Round())
        return None

    def _wait(self, seconds: float) -> None:
        # Short, so a stop message waits at most this long behind a round.
        if self._pipeline.wake.wait(seconds):
            self._pipeline.wake.clear()
            self._idle = _IDLE_MIN

    def _export_depth(self) -> None:
        now = time.monotonic()
        if now - self._depth_at >= _DEPTH_EVERY:
            self._depth_at = now
            metrics.INBOX_RECORDS.labels(org=self._context.name).set(
                self._pipeline.inbox.depth(self._context.name))
