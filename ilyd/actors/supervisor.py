"""The supervisor actor: one OrgActor per enabled org, and the restart policy pykka lacks.

Org actors report up with `tell` (OrgStarted / OrgFailed / OrgStopped / OrgReport); the
control thread asks with frozen messages (GetSnapshot, PauseOrg, …) and a timeout. A
replaced org instance is started again once the old one confirmed it stopped, or once the
old one's stop deadline passed: an org held by a call to a slow Salesforce takes no new
work once asked to stop (`ilyd.actors.org.stop_org`), so only that call may still end
while the new instance runs, as a part left behind did when parts had threads of their
own. Backoff waits are calls on the shared `TIMERS` thread.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from ilyd import metrics
from ilyd.actors import health
from ilyd.actors.messages import (
    ApplyConfig,
    GetCounts,
    GetSnapshot,
    OrgFailed,
    OrgReport,
    OrgStarted,
    OrgState,
    OrgStopped,
    PauseOrg,
    Ping,
    RestartOrg,
    ResumeOrg,
    RetryOrg,
    SupervisorSnapshot,
)
from ilyd.actors.org import ORG_STOP_TIMEOUT, start_org_actor, stop_org
from ilyd.actors.restart import OrgSlot, RestartPolicy, on_failure
from ilyd.config import Config, OrgConfig, OrgName
from ilyd.config.secrets import fingerprint
from ilyd.errors import ControlError
from ilyd.pipeline.lookups import LookupPool, open_pool
from ilyd.pipeline.wakeup import TIMERS, Timer
from ilyd.store import Database
from ilyd.store.org_flags import OrgFlagStore

log = structlog.get_logger(__name__)

# An org actor is up in these states (degraded: up, but not enriching).
_ALIVE = (OrgState.RUNNING, OrgState.DEGRADED)
# Every org's stop together: its own deadline, and a margin for an interpreter busy
# stopping many orgs at once.
ORGS_STOP_TIMEOUT = ORG_STOP_TIMEOUT + 1.5
# An org stopping by itself (its parts within their deadline) confirms before this: only
# an org whose thread is held by a call (a poll, a provisioning run) is overdue then.
_OVERDUE_MARGIN = 1.0
# Orgs launched in one turn of the supervisor's mailbox. Between turns it answers the
# daemon's liveness ping and the control verbs: a thousand orgs launched in one turn,
# while the first of them already provision and take the interpreter's lock, kept it
# from answering for longer than systemd's watchdog allows.
LAUNCH_SLICE = 50


@dataclass(frozen=True)
class _LaunchNext:
    """Internal: launch the next slice of the orgs waiting to be launched."""


@dataclass(frozen=True)
class _StopOverdue:
    """Internal: the stop deadline of an org's incarnation has passed."""

    org: OrgName
    incarnation: int


OrgStarter = Callable[[OrgConfig, int, pykka.ActorRef[Any], Database | None], Any]


