"""Exponential backoff with jitter: the one schedule every retry and restart loop uses.

Attempt n (1-based) has a ceiling of `initial` · `factor`^(n-1), never above `cap`; the
wait is drawn below that ceiling with one of the two jitters of "Exponential Backoff And
Jitter" (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/):

- `Jitter.EQUAL`: uniform in [ceiling/2, ceiling]. Never less than half the ceiling, so
  a loop that keeps failing still slows down as the schedule says; for restarts and
  retries whose every attempt costs Salesforce calls (an org's start, a provisioning
  run, a resent request) or the operator's patience (a crash-looping worker).
- `Jitter.FULL`: uniform in [0, ceiling]. The shortest waits on average and the widest
  spread; for reconnecting where coming back soon is worth more than the extra attempts
  (a Bayeux client, whose session survives only if it reconnects within 40 s).

Leaf module: imports nothing of ilyd, so every layer can use it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Backoff", "Jitter"]


class Jitter(StrEnum):
    """How the wait is drawn below the attempt's ceiling."""

    FULL = "full"  # uniform in [0, ceiling]
    EQUAL = "equal"  # uniform in [ceiling/2, ceiling]


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with the stated `jitter` (see the module docstring)."""

    initial: float
    cap: float
    jitter: Jitter
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
        """Seconds to wait before attempt number `attempt` (1-based).

        `rand` in [0, 1) draws the jitter; `random.random()` when None. Pass one to make
        the wait reproducible, or to give a group of items failing together one wait."""
        ceiling = self.ceiling(attempt)
        floor = ceiling / 2 if self.jitter is Jitter.EQUAL else 0.0
        return floor + (ceiling - floor) * (random.random() if rand is None else rand)
