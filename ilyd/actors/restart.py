"""The supervisor's restart policy as plain, clock-driven logic (no threads, no pykka).

Semantics from Supervisor's process states: an org that fails soon after it started
(within `start_secs`) counts a quick failure; each failure waits an exponentially
growing delay with equal jitter (BACKOFF, `ilyd.backoff`); after `start_retries` quick
failures in a row the org is FATAL and stays down until an operator restarts it or the
config is reloaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ilyd.actors.messages import DetailValue, OrgState, OrgStatus
from ilyd.backoff import Backoff
from ilyd.config import OrgConfig, OrgName


@dataclass(frozen=True)
class RestartPolicy:
    """How eagerly failed orgs are started again."""

    start_secs: float = 10.0  # a failure sooner than this after a start is "quick"
    start_retries: int = 5  # quick failures in a row tolerated before fatal
    backoff_initial: float = 1.0
    backoff_max: float = 300.0

    def delay(self, attempt: int, rand: float) -> float:
        """Seconds to wait before start number `attempt` (1-based); `rand` in [0, 1).

        Equal jitter: orgs failing together spread out, yet each waits at least half
        the schedule, since every start costs the org a sign-in and its checks."""
        return Backoff(self.backoff_initial, self.backoff_max).delay(attempt, rand)


@dataclass
class OrgSlot:
    """Everything the supervisor knows about one configured org."""

    name: OrgName
    config: OrgConfig | None  # None: the org's table has errors
    problems: tuple[str, ...] = ()
    state: OrgState = OrgState.STOPPED
    since: float = 0.0
    last_error: str | None = None
    incarnation: int = 0
    started_at: float | None = None  # monotonic time it last reached running
    quick_failures: int = 0
    restarts: int = 0
    retry_at: float | None = None  # wall time of the scheduled retry
    # What the org's parts published; read it freely, change it only through
    # `merge_detail` and `clear_detail`, which tell `status` to build afresh.
    detail: dict[str, DetailValue] = field(default_factory=dict)
    problem_since: float | None = None  # monotonic time its current problem was first seen
    ref: Any = None  # the live OrgActor's ActorRef
    stopping: Any = None  # an OrgActor asked to stop that has not confirmed yet
    stopping_incarnation: int = 0  # the incarnation `stopping` runs
    start_pending: bool = False  # start as soon as `stopping` is gone
    # The last `status()` and what it was built from. The control thread and a worker's
    # front ask for every org's status each second, and an idle org's rarely changes.
    _detail_version: int = field(default=0, repr=False, compare=False)
    _status_of: tuple[Any, ...] | None = field(default=None, repr=False, compare=False)
    _status: OrgStatus | None = field(default=None, repr=False, compare=False)

    def merge_detail(self, detail: Iterable[tuple[str, DetailValue | None]]) -> None:
        """Set each (key, value) of `detail`; a None value removes the key."""
        for key, value in detail:
            if value is None:
                self.detail.pop(key, None)
            else:
                self.detail[key] = value
        self._detail_version += 1

    def clear_detail(self) -> None:
        """Forget everything the parts published (a new incarnation finds out again)."""
        self.detail.clear()
        self._detail_version += 1

    def status(self) -> OrgStatus:
        """A frozen copy for the control thread (the previous one while nothing it shows
        has changed)."""
        retry_at = self.retry_at if self.state is OrgState.BACKOFF else None
        built_of = (self.state, self.since, self.last_error, self.restarts, retry_at,
                    self._detail_version)
        if self._status is None or built_of != self._status_of:
            self._status_of = built_of
            self._status = OrgStatus(
                name=self.name,
                state=self.state,
                since=self.since,
                last_error=self.last_error,
                restarts=self.restarts,
                detail=tuple(sorted(self.detail.items())),
                retry_at=retry_at,
            )
        return self._status


def on_failure(slot: OrgSlot, policy: RestartPolicy, now: float, rand: float,
               *, never_fatal: bool = False) -> float | None:
    """Record a failure at monotonic `now`; return the backoff delay, or None for fatal.
    `never_fatal`: keep backing off (up to the longest delay) however often it fails."""
    quick = slot.started_at is None or now - slot.started_at < policy.start_secs
    slot.quick_failures = slot.quick_failures + 1 if quick else 1
    slot.started_at = None
    if slot.quick_failures > policy.start_retries:
        if not never_fatal:
            return None
        slot.quick_failures = policy.start_retries
    return policy.delay(slot.quick_failures, rand)
