"""The scheduled refresh's rounds, hosted by the org's resync part.

`RefreshRunner` belongs to `ilyd.actors.resync.ResyncComponent` (no thread of its own
while idle: its wake-ups are `RefreshTick` messages from the shared timers thread). A
round runs in a thread of its own while it lasts: count the backlog (one COUNT() per
object) and, when there is one, run the refresh (`ilyd.resync.refresh`) to its end; or
resume the run a restart or a resync interrupted. While a refresh runs, a `RefreshLook`
message every `yield_look` seconds (told from the timers thread) publishes its progress
and has it give way to an operator's resync.

Schedule: the first round comes `refresh_interval` after the org starts, 5 minutes at
most (API calls at an org's start are kept few; orgs are spread over the second half of
that delay), or later when the state database holds a later time; then every
`refresh_interval` after a round ends. An operator's resync goes first: a round waits
while one runs, and a running refresh stops within a second of one starting (its run
stays checkpointed and resumes once the resync is over).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pykka
import structlog

from ilyd import metrics
from ilyd.pipeline.providers import chain_for
from ilyd.pipeline.wakeup import TIMERS, Timer
from ilyd.resync.checkpoint import ResyncStore, RunState
from ilyd.resync.engine import Resync, ResyncSettings
from ilyd.resync.refresh import (
    RefreshSchedule,
    ShareGate,
    begin_refresh,
    count_backlog,
    cutoff_for,
    refresh_objects,
    stale_run,
)
from ilyd.salesforce.connect import make_org_rest_client
from ilyd.store.inbox import Inbox
from ilyd.store.record_hashes import RecordHashStore

if TYPE_CHECKING:
    from ilyd.actors.component import ComponentRef
    from ilyd.actors.context import OrgContext

__all__ = ["RefreshLook", "RefreshRunner", "RefreshSettings", "RefreshTick"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RefreshTick:
    """Time for a refresh round (count the backlog, or resume the run)."""


@dataclass(frozen=True)
class RefreshLook:
    """A refresh runs: publish its progress; stop it if an operator's resync started."""


@dataclass(frozen=True)
class RefreshSettings:
    """Tunables; tests shrink the waits."""

    start_delay: float = 300.0  # the first round comes at most this long after the start
    resync_wait: float = 60.0  # seconds between looks while an operator's resync runs
    yield_look: float = 1.0  # seconds between a running refresh's looks for a resync
    engine: ResyncSettings = field(default_factory=ResyncSettings)


