"""The process's lookup threads: every org's blocking lookups (a vendor's HTTP API, DNS)
run on one `LookupPool` sized by `[daemon] lookup_threads`, not on threads of each org.

An org reaches the pool through a `LookupLane` with its own cap (`workers`: lookups in
flight per org, and at most all the pool's threads but one). A lane hands the pool at
most that many lookups at once and the next only when one of them has ended, so the
pool's queue never holds more than the cap of any org: an org whose source hangs holds
at most its cap of threads, and the other orgs' lookups go on past it in turn.

The daemon's pool is opened by its supervisor for the state database (a daemon process
has one of each) and found by the orgs' enrichers through it (`pool_for`), the way
providers are shared (`ilyd.pipeline.providers`). It is shut down once, when the
process stops, after the orgs.

Its threads are daemon threads, started as lookups need them: an org stopping leaves
its lookups in flight behind (their records stay in the inbox), and a lookup hanging on
a slow source never holds up the process's exit, which `concurrent.futures`' threads
would (they are joined at exit).
"""

from __future__ import annotations

import collections
import contextvars
import itertools
import queue
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import structlog

from ilyd.errors import IlydError
from ilyd.store.db import Database

__all__ = ["LookupLane", "LookupPool", "LookupsClosedError", "open_pool", "pool_for"]

log = structlog.get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# One lookup: the function, its argument, its index in the lane's batch, the lane's
# answer queue, and the context (log fields) of the thread that asked.
_Job = tuple[Callable[[Any], Any], Any, int, "queue.SimpleQueue[_Answer]",
             contextvars.Context]
# (index, result, error): error is None when the lookup returned.
_Answer = tuple[int, Any, BaseException | None]


class LookupsClosedError(IlydError):
    """The pool was shut down (the process is stopping): the lookup did not run."""


class LookupPool:
    """Threads for blocking lookups, shared by every org of a process. Thread-safe."""

    def __init__(self, threads: int, *, name: str = "lookup") -> None:
        self.threads = max(1, threads)
        self._name = name
        self._jobs: collections.deque[_Job] = collections.deque()
        self._cond = threading.Condition()
        self._started = 0
        self._idle = 0  # threads waiting for a job and not yet called to one
        self._numbers = itertools.count(1)
        self._closed = False

    def lane(self, limit: int) -> LookupLane:
        """A lane of this pool with at most `limit` lookups in flight, and never all the
        threads of a pool of more than one: another org always finds one free."""
        return LookupLane(self, min(limit, max(1, self.threads - 1)))

    def started(self) -> int:
        """Threads started so far (they are started as lookups need them)."""
        with self._cond:
            return self._started

    def _submit(self, job: _Job) -> None:
        with self._cond:
            if self._closed:
                raise LookupsClosedError("the lookup pool is shut down: the process is"
                                         " stopping")
            self._jobs.append(job)
            if self._idle:
                self._idle -= 1
                self._cond.notify()
                return
            if self._started >= self.threads:
                return  # every thread is busy: the job waits its turn
            self._started += 1
        threading.Thread(target=self._work, name=f"{self._name}-{next(self._numbers)}",
                         daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._idle += 1
                    self._cond.wait()
                if self._closed:
                    return
                fn, item, index, answers, context = self._jobs.popleft()
            try:
                answers.put((index, context.run(fn, item), None))
            except Exception as exc:  # the lane's caller raises it
                answers.put((index, None, exc))

    def shutdown(self) -> None:
        """Stop the threads once their lookups in flight end; lookups still waiting are
        not run (their lanes raise `LookupsClosedError`). Never waits."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            waiting, self._jobs = self._jobs, collections.deque()
            self._cond.notify_all()
        for _fn, _item, index, answers, _context in waiting:
            answers.put((index, None, LookupsClosedError(
                "the lookup pool was shut down before this lookup ran")))
        with _pools_lock:
            for database, pool in list(_pools.items()):
                if pool is self:
                    del _pools[database]
        log.debug("lookup_pool_shut_down", threads_started=self._started,
                  lookups_dropped=len(waiting))


class LookupLane:
    """One org's way into a `LookupPool`: at most `limit` of its lookups in flight."""

    def __init__(self, pool: LookupPool, limit: int) -> None:
        self.pool = pool
        self.limit = max(1, limit)

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`fn` of every item, run on the pool `limit` at a time; the results in the
        items' order. Raises the first exception a call raised, or `LookupsClosedError`
        when the pool was shut down before all of them ran."""
        answers: queue.SimpleQueue[_Answer] = queue.SimpleQueue()
        results: list[Any] = [None] * len(items)
        asked = running = 0
        while asked < len(items) and running < self.limit:
            self._ask(fn, items, asked, answers)
            asked += 1
            running += 1
        while running:
            index, result, error = answers.get()
            running -= 1
            if error is not None:
                raise error
            results[index] = result
            if asked < len(items):
                self._ask(fn, items, asked, answers)
                asked += 1
                running += 1
        return results

    def _ask(self, fn: Callable[[Any], Any], items: Sequence[Any], index: int,
             answers: queue.SimpleQueue[_Answer]) -> None:
        self.pool._submit((fn, items[index], index, answers, contextvars.copy_context()))


_pools_lock = threading.Lock()
_pools: weakref.WeakKeyDictionary[Database, LookupPool] = weakref.WeakKeyDictionary()


def open_pool(database: Database, threads: int) -> LookupPool:
    """The lookup pool of the process whose state database is `database` (its supervisor
    opens it; `shutdown` closes it)."""
    pool = LookupPool(threads)
    with _pools_lock:
        _pools[database] = pool
    return pool


def pool_for(database: Database) -> LookupPool | None:
    """The process's lookup pool opened for `database`, if one is open."""
    with _pools_lock:
        return _pools.get(database)
