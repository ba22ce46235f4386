"""Messages between the control thread, the supervisor and the org actors.

All are frozen dataclasses: pykka never copies messages, so they must be immutable.
Org -> supervisor messages carry the org's `incarnation` (one per start) so the
supervisor can ignore news from an org instance it has already replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ilyd.config import Config, OrgName

# Values children may publish as org detail (shown by `ilyd ctl orgs`).
DetailValue = str | int | float | bool | None


class OrgState(StrEnum):
    """The supervisor's view of one org (Supervisor's process states, plus ours)."""

    STARTING = "starting"
    RUNNING = "running"
    DEGRADED = "degraded"  # running, but not enriching: see ilyd.actors.health
    BACKOFF = "backoff"  # failed; waiting before the next start
    FATAL = "fatal"  # failed too often too quickly; down until restart or reload
    PAUSED = "paused"  # stopped by `ilyd ctl pause`; survives daemon restarts
    STOPPED = "stopped"  # enabled = false
    CONFIG_ERROR = "config_error"  # its [[org]] table is invalid


class OrgMode(StrEnum):
    """How an org receives changes (published as detail key `mode`)."""

    STREAMING = "streaming"
    POLLING = "polling"
    PARTIAL = "partial"


class ConnectionState(StrEnum):
    """The org's Salesforce connection (published as detail key `connection`)."""

    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    BACKOFF = "backoff"


# ----------------------------------------------------------- org -> supervisor (tell)


@dataclass(frozen=True)
class OrgStarted:
    """The org actor and all its children started."""

    org: OrgName
    incarnation: int


@dataclass(frozen=True)
class OrgFailed:
    """The org (or one of its children) failed; the supervisor restarts it after a backoff."""

    org: OrgName
    incarnation: int
    error: str
    # The state disk failed (full, read-only): retried with backoff for as long as it
    # lasts, never FATAL, since the fix is on the machine, not in the org.
    disk: bool = False
    # Salesforce refused the org's config (an [org.scope] condition): config_error, not
    # retried until the config changes or an admin restarts the org.
    config: bool = False


@dataclass(frozen=True)
class OrgStopped:
    """The org actor finished stopping (its children are stopped)."""

    org: OrgName
    incarnation: int


@dataclass(frozen=True)
class OrgReport:
    """Detail published by an org or its children, merged into the org's status.

    `detail` is a tuple of (key, value) pairs; a None value removes the key. Common keys:
    mode (OrgMode), connection (ConnectionState), reason, throttled, needs_reauth.
    """

    org: OrgName
    incarnation: int
    detail: tuple[tuple[str, DetailValue], ...]

    @classmethod
    def of(cls, org: OrgName, incarnation: int, **detail: DetailValue) -> OrgReport:
        """Build a report from keyword arguments."""
        return cls(org, incarnation, tuple(sorted(detail.items())))


# ------------------------------------------------ control thread -> supervisor (ask)


@dataclass(frozen=True)
class Ping:
    """Liveness: the supervisor answers True after sweeping its org actors."""


@dataclass(frozen=True)
class GetSnapshot:
    """Ask for a `SupervisorSnapshot`."""


@dataclass(frozen=True)
class GetCounts:
    """Ask for the number of orgs per state (states with no org omitted): what the
    once-a-second STATUS= line needs, without building every org's status."""


@dataclass(frozen=True)
class PauseOrg:
    """Stop the org and remember it is paused (until `ResumeOrg`)."""

    org: OrgName


@dataclass(frozen=True)
class ResumeOrg:
    """Start a paused org again."""

    org: OrgName


@dataclass(frozen=True)
class RestartOrg:
    """Stop and start the org (also the way out of fatal)."""

    org: OrgName


@dataclass(frozen=True)
class ApplyConfig:
    """Switch to a new config: start added orgs, stop removed ones, restart changed ones."""

    config: Config
    generation: int


@dataclass(frozen=True)
class GetParts:
    """Ask an org actor: (name, kind) of each part it runs, in start order."""


@dataclass(frozen=True)
class RetryOrg:
    """Internal: the backoff delay of an org's incarnation has passed."""

    org: OrgName
    incarnation: int


# ------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class OrgStatus:
    """One org as `ilyd ctl orgs` shows it."""

    name: OrgName
    state: OrgState
    since: float  # Unix time the org entered `state`
    last_error: str | None
    restarts: int
    detail: tuple[tuple[str, DetailValue], ...]
    retry_at: float | None = None  # Unix time of the next start, in backoff


@dataclass(frozen=True)
class SupervisorSnapshot:
    """Every org's status, in config order, and the config generation."""

    generation: int
    orgs: tuple[OrgStatus, ...]

    def counts(self) -> dict[str, int]:
        """Number of orgs per state (states with no org omitted)."""
        counts: dict[str, int] = {}
        for org in self.orgs:
            counts[org.state] = counts.get(org.state, 0) + 1
        return counts

    def summary(self) -> str:
        """One line, e.g. ``3 orgs: 2 running, 1 backoff`` (systemd STATUS=)."""
        return summarize(self.counts())


def summarize(counts: dict[str, int]) -> str:
    """``3 orgs: 2 running, 1 backoff`` (or ``1 org: 1 running``) from orgs by state."""
    parts = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()) if n)
    total = sum(counts.values())
    return f"{total} org{'' if total == 1 else 's'}" + (f": {parts}" if parts else "")
