"""The org's resync part: owns one org's `Resync` engine and the thread a run takes.

One resync per org at a time (a second request answers `busy`); the real-time
parts keep running beside it. The control thread finds an org's part through
`resync_actor(org)` and asks it with frozen messages and a timeout. A run has a thread
of its own while it lasts; its progress is published every second by a call on the
shared `TIMERS` thread. A run that was going
when the daemon stopped (or was killed) resumes from its checkpoint when the org starts.
A daemon stop leaves the run resumable; only `ilyd ctl cancel` ends it. The part also
hosts the org's scheduled refresh (`ilyd.actors.refresh`), which gives way to a resync.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import structlog

from ilyd.actors.component import Component, ComponentRef
from ilyd.actors.context import OrgContext
from ilyd.actors.refresh import RefreshLook, RefreshRunner, RefreshSettings, RefreshTick
from ilyd.errors import ControlError
from ilyd.pipeline.providers import chain_for
from ilyd.pipeline.wakeup import TIMERS
from ilyd.resync.checkpoint import ResyncStore
from ilyd.resync.engine import Resync, ResyncRequest, ResyncSettings
from ilyd.resync.plan import SUPPORTED_OBJECTS, parse_since
from ilyd.salesforce.connect import make_org_rest_client
from ilyd.store.inbox import Inbox
from ilyd.store.record_hashes import RecordHashStore

__all__ = ["CancelResync", "GetResync", "ResyncComponent", "StartResync", "resync_actor"]

log = structlog.get_logger(__name__)

_PUBLISH_SECONDS = 1.0
_registry: dict[str, ComponentRef] = {}
_registry_lock = threading.Lock()


@dataclass(frozen=True)
class StartResync:
    """Start a resync of `objects` (records changed since `since`, if given)."""

    objects: tuple[str, ...]
    since: str | None = None
    report: str | None = None  # a dry run: its report file; nothing is written


@dataclass(frozen=True)
class CancelResync:
    """Stop the running resync; it ends as cancelled."""


@dataclass(frozen=True)
class GetResync:
    """The running (or last) resync's progress, or None."""


def resync_actor(org: str) -> ComponentRef | None:
    """The org's live resync part, if the org runs."""
    with _registry_lock:
        ref = _registry.get(org)
    return ref if ref is not None and ref.is_alive() else None


