"""When a failed provisioning run is worth trying again, and how long to wait.

Plain logic (no threads): the provisioner actor asks `ilyd.errors.is_retryable` about
the exception and `StartupRetry` for the delay. Transient failures heal on their own — Salesforce
unreachable or answering 5xx, the daily API allowance spent — so the actor retries with
exponential, jittered, capped delays. Anything else (a refused grant, a missing
permission, API access off, a bug in our request) needs a person: it is published and
left until `ilyd ctl provision` or an org restart.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ilyd.backoff import Backoff


@dataclass
class StartupRetry:
    """Capped exponential backoff with equal jitter (`ilyd.backoff`): attempt n waits
    between half and all of initial·2^(n-1) s, never more than `maximum`. Orgs sharing
    an outage spread out, and each run, which costs the org API calls, waits at least
    half the schedule."""

    initial: float = 5.0
    maximum: float = 240.0
    attempts: int = 0  # consecutive transient failures so far
    rand: random.Random = field(default_factory=random.Random, repr=False)

    def next_delay(self) -> float:
        """Count one more failure; seconds to wait before the next try."""
        self.attempts += 1
        return Backoff(self.initial, self.maximum).delay(self.attempts, self.rand.random())

    def reset(self) -> None:
        """A run succeeded (or an operator took over): start again from `initial`."""
        self.attempts = 0
