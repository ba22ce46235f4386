"""The org's API budget: when ilyd may spend calls, and when it must hold off.

Salesforce reports the org's rolling 24-hour usage on every response
(`Sforce-Limit-Info`). Past `api_budget_ratio` of the allowance — or when Salesforce
answers REQUEST_LIMIT_EXCEEDED — the org is *throttled*: nothing is dropped, work
waits in the durable inbox. While throttled, one cheap probe (`GET /limits`) every
`probe_interval` seconds learns whether the window has rolled, and work resumes by
itself. /limits needs View Setup and Configuration: a user without it is refused, but
the refusal carries `Sforce-Limit-Info` like every answer, and that usage decides.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from ilyd.errors import IlydError, RequestLimitError
from ilyd.salesforce.limits import Usage

__all__ = ["ApiBudget"]

log = structlog.get_logger(__name__)


class ApiBudget:
    """Thread-safe throttle state of one org, shared by its writer, enricher and poller."""

    def __init__(
        self,
        ratio: float,
        usage: Callable[[], Usage | None],
        probe: Callable[[], object],
        *,
        probe_interval: float = 60.0,
        on_change: Callable[[bool, str | None], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio = ratio
        self._usage = usage
        self._probe = probe
        self.probe_interval = probe_interval
        self._on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self._throttled = False
        self._reason: str | None = None
        self._next_probe = 0.0

    @property
    def throttled(self) -> bool:
        """Whether the org is holding off right now (no probe; see `allow`)."""
        with self._lock:
            return self._throttled

    @property
    def reason(self) -> str | None:
        """Why the org is throttled, for status."""
        with self._lock:
            return self._reason

    def allow(self) -> bool:
        """True when a call may be spent; probes (rarely) while throttled."""
        with self._lock:
            if not self._throttled:
                usage = self._usage()
                if usage is None or usage.ratio < self.ratio:
                    return True
                self._set(True, self._over_budget(usage))
                return False
            if self._clock() < self._next_probe:
                return False
            self._next_probe = self._clock() + self.probe_interval
        failed: str | None = None
        try:
            self._probe()
        except RequestLimitError:
            return False
        except IlydError as exc:
            # A refused probe (no View Setup and Configuration, a 5xx) still answered with
            # the usage header; only a probe that learned nothing keeps the org waiting.
            failed = str(exc)
        usage = self._usage()
        with self._lock:
            if failed is not None and usage is None:
                log.info("api_budget_probe_failed", error=failed)
                return False
            if usage is not None and usage.ratio >= self.ratio:
                return False
            self._set(False, None)
            return True

    def limit_exceeded(self, error: RequestLimitError) -> None:
        """Salesforce refused a call: the org's allowance is spent."""
        with self._lock:
            self._set(True, f"Salesforce answered REQUEST_LIMIT_EXCEEDED ({error.message})")

    def _over_budget(self, usage: Usage) -> str:
        return (f"API usage {usage.used}/{usage.max} ({usage.ratio:.0%}) reached the budget of "
                f"{self.ratio:.0%} (api_budget_ratio)")

    def _set(self, throttled: bool, reason: str | None) -> None:
        # Caller holds the lock.
        if throttled:
            self._next_probe = self._clock() + self.probe_interval
        changed = throttled != self._throttled
        self._throttled, self._reason = throttled, reason
        if changed:
            if throttled:
                log.warning("org_throttled", reason=reason)
            else:
                log.info("org_throttle_lifted")
            if self._on_change is not None:
                self._on_change(throttled, reason)
