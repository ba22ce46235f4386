"""Threads for an org's one blocking call at a time, shared by every org of a process.

An org's actor hands a call it must not wait for in its own thread (the writer's
Collections call: while it waits on Salesforce, the org goes on claiming and enriching)
to `OFFLOAD.run`. A thread runs it and waits a while for the next; none is kept idle
longer than `IDLE_SECONDS`, so an idle daemon holds none, and a busy one about one per
call in flight. Each org has at most one such call in flight, so an org whose calls hang
holds one thread, never the others' (a fixed pool would let a few hanging orgs starve
every other one's writes).

Its threads are daemon threads: a call hanging on a slow Salesforce never holds up the
process's exit (its records stay in the inbox).
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable

import structlog

__all__ = ["OFFLOAD", "Offload"]

log = structlog.get_logger(__name__)

IDLE_SECONDS = 10.0


class Offload:
    """Threads started as calls need them, each ending after `idle` seconds without one."""

    def __init__(self, name: str, idle: float = IDLE_SECONDS) -> None:
        self._name = name
        self._idle_seconds = idle
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a job, less the jobs handed to them
        self._numbers = itertools.count(1)

    def run(self, job: Callable[[], None]) -> None:
        """Run `job` on an idle thread, or on a new one if none is idle."""
        with self._lock:
            if self._idle > 0:
                self._idle -= 1
                self._jobs.put(job)
                return
        threading.Thread(target=self._work, args=(job,), daemon=True,
                         name=f"{self._name}-{next(self._numbers)}").start()

    def _work(self, job: Callable[[], None]) -> None:
        while True:
            try:
                job()
            except Exception:  # one call's bug must not end the thread silently
                log.exception("offloaded_call_failed")
            with self._lock:
                self._idle += 1
            while True:
                try:
                    job = self._jobs.get(timeout=self._idle_seconds)
                    break
                except queue.Empty:
                    with self._lock:
                        if self._jobs.empty():  # nobody handed this thread a job
                            self._idle -= 1
                            return


OFFLOAD = Offload("ilyd-write")