class SupervisorActor(pykka.ThreadingActor):
    """Owns every org's lifecycle: starting → running, backoff → fatal, paused, stopped."""

    def __init__(
        self,
        config: Config,
        *,
        generation: int = 1,
        policy: RestartPolicy | None = None,
        database: Database | None = None,
        start_org: OrgStarter = start_org_actor,
    ) -> None:
        super().__init__()
        self._config = config
        self._generation = generation
        self._policy = policy or RestartPolicy()
        self._database = database
        self._flags = OrgFlagStore(database) if database is not None else None
        self._paused: set[str] = set(self._flags.paused()) if self._flags else set()
        self._start_org = start_org
        # Every org's blocking lookups, on threads of the process rather than of each org;
        # the orgs' enrichers find it through the state database (ilyd.pipeline.lookups).
        self._lookups: LookupPool | None = None
        self._slots: dict[OrgName, OrgSlot] = {}
        self._timers: dict[OrgName, Timer] = {}
        # Orgs in STARTING waiting for their actor, by incarnation, in start order.
        self._launches: deque[tuple[OrgName, int]] = deque()
        # Each org's secrets as they were when it last started (ilyd.config.secrets).
        self._secrets_seen: dict[OrgName, bytes] = {}
        self._handlers: dict[type, Callable[[Any], Any]] = {
            OrgStarted: self._on_started,
            OrgFailed: self._on_failed,
            OrgStopped: self._on_stopped,
            _StopOverdue: self._on_stop_overdue,
            _LaunchNext: self._on_launch_next,
            OrgReport: self._on_report,
            RetryOrg: self._on_retry,
            Ping: self._on_ping,
            GetSnapshot: lambda _m: self._snapshot(),
            GetCounts: lambda _m: self._counts(),
            PauseOrg: self._on_pause,
            ResumeOrg: self._on_resume,
            RestartOrg: self._on_restart,
            ApplyConfig: self._on_apply,
        }

    # ------------------------------------------------------------------ lifecycle

    def on_start(self) -> None:
        """Open the lookup pool, create a slot per configured org, start the enabled ones."""
        if self._database is not None:
            self._lookups = open_pool(self._database, self._config.daemon.lookup_threads)
        self._apply(self._config, self._generation)

    def on_stop(self) -> None:
        """Stop every org at once (each stops its children under its own deadline) and
        wait for them under one deadline, then shut the lookup pool down (lookups an org
        left behind waiting are not run). The daemon then counts, and logs once, the
        actors still running (ilyd.daemon.process)."""
        for timer in self._timers.values():
            timer.cancel()
        futures = []
        for slot in self._slots.values():
            for ref in (slot.ref, slot.stopping):
                if ref is not None and ref.is_alive():
                    with contextlib.suppress(pykka.ActorDeadError):
                        futures.append(stop_org(ref))
        deadline = time.monotonic() + ORGS_STOP_TIMEOUT
        for future in futures:
            with contextlib.suppress(pykka.Timeout):
                future.get(timeout=max(0.0, deadline - time.monotonic()))
        if self._lookups is not None:
            self._lookups.shutdown()

    def on_receive(self, message: Any) -> Any:
        """Dispatch a message to its handler by type."""
        handler = self._handlers.get(type(message))
        if handler is None:
            raise TypeError(f"supervisor got an unexpected message: {type(message).__name__}")
        return handler(message)

    # ----------------------------------------------------------- org -> supervisor

    def _current(self, org: OrgName, incarnation: int) -> OrgSlot | None:
        slot = self._slots.get(org)
        return slot if slot is not None and slot.incarnation == incarnation else None

    def _on_started(self, msg: OrgStarted) -> None:
        slot = self._current(msg.org, msg.incarnation)
        if slot is None or slot.state is not OrgState.STARTING:
            return
        slot.started_at = time.monotonic()
        slot.last_error = None
        slot.problem_since = None
        self._transition(slot, OrgState.RUNNING)
        self._judge(slot)

    def _on_failed(self, msg: OrgFailed) -> None:
        slot = self._current(msg.org, msg.incarnation)
        if slot is None or slot.state not in (OrgState.STARTING, *_ALIVE):
            return
        slot.last_error = msg.error
        self._stop_actor(slot)
        if msg.config:
            self._transition(slot, OrgState.CONFIG_ERROR, error=msg.error)
            return
        delay = on_failure(slot, self._policy, time.monotonic(), random.random(),
                           never_fatal=msg.disk)
        if delay is None:
            self._transition(slot, OrgState.FATAL, error=msg.error)
            return
        slot.retry_at = time.time() + delay
        self._transition(slot, OrgState.BACKOFF, error=msg.error, retry_in_s=round(delay, 2))
        retry = RetryOrg(slot.name, slot.incarnation)
        self._timers[slot.name] = TIMERS.call_later(delay, lambda: self._tell_quietly(retry))

    def _on_stopped(self, msg: OrgStopped) -> None:
        slot = self._slots.get(msg.org)
        if slot is None or slot.stopping is None or msg.incarnation != slot.stopping_incarnation:
            return
        slot.stopping = None
        if slot.start_pending:
            slot.start_pending = False
            self._launch(slot)

    def _on_report(self, msg: OrgReport) -> None:
        slot = self._current(msg.org, msg.incarnation)
        if slot is None:
            return
        slot.merge_detail(msg.detail)
        metrics.ORG_NEEDS_REAUTH.labels(org=slot.name).set(
            1 if slot.detail.get("needs_reauth") else 0)
        log.info("org_detail_published", org=slot.name, **dict(msg.detail))
        self._judge(slot)

    def _judge(self, slot: OrgSlot) -> None:
        """Running or degraded, by what the org's parts last published (ilyd.actors.health):
        degraded once a problem has lasted `[daemon] degraded_after` seconds, so that a
        reconnect after a passing 5xx does not make the state flap."""
        if slot.state not in _ALIVE:
            return
        found = health.problem(slot.detail)
        if found is None:
            slot.problem_since = None
            if slot.state is OrgState.DEGRADED:
                slot.last_error = None
                self._transition(slot, OrgState.RUNNING)
            return
        now = time.monotonic()
        if slot.problem_since is None:
            slot.problem_since = now
        if slot.state is OrgState.DEGRADED:
            slot.last_error = found
        elif now - slot.problem_since >= self._config.daemon.degraded_after:
            slot.last_error = found
            self._transition(slot, OrgState.DEGRADED, error=found)

    def _on_retry(self, msg: RetryOrg) -> None:
        slot = self._current(msg.org, msg.incarnation)
        if slot is not None and slot.state is OrgState.BACKOFF:
            self._start(slot, restart=True)

    # ------------------------------------------------------- control -> supervisor

    def _on_ping(self, _msg: Ping) -> bool:
        """Liveness: also catches org actors that died without telling (a pykka crash)."""
        for slot in list(self._slots.values()):
            if slot.stopping is not None and not slot.stopping.is_alive():
                self._on_stopped(OrgStopped(slot.name, slot.stopping_incarnation))
            if (
                slot.state in (OrgState.STARTING, *_ALIVE)
                and slot.ref is not None
                and not slot.ref.is_alive()
            ):
                self._on_failed(OrgFailed(slot.name, slot.incarnation, "org actor died"))
            elif slot.problem_since is not None and slot.state is OrgState.RUNNING:
                self._judge(slot)  # a problem that outlasted the grace without a new report
        return True

    def _slot(self, org: OrgName) -> OrgSlot:
        slot = self._slots.get(org)
        if slot is None:
            raise ControlError("unknown_org", f"no org named {org!r}", "ilyd ctl orgs")
        return slot

    def _on_pause(self, msg: PauseOrg) -> SupervisorSnapshot:
        slot = self._slot(msg.org)
        if slot.state is OrgState.CONFIG_ERROR:
            raise ControlError("invalid_args", f"org {msg.org!r} has config errors",
                               "fix the config, then ilyd ctl reload")
        self._set_paused(slot.name, True)
        if slot.state is not OrgState.PAUSED:
            self._stop_actor(slot)
            self._transition(slot, OrgState.PAUSED)
        return self._snapshot()

    def _on_resume(self, msg: ResumeOrg) -> SupervisorSnapshot:
        slot = self._slot(msg.org)
        self._set_paused(slot.name, False)
        if slot.state is OrgState.PAUSED:
            self._settle(slot)
        return self._snapshot()

    def _on_restart(self, msg: RestartOrg) -> SupervisorSnapshot:
        slot = self._slot(msg.org)
        # A config Salesforce refused (slot.config set) may be fixed in the org instead.
        if slot.state is OrgState.CONFIG_ERROR and slot.config is None:
            raise ControlError("invalid_args", f"org {msg.org!r} has config errors",
                               "fix the config, then ilyd ctl reload")
        if slot.state is OrgState.PAUSED:
            raise ControlError("busy", f"org {msg.org!r} is paused", f"ilyd ctl resume {msg.org}")
        if slot.state is OrgState.STOPPED:
            raise ControlError("invalid_args", f"org {msg.org!r} is disabled in the config",
                               "set enabled = true, then ilyd ctl reload")
        slot.quick_failures = 0
        self._stop_actor(slot)
        self._start(slot, restart=True)
        return self._snapshot()

    def _on_apply(self, msg: ApplyConfig) -> SupervisorSnapshot:
        self._apply(msg.config, msg.generation)
        return self._snapshot()

    # ------------------------------------------------------------------ mechanics

    def _apply(self, config: Config, generation: int) -> None:
        """Converge the slots on `config`: add, remove, restart changed or fatal orgs."""
        self._config, self._generation = config, generation
        wanted: dict[OrgName, tuple[OrgConfig | None, tuple[str, ...]]] = {
            org.name: (org, ()) for org in config.orgs
        }
        wanted.update({e.name: (None, e.problems) for e in config.org_errors})
        for name in [n for n in self._slots if n not in wanted]:
            slot = self._slots.pop(name)
            self._stop_actor(slot)
            self._cancel_timer(name)
            self._secrets_seen.pop(name, None)
            self._count_states()
            metrics.forget_org(name)
            log.info("org_removed", org=name)
        for name, (org_config, problems) in wanted.items():
            slot = self._slots.get(name)
            if slot is None:
                slot = OrgSlot(name=name, config=org_config, problems=problems, since=time.time())
                metrics.prepare_org(name)
                self._slots[name] = slot
                self._settle(slot)
            elif (slot.config, slot.problems) != (org_config, problems) or (
                slot.state is OrgState.FATAL
            ) or self._secrets_changed(slot):
                slot.config, slot.problems, slot.quick_failures = org_config, problems, 0
                self._stop_actor(slot)
                self._settle(slot, restart=True)
        self._slots = {name: self._slots[name] for name in wanted}
        self._count_states()

    def _secrets_changed(self, slot: OrgSlot) -> bool:
        """Whether a started org's secret files (or variables) hold something else now
        than when it started: a reload is how an admin says "I changed a secret"."""
        if slot.config is None or slot.state not in (
                OrgState.STARTING, *_ALIVE, OrgState.BACKOFF):
            return False
        seen = self._secrets_seen.get(slot.name)
        if seen is None or seen == _secrets_fingerprint(slot.config):
            return False
        log.info("org_secrets_changed", org=slot.name, action="restarting the org")
        return True

    def _settle(self, slot: OrgSlot, *, restart: bool = False) -> None:
        """Put an org that is not running where its config and flags say it belongs."""
        if slot.config is None:
            slot.last_error = "; ".join(slot.problems)
            self._transition(slot, OrgState.CONFIG_ERROR)
        elif not slot.config.enabled:
            self._transition(slot, OrgState.STOPPED)
        elif slot.name in self._paused:
            self._transition(slot, OrgState.PAUSED)
        else:
            self._start(slot, restart=restart)

    def _start(self, slot: OrgSlot, *, restart: bool) -> None:
        self._cancel_timer(slot.name)
        slot.incarnation += 1
        slot.clear_detail()
        metrics.ORG_NEEDS_REAUTH.labels(org=slot.name).set(0)  # the new start finds out again
        slot.retry_at = None
        if slot.config is not None:  # the budget its pipeline and resync will keep to
            metrics.SF_API_BUDGET_RATIO.labels(org=slot.name).set(slot.config.api_budget_ratio)
            self._secrets_seen[slot.name] = _secrets_fingerprint(slot.config)
        if restart:
            slot.restarts += 1
            metrics.ORG_RESTARTS.labels(org=slot.name).inc()
        self._transition(slot, OrgState.STARTING)
        if slot.stopping is not None and slot.stopping.is_alive():
            slot.start_pending = True
        else:
            slot.stopping = None
            self._launch(slot)

    def _launch(self, slot: OrgSlot) -> None:
        """Queue the org's actor to be started in a later turn (LAUNCH_SLICE a turn)."""
        if not self._launches:
            self.actor_ref.tell(_LaunchNext())
        self._launches.append((slot.name, slot.incarnation))

    def _on_launch_next(self, _msg: _LaunchNext) -> None:
        for _ in range(min(LAUNCH_SLICE, len(self._launches))):
            slot = self._current(*self._launches.popleft())
            # Stopped, paused or started again since it was queued: nothing to launch.
            if slot is not None and slot.state is OrgState.STARTING and slot.ref is None:
                self._launch_now(slot)
        if self._launches:
            self.actor_ref.tell(_LaunchNext())

    def _launch_now(self, slot: OrgSlot) -> None:
        assert slot.config is not None
        try:
            slot.ref = self._start_org(slot.config, slot.incarnation, self.actor_ref,
                                       self._database)
        except Exception as exc:  # __init__ runs here, in our thread
            self._on_failed(OrgFailed(slot.name, slot.incarnation, str(exc)))

    def _stop_actor(self, slot: OrgSlot) -> None:
        self._cancel_timer(slot.name)
        slot.start_pending = False
        if slot.ref is not None and slot.ref.is_alive():
            slot.stopping = slot.ref
            slot.stopping_incarnation = slot.incarnation
            stop_org(slot.ref)
            overdue = _StopOverdue(slot.name, slot.incarnation)
            TIMERS.call_later(ORG_STOP_TIMEOUT + _OVERDUE_MARGIN,
                              lambda: self._tell_quietly(overdue))
        slot.ref = None

    def _on_stop_overdue(self, msg: _StopOverdue) -> None:
        """The org's stop deadline passed: an org still held by a slow call is not waited
        for (it takes no new work; its call ends when Salesforce answers)."""
        slot = self._slots.get(msg.org)
        if (slot is None or slot.stopping is None or msg.incarnation != slot.stopping_incarnation
                or not slot.stopping.is_alive()):
            return
        log.warning("org_stop_overdue", org=slot.name,
                    deadline_s=ORG_STOP_TIMEOUT + _OVERDUE_MARGIN,
                    start_pending=slot.start_pending)
        self._on_stopped(OrgStopped(slot.name, msg.incarnation))

    def _cancel_timer(self, name: OrgName) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def _tell_quietly(self, message: Any) -> None:
        # The supervisor may have stopped while the timer ran.
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(message)

    def _set_paused(self, org: OrgName, paused: bool) -> None:
        (self._paused.add if paused else self._paused.discard)(org)
        if self._flags is not None:
            self._flags.set_paused(org, paused, time.time())

    def _transition(self, slot: OrgSlot, state: OrgState, **fields: Any) -> None:
        previous = slot.state
        slot.state, slot.since = state, time.time()
        metrics.ORG_TRANSITIONS.labels(state=state).inc()
        metrics.ORG_UP.labels(org=slot.name).set(1 if state is OrgState.RUNNING else 0)
        metrics.set_org_state(slot.name, state)
        self._count_states()
        level = logging.WARNING if state in (OrgState.BACKOFF, OrgState.FATAL) else logging.INFO
        log.log(level, "org_state_changed", org=slot.name, state=str(state),
                previous=str(previous), **fields)

    def _count_states(self) -> None:
        counts = {state: 0 for state in OrgState}
        for slot in self._slots.values():
            counts[slot.state] += 1
        for state, count in counts.items():
            metrics.ORGS.labels(state=state).set(count)

    def _counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for slot in self._slots.values():
            counts[slot.state] = counts.get(slot.state, 0) + 1
        return counts

    def _snapshot(self) -> SupervisorSnapshot:
        return SupervisorSnapshot(
            generation=self._generation,
            orgs=tuple(slot.status() for slot in self._slots.values()),
        )


def _secrets_fingerprint(config: OrgConfig) -> bytes:
    """The fingerprint of every secret the org reads when it starts."""
    return fingerprint((*config.secrets(), *config.enrich.secret_refs()))
