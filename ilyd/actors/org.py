"""One org: the `Org` runtime (plain class) and `OrgActor`, the one actor and thread of an org.

The org reads its secrets when it starts, then starts its parts in the order
`child_factories` gives, each a `Component` (`ilyd.actors.component`) run in the org
actor's thread and driven by messages to that actor: a part's wake-ups and timers (on the
shared `TIMERS` thread) are messages too, so no part needs a lock for its own state. Parts
report up through the `OrgContext` (`ilyd.actors.context`) they are given: `publish(...)`
for status detail (mode, connection, throttled, needs_reauth…), `fail(...)` to have the
supervisor restart the whole org. Only long jobs keep a thread of their own while they
run (a resync or refresh run).

Adding a part is one entry in `child_factories`: a name and a function
`OrgContext -> Component`.

Stopping: `stop_org(ref)` sets the org's stop event at once, from the caller's thread, and
then queues the stop. From then on the org takes no new work (messages still queued are
dropped, asks answered ActorDeadError) and the retry waits of its calls end; a call to a
slow Salesforce already in flight still holds the org's thread until it returns, which the
supervisor does not wait for past the org's stop deadline (`ilyd.actors.supervisor`).
"""

from __future__ import annotations

import queue
import threading
import time
import types
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pykka
import structlog

from ilyd.actors.component import Component, ComponentHost, Routed
from ilyd.actors.context import (
    ChildFactory,
    OrgContext,
    OrgSecrets,
    describe_error,
    tell_supervisor,
)
from ilyd.actors.messages import GetParts, OrgFailed, OrgStarted, OrgStopped
from ilyd.actors.pipeline import pipeline_children
from ilyd.actors.provisioner import ProvisionerComponent
from ilyd.actors.resync import ResyncComponent
from ilyd.config import OrgConfig, OrgName
from ilyd.errors import ConfigError, ScopeRefusedError, StoreError
from ilyd.pipeline.providers import sample_refusal
from ilyd.pipeline.scope import validate_scope
from ilyd.salesforce.connect import make_org_rest_client
from ilyd.store import Database

log = structlog.get_logger(__name__)

# An org's parts are stopped one after another within this long in all. A part that
# started a thread of its own (a resync run, the stream) and finds it still running at the
# deadline leaves it behind: such threads are daemon threads, and every inbox row the org
# had not confirmed is still in the inbox.
ORG_STOP_TIMEOUT = 4.0
# Stopped after the others: the writer takes what the enricher still handed it, then
# gives what it queues back to the inbox.
_STOPPED_LAST = frozenset({"writer"})

# Each live org actor's stop event, by actor urn, for `stop_org` (another thread).
_stop_events: dict[str, threading.Event] = {}
_stop_events_lock = threading.Lock()
# Parts of stopped orgs whose own thread was still running at the org's stop deadline.
_left_behind: list[Component] = []


def child_factories(config: OrgConfig) -> Sequence[tuple[str, ChildFactory]]:
    """The org's parts in start order (stopped in reverse order, the writer last)."""
    return (("provisioner", ProvisionerComponent), *pipeline_children(config),
            ("resync", ResyncComponent))


class Org:
    """The org runtime: reads secrets, starts and stops its parts in order."""

    def __init__(
        self,
        config: OrgConfig,
        incarnation: int,
        supervisor: pykka.ActorRef[Any],
        database: Database | None,
        factories: Sequence[tuple[str, ChildFactory]] | None = None,
    ) -> None:
        self.config = config
        self.incarnation = incarnation
        self._supervisor = supervisor
        self._database = database
        self._factories = child_factories(config) if factories is None else factories
        self.stopping = threading.Event()
        self.parts: ComponentHost | None = None
        self.context: OrgContext | None = None

    def start(self, actor: pykka.ActorRef[Any]) -> None:
        """Read the secrets and start every part in `actor`'s thread (the calling one);
        raises on the first failure."""
        # Refused before any part runs: not even provisioning touches such an org.
        refusal = sample_refusal(self.config)
        if refusal is not None:
            raise ConfigError(refusal)
        secrets = OrgSecrets.read(self.config)
        if self.config.scope:
            _validate_scope(self.config, secrets)
        self.context = OrgContext(
            name=self.config.name,
            config=self.config,
            incarnation=self.incarnation,
            secrets=secrets,
            database=self._database,
            supervisor=self._supervisor,
            stopping=self.stopping,
        )
        self.context.bind_thread()
        self.parts = ComponentHost(actor, self.stopping, keep_taking=_STOPPED_LAST)
        for name, factory in self._factories:
            self.parts.start(name, factory(self.context))

    def deliver(self, message: Routed) -> Any:
        """Hand a message to its part (see `ComponentHost.deliver`)."""
        if self.parts is None:
            if message.asked:
                raise pykka.ActorDeadError(f"{message.component} is not running")
            return None
        return self.parts.deliver(message)

    def stop(self, timeout: float = ORG_STOP_TIMEOUT,
             queued: Callable[[frozenset[str]], list[Routed]] | None = None) -> list[str]:
        """Stop the parts that were started, last started first and the writer last; the
        names of those that left a thread running past the deadline.

        `queued(names)` takes, once the others have stopped, the messages still queued
        for the parts in `names` (the enricher's last results for the writer): they are
        handed over before those parts stop."""
        deadline = time.monotonic() + timeout
        self.stopping.set()  # a call waiting to retry gives up now
        parts, self.parts = self.parts, None
        if parts is None:
            return []

        def hand_queued() -> None:
            # With those a failed message left waiting to be handed over.
            for message in [*parts.take_local(_STOPPED_LAST),
                            *(queued(_STOPPED_LAST) if queued is not None else ())]:
                part = parts.get(message.component)
                if part is not None:
                    part.on_receive(message.message)

        late = parts.stop_all(deadline, _STOPPED_LAST, hand_queued)
        with _stop_events_lock:
            _left_behind.extend(p for p in parts.stopped(late))
        return late


