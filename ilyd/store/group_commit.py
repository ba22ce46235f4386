"""Group commit: requests from concurrent threads share one transaction.

Every streaming org hands its events to the inbox on a thread of its own, and under load
many of those threads wait for the database's write lock at the same moment, each to
commit a transaction of one event. A transaction's fixed cost (BEGIN, the page writes
of the commit, and a GIL handoff around every statement) is most of a one-event put,
so the requests that queue up while one transaction runs are written together in the
next: the first waiter takes the whole queue and writes it, the others wait for it.

A caller still returns only once its own request is committed, and raises its own
error: when a shared transaction fails, each of its requests is retried alone, so one
bad request fails only its caller. Without contention a request is written at once,
alone, by its own thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

T = TypeVar("T")


class _Ticket(Generic[T]):
    __slots__ = ("done", "error", "request")

    def __init__(self, request: T) -> None:
        self.request = request
        self.done = False
        self.error: BaseException | None = None


class GroupCommit(Generic[T]):
    """Runs `write(requests)` for requests submitted from many threads, batching those
    that arrive while a write is running. `write` must write all of them or none (one
    transaction)."""

    def __init__(self, write: Callable[[Sequence[T]], None]) -> None:
        self._write = write
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[_Ticket[T]] = []
        self._writing = False
        self._sleeping = 0  # callers in wait(): notify only when there are some
        self.groups = 0  # writes run, and requests written: for benchmarks and tests
        self.requests = 0

    @property
    def waiting(self) -> int:
        """Requests queued behind the write in progress."""
        with self._cond:
            return len(self._queue)

    @property
    def writing(self) -> bool:
        """Whether a write is in progress (its requests taken off the queue)."""
        with self._cond:
            return self._writing

    def submit(self, request: T) -> None:
        """Write `request` (alone or with others); returns once it is committed."""
        ticket = _Ticket(request)
        with self._cond:
            self._queue.append(ticket)
            while self._writing and not ticket.done:
                self._sleeping += 1
                self._cond.wait()
                self._sleeping -= 1
            if not ticket.done:
                self._writing = True
                group, self._queue = self._queue, []
        if not ticket.done:
            self._lead(group)
        if ticket.error is not None:
            raise ticket.error

    def _lead(self, group: list[_Ticket[T]]) -> None:
        try:
            self._run(group)
        except BaseException as exc:
            # Interrupted (not a write error): nobody's request is known to be committed,
            # and a false failure is only a redelivery.
            for t in group:
                t.error = t.error or exc
            raise
        finally:
            with self._cond:
                for t in group:
                    t.done = True
                self.groups += 1
                self.requests += len(group)
                self._writing = False
                if self._sleeping:
                    self._cond.notify_all()

    def _run(self, group: list[_Ticket[T]]) -> None:
        try:
            self._write([t.request for t in group])
            return
        except Exception as exc:
            if len(group) == 1:
                group[0].error = exc
                return
        for t in group:  # the shared write failed: each alone, so only the bad one fails
            try:
                self._write([t.request])
            except Exception as exc:
                t.error = exc
