"""The front process: the daemon as systemd and operators see it, over worker processes.

With `[daemon] processes` above one (ilyd.daemon.shards), `ilyd run` holds the control socket,
the state directory's lock, the metrics endpoint and the systemd protocol (READY,
STATUS, WATCHDOG, RELOADING, STOPPING), and starts one worker process per share of the
orgs. A worker is a whole daemon (ilyd.daemon.Daemon) for its orgs, on a private control
socket that the front talks to with the ordinary protocol:

- `ilyd ctl` verbs about one org go to that org's worker as they are, progress included;
- status and orgs gather every worker's answer; reload re-reads the config here, then
  in each worker; the metrics endpoint merges every worker's series (ilyd.daemon.merged_metrics);
- a worker that exits, or stops answering for 120 s (ilyd.daemon.worker), is started
  again after a pause (1 s, doubled up to 60 s while it keeps failing within a minute of
  its start); meanwhile its orgs show as backoff, with the reason, and nothing of theirs
  is lost — their inbox is in the worker's state file.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from ilyd import metrics
from ilyd.actors.messages import OrgState, OrgStatus, SupervisorSnapshot, summarize
from ilyd.config import Config
from ilyd.control.protocol import Progress, Verb, org_arg
from ilyd.control.server import ControlServer
from ilyd.control.verbs import orgs, reload, status
from ilyd.daemon.merged_metrics import MergedMetrics
from ilyd.daemon.metrics_server import MetricsServer
from ilyd.daemon.sdnotify import Notifier
from ilyd.daemon.service import Service, control_verbs, mark_reload
from ilyd.daemon.shards import WorkerRole, own_orgs, shard_of
from ilyd.daemon.worker import ASK_TIMEOUT, READY_TIMEOUT, Worker
from ilyd.errors import ControlError
from ilyd.store.db import lock_state_dir
from ilyd.store.layout import arrange

log = structlog.get_logger(__name__)

LIVENESS_TIMEOUT = 2.0
PROXY_TIMEOUT = 150.0  # an org verb's longest silence (check, provision: ilyd ctl's own)
RELOAD_TIMEOUT = 90.0  # a worker's `reload --wait` (ilyd ctl reload waits 90 s)
STOP_TIMEOUT = 25.0  # SIGTERM -> every worker gone (the unit's TimeoutStopSec is 30 s)


class Front(Service):
    """The daemon over worker processes; the same surface as ilyd.daemon.Daemon for verbs."""

    def __init__(self, config: Config, processes: int,
                 notifier: Notifier | None = None) -> None:
        super().__init__(config, notifier or Notifier())
        self.workers = [Worker(config, WorkerRole(i, processes)) for i in range(processes)]
        # The each-second liveness asks reuse these threads: starting one per worker
        # each second was most of an idle front's CPU. Other gathers (a slow verb may
        # hold its threads for minutes) start their own.
        self._liveness_pool = ThreadPoolExecutor(processes, thread_name_prefix="front-live")

    # ----------------------------------------------------------------- main loop

    def _control(self) -> ControlServer:
        return ControlServer(self.config.daemon.control_socket, FRONT_VERBS, self)

    def _open(self, cleanup: contextlib.ExitStack) -> None:
        cleanup.callback(lock_state_dir(self.config.daemon.state_dir).close)
        # One state file per worker (a shared one's cross-process write lock makes every
        # write wait); rows move to their org's file when the count changes.
        arrange(self.config.daemon.state_dir, len(self.workers))  # logs what it moved
        listen = self.config.metrics.listen
        if listen is not None:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(MergedMetrics(metrics.REGISTRY, self._expositions))
            metrics_server = MetricsServer(*listen, per_org=self.config.metrics.per_org,
                                           registry=registry)
            cleanup.callback(metrics_server.stop)
            self.metrics_url = metrics_server.url

    def _start(self, cleanup: contextlib.ExitStack) -> dict[str, Any]:
        cleanup.callback(self._stop_workers)
        for worker in self.workers:
            worker.start(self.config)
        return {"processes": len(self.workers)}

    def _startup_status(self) -> str:
        """READY=1's status, once every worker answers (or READY_TIMEOUT passed)."""
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            summary = self.summary_now()
            if all(w.answered_at is not None for w in self.workers):
                return summary
            if time.monotonic() > deadline or not self._events.empty():
                log.warning("ready_while_workers_starting",
                            starting=[w.role.index for w in self.workers
                                      if w.answered_at is None])
                return summary
            for worker in self.workers:
                worker.watch(self.config)
            time.sleep(0.2)

    def _stop_workers(self) -> None:
        self._liveness_pool.shutdown(wait=False, cancel_futures=True)
        for worker in self.workers:
            worker.stop()
        deadline = time.monotonic() + STOP_TIMEOUT
        for worker in self.workers:
            worker.reap(deadline)
            metrics.WORKER_UP.labels(worker=str(worker.role.index)).set(0)

    def _tick(self) -> str | None:
        for worker in self.workers:
            worker.watch(self.config)
        # The front is alive while it runs this loop: a worker that hangs is killed and
        # started again above, so the watchdog never restarts the whole service for it.
        return self.summary_now()

    # ---------------------------------------------------------------- operations

    def owner(self, org: str) -> Worker:
        """The worker that runs `org`; ControlError unknown_org if the config has none."""
        if org not in self.config.org_names():
            raise ControlError("unknown_org", f"no org named {org!r}", "ilyd ctl orgs")
        return self.workers[shard_of(org, len(self.workers))]

    def _gather(self, verb: str, args: Mapping[str, Any] | None = None,
                timeout: float = ASK_TIMEOUT, pool: ThreadPoolExecutor | None = None
                ) -> list[Any]:
        """Every worker's answer to `verb` (a ControlError where it failed), concurrently
        (on `pool` if given, else on threads of its own)."""
        def one(worker: Worker) -> Any:
            try:
                return worker.call(verb, args, timeout=timeout)
            except ControlError as exc:
                return exc

        if pool is not None:
            return list(pool.map(one, self.workers))
        with ThreadPoolExecutor(len(self.workers), thread_name_prefix="front-ask") as own:
            return list(own.map(one, self.workers))

    def summary_now(self) -> str:
        """The STATUS= line, from each worker's counts (its orgs as "starting" when it does
        not answer) — the cheap liveness check the main loop runs every second."""
        total: dict[str, int] = {}
        answers = self._gather("counts", timeout=LIVENESS_TIMEOUT, pool=self._liveness_pool)
        for worker, answer in zip(self.workers, answers, strict=True):
            counts = answer
            if isinstance(answer, ControlError):
                counts = {str(OrgState.BACKOFF if worker.down else OrgState.STARTING):
                          len(own_orgs(self.config, worker.role).org_names())}
            for state, count in counts.items():
                total[state] = total.get(state, 0) + count
        return summarize(total)

    def _expositions(self) -> list[str]:
        return [text for text in self._gather("metrics") if isinstance(text, str)]

    def snapshot(self, timeout: float = ASK_TIMEOUT) -> SupervisorSnapshot:
        """Every org's status, from its worker, in config order; a worker that does not
        answer shows its orgs as starting (process up) or backoff (process gone)."""
        found: dict[str, OrgStatus] = {}
        for worker, answer in zip(self.workers, self._gather("orgs", timeout=timeout),
                                  strict=True):
            if isinstance(answer, list):
                for org in answer:
                    found[org["name"]] = _org_status(org, worker.role.index)
                continue
            for name in own_orgs(self.config, worker.role).org_names():
                found[name] = self._absent(name, worker, answer)
        return SupervisorSnapshot(self.generation,
                                  tuple(found[n] for n in self.config.org_names() if n in found))

    def _absent(self, name: str, worker: Worker, problem: ControlError) -> OrgStatus:
        now_wall, now = time.time(), time.monotonic()
        down = worker.down
        if worker.down_since is not None:
            reason = (f"worker process {worker.role.index} exited with code"
                      f" {worker.last_exit}; starting it again")
        else:
            reason = problem.message
        return OrgStatus(
            name=name, state=OrgState.BACKOFF if down else OrgState.STARTING,
            since=now_wall - (now - (worker.down_since or worker.started_at)),
            last_error=reason if down or worker.answered_at is not None else None,
            restarts=worker.restarts, detail=(("worker", worker.role.index),),
            retry_at=now_wall + max(0.0, worker.next_start - now) if down else None,
        )

    def worker_states(self) -> list[dict[str, Any]]:
        """Each worker process as `ilyd ctl status` shows it."""
        return [w.as_json(len(own_orgs(self.config, w.role).org_names())) for w in self.workers]

    def reload(
        self, *, dry_run: bool = False, wait: bool = False, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Validate the config file, then have every worker apply its share of it."""
        with self._reload_lock:
            new, diff, result = self._validated(dry_run=dry_run)
            if dry_run:
                return {**result, "generation": self.generation, "dry_run": True}
            self._adopt(new)
            failed = self._reload_workers(wait, progress)
            mark_reload(self.generation, ok=not failed)
            log.info("config_reloaded", generation=self.generation, **diff.as_dict())
            snapshot = self.snapshot()
            self.notifier.ready(snapshot.summary())
            if failed:
                raise ControlError("internal", "the config was reloaded, but not by worker"
                                   " process(es): " + "; ".join(failed), "see the daemon log")
            return {**result, "generation": self.generation, "orgs": snapshot.counts()}

    def _reload_workers(self, wait: bool, progress: Progress | None) -> list[str]:
        """Each worker re-reads the config for its orgs; what failed, one line each. A
        worker that is down reads the new config when it starts again."""
        lock = threading.Lock()

        def relay(update: Mapping[str, Any]) -> None:
            if progress is not None:
                with lock:  # one client connection, several workers
                    progress(update)

        def one(worker: Worker) -> str | None:
            if worker.down_since is not None:
                return None
            try:
                worker.call("reload", {"wait": wait}, relay, timeout=RELOAD_TIMEOUT)
            except ControlError as exc:
                log.error("worker_reload_failed", worker=worker.role.index, problem=exc.message)
                return f"{worker.role.index}: {exc.message}"
            return None

        with ThreadPoolExecutor(len(self.workers), thread_name_prefix="front-reload") as pool:
            return [f for f in pool.map(one, self.workers) if f is not None]


def _org_status(org: Mapping[str, Any], worker: int) -> OrgStatus:
    return OrgStatus(
        name=org["name"], state=OrgState(org["state"]), since=org["since"],
        last_error=org["last_error"], restarts=org["restarts"],
        detail=(*org["detail"].items(), ("worker", worker)), retry_at=org.get("retry_at"),
    )


# ------------------------------------------------------------------- the verbs


def _status(front: Front, args: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
    """The daemon's status (ilyd.control.verbs.status) and each worker process."""
    return {**status(front, args, progress), "workers": front.worker_states()}


def _to_owner(verb: str) -> Any:
    def handler(front: Front, args: Mapping[str, Any], progress: Progress) -> Any:
        return front.owner(org_arg(args)).call(verb, args, progress, timeout=PROXY_TIMEOUT,
                                               wait_start=True)

    handler.__doc__ = f"`{verb}`, answered by the worker process that runs the org."
    return handler


def _cache(front: Front, args: Mapping[str, Any], _progress: Progress) -> dict[str, Any]:
    """`cache` asks every worker: each has its cache in its own state file."""
    answers = front._gather("cache", args, timeout=PROXY_TIMEOUT)
    problem = next((a for a in answers if isinstance(a, ControlError)), None)
    if problem is not None:
        raise problem
    return merge_cache_answers(answers)


def merge_cache_answers(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """The workers' `cache` answers as one: every count added up — entries too, since
    each worker keeps its cache in its own file (a domain looked up by orgs of two workers
    is counted in both)."""
    first = answers[0]
    if first["action"] == "clear":
        return {**first, "removed": sum(a["removed"] for a in answers)}
    by_name: dict[str, dict[str, Any]] = {}
    for answer in answers:
        for provider in answer["providers"]:
            known = by_name.setdefault(provider["provider"], {"provider": provider["provider"]})
            for key, value in provider.items():
                if key != "provider":
                    known[key] = known.get(key, 0) + value
    totals = {key: sum(a[key] for a in answers) for key in ("entries", "hits", "misses")}
    return {**first, **totals, "providers": [by_name[n] for n in sorted(by_name)]}


def _front_verbs() -> dict[str, Verb]:
    local = {"status": Verb("status", _status), "orgs": Verb("orgs", orgs),
             "reload": Verb("reload", reload, mutating=True),
             "cache": Verb("cache", _cache)}
    # Every other verb names an org: its worker answers (and audits a mutating one too).
    return {name: local.get(name) or Verb(name, _to_owner(name), verb.mutating)
            for name, verb in control_verbs().items()}


FRONT_VERBS = _front_verbs()
