"""The Resync actor: a thin shell owning one org's `Resync` engine and the thread it runs in.

One resync per org at a time (a second request answers `busy`); the real-time
children keep running beside it. The control thread finds an org's actor through
`resync_actor(org)` and asks it with frozen messages and a timeout. A run that was going
when the daemon stopped (or was killed) resumes from its checkpoint when the org starts.
A daemon stop leaves the run resumable; only `ilyd ctl cancel` ends it. The actor also
hosts the org's scheduled refresh (`ilyd.actors.refresh`), which gives way to a resync.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from ilyd.actors.context import OrgContext
from ilyd.actors.refresh import RefreshRunner, RefreshSettings, RefreshTick
from ilyd.errors import ControlError
from ilyd.pipeline.providers import chain_for
from ilyd.resync.checkpoint import ResyncStore
from ilyd.resync.engine import Resync, ResyncRequest, ResyncSettings
from ilyd.resync.plan import SUPPORTED_OBJECTS, parse_since
from ilyd.salesforce.connect import make_org_rest_client
from ilyd.store.inbox import Inbox
from ilyd.store.record_hashes import RecordHashStore

__all__ = ["CancelResync", "GetResync", "ResyncActor", "StartResync", "resync_actor"]

log = structlog.get_logger(__name__)

_PUBLISH_SECONDS = 1.0
_STOP_JOIN_SECONDS = 3.0
_registry: dict[str, pykka.ActorRef[Any]] = {}
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


def resync_actor(org: str) -> pykka.ActorRef[Any] | None:
    """The org's live Resync actor, if the org runs."""
    with _registry_lock:
        ref = _registry.get(org)
    return ref if ref is not None and ref.is_alive() else None


class ResyncActor(pykka.ThreadingActor):
    """Owns the org's Resync engine; the long work runs in a thread of its own."""

    # Network I/O in flight (a retried token request, a held poll) must never keep a
    # stopping daemon alive; the durable inbox means nothing is lost by leaving it.
    use_daemon_thread = True

    def __init__(self, context: OrgContext, settings: ResyncSettings | None = None,
                 refresh: RefreshSettings | None = None) -> None:
        super().__init__()
        self._context = context
        self._refresh_settings = refresh
        self._refresh: RefreshRunner | None = None
        self._settings = settings or ResyncSettings(
            budget_ratio=context.config.api_budget_ratio)
        self._engine: Resync | None = None
        self._thread: threading.Thread | None = None
        self._rest: Any = None

    @classmethod
    def start_for(cls, context: OrgContext) -> pykka.ActorRef[Any]:
        """The org child factory (see `ilyd.actors.org.child_factories`)."""
        return cls.start(context)

    def on_start(self) -> None:
        """Register for the control thread; resume a run the daemon left unfinished."""
        self._context.bind_thread()
        with _registry_lock:
            _registry[self._context.name] = self.actor_ref
        if self._context.database is None:
            return
        self._refresh = RefreshRunner(self._context, self.actor_ref, self._refresh_settings)
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
        """Stop the run (it stays resumable), unregister."""
        with _registry_lock:
            if _registry.get(self._context.name) is self.actor_ref:
                del _registry[self._context.name]
        if self._engine is not None:
            self._engine.stop()
        if self._refresh is not None:
            self._refresh.stop()
        if self._thread is not None:
            self._thread.join(_STOP_JOIN_SECONDS)
        if self._refresh is not None:
            self._refresh.join(_STOP_JOIN_SECONDS)
        if self._rest is not None:
            self._rest.close()

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
        raise TypeError(f"ResyncActor got an unexpected message: {type(message).__name__}")

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
        publisher = threading.Thread(target=self._publish_loop, args=(engine, done),
                                     name=f"resync-progress-{self._context.name}", daemon=True)
        publisher.start()
        try:
            engine.run()
        finally:
            done.set()
            publisher.join()
            self._publish(engine)
            engine.provider.close()  # releases the org's share of the providers

    def _publish_loop(self, engine: Resync, done: threading.Event) -> None:
        while not done.wait(_PUBLISH_SECONDS):
            self._publish(engine)

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
