"""Waking an org's enricher when work arrives, instead of having it poll.

`Inbox.put` says nothing to anyone, so an enricher that only polled would either spin
(a thousand idle orgs each reading the inbox every few milliseconds) or be slow to
notice. Producers in this process call `Wake.set()` right after they changed the org's
rows (the writer giving rows back, maybe with a delay; always correct: the enricher then
reads the inbox), or better `Wake.stored(n)` right after they put n new rows (the
subscriber, the poller, a catch-up): the enricher listens and runs a round at once, after
`stored` without first reading the inbox. Rows put by another process are
found by a fallback look every few seconds, scheduled on `TIMERS`: one thread for every
org's delayed calls, rather than a thread (or a blocked mailbox) per org.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Sequence

import structlog

from ilyd.store.inbox import Handed

__all__ = ["TIMERS", "Listener", "Timer", "Timers", "Wake"]

log = structlog.get_logger(__name__)


# Rows handed over and not yet taken, at most (a listener that falls behind reads the
# inbox instead).
_MAX_HANDED = 1000

Listener = Callable[[int | None], None]
"""Told how many new rows were stored, or None for any other change."""


class Wake:
    """One org's "the inbox has new rows" signal.

    `stored(n)` and `set()` call every listener (on the caller's thread: listeners must
    not block) and also set a plain flag, so `wait(timeout)` works for code that prefers
    to block.
    """

    def __init__(self) -> None:
        self._flag = threading.Event()
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        # Rows handed over with `stored` since the listener last took them, and whether
        # every row stored since then was (else the listener reads the inbox).
        self._handed: list[Handed] = []
        self._handed_rows = 0
        self._all_handed = True

    def listen(self, callback: Listener) -> None:
        """Call `callback` on every `stored(n)` (with n) and `set()` (with None) until
        `unlisten`."""
        with self._lock:
            self._listeners.append(callback)

    def unlisten(self, callback: Listener) -> None:
        """Stop calling `callback` (no error if it was not listening)."""
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def stored(self, count: int, handed: Sequence[Handed] | None = None) -> None:
        """`count` new rows were put, claimable now: wake the listeners (none if 0).
        `handed`: every one of those rows, as the puts handed them over (`Inbox.put`),
        for the listener to take (`take_handed`) rather than read the inbox."""
        if count <= 0:
            return
        with self._lock:
            if self._listeners:
                if handed is None or self._handed_rows + count > _MAX_HANDED:
                    # Not all handed (or too many waiting): the listener reads the inbox,
                    # which holds them all.
                    self._handed.clear()
                    self._handed_rows = 0
                    self._all_handed = False
                elif self._all_handed:
                    self._handed.extend(handed)
                    self._handed_rows += count
        self._notify(count)

    def take_handed(self) -> tuple[list[Handed], bool]:
        """The rows handed over since the last call, and whether they are every row
        stored since (False: read the inbox for the others)."""
        with self._lock:
            handed, self._handed = self._handed, []
            complete, self._all_handed = self._all_handed, True
            self._handed_rows = 0
        return handed, complete

    def set(self) -> None:
        """Rows were put or given back, or leases changed: wake the listeners, which
        read the inbox to find out when rows come due."""
        self._notify(None)

    def _notify(self, stored: int | None) -> None:
        self._flag.set()
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            callback(stored)

    def is_set(self) -> bool:
        """Whether `set()` was called since the last `clear()`."""
        return self._flag.is_set()

    def clear(self) -> None:
        """Reset the flag."""
        self._flag.clear()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until `set()` (or the timeout); True if it was set."""
        return self._flag.wait(timeout)


class Timer:
    """A call scheduled on `Timers`; `cancel()` before it runs and it never does."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run it (harmless once it ran)."""
        self.cancelled = True


class Timers:
    """Delayed calls for the whole process, run one after another on one daemon thread.

    Callbacks must be quick and must not block (telling an actor is the intended use).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` after `delay` seconds, on the timers thread."""
        timer = Timer(self._clock() + max(0.0, delay), callback)
        with self._cond:
            heapq.heappush(self._heap, (timer.when, next(self._order), timer))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ilyd-timers",
                                                daemon=True)
                self._thread.start()
            if self._heap[0][2] is timer:
                self._cond.notify()
        return timer

    def pending(self) -> int:
        """How many calls wait (cancelled ones included until they are dropped)."""
        with self._cond:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    # A cancelled call is dropped at once rather than woken for at its time.
                    while self._heap and self._heap[0][2].cancelled:
                        heapq.heappop(self._heap)
                    now = self._clock()
                    if self._heap and self._heap[0][0] <= now:
                        _, _, timer = heapq.heappop(self._heap)
                        break
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
            if timer.cancelled:
                continue
            try:
                timer.callback()
            except Exception:  # one org's bug must not stop every org's wake-ups
                log.exception("timer_callback_failed")


TIMERS = Timers()
