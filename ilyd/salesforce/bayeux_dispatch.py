"""Hands received events to the application on a thread of their own.

The connect loop must re-issue /meta/connect within 40 seconds of every reply
(Salesforce forgets the client otherwise), so it never runs application code: it
queues each batch here and goes straight back to the server.
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


class Dispatcher:
    """A single thread that calls `handler(batch)` for each submitted batch, in order."""

    def __init__(self, handler: Callable[[Sequence[Any]], None], *, name: str) -> None:
        self._handler = handler
        self._name = name
        self._queue: queue.Queue[Sequence[Any] | None] = queue.Queue(_MAX_QUEUED_BATCHES)
        self._thread: threading.Thread | None = None

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
        """Queue a batch for the handler."""
        self._queue.put(batch)

    def stop(self, timeout: float) -> None:
        """Deliver what is queued, then end the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            self._handler(batch)
