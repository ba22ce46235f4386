"""The process's lookup threads: every org's blocking lookups (a vendor's HTTP API, DNS)
run on one `LookupPool` sized by `[daemon] lookup_threads`, not on threads of each org.

An org reaches the pool through a `LookupLane` with its own cap (`workers`: lookups in
flight per org, and at most all the pool's threads but one). A lane hands the pool at
most that many lookups at once and the next only when one of them has ended, so the
pool's queue never holds more than the cap of any org: an org whose source hangs holds
at most its cap of threads, and the other orgs' lookups go on past it in turn. Nobody
waits for a batch handed to a lane: its results are passed, on the thread that ended its
last lookup, to the function the org gave with it (the org's thread never waits on a
vendor).

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
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import structlog

from ilyd.errors import IlydError
from ilyd.store.db import Database

__all__ = ["Done", "LookupLane", "LookupPool", "LookupsClosedError", "open_pool",
           "pool_for"]

log = structlog.get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# One lookup handed to the pool: what runs it, what it is told if the pool shuts down
# before it ran, and the context (log fields) of the thread that asked.
_Job = tuple[Callable[[], None], Callable[[BaseException], None], contextvars.Context]
# What a batch's `done` is given: the results in the items' order, or the error.
Done = Callable[[list[Any] | BaseException], None]


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
                run, _drop, context = self._jobs.popleft()
            try:
                context.run(run)
            except Exception:  # a bug of ours: the thread must go on serving every org
                log.exception("lookup_pool_job_failed")

    def shutdown(self) -> None:
        """Stop the threads once their lookups in flight end; lookups still waiting are
        not run (their lanes raise `LookupsClosedError`). Never waits."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            waiting, self._jobs = self._jobs, collections.deque()
            self._cond.notify_all()
        for _run, drop, _context in waiting:
            drop(LookupsClosedError("the lookup pool was shut down before this lookup ran"))
        with _pools_lock:
            for database, pool in list(_pools.items()):
                if pool is self:
                    del _pools[database]
        log.debug("lookup_pool_shut_down", threads_started=self._started,
                  lookups_dropped=len(waiting))


class _Batch:
    """One `LookupLane.submit`: its results so far, and whether `done` was called."""

    def __init__(self, fn: Callable[[Any], Any], items: Sequence[Any], done: Done,
                 context: contextvars.Context) -> None:
        self.fn = fn
        self.items = items
        self.context = context
        self.finished = False
        self._done = done
        self._results: list[Any] = [None] * len(items)
        self._left = len(items)
        self._lock = threading.Lock()

    def answer(self, index: int, result: Any, error: BaseException | None) -> None:
        """One lookup ended (or never will: `error`); `done` once all did, or at the
        first error."""
        with self._lock:
            if self.finished:
                return
            if error is None:
                self._results[index] = result
                self._left -= 1
                if self._left:
                    return
            self.finished = True
        self._done(self._results if error is None else error)


class LookupLane:
    """One org's way into a `LookupPool`: at most `limit` of its lookups in flight, those
    of every batch it was handed counted together. Thread-safe."""

    def __init__(self, pool: LookupPool, limit: int) -> None:
        self.pool = pool
        self.limit = max(1, limit)
        self._lock = threading.Lock()
        self._waiting: collections.deque[tuple[_Batch, int]] = collections.deque()
        self._running = 0

    def submit(self, fn: Callable[[T], R], items: Sequence[T],
               done: Callable[[list[R] | BaseException], None]) -> None:
        """Run `fn` of every item on the pool; never waits for them. `done` is called
        once, on the thread that ended the batch (a lookup thread, or this one when the
        pool is shut down): with the results in the items' order, or with the first
        exception a call raised, or `LookupsClosedError` when the pool was shut down
        before all of them ran; the batch's lookups not yet started then never run.
        `done` must not raise."""
        batch = _Batch(fn, items, done, contextvars.copy_context())
        if not items:
            done([])
            return
        with self._lock:
            self._waiting.extend((batch, index) for index in range(len(items)))
        self._pump()

    def _pump(self) -> None:
        """Hand the pool the lane's next lookups while fewer than `limit` are in flight."""
        while True:
            with self._lock:
                if self._running >= self.limit or not self._waiting:
                    return
                batch, index = self._waiting.popleft()
                if batch.finished:  # an earlier lookup of it failed: the rest never run
                    continue
                self._running += 1
            try:
                self.pool._submit((lambda b=batch, i=index: self._run(b, i),
                                   lambda error, b=batch: self._dropped(b, error),
                                   # A context is entered by one thread at a time.
                                   batch.context.copy()))
            except LookupsClosedError as exc:
                with self._lock:
                    self._running -= 1
                batch.answer(index, None, exc)

    def _run(self, batch: _Batch, index: int) -> None:
        try:
            result, error = batch.fn(batch.items[index]), None
        except Exception as exc:  # the batch's `done` gets it
            result, error = None, exc
        with self._lock:
            self._running -= 1
        batch.answer(index, result, error)
        self._pump()

    def _dropped(self, batch: _Batch, error: BaseException) -> None:
        with self._lock:
            self._running -= 1
        batch.answer(-1, None, error)
        self._pump()


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
