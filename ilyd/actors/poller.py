"""`PollerActor`: the thin shell around `ilyd.pipeline.poller.Poller`.

The org starts it instead of the subscriber when it is fed by polling (configured so,
or decided from the org's facts: Streaming API off, no permission for it or for
PushTopics; `ilyd.provision.feed`). It polls every `poll_interval` seconds, not while
the org is throttled (a poll spends API calls), and runs the org's reconciliation sweep
(`ilyd.actors.sweeps`) in its mailbox.
"""

from __future__ import annotations

import contextlib
import threading
import types
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from ilyd.actors.context import OrgContext
from ilyd.actors.sweeps import Reconcile, StartSweeps, Sweeps
from ilyd.errors import IlydError, NeedsReauthError
from ilyd.metrics import ORG_SOURCE
from ilyd.pipeline.cdc import SOURCES
from ilyd.pipeline.poller import Poller
from ilyd.pipeline.runtime import OrgPipeline

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class _Poll:
    """Internal: poll now."""


class PollerActor(pykka.ThreadingActor):
    """Polls one org for changed records when it has no streaming."""

    # Network I/O in flight (a retried token request, a held poll) must never keep a
    # stopping daemon alive; the durable inbox means nothing is lost by leaving it.
    use_daemon_thread = True

    def __init__(self, context: OrgContext, pipeline: OrgPipeline, *,
                 reason: str | None = None) -> None:
        super().__init__()
        self._context = context
        self._pipeline = pipeline
        self._reason = reason  # why not streaming (None: configured to poll)
        self._poller = Poller(context.name, pipeline.rest, pipeline.inbox, pipeline.state,
                              context.config.objects)
        self._timer: threading.Timer | None = None
        self._poll_error: str | None = None  # as last published
        self._sweeps: Sweeps | None = None

    def on_start(self) -> None:
        """Poll in a message, so the org's start never waits on Salesforce."""
        self._context.bind_thread()
        if self._reason:
            log.warning("cdc_not_used", source="polling", reason=self._reason)
        for name in SOURCES:
            ORG_SOURCE.labels(org=str(self._context.name), source=name).set(
                1 if name == "polling" else 0)
        log.info("polling_for_changes", interval_s=self._context.config.poll_interval)
        self._context.publish(polling=True, source="polling", source_reason=self._reason)
        self.actor_ref.tell(_Poll())
        if Sweeps.wanted(self._context):
            self._sweeps = Sweeps(self._context, self._pipeline, self.actor_ref)
            # In a message: a state-file error there reaches on_failure, which on_start's
            # would not.
            self.actor_ref.tell(StartSweeps())

    def on_stop(self) -> None:
        """Cancel the next poll and sweep."""
        if self._timer is not None:
            self._timer.cancel()
        if self._sweeps is not None:
            self._sweeps.cancel()
        self._pipeline.release()

    def on_failure(self, exception_type: type[BaseException] | None,
                   exception_value: BaseException | None,
                   traceback: types.TracebackType | None) -> None:
        """A poll crashed (a bug): restart the org."""
        self.on_stop()
        self._context.fail(exception_value or "poller crashed")

    def on_receive(self, message: Any) -> Any:
        """Poll and schedule the next poll, or sweep."""
        if isinstance(message, _Poll):
            self._poll()
        elif isinstance(message, Reconcile) and self._sweeps is not None:
            self._sweeps.run()
        elif isinstance(message, StartSweeps) and self._sweeps is not None:
            self._sweeps.start()
        else:
            raise TypeError(f"PollerActor got an unexpected message: {type(message).__name__}")
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
        def tell() -> None:
            with contextlib.suppress(pykka.ActorDeadError):
                self.actor_ref.tell(_Poll())

        self._timer = threading.Timer(delay, tell)
        self._timer.daemon = True
        self._timer.start()
