"""Where a `Daemon` stands: the whole service alone, or one worker process under a front.

A `Daemon` (ilyd.daemon.process) is the same in both places: supervisor, control socket,
state database. What differs is given to it as one of these two objects, never asked
of it through branches:

- `Alone`: the service's main process. It talks to systemd, holds the state directory
  (and lays out its files), serves /metrics, and feeds the watchdog when the supervisor
  answers.
- `Worker`: one share of the orgs (ilyd.daemon.shards) under the front (ilyd.daemon.front),
  which talks to systemd, serves the merged metrics and forwards signals. It holds only
  its own state file, answers on its own socket with the worker verbs too, and stops when
  its front goes away.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

import structlog

from ilyd.config import Config
from ilyd.control import verbs as daemon_verbs
from ilyd.control.protocol import Verb, merge_verbs
from ilyd.daemon.sdnotify import Notifier
from ilyd.daemon.shards import FRONT_PID_ENV, WorkerRole, own_orgs, worker_socket
from ilyd.store.db import lock_state_dir
from ilyd.store.layout import arrange, database_path

__all__ = ["Alone", "Placement", "Worker"]

log = structlog.get_logger(__name__)

WORKER_LOCK_WAIT = 15.0  # a worker whose front died stops within a few seconds


class Placement(Protocol):
    """What differs between a daemon running alone and one running as a worker."""

    is_worker: bool
    serves_metrics: bool
    log_fields: dict[str, int] | None  # fields on every log line of the process

    def notifier(self) -> Notifier:
        """Who hears READY/STATUS/WATCHDOG."""
        ...

    def own(self, config: Config) -> Config:
        """The part of a config this process runs."""
        ...

    def database_path(self, state_dir: Path) -> Path:
        """The state file this process holds."""
        ...

    def lock_state(self, state_dir: Path, database: Path) -> IO[str]:
        """Claim the state this process holds (raises if another process holds it)."""
        ...

    def control(self, socket_path: Path, verbs: dict[str, Verb]) -> tuple[Path, dict[str, Verb]]:
        """The control socket and verbs this process answers on."""
        ...

    def install_signals(self) -> None:
        """Signal handling beyond the service's own."""
        ...

    def tick(self, liveness: Callable[[], str | None],
             request_stop: Callable[[], None]) -> str | None:
        """Once a second: the status line if the watchdog is to be fed, else None."""
        ...


class Alone:
    """The service's main process (one process, or `[daemon] processes = 1`)."""

    is_worker = False
    serves_metrics = True
    log_fields = None

    def notifier(self) -> Notifier:
        return Notifier()

    def own(self, config: Config) -> Config:
        return config

    def database_path(self, state_dir: Path) -> Path:
        return database_path(state_dir)

    def lock_state(self, state_dir: Path, database: Path) -> IO[str]:
        lock = lock_state_dir(state_dir)
        arrange(state_dir, 1)  # logs what it moved
        return lock

    def control(self, socket_path: Path, verbs: dict[str, Verb]) -> tuple[Path, dict[str, Verb]]:
        return socket_path, verbs

    def install_signals(self) -> None:
        return None

    def tick(self, liveness: Callable[[], str | None],
             request_stop: Callable[[], None]) -> str | None:
        return liveness()


class Worker:
    """One worker process: its share of the orgs, under the front that started it."""

    is_worker = True
    serves_metrics = False  # the front serves every worker's series

    def __init__(self, role: WorkerRole) -> None:
        self.role = role
        self.log_fields = {"worker": role.index}
        self._front = int(os.environ.get(FRONT_PID_ENV) or os.getppid())

    def notifier(self) -> Notifier:
        # A worker never talks to systemd: the front is the service's main process.
        return Notifier({})

    def own(self, config: Config) -> Config:
        return own_orgs(config, self.role)

    def database_path(self, state_dir: Path) -> Path:
        return database_path(state_dir, self.role.index, self.role.count)

    def lock_state(self, state_dir: Path, database: Path) -> IO[str]:
        # The front holds the state directory, the worker its file: a killed front's
        # worker may linger a moment.
        return lock_state_dir(state_dir, f"{database.name}.lock", wait=WORKER_LOCK_WAIT)

    def control(self, socket_path: Path, verbs: dict[str, Verb]) -> tuple[Path, dict[str, Verb]]:
        return (worker_socket(socket_path, self.role.index),
                {**verbs, **merge_verbs(daemon_verbs.WORKER_VERBS)})

    def install_signals(self) -> None:
        # Ctrl-C reaches the whole process group, SIGHUP may too: the front stops the
        # workers (SIGTERM) and forwards reloads itself, each once.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def tick(self, liveness: Callable[[], str | None],
             request_stop: Callable[[], None]) -> str | None:
        if os.getppid() != self._front:
            log.error("front_process_gone", worker=str(self.role), front_pid=self._front,
                      action="this worker stops")
            request_stop()
        return None  # the front checks its workers (ilyd.daemon.front); no systemd here
