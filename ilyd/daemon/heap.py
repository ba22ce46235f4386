"""Handing the heap's free memory back to the system (glibc's `malloc_trim`).

glibc keeps what a process frees inside its arenas (one per thread that allocated at
once with another, up to eight per CPU) until the top of an arena is free. Starting a
thousand orgs — their sign-ins, checks, first replies and provisioning runs, all freed
once they stream — leaves holes in every arena, and the resident size stays near its
peak while the daemon idles. `malloc_trim(0)` gives the free pages back. Where the C
library has no `malloc_trim` (musl, macOS) `HeapTrimmer` does nothing.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable

__all__ = ["TRIM_EVERY", "HeapTrimmer"]

# Seconds between trims: each walks every arena under its lock (milliseconds for a
# thousand orgs), and what the start left behind is given back within this long of it.
TRIM_EVERY = 30.0


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim  # type: ignore[no-any-return]


class HeapTrimmer:
    """Trims the heap at most every `every` seconds; `due()` from the main loop's tick."""

    def __init__(self, every: float = TRIM_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._trim = _malloc_trim()
        self._every = every
        self._clock = clock
        self._next = clock() + every
        self.trims = 0  # trims run (for tests and benchmarks)

    @property
    def available(self) -> bool:
        """Whether this C library can trim at all."""
        return self._trim is not None

    def due(self) -> None:
        """Trim if `every` seconds passed since the last trim (or the start)."""
        now = self._clock()
        if self._trim is None or now < self._next:
            return
        self._next = now + self._every
        self._trim(0)
        self.trims += 1
