"""`PollerActor`: the thin shell around `ilyd.pipeline.poller.Poller`.

At start it reads the org's facts and polls only when the org cannot stream (Streaming
API off, or no permission for it or for PushTopics); otherwise it stays idle and the
Subscriber feeds the inbox. Polls run every `poll_interval` seconds, not while the org
is throttled (a poll spends API calls).

Whether it polls or not, it runs the org's reconciliation sweep
(ilyd/pipeline/reconcile.py) every `reconcile_interval` seconds (0: never), in its
mailbox: a sweep is a poll of another kind, and this actor's thread is otherwise idle
for a streaming org. Its timer is on the shared `TIMERS` thread.
"""

from __future__ import annotations

import contextlib
import threading
import types
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pykka
import structlog

from ilyd.actors.context import OrgContext
from ilyd.errors import IlydError, NeedsReauthError
from ilyd.pipeline.poller import Poller
from ilyd.pipeline.reconcile import Reconciler
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.pipeline.wakeup import TIMERS, Timer
from ilyd.provision.checks import streaming_available
from ilyd.provision.facts import gather
from ilyd.store.watermarks import WatermarkStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class _Decide:
    """Internal: find out whether this org needs polling."""


@dataclass(frozen=True)
class _Poll:
    """Internal: poll now."""


@dataclass(frozen=True)
class _Reconcile:
    """Internal: run the reconciliation sweep now."""


@dataclass(frozen=True)
class _StartSweeps:
    """Internal: set the first watermarks, show the last sweep, schedule the next."""


class PollerActor(pykka.ThreadingActor):
    """Polls one org for changed records when it has no streaming."""

    # Network I/O in flight (a retried token request, a held poll) must never keep a
    # stopping daemon alive; the durable inbox means nothing is lost by leaving it.
    use_daemon_thread = True

    def __init__(self, context: OrgContext, pipeline: OrgPipeline, *,
                 force: bool | None = None) -> None:
        super().__init__()
        self._context = context
        self._pipeline = pipeline
        self._force = force
        self._poller = Poller(context.name, pipeline.rest, pipeline.inbox, pipeline.state,
                              context.config.objects)
        self._timer: threading.Timer | None = None
        self._poll_error: str | None = None  # as last published
        self.polling = False
        interval = context.config.reconcile_interval
        self._reconciler = Reconciler(
            context.name, pipeline.rest, inbox=pipeline.inbox, state=pipeline.state,
            hashes=pipeline.hashes, watermarks=WatermarkStore(pipeline.database),
            objects=context.config.objects, interval=interval) if interval > 0 else None
        self._sweep_timer: Timer | None = None

    def on_start(self) -> None:
        """Decide in a message, so the org's start never waits on Salesforce."""
        self._context.bind_log_context()
        self.actor_ref.tell(_Decide())
        if self._reconciler is not None:
            # In a message: a state-file error there reaches on_failure, which on_start's
            # would not.
            self.actor_ref.tell(_StartSweeps())

    def on_stop(self) -> None:
        """Cancel the next poll and sweep."""
        if self._timer is not None:
            self._timer.cancel()
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
        self._pipeline.release()

    def on_failure(self, exception_type: type[BaseException] | None,
                   exception_value: BaseException | None,
                   traceback: types.TracebackType | None) -> None:
        """A poll crashed (a bug): restart the org."""
        self.on_stop()
        self._context.fail(exception_value or "poller crashed")

    def on_receive(self, message: Any) -> Any:
        """Decide, or poll and schedule the next poll."""
        if isinstance(message, _Decide):
            self._decide()
        elif isinstance(message, _Poll):
            self._poll()
        elif isinstance(message, _Reconcile):
            self._sweep()
        elif isinstance(message, _StartSweeps):
            self._start_sweeps()
        else:
            raise TypeError(f"PollerActor got an unexpected message: {type(message).__name__}")
        return None

    def _decide(self) -> None:
        objects = self._context.config.objects
        if self._force is not None:
            self.polling = self._force
        else:
            try:
                facts = gather(self._pipeline.rest, objects)
            except NeedsReauthError as exc:
                self._context.publish(needs_reauth=True, reason=str(exc).splitlines()[0])
                return
            except IlydError as exc:
                log.warning("poller_cannot_read_org", error=str(exc))
                self._schedule(self._context.config.poll_interval, _Decide())
                return
            self.polling = (self._context.config.source == "polling"
                            or not streaming_available(facts, objects))
        if self.polling:
            log.info("polling_for_changes", interval_s=self._context.config.poll_interval)
            self._context.publish(polling=True)
            self.actor_ref.tell(_Poll())

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
        self._schedule(self._context.config.poll_interval, _Poll())

    def _start_sweeps(self) -> None:
        assert self._reconciler is not None
        self._reconciler.start()
        last = self._reconciler.last()
        if last is not None:
            self._publish_sweep(last[0], last[1])
        self._schedule_sweep()

    def _sweep(self) -> None:
        assert self._reconciler is not None
        budget = self._pipeline.budget
        if not budget.throttled or budget.allow():
            try:
                report = self._reconciler.sweep()
            except NeedsReauthError as exc:
                self._context.publish(needs_reauth=True, reason=str(exc).splitlines()[0])
            except IlydError as exc:
                # The watermark stays: the next sweep covers this window too.
                log.warning("reconcile_failed", error=str(exc))
            else:
                if report.total:
                    self._pipeline.wake.stored(report.total)
                self._publish_sweep(report.swept_at.timestamp(), report.total)
        self._schedule_sweep()

    def _publish_sweep(self, swept_at: float, found: int) -> None:
        when = datetime.fromtimestamp(swept_at, UTC).isoformat(timespec="seconds")
        self._context.publish(reconciled_at=when.replace("+00:00", "Z"), reconciled=found)

    def _schedule_sweep(self) -> None:
        assert self._reconciler is not None
        ref = self.actor_ref

        def tell() -> None:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(_Reconcile())

        self._sweep_timer = TIMERS.call_later(self._reconciler.interval, tell)

    def _schedule(self, delay: float, message: Any) -> None:
        def tell() -> None:
            with contextlib.suppress(pykka.ActorDeadError):
                self.actor_ref.tell(message)

        self._timer = threading.Timer(delay, tell)
        self._timer.daemon = True
        self._timer.start()
