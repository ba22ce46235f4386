"""`ProvisionerComponent`: the org's part around `ilyd.provision.service.Provisioner`.

At org start it provisions (with `auto_provision`, else it only looks) in a message to
itself, so the org's start never waits on Salesforce, then publishes the org's mode and
field count through `OrgContext.publish`. A warm start (the checks of an earlier start
stored, about the same org, with nothing left to provision) publishes from the stored
facts at once and runs the checks again at a random moment within `recheck_within`
seconds; a re-check that changes how the org is fed (streaming or polling) restarts the
org, which then starts the other child. A provisioning failure is published as detail,
never raised: the org keeps running in whatever mode the facts allow. A transient failure
(Salesforce unreachable, 5xx, allowance spent) is tried again after an exponential,
jittered, capped delay, published as `provision_retry_at` (UTC) and `provision_attempts`;
any other failure (refused grant, missing permission) waits for `ilyd ctl provision` or an
org restart, since retrying cannot fix it. The control verbs
(`check`, `provision`, `grant`) reach the running org's provisioner through
`provisioner_for(org)` and ask with a timeout.

Its runs take the org's thread while they last (a cold start's run is some two dozen
calls): the feed needs nothing from them, since it decides from the facts an earlier start
stored, or reads them itself, and records wait in the durable inbox meanwhile. Its retry
and re-check are calls on the shared `TIMERS` thread that tell it to run.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pykka
import structlog

from ilyd.actors.component import Component, ComponentRef
from ilyd.actors.context import OrgContext
from ilyd.actors.messages import DetailValue
from ilyd.errors import AuthError, IlydError, NeedsReauthError, is_retryable
from ilyd.pipeline.wakeup import TIMERS, Timer
from ilyd.provision.checks import decide_mode
from ilyd.provision.facts import OrgFacts
from ilyd.provision.feed import decide_feed, recheck_delay, remember, stored_facts
from ilyd.provision.gate import RunGate, TurnState
from ilyd.provision.identity import OrgIdentityStore
from ilyd.provision.plan import make_plan
from ilyd.provision.retry import StartupRetry
from ilyd.provision.service import Provisioner, ProvisionReport, set_mode_metric
from ilyd.provision.source import source_check
from ilyd.resync.checkpoint import ResyncStore
from ilyd.salesforce.connect import make_org_rest_client
from ilyd.salesforce.http import RetryPolicy
from ilyd.store.org_facts import OrgFactsStore
from ilyd.store.writes import WriteStateStore

log = structlog.get_logger(__name__)

# A daemon retries its own way (restart with backoff); keep one provisioning call short.
_RETRY = RetryPolicy(attempts=2, base_delay=0.5, max_delay=2.0)
# Delays between startup provisioning runs after transient failures (seconds).
STARTUP_RETRY_INITIAL = 5.0
STARTUP_RETRY_MAX = 240.0

# Start-up runs (the checks, and provisioning) at once in this process
# (ilyd.provision.gate); an operator's `ilyd ctl provision` does not wait. A run waits for
# its turn on its org's thread, as it then runs: the org's stream subscribes once the run
# created the PushTopics. The wait looks at the org's stop this often (seconds).
PROVISION_RUNS_AT_ONCE = 32
_TURN_POLL = 1.0
_GATE = RunGate(PROVISION_RUNS_AT_ONCE)

_registry_lock = threading.Lock()
_registry: dict[str, ComponentRef] = {}


def provisioner_for(org: str) -> ComponentRef | None:
    """The running provisioner of `org`, or None when the org is not running."""
    with _registry_lock:
        ref = _registry.get(org)
    return ref if ref is not None and ref.is_alive() else None


@dataclass(frozen=True)
class _Startup:
    """Internal: the first run after the org started."""


@dataclass(frozen=True)
class _Recheck:
    """Internal: a warm start's checks, run again in the background."""


@dataclass(frozen=True)
class _Retry:
    """Internal: the scheduled retry after a transient failure; stale when `generation`
    no longer matches (an operator ran `ilyd ctl provision` meanwhile)."""

    generation: int


@dataclass(frozen=True)
class RunCheck:
    """Ask: the preflight as `CheckReport.as_dict()`."""


@dataclass(frozen=True)
class RunProvision:
    """Ask: provision now (`dry_run`: only the plan) → `ProvisionReport.as_dict()`."""

    dry_run: bool = False


@dataclass(frozen=True)
class RunGrant:
    """Ask: grant Read (or Read/Edit) on the Ily fields to profiles → `GrantReport`."""

    profiles: tuple[str, ...]
    edit: bool = False


@dataclass(frozen=True)
class RunLayout:
    """Ask: add the granted Ily fields to page layouts (`dry_run`: only the plan) →
    `LayoutReport.as_dict()`."""

    dry_run: bool = False
    objects: tuple[str, ...] = ()
    layouts: tuple[str, ...] = ()