def _validate_scope(config: OrgConfig, secrets: OrgSecrets) -> None:
    """Salesforce checks the `[org.scope]` conditions before any child runs (a refused
    one raises ScopeRefusedError: the org's config is wrong, not the org)."""
    rest = make_org_rest_client(config, secrets)
    try:
        validate_scope(rest, config.name, config.scope)
    finally:
        rest.close()


class OrgActor(pykka.ThreadingActor):
    """The org's one actor: runs `Org` and every part of it in its thread, and reports up.

    pykka skips `on_failure` when `on_start` raises, so `on_start` catches everything
    itself and tells the supervisor.
    """

    # The process exits at the daemon's stop deadline without waiting for an org still
    # starting, stopping, or in a call to a slow Salesforce.
    use_daemon_thread = True

    @staticmethod
    def _create_actor_inbox() -> queue.SimpleQueue[Any]:
        # Every event wakes its org through this mailbox (pykka's ActorInbox: put, get,
        # empty): the C SimpleQueue, not queue.Queue with its three Conditions in Python.
        return queue.SimpleQueue()

    def __init__(
        self,
        config: OrgConfig,
        incarnation: int,
        supervisor: pykka.ActorRef[Any],
        database: Database | None = None,
        factories: Sequence[tuple[str, ChildFactory]] | None = None,
    ) -> None:
        super().__init__()
        self._org = Org(config, incarnation, supervisor, database, factories)
        self._supervisor = supervisor
        with _stop_events_lock:
            _stop_events[self.actor_urn] = self._org.stopping

    @property
    def _name(self) -> OrgName:
        return self._org.config.name

    def on_start(self) -> None:
        """Start the org; report started or failed to the supervisor."""
        structlog.contextvars.bind_contextvars(org=self._name)
        threading.current_thread().name = f"org-{self._name}"
        try:
            self._org.start(self.actor_ref)
        except Exception as exc:
            log.warning("org_start_failed", error=describe_error(exc))
            tell_supervisor(self._supervisor,
                            OrgFailed(self._name, self._org.incarnation, describe_error(exc),
                                      disk=isinstance(exc, StoreError),
                                      config=isinstance(exc, ScopeRefusedError)))
            # Stopping runs on_stop, which stops the parts that did start.
            self.actor_ref.stop(block=False)
            return
        tell_supervisor(self._supervisor, OrgStarted(self._name, self._org.incarnation))

    def on_stop(self) -> None:
        """Stop the parts; confirm to the supervisor."""
        self._report_late(self._org.stop(queued=self._queued))
        tell_supervisor(self._supervisor, OrgStopped(self._name, self._org.incarnation))

    def _report_late(self, late: list[str]) -> None:
        """Say once which parts left a thread running past the org's stop deadline. At
        daemon stop (the supervisor already stopping) the daemon says it once for every
        org instead."""
        with _stop_events_lock:
            _stop_events.pop(self.actor_urn, None)
        if late and self._supervisor.is_alive():
            log.warning("org_children_not_stopped", count=len(late), children=late,
                        deadline_s=ORG_STOP_TIMEOUT)

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        """A part's message handler crashed: stop the parts and report the failure."""
        self._report_late(self._org.stop(queued=self._queued))
        error = describe_error(exception_value) if exception_value else "org actor crashed"
        tell_supervisor(self._supervisor, OrgFailed(self._name, self._org.incarnation, error,
                                                    disk=isinstance(exception_value,
                                                                    StoreError)))

    def on_receive(self, message: Any) -> Any:
        """Route a part's message to it; answer `GetParts`."""
        if isinstance(message, Routed):
            return self._org.deliver(message)
        if isinstance(message, GetParts):
            return self._org.parts.names() if self._org.parts is not None else ()
        raise TypeError(f"OrgActor got an unexpected message: {type(message).__name__}")

    def _queued(self, names: frozenset[str]) -> list[Routed]:
        """Take the messages told to the parts in `names` that still wait in the mailbox;
        leave the rest to pykka, which answers every ask still queued with ActorDeadError."""
        taken, kept = [], []
        while True:
            try:
                envelope = self.actor_inbox.get_nowait()
            except queue.Empty:
                break
            message = envelope.message
            if isinstance(message, Routed) and message.component in names \
                    and not message.asked:
                taken.append(message)
            else:
                kept.append(envelope)
        for envelope in kept:
            self.actor_inbox.put(envelope)
        return taken


def parts_left_behind() -> Counter[str]:
    """The parts of stopped orgs whose own thread still runs (a write waiting on a slow
    Salesforce, a resync run), by kind: the daemon counts them at its stop."""
    with _stop_events_lock:
        _left_behind[:] = [p for p in _left_behind if p.late()]
        return Counter(type(p).__name__ for p in _left_behind)


def stop_org(ref: pykka.ActorRef[Any]) -> pykka.Future[Any]:
    """Ask an org actor to stop: its stop event is set at once (its retry waits end, its
    queued work is dropped), then the stop is queued behind the message it handles."""
    with _stop_events_lock:
        event = _stop_events.get(ref.actor_urn)
    if event is not None:
        event.set()
    return ref.stop(block=False)


def start_org_actor(
    config: OrgConfig,
    incarnation: int,
    supervisor: pykka.ActorRef[Any],
    database: Database | None,
) -> pykka.ActorRef[Any]:
    """Start an OrgActor (the supervisor's default way to start an org)."""
    return OrgActor.start(config, incarnation, supervisor, database)
