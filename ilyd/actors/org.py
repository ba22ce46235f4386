"""One org: the `Org` runtime (plain class) and `OrgActor`, the thin pykka shell around it.

The org reads its secrets when it starts, then starts its children in the order
`child_factories` gives; it stops them together under one deadline (`Org.stop`).
Children report up through the `OrgContext` (`ilyd.actors.context`) they are given:
`publish(...)` for status detail (mode, connection, throttled, needs_reauth…), `fail(...)`
to have the supervisor restart the whole org.

Adding a child (Provisioner, Subscriber/Poller, Enricher pool, Writer, Resync) is one
entry in `child_factories`: a name and a function `OrgContext -> pykka.ActorRef`.
"""

from __future__ import annotations

import time
import types
from collections.abc import Sequence
from typing import Any

import pykka
import structlog

from ilyd.actors.context import (
    ChildFactory,
    OrgContext,
    OrgSecrets,
    describe_error,
    tell_supervisor,
)
from ilyd.actors.messages import OrgFailed, OrgStarted, OrgStopped
from ilyd.actors.pipeline import pipeline_children
from ilyd.actors.provisioner import ProvisionerActor
from ilyd.actors.resync import ResyncActor
from ilyd.config import OrgConfig, OrgName
from ilyd.errors import ConfigError, ScopeRefusedError, StoreError
from ilyd.pipeline.providers import sample_refusal
from ilyd.pipeline.scope import validate_scope
from ilyd.salesforce.connect import make_org_rest_client
from ilyd.store import Database

log = structlog.get_logger(__name__)

# An org's children are asked to stop together and given this long in all. A child still
# busy then (a call to a slow Salesforce in flight) is left behind: its thread is a daemon
# thread, and every inbox row it had not confirmed is still in the inbox.
ORG_STOP_TIMEOUT = 4.0
# Asked after the others have stopped: the writer takes what the enricher still hands it,
# then gives what it queues back to the inbox. It gets at least this long.
_STOPPED_LAST = frozenset({"writer"})
_LAST_GRACE = 0.5


def child_factories(config: OrgConfig) -> Sequence[tuple[str, ChildFactory]]:
    """The org's children in start order (asked to stop in reverse order, together).

    Later capabilities add theirs here, e.g. ``("provisioner", Provisioner.start_for)``,
    then the subscriber or poller, the enricher pool, the writer.
    """
    return (("provisioner", ProvisionerActor.start_for), *pipeline_children(config),
            ("resync", ResyncActor.start_for))


class Org:
    """The org runtime: reads secrets, starts and stops the children in order."""

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
        self.children: list[tuple[str, pykka.ActorRef[Any]]] = []
        self.context: OrgContext | None = None

    def start(self) -> None:
        """Read the secrets and start every child; raises on the first failure."""
        # Refused before any child runs: not even provisioning touches such an org.
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
        )
        for name, factory in self._factories:
            log.debug("org_child_starting", child=name)
            self.children.append((name, factory(self.context)))

    def stop(self, timeout: float = ORG_STOP_TIMEOUT) -> list[str]:
        """Stop the children that were started, under one deadline; the names of those
        still running when it passed (left behind, asked to stop when they are free).

        Every child is asked at once, last started first — but the writer only once the
        others have stopped, so it writes or gives back what they hand it."""
        deadline = time.monotonic() + timeout
        if self.context is not None:
            self.context.stopping.set()  # a child waiting to retry a call gives up now
        children, self.children = self.children[::-1], []
        late = _stop_together([c for c in children if c[0] not in _STOPPED_LAST], deadline)
        last = [c for c in children if c[0] in _STOPPED_LAST]
        return late + _stop_together(
            last, max(deadline, time.monotonic() + _LAST_GRACE))


def _validate_scope(config: OrgConfig, secrets: OrgSecrets) -> None:
    """Salesforce checks the `[org.scope]` conditions before any child runs (a refused
    one raises ScopeRefusedError: the org's config is wrong, not the org)."""
    rest = make_org_rest_client(config, secrets)
    try:
        validate_scope(rest, config.name, config.scope)
    finally:
        rest.close()


class OrgActor(pykka.ThreadingActor):
    """The thin actor around `Org`: runs its start/stop in the actor's thread and reports up.

    pykka skips `on_failure` when `on_start` raises, so `on_start` catches everything
    itself and tells the supervisor.
    """

    # The process exits at the daemon's stop deadline without waiting for an org still
    # starting or stopping (its children's threads are daemon threads too).
    use_daemon_thread = True

    def __init__(
        self,
        config: OrgConfig,
        incarnation: int,
        supervisor: pykka.ActorRef[Any],
        database: Database | None = None,
    ) -> None:
        super().__init__()
        self._org = Org(config, incarnation, supervisor, database)
        self._supervisor = supervisor

    @property
    def _name(self) -> OrgName:
        return self._org.config.name

    def on_start(self) -> None:
        """Start the org; report started or failed to the supervisor."""
        structlog.contextvars.bind_contextvars(org=self._name)
        try:
            self._org.start()
        except Exception as exc:
            log.warning("org_start_failed", error=describe_error(exc))
            tell_supervisor(self._supervisor,
                            OrgFailed(self._name, self._org.incarnation, describe_error(exc),
                                      disk=isinstance(exc, StoreError),
                                      config=isinstance(exc, ScopeRefusedError)))
            # Stopping runs on_stop, which stops the children that did start.
            self.actor_ref.stop(block=False)
            return
        tell_supervisor(self._supervisor, OrgStarted(self._name, self._org.incarnation))

    def on_stop(self) -> None:
        """Stop the children; confirm to the supervisor."""
        self._report_late(self._org.stop())
        tell_supervisor(self._supervisor, OrgStopped(self._name, self._org.incarnation))

    def _report_late(self, late: list[str]) -> None:
        """Say once which children outlived the org's stop deadline. At daemon stop (the
        supervisor already stopping) the daemon says it once for every org instead."""
        if late and self._supervisor.is_alive():
            log.warning("org_children_not_stopped", count=len(late), children=late,
                        deadline_s=ORG_STOP_TIMEOUT)

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        """A message handler crashed: stop the children and report the failure."""
        self._report_late(self._org.stop())
        error = describe_error(exception_value) if exception_value else "org actor crashed"
        tell_supervisor(self._supervisor, OrgFailed(self._name, self._org.incarnation, error))

    def on_receive(self, message: Any) -> Any:
        """No messages yet; children and later capabilities add theirs."""
        raise TypeError(f"OrgActor got an unexpected message: {type(message).__name__}")


def _stop_together(children: Sequence[tuple[str, pykka.ActorRef[Any]]],
                   deadline: float) -> list[str]:
    """Ask every child to stop, then wait for them until `deadline`; the late ones' names."""
    asked = []
    for name, ref in children:
        try:
            asked.append((name, ref.stop(block=False)))
        except pykka.ActorDeadError:
            continue
    late = []
    for name, stopped in asked:
        try:
            stopped.get(timeout=max(0.0, deadline - time.monotonic()))
        except pykka.Timeout:
            late.append(name)
    return late


def start_org_actor(
    config: OrgConfig,
    incarnation: int,
    supervisor: pykka.ActorRef[Any],
    database: Database | None,
) -> pykka.ActorRef[Any]:
    """Start an OrgActor (the supervisor's default way to start an org)."""
    return OrgActor.start(config, incarnation, supervisor, database)
