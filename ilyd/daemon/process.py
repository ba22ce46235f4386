"""The daemon process: wiring, signals, reload and a clean stop.

Start order: logging, control socket (refuses if another daemon owns it), state database,
metrics endpoint, supervisor (which starts the orgs), READY=1. Stop order is the
reverse. The main thread only waits for signals and runs the watchdog: WATCHDOG=1 is
sent only when the supervisor answered a liveness ask in time.

With more than one process (`[daemon] processes`, ilyd.daemon.shards) this same Daemon runs in
each worker process for its share of the orgs, under the front process (ilyd.daemon.front).
What differs there is its `Placement` (ilyd.daemon.placement): `Alone` or `Worker`.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pykka
import structlog

from ilyd import metrics
from ilyd.actors.messages import (
    ApplyConfig,
    GetCounts,
    GetSnapshot,
    OrgState,
    Ping,
    SupervisorSnapshot,
    summarize,
)
from ilyd.actors.org import parts_left_behind
from ilyd.actors.supervisor import SupervisorActor
from ilyd.config import Config, load_config
from ilyd.config.processes import process_count
from ilyd.control.protocol import Progress
from ilyd.control.server import ControlServer
from ilyd.daemon.front import Front
from ilyd.daemon.logs import configure_logging
from ilyd.daemon.metrics_server import MetricsServer
from ilyd.daemon.pinning import pin_to_one_cpu
from ilyd.daemon.placement import Alone, Placement, Worker
from ilyd.daemon.sdnotify import Notifier
from ilyd.daemon.service import Service, control_verbs, mark_reload
from ilyd.daemon.shards import WorkerRole, receive_config
from ilyd.errors import ControlError
from ilyd.store import Database

log = structlog.get_logger(__name__)

ASK_TIMEOUT = 5.0  # control thread -> supervisor
LIVENESS_TIMEOUT = 2.0
# The supervisor's stop (its orgs': ilyd.actors.supervisor.ORGS_STOP_TIMEOUT): well within
# systemd/ilyd.service's TimeoutStopSec and the front's wait for a worker (ilyd.daemon.front).
STOP_TIMEOUT = 8.0
RELOAD_WAIT_TIMEOUT = 60.0
# Open descriptors one org holds (measured by bench/daemon_idle.py).
FDS_PER_ORG = 6


class Daemon(Service):
    """One running ilyd: owns the supervisor, the control server and the metrics server."""

    def __init__(self, config: Config, notifier: Notifier | None = None,
                 placement: Placement | None = None) -> None:
        self.placement: Placement = placement or Alone()
        super().__init__(self.placement.own(config), notifier or self.placement.notifier())
        self.supervisor: pykka.ActorRef[Any] | None = None
        self.database: Database | None = None
        self.database_path = self.placement.database_path(self.config.daemon.state_dir)
        self._last_answer = time.monotonic()  # the supervisor's last liveness answer

    # ----------------------------------------------------------------- main loop

    def _control(self) -> ControlServer:
        socket_path, verbs = self.placement.control(self.config.daemon.control_socket,
                                                    control_verbs())
        return ControlServer(socket_path, verbs, self)

    def _open(self, cleanup: contextlib.ExitStack) -> None:
        state_lock = self.placement.lock_state(self.config.daemon.state_dir, self.database_path)
        cleanup.callback(state_lock.close)
        self.database = Database(self.database_path)
        cleanup.callback(self.database.close)
        self.database.checkpoint_in_background()
        listen = self.config.metrics.listen
        if listen is not None and self.placement.serves_metrics:
            metrics_server = MetricsServer(*listen, per_org=self.config.metrics.per_org)
            cleanup.callback(metrics_server.stop)
            self.metrics_url = metrics_server.url

    def _start(self, cleanup: contextlib.ExitStack) -> dict[str, Any]:
        metrics.prepare_daemon(one_process=self.placement.serves_metrics)
        self.supervisor = SupervisorActor.start(self.config, generation=self.generation,
                                                database=self.database)
        cleanup.callback(stop_actors, self.supervisor)
        return {"orgs": len(self.config.orgs)}

    def _is_worker(self) -> bool:
        return self.placement.is_worker

    def _startup_status(self) -> str:
        """The status line for READY=1.

        The supervisor may be too busy starting many orgs (each start takes the GIL for a
        while) to answer within ASK_TIMEOUT; that is no reason to stop the daemon, so
        this does not raise. The main loop updates the status once the supervisor
        answers.
        """
        try:
            return self.snapshot().summary()
        except pykka.Timeout:
            log.warning("ready_while_orgs_starting", orgs=len(self.config.orgs),
                        hint="READY=1 sent without a status: the supervisor is still busy"
                        " starting the orgs")
            return f"starting {len(self.config.orgs)} org(s)"

    def _install_signals(self) -> None:
        super()._install_signals()
        self.placement.install_signals()

    def _own(self, config: Config) -> Config:
        return self.placement.own(config)

    def summary_now(self) -> str:
        return self.snapshot().summary()

    def _tick(self) -> str | None:
        return self.placement.tick(self._liveness, self.request_stop)

    def _liveness(self) -> str | None:
        """The status summary if the supervisor answered in time, else None (no watchdog).

        One late answer is normal while a hundred orgs start on a busy machine: it is a
        warning. It becomes an error once the supervisor has been silent for half the
        watchdog period (or 30 s without a watchdog) — systemd kills at the full period.
        """
        assert self.supervisor is not None
        try:
            self.supervisor.ask(Ping(), timeout=LIVENESS_TIMEOUT)
            # The counts, not a snapshot: every org's status once a second was a fifth
            # of an idle daemon's samples at 500 orgs (py-spy).
            summary = summarize(self.supervisor.ask(GetCounts(), timeout=LIVENESS_TIMEOUT))
        except (pykka.Timeout, pykka.ActorDeadError) as exc:
            silent = time.monotonic() - self._last_answer
            limit = self.notifier.watchdog_interval or 30.0  # already half the period
            level = logging.ERROR if silent >= limit or isinstance(exc, pykka.ActorDeadError) \
                else logging.WARNING
            log.log(level, "supervisor_not_answering", silent_s=round(silent, 1),
                    check="liveness")
            return None
        self._last_answer = time.monotonic()
        return summary

    # ---------------------------------------------------------------- operations

    def ask(self, message: Any, timeout: float = ASK_TIMEOUT) -> Any:
        """Ask the supervisor, with a timeout (control thread only)."""
        if self.supervisor is None:
            raise ControlError("busy", "the daemon is still starting", "retry in a moment")
        return self.supervisor.ask(message, timeout=timeout)

    def snapshot(self, timeout: float = ASK_TIMEOUT) -> SupervisorSnapshot:
        """Every org's status."""
        return self.ask(GetSnapshot(), timeout=timeout)

    def reload(
        self, *, dry_run: bool = False, wait: bool = False, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Validate the config file again and apply the difference (ControlError if invalid)."""
        with self._reload_lock:
            new, diff, result = self._validated(dry_run=dry_run)
            if dry_run:
                return {**result, "generation": self.generation, "dry_run": True}
            # Settings that need a restart stay as they are; the rest is applied.
            new = self._adopt(new)
            self.ask(ApplyConfig(new, self.generation))
            mark_reload(self.generation, ok=True)
            log.info("config_reloaded", generation=self.generation, **diff.as_dict())
            if wait:
                self._wait_settled(set(diff.added) | set(diff.changed), progress)
            snapshot = self.snapshot()
            self.notifier.ready(snapshot.summary())
            return {**result, "generation": self.generation, "orgs": snapshot.counts()}

    def _wait_settled(self, names: set[str], progress: Progress | None) -> None:
        """Wait until none of `names` is still starting, streaming each org as it settles."""
        deadline = time.monotonic() + RELOAD_WAIT_TIMEOUT
        reported: set[str] = set()
        while True:
            pending = []
            for org in self.snapshot().orgs:
                if org.name not in names:
                    continue
                if org.state is OrgState.STARTING:
                    pending.append(org.name)
                elif org.name not in reported and progress is not None:
                    reported.add(org.name)
                    progress({"org": org.name, "state": str(org.state)})
            if not pending:
                return
            if time.monotonic() > deadline:
                raise ControlError("busy", f"orgs still starting: {', '.join(pending)}",
                                   "ilyd ctl orgs")
            time.sleep(0.05)



def stop_actors(supervisor: pykka.ActorRef[Any]) -> None:
    """Stop the supervisor (and with it every org) under the daemon's one deadline, then
    say once how many actors (and parts of stopped orgs) are still running: calls to a
    slow Salesforce, orgs still starting. They are asked to stop when free, but the process
    exits without them — their threads are daemon threads, and whatever they had not
    confirmed is still in the inbox for the next start."""
    try:
        supervisor.stop(block=True, timeout=STOP_TIMEOUT)
        stopped = True
    except pykka.Timeout:
        stopped = False
    left = pykka.ActorRegistry.get_all()
    parts = parts_left_behind()  # an org's write still waiting on a slow Salesforce
    if left or parts or not stopped:
        kinds = Counter(ref.actor_class.__name__ for ref in left) + parts
        log.warning("actors_not_stopped", count=sum(kinds.values()), actors=dict(kinds),
                    supervisor_stopped=stopped, deadline_s=STOP_TIMEOUT)
        pykka.ActorRegistry.stop_all(block=False)


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the (soft, hard) now in force.

    Each org holds about 5 descriptors (its thread's SQLite connection, two files, and its
    HTTP and Bayeux sockets; bench/daemon_idle.py: 5,090 at 1,000 orgs): 1,000 orgs need
    ~6,000, while shells and systemd give a soft limit of 1024 (EMFILE from ~200 orgs on). The soft
    limit exists for programs using select(2); ilyd polls with poll(2) only, so it may
    take the whole hard limit. systemd/ilyd.service sets LimitNOFILE= as well.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft in (hard, resource.RLIM_INFINITY):
        return soft, hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:  # e.g. a seccomp filter refusing setrlimit
        log.warning("open_files_limit_not_raised", soft=soft, hard=hard, error=str(exc),
                    hint=f"about {FDS_PER_ORG} open files are needed per org")
        return soft, hard
    return hard, hard


def run_daemon(config_path: Path, worker: WorkerRole | None = None) -> int:
    """Load the config and run the daemon (the body of `ilyd run`); ConfigError if invalid.

    With more than one process, this process is the front over its workers (ilyd.daemon.front);
    `worker` is set in a worker process, which the front starts."""
    # A worker runs the config its front validated (on its stdin), not the file as it is
    # now: the two may differ when it is started again after a crash.
    config = receive_config(sys.stdin.buffer) if worker is not None else load_config(config_path)

    placement: Placement = Worker(worker) if worker is not None else Alone()
    configure_logging(config.daemon.log_format, config.daemon.log_level,
                      fields=placement.log_fields)
    soft, _hard = raise_open_files_limit()
    needed = FDS_PER_ORG * len(config.orgs) + 100
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning("open_files_limit_low", limit=soft, orgs=len(config.orgs), needed=needed,
                    hint=f"about {FDS_PER_ORG} open files are needed per org; raise LimitNOFILE")
    if worker is not None:
        if config.daemon.cpu_pinning:
            pin_to_one_cpu(worker.index)
        return Daemon(config, placement=placement).run()
    for problem in config.problems():
        log.error("org_disabled_by_config", problem=problem)
    for warning in config.warnings:
        log.warning("config_warning", warning=warning)
    processes = process_count(config)
    if processes > 1:
        return Front(config, processes).run()
    if config.daemon.cpu_pinning:
        pin_to_one_cpu()
    return Daemon(config).run()
