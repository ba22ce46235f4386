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

import sqlite3
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from ilyd.store.db import Database

__all__ = ["GroupCommit", "register", "shared"]

T = TypeVar("T")


class _Ticket(Generic[T]):
    __slots__ = ("done", "error", "request", "wake")

    def __init__(self, request: T) -> None:
        self.request = request
        self.done = False
        self.error: BaseException | None = None
        # Held while the caller waits behind a write: released once its request is
        # committed, or once it is its turn to write the queue.
        self.wake: threading.Lock | None = None


class GroupCommit(Generic[T]):
    """Runs `write(requests)` for requests submitted from many threads, batching those
    that arrive while a write is running. `write` must write all of them or none (one
    transaction)."""

    def __init__(self, write: Callable[[Sequence[T]], None]) -> None:
        self._write = write
        self._lock = threading.Lock()
        self._queue: list[_Ticket[T]] = []
        self._writing = False
        self.groups = 0  # writes run, and requests written: for benchmarks and tests
        self.requests = 0

    @property
    def waiting(self) -> int:
        """Requests queued behind the write in progress."""
        with self._lock:
            return len(self._queue)

    @property
    def writing(self) -> bool:
        """Whether a write is in progress (its requests taken off the queue)."""
        with self._lock:
            return self._writing

    def submit(self, request: T) -> None:
        """Write `request` (alone or with others); returns once it is committed."""
        ticket = _Ticket(request)
        with self._lock:
            self._queue.append(ticket)
            if self._writing:
                ticket.wake = wake = threading.Lock()
                wake.acquire()
            else:
                self._writing = True
                group, self._queue = self._queue, []
        if ticket.wake is not None:
            # Each waiter is woken once, by its own lock, and only when its request is
            # committed or its turn has come: under a busy interpreter every wake-up is a
            # context switch and a wait for the interpreter lock.
            ticket.wake.acquire()
            if not ticket.done:  # its turn: the queue (this request first) is its group
                with self._lock:
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
            with self._lock:
                for t in group:
                    t.done = True
                self.groups += 1
                self.requests += len(group)
                woken = [t.wake for t in group[1:] if t.wake is not None]
                if self._queue:  # the first waiter writes next; the write lock stays taken
                    woken.append(self._queue[0].wake)
                else:
                    self._writing = False
            for wake in woken:
                if wake is not None:
                    wake.release()

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


# -- one group commit per database, shared by every kind of request ---------------------
#
# The inbox's puts and the writers' confirmations are the daemon's frequent small
# transactions. Queued together, they share one transaction (a kind's statements once
# per group, not once per kind): under a busy interpreter, each statement of a
# transaction holding the write lock waits for the interpreter lock again, so fewer
# transactions hold the write lock for less time in all.

_Writer = Callable[[sqlite3.Connection, Sequence[Any]], None]
_KINDS: dict[type, tuple[_Writer, Callable[[Any], Database]]] = {}
_SHARED: weakref.WeakKeyDictionary[Database, GroupCommit[Any]] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def register(kind: type[T], write: Callable[[sqlite3.Connection, Sequence[T]], None],
             database_of: Callable[[T], Database]) -> None:
    """Let requests of `kind` go through `shared` group commits: `write(tx, requests)`
    writes them in the open transaction `tx` of `database_of(request)`."""
    _KINDS[kind] = (write, database_of)


def shared(db: Database) -> GroupCommit[Any]:
    """The group commit of `db` for every registered kind of request."""
    with _SHARED_LOCK:
        group = _SHARED.get(db)
        if group is None:
            group = _SHARED[db] = GroupCommit(_write_kinds)
        return group


def _write_kinds(requests: Sequence[Any]) -> None:
    by_kind: dict[type, list[Any]] = {}
    for request in requests:  # kinds in the order they first came
        by_kind.setdefault(type(request), []).append(request)
    db = _KINDS[type(requests[0])][1](requests[0])
    with db.transaction() as tx:
        for kind, batch in by_kind.items():
            _KINDS[kind][0](tx, batch)
