"""The org's API budget and Bulk batch allowance, as a resync sees them.

ilyd may use `api_budget_ratio` of the org's daily API allowance (shared with every
other integration). The usage comes free with each response (`Sforce-Limit-Info`);
once it reaches the ratio the resync pauses and probes `GET /limits` (one call) now and
then until the rolling 24-hour window has freed calls. Bulk ingest jobs also spend the
daily batch allowance (one batch per 10,000 rows, shared with Bulk API 1.0); a job is
only sent when the allowance left covers it. A run may also have a share of its own (the
scheduled refresh): a `gate` that says how long to hold while that share is spent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog

from ilyd.errors import AuthError, RequestLimitError, SalesforceError
from ilyd.salesforce.limits import Usage
from ilyd.salesforce.rest import RestClient

__all__ = ["ROWS_PER_BATCH", "Budget", "Cancelled", "Gate"]

log = structlog.get_logger(__name__)

# Salesforce cuts Bulk 2.0 ingest data into batches of 10,000 records.
ROWS_PER_BATCH = 10_000


# None when calls may be made, else (seconds to hold before asking again, why).
Gate = Callable[[], tuple[float, str] | None]


class Cancelled(Exception):  # noqa: N818 - control flow, not an error
    """The operator cancelled the resync."""


class Budget:
    """Pauses the calling thread while the org's allowances are spent."""

    def __init__(self, rest: RestClient, ratio: float, *, probe_seconds: float,
                 cancelled: threading.Event,
                 on_pause: Callable[[str | None], None], gate: Gate | None = None) -> None:
        self._rest = rest
        self._gate = gate
        self.ratio = ratio
        self._probe_seconds = probe_seconds
        self._cancelled = cancelled
        self._on_pause = on_pause  # called with the reason, then with None on resume
        self._batches_left: int | None = None

    def _limits(self) -> dict[str, Any]:
        try:
            return self._rest.limits()
        except RequestLimitError:
            # Spent to the last call: the usage header of the refusal says so.
            return {}
        except AuthError:
            raise
        except SalesforceError as exc:
            # /limits needs View Setup and Configuration: without it the batch allowance
            # is unknown (Salesforce refuses a job past it) and the usage comes from the
            # refusal's Sforce-Limit-Info header.
            log.info("resync_limits_unreadable", error=exc.message)
            return {}

    def _over(self, usage: Usage | None) -> bool:
        return usage is not None and usage.max > 0 and usage.ratio >= self.ratio

    def wait(self, *, spent: bool = False) -> None:
        """Return when the API budget allows calls (at once if it does); `spent`: a call
        was just refused with REQUEST_LIMIT_EXCEEDED. Raises Cancelled."""
        self.check_cancel()
        if self._gate is not None:
            self._hold(self._gate)
        if not spent and not self._over(self._rest.api_usage):
            return
        usage = self._rest.api_usage
        reason = (f"API budget: {usage.used}/{usage.max} calls used, ilyd may use "
                  f"{self.ratio:.0%}" if usage else "API limit reached")
        log.warning("resync_paused", reason=reason)
        self._on_pause(reason)
        while True:
            if self._cancelled.wait(self._probe_seconds):
                raise Cancelled
            self._limits()
            if not self._over(self._rest.api_usage):
                log.info("resync_resumed", usage=str(self._rest.api_usage))
                self._on_pause(None)
                return

    def _hold(self, gate: Gate) -> None:
        """Wait while the run's own share is spent (no call: the gate counts locally)."""
        paused = False
        while (held := gate()) is not None:
            seconds, reason = held
            if not paused:
                log.warning("resync_paused", reason=reason)
                self._on_pause(reason)
                paused = True
            if self._cancelled.wait(max(0.01, min(seconds, self._probe_seconds))):
                raise Cancelled
        if paused:
            log.info("resync_resumed", usage=str(self._rest.api_usage))
            self._on_pause(None)

    def reserve_batches(self, rows: int) -> None:
        """Wait until the Bulk batch allowance covers an ingest job of `rows` rows."""
        needed = -(-rows // ROWS_PER_BATCH)
        if self._batches_left is None:
            self._batches_left = _remaining(self._limits(), "DailyBulkApiBatches")
        paused = False
        while self._batches_left is not None and self._batches_left < needed:
            if not paused:
                reason = (f"Bulk API batch allowance: {self._batches_left} batches left "
                          f"today, the next job needs {needed}")
                log.warning("resync_paused", reason=reason)
                self._on_pause(reason)
                paused = True
            if self._cancelled.wait(self._probe_seconds):
                raise Cancelled
            self._batches_left = _remaining(self._limits(), "DailyBulkApiBatches")
        if paused:
            self._on_pause(None)
        if self._batches_left is not None:
            self._batches_left -= needed

    def check_cancel(self) -> None:
        """Raise Cancelled once the operator asked to stop."""
        if self._cancelled.is_set():
            raise Cancelled


def _remaining(limits: dict[str, Any], name: str) -> int | None:
    entry = limits.get(name) or {}
    value = entry.get("Remaining")
    return int(value) if value is not None else None
