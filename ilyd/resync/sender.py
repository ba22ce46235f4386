"""A thread that sends a resync's batches in order while the engine enriches the next.

Reading a page and enriching it is CPU work; sending a batch is mostly waiting (the
"changed elsewhere" query, the upload, the state database). With one sender thread the
two overlap, and the single queue keeps batches in read order, which the checkpoint
relies on (a batch's locator moves on only after every earlier batch was sent).
The queue holds one batch: memory stays at two batches' spools (on disk past 4 MB).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["BatchSender"]

T = TypeVar("T")
_STOP = object()
_PUT_WAIT_SECONDS = 0.1


class BatchSender(Generic[T]):
    """Runs `send(item)` for each `put` item on its own thread, in order.

    An exception from `send` stops the thread; the next `put` or `finish` raises it in
    the caller. `discard(item)` is called for items never sent (after a failure or
    `abort`), to release their spool files.
    """

    def __init__(self, send: Callable[[T], None], discard: Callable[[T], None],
                 name: str) -> None:
        self._send = send
        self._discard = discard
        self._queue: queue.Queue[object] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is not None:
                self._discard(item)  # type: ignore[arg-type]
                continue
            try:
                self._send(item)  # type: ignore[arg-type]
            except BaseException as exc:  # handed to the caller's thread, re-raised there
                self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: T) -> None:
        """Queue `item` (waits while the previous one is still queued); raises the
        error that stopped the sender, if any."""
        while True:
            self._raise()
            try:
                self._queue.put(item, timeout=_PUT_WAIT_SECONDS)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    self._discard(item)
                    raise RuntimeError("the resync sender thread is gone") from None

    def finish(self) -> None:
        """Wait until every queued item is sent; raise the sender's error, if any."""
        self._queue.put(_STOP)
        self._thread.join()
        self._raise()

    def abort(self) -> None:
        """Stop after the item being sent (the caller is unwinding); drop the rest."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                self._discard(item)  # type: ignore[arg-type]
        self._queue.put(_STOP)
        self._thread.join()
