"""One worker process as the front (ilyd.daemon.front) sees it: started with the front's config,
asked over its own control socket, watched, started again after it exits or hangs,
stopped. The process itself is ilyd.daemon.Daemon with a WorkerRole.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

import structlog

from ilyd import metrics
from ilyd.backoff import Backoff
from ilyd.config import Config
from ilyd.control.client import ControlClient, DaemonNotRunningError
from ilyd.control.protocol import Progress
from ilyd.daemon.shards import FRONT_PID_ENV, WorkerRole, send_config, worker_socket
from ilyd.errors import ControlError

log = structlog.get_logger(__name__)

ASK_TIMEOUT = 5.0  # front -> worker, for status and orgs
READY_TIMEOUT = 30.0  # every worker answering, before READY=1 (TimeoutStartSec=60s)
HUNG_AFTER = 120.0  # a live worker silent this long is killed (WatchdogSec= of one process)
# Pauses before starting an exited worker again: up to 1 s after a run longer than
# STABLE_AFTER, doubling with each quick exit in a row up to a minute.
RESTART_BACKOFF, STABLE_AFTER = Backoff(initial=1.0, cap=60.0), 60.0
# What a worker must not inherit: systemd's notify socket and watchdog are the front's.
_FRONT_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class Worker:
    """One worker process: started, watched, started again, stopped."""

    def __init__(self, config: Config, role: WorkerRole) -> None:
        self.role = role
        self.socket = worker_socket(config.daemon.control_socket, role.index)
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.answered_at: float | None = None  # last answer from this incarnation
        self.down_since: float | None = None
        self.next_start = 0.0
        self.quick_exits = 0  # exits in a row, each sooner than STABLE_AFTER after its start
        self.restarts = 0
        self.last_exit: int | None = None
        # At 0 from the start: increase() would miss the first restart of a new series.
        metrics.WORKER_RESTARTS.labels(worker=str(role.index))

    def start(self, config: Config) -> None:
        """Start the process with the front's `config` (its output goes where the front's
        goes: the journal)."""
        env = {k: v for k, v in os.environ.items() if k not in _FRONT_ENV}
        env[FRONT_PID_ENV] = str(os.getpid())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ilyd", "run", "--config", str(config.path),
             "--worker", str(self.role)],
            env=env, stdin=subprocess.PIPE,
        )
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(send_config(config))
            self.process.stdin.close()
        except BrokenPipeError:
            pass  # it died at once: watch() sees the exit
        self.started_at = time.monotonic()
        self.answered_at = None
        self.down_since = None
        metrics.WORKER_UP.labels(worker=str(self.role.index)).set(0)
        log.info("worker_process_started", worker=self.role.index, pid=self.process.pid)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def down(self) -> bool:
        """Exited (waiting to be started again) or not running at all."""
        return self.down_since is not None or not self.alive

    def call(self, verb: str, args: Mapping[str, Any] | None = None,
             progress: Progress | None = None, timeout: float = ASK_TIMEOUT,
             *, wait_start: bool = False) -> Any:
        """One request to the worker; ControlError (busy when it does not answer).

        `wait_start`: a worker still starting is waited for (up to READY_TIMEOUT), as
        `ilyd ctl pause ORG` right after `ilyd run` expects. A refused connection or a
        "still starting" answer did nothing, so sending the request again is safe."""
        if not self.alive:
            raise ControlError("busy", f"worker process {self.role.index} is restarting",
                               "retry in a moment; ilyd ctl status")
        while True:
            try:
                result = ControlClient(self.socket, timeout=timeout).call(verb, args, progress)
                break
            except DaemonNotRunningError as exc:
                if self._starting(wait_start):
                    time.sleep(0.1)
                    continue
                problem: Exception = exc
            except ControlError as exc:
                # "busy: still starting" comes before its orgs do.
                if exc.code == "busy" and self._starting(wait_start):
                    time.sleep(0.1)
                    continue
                raise
            except OSError as exc:
                problem = exc
            metrics.WORKER_UP.labels(worker=str(self.role.index)).set(0)
            raise ControlError("busy", f"worker process {self.role.index} did not answer"
                               f" ({problem})", "retry in a moment; ilyd ctl status") from problem
        self.answered_at = time.monotonic()
        metrics.WORKER_UP.labels(worker=str(self.role.index)).set(1)
        return result

    def _starting(self, wait_start: bool) -> bool:
        """Whether to wait: asked to, and the process runs but never answered yet."""
        return (wait_start and self.alive and self.answered_at is None
                and time.monotonic() - self.started_at < READY_TIMEOUT)

    def watch(self, config: Config) -> None:
        """Notice an exit or a hang; start the process again (with `config`) once its pause
        is over. Only the front's main loop calls it, never once it is stopping."""
        now = time.monotonic()
        if self.process is None:
            return
        code = self.process.poll()
        if code is None and self.down_since is None:
            silent_since = self.answered_at or self.started_at
            if now - silent_since > HUNG_AFTER:
                log.error("worker_process_hung", worker=self.role.index, pid=self.process.pid,
                          silent_s=round(now - silent_since), action="killing it")
                self.process.kill()
                code = self.process.wait()
        if code is not None and self.down_since is None:
            self.last_exit = code
            self.down_since = now
            ran = now - self.started_at
            self.quick_exits = 0 if ran > STABLE_AFTER else self.quick_exits + 1
            pause = RESTART_BACKOFF.delay(self.quick_exits + 1)
            self.next_start = now + pause
            metrics.WORKER_UP.labels(worker=str(self.role.index)).set(0)
            log.error("worker_process_exited", worker=self.role.index, exit_code=code,
                      ran_s=round(ran, 1), restart_in_s=round(pause, 1),
                      hint="its orgs are down until it is started again")
        if self.down_since is not None and now >= self.next_start:
            self.restarts += 1
            metrics.WORKER_RESTARTS.labels(worker=str(self.role.index)).inc()
            self.start(config)

    def stop(self) -> None:
        """SIGTERM (the worker stops its orgs and exits)."""
        if self.alive:
            assert self.process is not None
            self.process.terminate()

    def reap(self, deadline: float) -> None:
        """Wait for the exit until `deadline` (monotonic), then SIGKILL."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("worker_process_not_stopped", worker=self.role.index,
                      pid=self.process.pid, action="killing it")
            self.process.kill()
            self.process.wait()

    def state(self) -> str:
        """starting | running | restarting | stopped, as `ilyd ctl status` shows it."""
        if self.down_since is not None:
            return "restarting"
        if not self.alive:
            return "stopped"
        return "running" if self.answered_at is not None else "starting"

    def as_json(self, orgs: int) -> dict[str, Any]:
        return {"worker": self.role.index, "pid": self.pid, "state": self.state(),
                "orgs": orgs, "restarts": self.restarts, "last_exit": self.last_exit,
                "cpus": self._cpus()}

    def _cpus(self) -> list[int] | None:
        """The CPUs the worker's main thread may run on (one once it pinned itself);
        None while no process runs."""
        if not self.alive or self.pid is None:
            return None
        try:
            return sorted(os.sched_getaffinity(self.pid))
        except OSError:  # it ended just now
            return None
