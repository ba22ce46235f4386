"""What the one-process daemon (ilyd.daemon.process) and the front over worker processes
(ilyd.daemon.front) share: the main loop driven by signals, the watchdog and status it sends,
and the first half of a reload — the file validated again and compared.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import threading
import time
from dataclasses import replace
from typing import Any

import pykka.debug
import structlog

from ilyd import __version__, metrics
from ilyd.config import Config, load_config
from ilyd.config.diff import ConfigDiff, diff_configs
from ilyd.control import verbs as daemon_verbs
from ilyd.control.protocol import Verb, merge_verbs
from ilyd.control.server import ControlServer
from ilyd.daemon.heap import HeapTrimmer
from ilyd.daemon.logs import set_level
from ilyd.daemon.sdnotify import Notifier
from ilyd.errors import ConfigError, ControlError
from ilyd.pipeline import cache_verbs, history_verbs, policy_verbs
from ilyd.provision import verbs as provision_verbs
from ilyd.resync import verbs as resync_verbs

log = structlog.get_logger(__name__)

_TICK = 1.0


def control_verbs() -> dict[str, Verb]:
    """Every verb the daemon answers: its own and each capability's."""
    return merge_verbs(daemon_verbs.VERBS, provision_verbs.VERBS, resync_verbs.VERBS,
                       policy_verbs.VERBS, history_verbs.VERBS, cache_verbs.VERBS)


class Service:
    """The process systemd runs: config and generation, signals, the main loop."""

    def __init__(self, config: Config, notifier: Notifier) -> None:
        self.config = config
        self.generation = 1
        self.started = time.time()
        self.notifier = notifier
        self.metrics_url: str | None = None
        self._events: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._reload_lock = threading.Lock()

    # --------------------------------------------------- what each kind of process does

    def _control(self) -> ControlServer:
        """The control server this process answers on (not started)."""
        raise NotImplementedError

    def _open(self, cleanup: contextlib.ExitStack) -> None:
        """Claim the state and open what the process holds (state lock, database, metrics
        endpoint), each with its closer pushed on `cleanup`."""
        raise NotImplementedError

    def _start(self, cleanup: contextlib.ExitStack) -> dict[str, Any]:
        """Start the work (the supervisor, or the worker processes), its stop pushed on
        `cleanup`; return the fields of the `ilyd_started` log line."""
        raise NotImplementedError

    def _is_worker(self) -> bool:
        """Whether this process is a worker under a front."""
        return False

    def _startup_status(self) -> str:
        """READY=1's status line."""
        raise NotImplementedError

    def summary_now(self) -> str:
        """The STATUS= line as it is now (after a refused reload)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- the main loop

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; return the exit status.

        The control socket comes first: a second daemon must stop there, before touching
        anything. At the end the socket goes first, then what `_start` and `_open` set up,
        in the reverse order."""
        control = self._control()
        control.start()
        with contextlib.ExitStack() as cleanup:
            try:
                self._open(cleanup)
                metrics.BUILD_INFO.info({"version": __version__})
                mark_reload(self.generation, ok=True)
                started = self._start(cleanup)
                self._install_signals()
                log.info("ilyd_worker_started" if self._is_worker() else "ilyd_started",
                         version=__version__,
                         config=str(self.config.path), control_socket=str(control.path),
                         metrics=self.metrics_url, **started)
                self.notifier.ready(self._startup_status())
                self._loop()
            finally:
                self.notifier.stopping()
                log.info("ilyd_stopping")
                control.stop()
        log.info("ilyd_stopped")
        return 0

    def reload(self, **options: Any) -> dict[str, Any]:
        """Validate the config file again and apply the difference."""
        raise NotImplementedError

    def _own(self, config: Config) -> Config:
        """The part of a config this process runs (a worker: its orgs)."""
        return config

    def _tick(self) -> str | None:
        """Once a second: the status line if all is well (the watchdog is fed), else None."""
        raise NotImplementedError

    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self._events.put("stop"))
        signal.signal(signal.SIGINT, lambda *_: self._events.put("stop"))
        signal.signal(signal.SIGHUP, lambda *_: self._events.put("reload"))
        # `systemctl kill -s USR1` reaches every process of the unit: each logs its stacks.
        signal.signal(signal.SIGUSR1, pykka.debug.log_thread_tracebacks)

    def request_stop(self) -> None:
        """Ask the main loop to stop (same as SIGTERM)."""
        self._events.put("stop")

    def _loop(self) -> None:
        interval = self.notifier.watchdog_interval
        tick = min(_TICK, interval) if interval else _TICK
        last_status = ""
        heap = HeapTrimmer()
        while True:
            try:
                event = self._events.get(timeout=tick)
            except queue.Empty:
                event = "tick"
            if event == "stop":
                return
            if event == "reload":
                try:
                    self.reload()
                except ControlError as exc:
                    log.error("sighup_reload_refused", problem=exc.message)
            summary = self._tick()
            heap.due()
            if summary is not None:
                self.notifier.watchdog()
                if summary != last_status:
                    self.notifier.status(summary)
                    last_status = summary

    def _validated(self, *, dry_run: bool) -> tuple[Config, ConfigDiff, dict[str, Any]]:
        """The config file read again, its difference from the running one, and the start
        of the reload's answer; ControlError config_invalid (the running config kept).

        A reload applies a valid file or nothing: a problem in one [[org]] refuses it
        like a problem in a global table, so a typo or a secret file left readable never
        takes a running org down (only at the first start does such an org run in
        config_error beside the others, having no previous config to keep).
        """
        if not dry_run:
            self.notifier.reloading()
        try:
            new = self._own(load_config(self.config.path))
            if new.org_errors:
                raise ConfigError(list(new.problems()))
        except ConfigError as exc:
            if not dry_run:
                mark_reload(self.generation, ok=False)
                self.notifier.ready(self.summary_now())
            log.error("config_reload_refused", generation=self.generation, problems=exc.problems,
                      action="keeping the running config")
            raise ControlError(
                "config_invalid",
                f"{self.config.path} is invalid; still running generation"
                f" {self.generation}:\n" + "\n".join(exc.problems),
                f"ilyd config check --config {self.config.path}",
            ) from exc
        for warning in new.warnings:
            log.warning("config_warning", generation=self.generation, warning=warning)
        diff = diff_configs(self.config, new)
        return new, diff, {**diff.as_dict(), "problems": list(new.problems())}

    def _adopt(self, new: Config) -> Config:
        """Run `new` from now on, but for the settings that need a restart; the next
        generation."""
        self.generation += 1
        self.config = keep_restart_only(self.config, new)
        set_level(self.config.daemon.log_level)
        return self.config


def mark_reload(generation: int, *, ok: bool) -> None:
    """The config (re)load metrics: whether the last one succeeded, and when."""
    metrics.CONFIG_LAST_RELOAD_SUCCESSFUL.set(1 if ok else 0)
    if ok:
        metrics.CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP.set(time.time())
        metrics.CONFIG_GENERATION.set(generation)


def keep_restart_only(old: Config, new: Config) -> Config:
    """`new`, with the settings a running daemon cannot switch (config.diff) as in `old`."""
    daemon = replace(new.daemon, state_dir=old.daemon.state_dir,
                     control_socket=old.daemon.control_socket,
                     log_format=old.daemon.log_format, processes=old.daemon.processes)
    return replace(new, daemon=daemon, metrics=old.metrics)

