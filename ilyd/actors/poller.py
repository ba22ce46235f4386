"""`PollerComponent`: the org's part around `ilyd.pipeline.poller.Poller`.

The org starts it instead of the subscriber when it is fed by polling (configured so,
or decided from the org's facts: Streaming API off, no permission for it or for
PushTopics; `ilyd.provision.feed`). It polls every `poll_interval` seconds, not while
the org is throttled (a poll spends API calls), and runs the org's reconciliation sweep
(`ilyd.actors.sweeps`) in its messages. Its next poll is a call on the shared `TIMERS`
thread that tells it `_Poll`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from ilyd.actors.component import Component
from ilyd.actors.context import OrgContext
from ilyd.actors.sweeps import Reconcile, StartSweeps, Sweeps
from ilyd.errors import IlydError, NeedsReauthError
from ilyd.metrics import ORG_SOURCE
from ilyd.pipeline.cdc import SOURCES
from ilyd.pipeline.poller import Poller
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.pipeline.wakeup import TIMERS, Timer

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class _Poll:
    """Internal: poll now."""


class PollerComponent(Component):
    """Polls one org for changed records when it has no streaming."""

    def __init__(self, context: OrgContext, pipeline: OrgPipeline, *,
                 reason: str | None = None) -> None:
        self._context = context
        self._pipeline = pipeline
        self._reason = reason  # why not streaming (None: configured to poll)
        self._poller = Poller(context.name, pipeline.rest, pipeline.inbox, pipeline.state,
                              context.config.objects)
        self._timer: Timer | None = None
        self._poll_error: str | None = None  # as last published
        self._sweeps: Sweeps | None = None

    def on_start(self) -> None:
        """Poll in a message, so the org's start never waits on Salesforce."""
        if self._reason:
            log.warning("cdc_not_used", source="polling", reason=self._reason)
        for name in SOURCES:
            ORG_SOURCE.labels(org=str(self._context.name), source=name).set(
                1 if name == "polling" else 0)
        log.info("polling_for_changes", interval_s=self._context.config.poll_interval)
        self._context.publish(polling=True, source="polling", source_reason=self._reason)
        self.ref.tell(_Poll())
        if Sweeps.wanted(self._context):
            self._sweeps = Sweeps(self._context, self._pipeline, self.ref)
            # In a message: a state-file error there is the org's failure, which the
            # org's start would report as a failed start instead.
            self.ref.tell(StartSweeps())

    def on_stop(self) -> None:
        """Cancel the next poll and sweep."""
        if self._timer is not None:
            self._timer.cancel()
        if self._sweeps is not None:
            self._sweeps.cancel()
        self._pipeline.release()

    def on_receive(self, message: Any) -> Any:
        """Poll and schedule the next poll, or sweep."""
        if isinstance(message, _Poll):
            self._poll()
        elif isinstance(message, Reconcile) and self._sweeps is not None:
            self._sweeps.run()
        elif isinstance(message, StartSweeps) and self._sweeps is not None:
            self._sweeps.start()
        else:
            raise TypeError(f"PollerComponent got an unexpected message: "
                            f"{type(message).__name__}")
        return None

    def _poll(self) -> None:
        budget = self._pipeline.budget
        if not budget.throttled or budget.allow():
            try:
                if self._poller.poll():
                    self._pipeline.wake.set()
            except NeedsReauthError as exc:
                self._context.publish(needs_reauth=True, reason=str(exc).splitlines()[0])
                return
            except IlydError as exc:
                log.warning("poll_failed", error=str(exc))
                self._poll_error = str(exc).splitlines()[0][:600]
                self._context.publish(poll_error=self._poll_error)
            else:
                if self._poll_error is not None:  # published once, cleared once
                    self._poll_error = None
                    self._context.publish(poll_error=None)
        self._schedule(self._context.config.poll_interval)

    def _schedule(self, delay: float) -> None:
        ref = self.ref

        def tell() -> None:
            with contextlib.suppress(pykka.ActorDeadError):  # the org stopped meanwhile
                ref.tell(_Poll())

        self._timer = TIMERS.call_later(delay, tell)
