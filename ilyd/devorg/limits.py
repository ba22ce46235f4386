"""API call accounting: Salesforce's rolling 24-hour request allowance.

Each authenticated REST/Tooling/Bulk request counts as one call. Usage is kept in
one-minute buckets so the window rolls like Salesforce's does without storing each call.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable

_WINDOW = 24 * 3600
_BUCKET = 60


class ApiUsage:
    """Per-org call counter over a rolling 24 h window, plus counts by endpoint."""

    def __init__(self, limit: Callable[[], int]) -> None:
        self._limit = limit
        self._buckets: deque[list[int]] = deque()  # [minute, count]
        self._total = 0
        self._lock = threading.Lock()
        self.by_endpoint: Counter[str] = Counter()

    def _expire(self, now: float) -> None:
        horizon = int(now - _WINDOW) // _BUCKET
        while self._buckets and self._buckets[0][0] <= horizon:
            self._total -= self._buckets.popleft()[1]

    def try_consume(self, endpoint: str) -> tuple[bool, int, int]:
        """Count one call unless the allowance is spent: (allowed, used, max)."""
        now = time.time()
        with self._lock:
            self._expire(now)
            limit = self._limit()
            if self._total >= limit:
                return False, self._total, limit
            minute = int(now) // _BUCKET
            if self._buckets and self._buckets[-1][0] == minute:
                self._buckets[-1][1] += 1
            else:
                self._buckets.append([minute, 1])
            self._total += 1
            self.by_endpoint[endpoint] += 1
            return True, self._total, limit

    def used(self) -> int:
        """Calls counted in the current window."""
        with self._lock:
            self._expire(time.time())
            return self._total

    def set_used(self, used: int) -> None:
        """Admin: pretend `used` calls were made in this minute (to reach the limit fast)."""
        with self._lock:
            self._buckets.clear()
            self._buckets.append([int(time.time()) // _BUCKET, used])
            self._total = used

    def reset(self) -> None:
        """Admin: forget all counted calls."""
        with self._lock:
            self._buckets.clear()
            self._total = 0
            self.by_endpoint.clear()