class ProvisionerComponent(Component):
    """Checks and provisions one org; publishes mode, fields and needs_reauth."""

    def __init__(self, context: OrgContext) -> None:
        self._context = context
        self._provisioner: Provisioner | None = None
        self._retry = StartupRetry(initial=STARTUP_RETRY_INITIAL, maximum=STARTUP_RETRY_MAX)
        self._generation = 0
        self._timer: Timer | None = None
        self._recheck: Timer | None = None
        self._facts: OrgFactsStore | None = None

    def on_start(self) -> None:
        """Build the client (no network yet), register, and queue the first run.

        A client that cannot be built (a bad key) fails the org's start."""
        config = self._context.config
        rest = make_org_rest_client(config, self._context.secrets, retry=_RETRY)
        database = self._context.database
        self._facts = OrgFactsStore(database) if database is not None else None
        self._provisioner = Provisioner(
            config.name, rest, objects=config.objects, api_version=config.api_version,
            api_budget_ratio=config.api_budget_ratio, poll_interval=config.poll_interval,
            identities=OrgIdentityStore(database) if database is not None else None,
            # `ilyd ctl check` lists the fields the writer found unwritable, as `ilyd check` does.
            writes=WriteStateStore(database) if database is not None else None,
            auto_provision=config.auto_provision, source=source_check(config),
            auto_layout=config.auto_layout,
            resyncs=ResyncStore(database) if database is not None else None,
            streaming_source=config.source, on_facts=self._remember)
        with _registry_lock:
            _registry[config.name] = self.ref
        self.ref.tell(_Startup())

    def on_stop(self) -> None:
        """Unregister, drop a pending retry and close the client."""
        self._cancel_retry()
        if self._recheck is not None:
            self._recheck.cancel()
        with _registry_lock:
            if _registry.get(self._context.name) is self.ref:
                del _registry[self._context.name]
        if self._provisioner is not None:
            self._provisioner.rest.close()

    def on_receive(self, message: Any) -> Any:
        """Dispatch by message type."""
        assert self._provisioner is not None
        if isinstance(message, _Startup):
            if not self._warm_start():
                self._gated_startup()
            return None
        if isinstance(message, _Recheck):
            self._recheck = None
            self._gated_startup()
            return None
        if isinstance(message, _Retry):
            if message.generation == self._generation:
                self._timer = None
                self._gated_startup()
            return None
        if isinstance(message, RunCheck):
            return self._provisioner.check().as_dict()
        if isinstance(message, RunProvision):
            if message.dry_run:
                return self._provisioner.provision(dry_run=True).as_dict()
            # An operator's run replaces any scheduled retry and starts the backoff over.
            self._cancel_retry()
            self._retry.reset()
            try:
                report = self._provisioner.provision()
            except IlydError as exc:
                self._failed(exc)
                raise
            self._publish(report)
            return report.as_dict()
        if isinstance(message, RunGrant):
            return self._provisioner.grant(message.profiles, edit=message.edit).as_dict()
        if isinstance(message, RunLayout):
            return self._provisioner.layouts(dry_run=message.dry_run, objects=message.objects,
                                             layouts=message.layouts).as_dict()
        raise TypeError(f"ProvisionerComponent got an unexpected message: "
                        f"{type(message).__name__}")

    def _gated_startup(self) -> None:
        """The start-up run once the gate admits it; none when the org stops first."""
        admitted = threading.Event()

        turn = _GATE.enter(admitted.set)
        try:
            while turn.state is not TurnState.RUNNING and not admitted.wait(_TURN_POLL):
                if self._context.stopping.is_set():
                    return
            self._startup()
        finally:
            _GATE.done(turn)

    def _startup(self) -> None:
        """The start-up run (provision, or only look), then whether the org is still fed
        as it was decided."""
        assert self._provisioner is not None
        dry_run = not self._context.config.auto_provision
        try:
            report = self._provisioner.provision(dry_run=dry_run)
        except IlydError as exc:
            # The org keeps running; `ilyd ctl check` says what is wrong.
            self._failed(exc)
            return
        self._publish(report)
        if self._facts is not None:
            self._facts.mark_checked(self._context.name)
            self._check_feed()

    def _remember(self, facts: OrgFacts) -> None:
        if self._facts is not None:
            remember(self._facts, self._context.name, facts)

    def _warm_start(self) -> bool:
        """Publish from the stored facts and schedule the re-check, when they may be
        trusted: about the org the token signs in to, no sandbox refresh awaiting
        `ilyd connect`, and nothing the start-up run would create or correct."""
        assert self._provisioner is not None
        config = self._context.config
        if self._facts is None:
            return False
        try:
            org_id = self._provisioner.rest.token.org_id
        except IlydError:
            return False  # the start-up run reports it
        facts = stored_facts(self._facts, config.name, org_id, checked=True)
        if facts is None:
            return False
        identities = self._provisioner.identities
        if identities is not None and not identities.compare(config.name,
                                                             facts.org_id).acknowledged:
            return False
        plan = make_plan(facts, config.objects, config.api_version, config.name,
                         config.source)
        if config.auto_provision and not plan.empty:
            return False
        mode = decide_mode(facts, config.objects)
        set_mode_metric(config.name, mode)
        delay = recheck_delay(config.recheck_within)
        log.info("org_started_from_stored_facts", mode=str(mode), recheck_in_s=round(delay, 1))
        self._tell_up(
            mode=str(mode),
            fields=f"{sum(f.writable for f in facts.fields.values())}/{len(facts.fields)}",
            not_provisioned=(f"not provisioned: run ilyd ctl provision {config.name}"
                             if not plan.empty else None))
        ref = self.ref

        def fire() -> None:
            with contextlib.suppress(pykka.ActorDeadError):  # the org stopped meanwhile
                ref.tell(_Recheck())

        self._recheck = TIMERS.call_later(delay, fire)
        return True

    def _check_feed(self) -> None:
        """Restart the org when the facts just read feed it otherwise than decided."""
        config = self._context.config
        if self._facts is None or config.source == "polling":  # the config decides
            return
        row = self._facts.get(config.name)
        facts = stored_facts(self._facts, config.name, self._provisioner_org_id())
        if row is None or facts is None:
            return
        feed = decide_feed(facts, config.objects, config.source)
        if row.feed is None or row.feed == feed:
            return
        self._facts.set_feed(config.name, feed)
        log.warning("org_feed_changed", was=row.feed, now=feed)
        with contextlib.suppress(pykka.ActorDeadError):
            self._context.fail(f"the org is now fed by {feed} (was {row.feed}): restarting")

    def _provisioner_org_id(self) -> str | None:
        assert self._provisioner is not None
        try:
            return self._provisioner.rest.token.org_id
        except IlydError:
            return None

    def _failed(self, exc: IlydError) -> None:
        """Publish a failed run; schedule the next try when the cause is transient."""
        error = str(exc).splitlines()[0]
        if isinstance(exc, NeedsReauthError):
            self._tell_up(needs_reauth=True, provision_error=str(exc),
                          provision_retry_at=None, provision_attempts=None)
            return
        if not is_retryable(exc):
            # Refused credentials are fixed in the config or its secret files, which a
            # reload re-reads (restarting the org); anything else is retried by hand.
            then = ("fix the client id or secret, then ilyd ctl reload"
                    if isinstance(exc, AuthError) else
                    f"fix it, then ilyd ctl provision {self._context.name}")
            log.warning("provisioning_failed", error=error, retried=False, hint=then)
            self._tell_up(provision_error=f"{error} (not retried: {then})",
                          provision_retry_at=None, provision_attempts=None)
            return
        delay = self._retry.next_delay()
        at = datetime.fromtimestamp(time.time() + delay, UTC)
        log.warning("provisioning_retrying", error=error,
                    attempt=self._retry.attempts, retry_in_s=round(delay, 1))
        self._schedule_retry(delay)
        self._tell_up(provision_error=error,
                      provision_retry_at=at.isoformat(timespec="seconds").replace("+00:00", "Z"),
                      provision_attempts=self._retry.attempts)

    def _schedule_retry(self, delay: float) -> None:
        self._cancel_retry()
        generation = self._generation
        ref = self.ref

        def fire() -> None:
            with contextlib.suppress(pykka.ActorDeadError):  # the org stopped meanwhile
                ref.tell(_Retry(generation))

        self._timer = TIMERS.call_later(delay, fire)

    def _cancel_retry(self) -> None:
        # A new generation makes a _Retry already queued (timer fired) a no-op.
        self._generation += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _publish(self, report: ProvisionReport) -> None:
        detail: dict[str, DetailValue] = {
            "mode": str(report.mode),
            "fields": f"{report.fields_writable}/{report.fields_wanted}",
            "provision_error": (f"{len(report.failed)} action(s) failed; see ilyd ctl check"
                                f" {self._context.name}" if report.failed else None),
            "provision_retry_at": None,
            "provision_attempts": None,
            # auto_provision = false and something to create: the PushTopics the stream
            # would subscribe to may not exist yet, so say what to run (ilyd.actors.health
            # shows the org degraded with this as its last error until it is done).
            "not_provisioned": (f"not provisioned: run ilyd ctl provision {self._context.name}"
                                if not report.applied and report.plan.actions else None),
        }
        self._retry.reset()
        if report.sandbox_refreshed and report.refresh is not None:
            name = self._context.name
            detail["needs_reauth"] = True
            detail["reason"] = (
                f"sandbox refreshed (org id {report.refresh.stored_org_id} ->"
                f" {report.refresh.current_org_id}); replay ids dropped; run ilyd connect"
                f" {name} --sandbox, then ilyd ctl restart {name}")
        self._tell_up(**detail)

    def _tell_up(self, **detail: DetailValue) -> None:
        # A supervisor that stopped meanwhile (daemon shutdown) no longer needs the news.
        with contextlib.suppress(pykka.ActorDeadError):
            self._context.publish(**detail)
