"""Exponential backoff with equal jitter: the one schedule every retry and restart loop uses.

Attempt n (1-based) has a ceiling of `initial` · `factor`^(n-1), never above `cap`, and
waits a uniform draw in [ceiling/2, ceiling] — "equal jitter" in the terms of
https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/.

Equal rather than full jitter (a draw in [0, ceiling]): clients failing together still
spread out, yet no wait is ever close to nothing, so a loop that keeps failing slows down
as the schedule says, and each wait grows from the last one's range. That matters for
every user here: an org's restart and a provisioning run cost the org API calls, a resent
request costs one more, and the wait is published (`retry_in`) for operators to read. A
prompt reconnect, where Salesforce's CometD advice wants one (interval 0 after a dropped
session), is made before any backoff starts, not by drawing a short wait.

A thread that belongs to an org (each of the org's actors) names the org's stop event
with `stop_waits_with`; its retry waits (`pause`) then end the moment the org stops, so a
stop never waits out a backoff of up to half a minute.

Leaf module: imports only `ilyd.errors`, so every layer can use it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ilyd.errors import StoppingError

__all__ = ["Backoff", "pause", "stop_waits_with", "stop_waits_within"]

_thread = threading.local()


def stop_waits_with(event: threading.Event | None) -> None:
    """Have the calling thread's `pause`s end as soon as `event` is set (None: never)."""
    _thread.stopping = event


@contextmanager
def stop_waits_within(event: threading.Event) -> Iterator[None]:
    """`stop_waits_with(event)` for the block only, for a thread that serves others after
    it (a shared pool's): the thread's previous stop event is back once the block ends."""
    before: threading.Event | None = getattr(_thread, "stopping", None)
    _thread.stopping = event
    try:
        yield
    finally:
        _thread.stopping = before


def pause(seconds: float, what: str = "retry") -> None:
    """Wait `seconds` before trying again; raises StoppingError at once when the calling
    thread's stop event (`stop_waits_with`) is or becomes set."""
    event: threading.Event | None = getattr(_thread, "stopping", None)
    if event is None:
        time.sleep(seconds)
    elif event.wait(seconds) or event.is_set():
        raise StoppingError(f"{what}: not tried again, the org is stopping")


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with equal jitter (see the module docstring)."""

    initial: float
    cap: float
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.cap:
            raise ValueError(f"backoff needs 0 < initial <= cap, got initial={self.initial} "
                             f"and cap={self.cap}")
        if self.factor < 1:
            raise ValueError(f"backoff factor must be at least 1, got {self.factor}")

    def ceiling(self, attempt: int) -> float:
        """The longest wait before attempt number `attempt` (1-based; below 1 counts as 1)."""
        try:
            grown = self.initial * self.factor ** max(0, attempt - 1)
        except OverflowError:  # thousands of failures in a row: long past the cap
            return self.cap
        return min(self.cap, grown)

    def delay(self, attempt: int, rand: float | None = None) -> float:
        """Seconds to wait before attempt number `attempt` (1-based), in [ceiling/2, ceiling].

        `rand` in [0, 1) draws the jitter; `random.random()` when None. Pass one to make
        the wait reproducible, or to give a group of items failing together one wait."""
        ceiling = self.ceiling(attempt)
        return ceiling / 2 * (1.0 + (random.random() if rand is None else rand))
