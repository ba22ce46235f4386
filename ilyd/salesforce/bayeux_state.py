"""Public state types of the Bayeux client: connection states, status reports, replay
gaps and the backoff policy (re-exported by `ilyd.salesforce.bayeux`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ilyd.backoff import Backoff

__all__ = ["BackoffPolicy", "ReplayGap", "StreamState", "StreamStatus"]


class StreamState(StrEnum):
    """Where the connection stands, as an org's status shows it."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    BACKOFF = "backoff"
    STOPPED = "stopped"


@dataclass(frozen=True)
class StreamStatus:
    """A state change: `reason` is a FailureKind value (or "" when healthy), `detail` the
    server's text, `retry_in` seconds until the next attempt in BACKOFF."""

    state: StreamState
    reason: str = ""
    detail: str = ""
    retry_in: float | None = None


@dataclass(frozen=True)
class ReplayGap:
    """The server no longer held `rejected` for `channel`; events since may be missing."""

    channel: str
    rejected: int
    detail: str


@dataclass(frozen=True)
class BackoffPolicy:
    """Capped exponential backoff with equal jitter (`ilyd.backoff`) for repeated
    failures, plus the long wait for limit/permission errors.

    Salesforce keeps a Bayeux session only if the client reconnects within 40 s of the
    last response
    (https://developer.salesforce.com/docs/platform/api-streaming/guide/using-streaming-api-timeouts.html):
    the default schedule keeps each of the first six waits of a failing run (at most
    1, 2, 4 ... 32 s) inside that window.
    """

    base: float = 1.0
    cap: float = 300.0
    long: float = 600.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th consecutive failure (1-based)."""
        return Backoff(self.base, self.cap).delay(failures)