def _iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RefreshRunner:
    """One org's refresh schedule and rounds; its methods run in the org actor's thread,
    a round in a thread of its own."""

    def __init__(self, context: OrgContext, actor: ComponentRef,
                 settings: RefreshSettings | None = None) -> None:
        self._context = context
        self._actor = actor
        enrich = context.config.enrich
        self.enabled = (enrich.refresh_after > 0 and context.database is not None
                        and bool(refresh_objects(context.config.objects)))
        base = settings or RefreshSettings()
        self._settings = base
        self._engine_settings = replace(base.engine,
                                        budget_ratio=context.config.api_budget_ratio)
        self._timer: Timer | None = None
        self._thread: threading.Thread | None = None
        self._engine: Resync | None = None
        # The running refresh's progress as last published (`_publish`): the round's
        # thread publishes the last of it, the org's thread the rest.
        self._seen: dict[str, Any] = {}
        self._published = threading.Lock()
        self._stopping = threading.Event()
        self._rest: Any = None
        self._backlog: int | None = None
        if self.enabled:
            assert context.database is not None
            self._runs = ResyncStore(context.database, "refresh")
            self._resyncs = ResyncStore(context.database)
            self._schedule = RefreshSchedule(context.database)

    # --- in the org actor's thread -------------------------------------------------

    def start(self) -> None:
        """Plan the first round (called from the actor's on_start)."""
        if not self.enabled:
            return
        org = self._context.name
        interval = self._context.config.enrich.refresh_interval
        # Spread over the second half of the delay: a daemon of many orgs does not count
        # every org's backlog in the same second.
        delay = min(self._settings.start_delay, interval) * random.uniform(0.5, 1.0)
        first = time.time() + delay
        stored = self._schedule.next_check(org)
        if stored is not None and stored > first and not stale_run(self._runs, org):
            first = stored
        self._schedule.plan(org, first)
        self._backlog = self._schedule.backlog(org)
        if self._backlog is not None:
            metrics.REFRESH_BACKLOG.labels(org=org).set(self._backlog)
        metrics.REFRESH_NEXT.labels(org=org).set(first)
        self._context.publish(refresh_backlog=self._backlog, refresh_next=_iso(first))
        self._wake_at(first)

    def tick(self) -> None:
        """A round is due: start it unless one runs or an operator's resync does."""
        if not self.enabled or self._stopping.is_set() or self._round_running():
            return
        if self._resync_running():
            self._context.publish(refresh="waiting for resync")
            self._wake_at(time.time() + self._settings.resync_wait)
            return
        self._thread = threading.Thread(target=self._round,
                                        name=f"refresh-{self._context.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Daemon or org stop: the run stays checkpointed and resumes at the next start."""
        self._stopping.set()
        if self._timer is not None:
            self._timer.cancel()
        if self._engine is not None:
            self._engine.stop()

    def join(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for a round to end."""
        if self._thread is not None:
            self._thread.join(timeout)

    def running(self) -> bool:
        """Whether a round's thread is running."""
        return self._round_running()

    def look(self) -> None:
        """Handle `RefreshLook`: publish the running refresh's progress, and have it give
        way when an operator's resync started."""
        engine = self._engine
        if engine is None:
            return
        self._publish(engine)
        if self._resync_running():
            log.info("refresh_yielding", reason="an operator's resync started")
            engine.stop()
            return
        self._look_in(engine)

    def _look_in(self, engine: Resync) -> None:
        actor = self._actor

        def tell() -> None:
            if self._engine is engine:  # that refresh still runs
                with contextlib.suppress(pykka.ActorDeadError):  # the org stopped
                    actor.tell(RefreshLook())

        TIMERS.call_later(self._settings.yield_look, tell)

    def _round_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _wake_at(self, moment: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        actor = self._actor

        def tell() -> None:
            with contextlib.suppress(pykka.ActorDeadError):  # the org stopped
                actor.tell(RefreshTick())

        self._timer = TIMERS.call_later(max(0.0, moment - time.time()), tell)

    # --- in the round's thread -----------------------------------------------------

    def _resync_running(self) -> bool:
        run = self._resyncs.run(self._context.name)
        return run is not None and run.state is RunState.RUNNING

    def _round(self) -> None:
        self._context.bind_thread()
        org = self._context.name
        config = self._context.config
        after: float | None = None  # seconds to the next round (None: refresh_interval)
        try:
            self._connect()
            resuming = stale_run(self._runs, org)
            held = None if resuming else self._gate()
            if held is not None:
                # The share is spent: not even the backlog is counted.
                after = held[0]
                self._context.publish(refresh=f"paused ({held[1]})")
                return
            if resuming:
                engine = self._new_engine()
                engine.resume()
                log.info("refresh_resuming", run_id=engine.progress.run_id
                         if engine.progress else None)
            else:
                backlog = count_backlog(self._rest, refresh_objects(config.objects),
                                        cutoff_for(config.enrich.refresh_after),
                                        config.scope)
                self._report_backlog(backlog.total)
                log.info("refresh_backlog_counted", backlog=backlog.total,
                         cutoff=backlog.cutoff)
                if backlog.total == 0 or self._stopping.is_set():
                    self._context.publish(refresh=None)
                    return
                engine = self._new_engine()
                begin_refresh(engine, backlog, self._engine_settings.rest_threshold)
            try:
                self._run(engine)
            finally:
                engine.provider.close()  # releases the org's share of the providers
            run = self._runs.run(org)
            if run is not None and run.state is RunState.RUNNING:  # it gave way
                after = self._settings.resync_wait
        except Exception as exc:
            log.warning("refresh_failed", error=str(exc))
            self._context.publish(refresh=f"failed: {str(exc).splitlines()[0][:200]}")
        finally:
            self._engine = None
            self._disconnect()
            if not self._stopping.is_set():
                self._plan_next(after)

    def _connect(self) -> None:
        """A client of the round's own (its calls are the ones its share counts)."""
        context = self._context
        self._rest = make_org_rest_client(context.config, context.secrets)
        self._gate = ShareGate(context.name, self._rest, self._schedule,
                               context.config.enrich.refresh_api_share)

    def _disconnect(self) -> None:
        """Count the round's last calls and close its client (rounds are hours apart)."""
        if self._rest is not None:
            self._gate.record()
            self._rest.close()
            self._rest = None

    def _new_engine(self) -> Resync:
        context = self._context
        database = context.database
        assert database is not None
        return Resync(
            context.name, self._rest,
            chain_for(context.config.enrich, context.secrets, database),
            store=self._runs, hashes=RecordHashStore(database),
            settings=self._engine_settings, inbox=Inbox(database),
            integration_user_id=self._rest.token.user_id, export_metrics=False,
            enrich=context.config.enrich, scope=context.config.scope, gate=self._gate)

    def _run(self, engine: Resync) -> None:
        """Run the refresh to its end, a daemon stop, or an operator's resync."""
        assert engine.progress is not None
        with self._published:
            self._seen = engine.progress.snapshot()
        self._engine = engine
        if self._stopping.is_set():
            engine.stop()
        self._look_in(engine)
        try:
            engine.run()
        finally:
            self._publish(engine)

    def _publish(self, engine: Resync) -> None:
        """Progress into `ilyd ctl orgs` and the refresh metrics (counted once each)."""
        if engine.progress is None:
            return
        with self._published:
            seen = self._seen
            p = engine.progress.snapshot()
            written = p["written"] - seen["written"]
            changed = p["changed"] - seen["changed"]
            seen.update(written=p["written"], changed=p["changed"])
        org = self._context.name
        if written > 0:
            metrics.REFRESH_RECORDS.labels(org=org).inc(written)
        if changed > 0:
            metrics.REFRESH_CHANGED.labels(org=org).inc(changed)
        total = p["total"] or 0
        left = max(0, total - p["written"] - p["failed"])
        share = f" {min(100, round(100 * p['read'] / total))}%" if total else ""
        finished = p["phase"] in ("done", "cancelled", "failed")
        self._report_backlog(left)
        self._context.publish(
            refresh=None if finished and not p.get("error") else
            (f"{p['phase']}{share}" + (f" ({p['reason']})" if p.get("reason") else "")),
            refresh_written=p["written"], refresh_changed=p["changed"])

    def _report_backlog(self, backlog: int) -> None:
        org = self._context.name
        self._backlog = backlog
        metrics.REFRESH_BACKLOG.labels(org=org).set(backlog)
        self._context.publish(refresh_backlog=backlog)

    def _plan_next(self, after: float | None) -> None:
        """The next round `after` seconds from now (a yield, a spent share), else after
        the interval."""
        org = self._context.name
        delay = self._context.config.enrich.refresh_interval if after is None else after
        moment = time.time() + delay
        self._schedule.plan(org, moment, self._backlog)
        metrics.REFRESH_NEXT.labels(org=org).set(moment)
        self._context.publish(refresh_next=_iso(moment))
        self._wake_at(moment)