class ResyncComponent(Component):
    """Owns the org's Resync engine; the long work runs in a thread of its own."""

    def __init__(self, context: OrgContext, settings: ResyncSettings | None = None,
                 refresh: RefreshSettings | None = None) -> None:
        self._context = context
        self._refresh_settings = refresh
        self._refresh: RefreshRunner | None = None
        self._settings = settings or ResyncSettings(
            budget_ratio=context.config.api_budget_ratio)
        self._engine: Resync | None = None
        self._thread: threading.Thread | None = None
        self._rest: Any = None

    def on_start(self) -> None:
        """Register for the control thread; resume a run the daemon left unfinished."""
        with _registry_lock:
            _registry[self._context.name] = self.ref
        if self._context.database is None:
            return
        self._refresh = RefreshRunner(self._context, self.ref, self._refresh_settings)
        self._refresh.start()
        store = ResyncStore(self._context.database)
        run = store.run(self._context.name)
        if run is not None and run.state == "running":
            try:
                engine = self._new_engine()
                engine.resume()
                log.info("resync_resuming", run_id=run.run_id)
                self._launch(engine)
            except Exception as exc:
                log.error("resync_resume_failed", error=str(exc))

    def on_stop(self) -> None:
        """Stop the run (it stays resumable), unregister; wait for the run's thread until
        the org's stop deadline."""
        with _registry_lock:
            if _registry.get(self._context.name) is self.ref:
                del _registry[self._context.name]
        if self._engine is not None:
            self._engine.stop()
        if self._refresh is not None:
            self._refresh.stop()
        if self._thread is not None:
            self._thread.join(self.time_left())
        if self._refresh is not None:
            self._refresh.join(self.time_left())
        if self._rest is not None:
            self._rest.close()

    def late(self) -> bool:
        """A run or a refresh round still going past the deadline (it ends at its next
        checkpoint)."""
        return self._running() or (self._refresh is not None and self._refresh.running())

    def on_receive(self, message: Any) -> Any:
        """StartResync, CancelResync, GetResync."""
        if isinstance(message, StartResync):
            return self._start(message)
        if isinstance(message, CancelResync):
            return self._cancel()
        if isinstance(message, GetResync):
            return self._status()
        if isinstance(message, RefreshTick):
            return self._refresh.tick() if self._refresh is not None else None
        if isinstance(message, RefreshLook):
            return self._refresh.look() if self._refresh is not None else None
        raise TypeError(f"ResyncComponent got an unexpected message: {type(message).__name__}")

    # --------------------------------------------------------------------------------

    def _running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _new_engine(self) -> Resync:
        database = self._context.database
        assert database is not None
        if self._rest is None:
            self._rest = make_org_rest_client(self._context.config, self._context.secrets)
        return Resync(
            self._context.name, self._rest,
            chain_for(self._context.config.enrich, self._context.secrets, database),
            store=ResyncStore(database), hashes=RecordHashStore(database),
            settings=self._settings, inbox=Inbox(database),
            integration_user_id=self._rest.token.user_id, enrich=self._context.config.enrich,
            scope=self._context.config.scope)

    def _start(self, message: StartResync) -> dict[str, Any]:
        if self._context.database is None:
            raise ControlError("internal", "this daemon runs without a state database")
        if self._running():
            raise ControlError("busy", f"a resync of {self._context.name} is already running",
                               f"ilyd ctl resync {self._context.name} --wait, or ilyd ctl "
                               f"cancel {self._context.name}")
        objects = message.objects or tuple(
            o for o in self._context.config.objects if o in SUPPORTED_OBJECTS)
        bad = [o for o in objects if o not in SUPPORTED_OBJECTS
               or o not in self._context.config.objects]
        if bad or not objects:
            raise ControlError("invalid_args", f"cannot resync {', '.join(bad) or 'nothing'}: "
                               f"the org enriches {', '.join(self._context.config.objects)}")
        try:
            parse_since(message.since)
        except ValueError as exc:
            raise ControlError("invalid_args", str(exc)) from exc
        engine = self._new_engine()
        engine.begin(ResyncRequest(objects, message.since, message.report))
        self._launch(engine)
        return self._status() or {}

    def _launch(self, engine: Resync) -> None:
        self._engine = engine
        self._thread = threading.Thread(target=self._work, args=(engine,),
                                        name=f"resync-{self._context.name}", daemon=True)
        self._thread.start()

    def _work(self, engine: Resync) -> None:
        self._context.bind_thread()
        done = threading.Event()
        TIMERS.call_later(_PUBLISH_SECONDS, lambda: self._publish_every(engine, done))
        try:
            engine.run()
        finally:
            done.set()
            self._publish(engine)
            engine.provider.close()  # releases the org's share of the providers

    def _publish_every(self, engine: Resync, done: threading.Event) -> None:
        """On the timers thread: publish (a snapshot and a tell), then again in a second,
        until the run is done."""
        if done.is_set():
            return
        self._publish(engine)
        TIMERS.call_later(_PUBLISH_SECONDS, lambda: self._publish_every(engine, done))

    def _publish(self, engine: Resync) -> None:
        if engine.progress is None:
            return
        p = engine.progress.snapshot()
        total = p["total"] or 0
        share = f" {min(100, round(100 * p['read'] / total))}%" if total else ""
        self._context.publish(
            resync=f"{p['phase']}{share}",
            resync_written=p["written"],
            resync_failed=p["failed"] or None,
        )

    def _cancel(self) -> dict[str, Any]:
        if not self._running() or self._engine is None:
            raise ControlError("invalid_args", f"no resync of {self._context.name} is running",
                               f"ilyd ctl resync {self._context.name}")
        self._engine.cancel()
        return self._status() or {}

    def _status(self) -> dict[str, Any] | None:
        if self._engine is not None and self._engine.progress is not None:
            return self._engine.progress.snapshot()
        if self._context.database is None:
            return None
        run = ResyncStore(self._context.database).run(self._context.name)
        if run is None:
            return None
        return {"org": run.org, "run_id": run.run_id, "phase": str(run.state),
                "objects": list(run.objects), **run.counts, "failures": run.failures,
                "error": run.error, "started": run.started_at, "finished": run.finished_at}
