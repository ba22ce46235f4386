"""When a failed provisioning run is worth trying again, and how long to wait.

Plain logic (no threads): the provisioner actor asks `is_transient` about the exception
and `StartupRetry` for the delay. Transient failures heal on their own — Salesforce
unreachable or answering 5xx, the daily API allowance spent — so the actor retries with
exponential, jittered, capped delays. Anything else (a refused grant, a missing
permission, API access off, a bug in our request) needs a person: it is published and
left until `ilyd ctl provision` or an org restart.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ilyd.errors import (
    AuthError,
    RequestLimitError,
    SalesforceError,
    SalesforceUnavailableError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same provisioning again later may succeed without anyone acting."""
    if isinstance(exc, AuthError):  # refused credentials / grant: retrying cannot help
        return False
    if isinstance(exc, SalesforceUnavailableError | RequestLimitError):
        return True
    return isinstance(exc, SalesforceError) and exc.status is not None and exc.status >= 500


@dataclass
class StartupRetry:
    """Exponential backoff with jitter, capped: attempt n waits about initial·2^(n-1) s,
    never more than `maximum` (± `jitter` of it, so orgs sharing an outage spread out)."""

    initial: float = 5.0
    maximum: float = 240.0
    jitter: float = 0.25
    attempts: int = 0  # consecutive transient failures so far
    rand: random.Random = field(default_factory=random.Random, repr=False)

    def next_delay(self) -> float:
        """Count one more failure; seconds to wait before the next try."""
        self.attempts += 1
        base = min(self.maximum, self.initial * 2 ** (self.attempts - 1))
        spread = 1.0 - self.jitter + 2.0 * self.jitter * self.rand.random()
        return min(self.maximum, base * spread)

    def reset(self) -> None:
        """A run succeeded (or an operator took over): start again from `initial`."""
        self.attempts = 0
