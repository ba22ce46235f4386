"""Provider health: whether a source can be used at all, and what an admin must fix.

A provider whose credentials were refused (HTTP 401/403) or whose credits ran out keeps
refusing every lookup until its credentials are fixed and the org restarted;
calling it again would only spend requests. The chain skips a failing provider and
the org status shows its message.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class HealthState(StrEnum):
    """Whether a provider may be asked."""

    OK = "ok"
    FAILING = "failing"


@dataclass(frozen=True)
class ProviderHealth:
    """A provider's health and, when failing, the org-level message saying what to fix."""

    state: HealthState = HealthState.OK
    message: str | None = None

    @property
    def ok(self) -> bool:
        """True when the provider may be asked."""
        return self.state is HealthState.OK


HEALTHY = ProviderHealth()
