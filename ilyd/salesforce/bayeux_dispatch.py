"""Hands received events to the application on a thread of their own.

The connect loop must re-issue /meta/connect within 40 seconds of every reply
(Salesforce forgets the client otherwise), so it never runs application code: it
queues each batch here and goes back to the server — after a reply with events, once
the handler is done with them or a short while has passed (`wait_idle`): events that
come meanwhile wait on the server and arrive together in the next reply, where they
would otherwise have waited here, one exchange each, for the busy handler.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Dispatcher"]

# Batches waiting for a slow handler. When full, the connect loop waits: the server
# then forgets the client, and resubscribing from stored replay ids heals it.
_MAX_QUEUED_BATCHES = 10_000
# Batches that queued up while the handler was busy go to it as one (one transaction
# instead of many: a handler that fell behind catches up), up to this many items.
_MAX_MERGED_ITEMS = 2_000


class Dispatcher:
    """A single thread that calls `handler(batch)` with the submitted batches, in order.

    Batches submitted while the handler is busy are handed over together, as one batch.
    """

    def __init__(self, handler: Callable[[Sequence[Any]], None], *, name: str) -> None:
        self._handler = handler
        self._name = name
        # SimpleQueue (C) rather than Queue: a Queue's put and get each run a few dozen
        # lines of Condition bookkeeping, a noticeable share of a streamed event's CPU.
        self._queue: queue.SimpleQueue[Sequence[Any] | None] = queue.SimpleQueue()
        self._room = threading.Semaphore(_MAX_QUEUED_BATCHES)
        self._thread: threading.Thread | None = None
        # Set while nothing is queued or being handled. A race may set it with a batch
        # just queued: a connect then goes out early, which costs only the batching.
        self._idle = threading.Event()
        self._idle.set()

    @property
    def running(self) -> bool:
        """True while the dispatch thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the dispatch thread (once)."""
        if self.running:
            return
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def submit(self, batch: Sequence[Any]) -> None:
        """Queue a batch for the handler (waits while the queue is full)."""
        self._room.acquire()
        self._idle.clear()
        self._queue.put(batch)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every submitted batch has been handled, at most `timeout` seconds;
        returns whether it was (or `stop_waiting` was called)."""
        return self._idle.wait(timeout)

    def stop_waiting(self) -> None:
        """End every `wait_idle` now (the client is stopping)."""
        self._idle.set()

    def stop(self, timeout: float) -> None:
        """Deliver what is queued, then end the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._idle.set()  # nobody waits for a stopping dispatcher
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        get, get_nowait, room = self._queue.get, self._queue.get_nowait, self._room
        while (batch := get()) is not None:
            room.release()
            end = False
            if not self._queue.empty():
                merged = list(batch)
                while len(merged) < _MAX_MERGED_ITEMS:
                    try:
                        more = get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        end = True
                        break
                    room.release()
                    merged.extend(more)
                batch = merged
            try:
                self._handler(batch)
            finally:
                if self._queue.empty():
                    self._idle.set()
            if end:
                return
