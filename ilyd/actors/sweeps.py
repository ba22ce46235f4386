"""The org's reconciliation sweep (ilyd/pipeline/reconcile.py) as run by whichever child
feeds the org: the subscriber for a streaming org, the poller for a polling one.

`Sweeps` is plain: the part that owns it handles `StartSweeps` and `Reconcile` in its
messages by calling `start` and `run`, and cancels it when it stops. The timer is on the
shared `TIMERS` thread; every `reconcile_interval` seconds (0: never) it tells the part.
The first sweep after a start comes at a random moment in the second half of the
interval (`first_sweep_in`): a thousand orgs started together would otherwise sweep
together, every interval, for as long as the daemon runs.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime

import pykka
import structlog

from ilyd.actors.component import ComponentRef
from ilyd.actors.context import OrgContext
from ilyd.errors import IlydError, NeedsReauthError
from ilyd.pipeline.reconcile import Reconciler
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.pipeline.wakeup import TIMERS, Timer
from ilyd.store.watermarks import WatermarkStore

__all__ = ["Reconcile", "StartSweeps", "Sweeps", "first_sweep_in"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class StartSweeps:
    """Set the first watermarks, show the last sweep, schedule the next."""


@dataclass(frozen=True)
class Reconcile:
    """Run the reconciliation sweep now."""


def first_sweep_in(interval: float, rand: float) -> float:
    """Seconds from an org's start to its first sweep, `rand` in [0, 1): in the second half
    of the interval, so orgs started together spread over it, and none sweeps later than
    one interval after its start."""
    return interval * (1.0 - rand / 2)


class Sweeps:
    """One org's sweep schedule, owned by one part (`ref`)."""

    def __init__(self, context: OrgContext, pipeline: OrgPipeline, ref: ComponentRef) -> None:
        self._context = context
        self._pipeline = pipeline
        self._ref = ref
        self._timer: Timer | None = None
        self._reconciler = Reconciler(
            context.name, pipeline.rest, inbox=pipeline.inbox, state=pipeline.state,
            hashes=pipeline.hashes, watermarks=WatermarkStore(pipeline.database),
            objects=context.config.objects, interval=context.config.reconcile_interval)

    @staticmethod
    def wanted(context: OrgContext) -> bool:
        """Whether the org sweeps at all."""
        return context.config.reconcile_interval > 0

    def start(self) -> None:
        """Handle `StartSweeps`."""
        self._reconciler.start()
        last = self._reconciler.last()
        if last is not None:
            self._publish(last[0], last[1])
        self._schedule(first_sweep_in(self._reconciler.interval, random.random()))

    def run(self) -> None:
        """Handle `Reconcile`: sweep unless throttled, then schedule the next."""
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
                self._publish(report.swept_at.timestamp(), report.total)
        self._schedule(self._reconciler.interval)

    def cancel(self) -> None:
        """The owner stops: no more sweeps."""
        if self._timer is not None:
            self._timer.cancel()

    def _publish(self, swept_at: float, found: int) -> None:
        when = datetime.fromtimestamp(swept_at, UTC).isoformat(timespec="seconds")
        self._context.publish(reconciled_at=when.replace("+00:00", "Z"), reconciled=found)

    def _schedule(self, delay: float) -> None:
        ref = self._ref

        def tell() -> None:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(Reconcile())

        self._timer = TIMERS.call_later(delay, tell)
