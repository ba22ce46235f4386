"""Client-side throttling for vendor APIs: a token bucket and a rate-limit pause.

Vendors bill and throttle per request, so ilyd keeps under the configured rate itself
instead of learning the limit from 429s; when a 429 arrives anyway, every caller pauses
for the Retry-After the vendor asked for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Allows `rate` acquisitions per second on average, bursts up to `capacity`."""

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"token bucket rate must be positive, not {rate}")
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(1.0, rate)
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Take one token, blocking until one is available."""
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                wait = (1.0 - self._tokens) / self.rate
            time.sleep(wait)


class Pause:
    """A shared "do not call before" instant, set from a vendor's Retry-After."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until = 0.0
        self._lock = threading.Lock()

    def extend(self, seconds: float) -> None:
        """Pause for at least `seconds` from now."""
        with self._lock:
            self._until = max(self._until, self._clock() + seconds)

    def remaining(self) -> float:
        """Seconds left in the pause (0 when not paused)."""
        with self._lock:
            return max(0.0, self._until - self._clock())
