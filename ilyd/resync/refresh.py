"""The scheduled refresh: records whose Ily Last Enriched is older than `refresh_after`
are enriched again in the background, as a resync run of their own.

A refresh is the resync engine (`ilyd.resync.engine.Resync`) over
`Ily_Last_Enriched__c < cutoff` (with `[org.scope]`, and the overwrite policies applied
to the values it reads), checkpointed in tables of its own (`ResyncStore(db, "refresh")`),
so an operator's `ilyd ctl resync` and the refresh never forget each other's run. The
engine picks REST or Bulk 2.0 from the backlog's size and writes only the values that
changed; a refresh also writes Last Enriched when nothing else changed, so a confirmed
record leaves the backlog instead of being read again at every round.

Spending: the refresh's own calls (every response of its own client that carried
`Sforce-Limit-Info`) are added up per ten minutes in the state database; once those of
the last 24 hours reach `refresh_api_share` of the org's daily allowance, the run holds
until enough of them age out (no call is made to find out). The org-wide budget
(`api_budget_ratio`) holds too, as for any resync. The ledger survives restarts.

Plain classes; the org's resync part (`ilyd.actors.resync`, `ilyd.actors.refresh`)
schedules the rounds and runs each in a thread of its own while it lasts.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from ilyd.errors import ProvisioningError
from ilyd.resync import reader
from ilyd.resync.checkpoint import ResyncStore, RunState
from ilyd.resync.engine import Resync, ResyncRequest
from ilyd.resync.plan import SUPPORTED_OBJECTS, build_plan, parse_since
from ilyd.salesforce.rest import RestClient
from ilyd.store.db import Database

__all__ = ["Backlog", "RefreshSchedule", "ShareGate", "count_backlog", "cutoff_for",
           "refresh_objects"]

log = structlog.get_logger(__name__)

_MIGRATIONS = (
    "CREATE TABLE refresh_schedule ("
    " org TEXT PRIMARY KEY, next_check REAL NOT NULL, backlog INTEGER, checked_at REAL);"
    "CREATE TABLE refresh_spend ("
    " org TEXT NOT NULL, bucket INTEGER NOT NULL, calls INTEGER NOT NULL,"
    " PRIMARY KEY (org, bucket))",
    # The org's daily allowance as last seen: a round's fresh client knows it only after
    # a call, and a spent share must hold before the first.
    "ALTER TABLE refresh_schedule ADD COLUMN allowance INTEGER",
)
# Salesforce's allowance is over a rolling 24 hours; the ledger keeps ten-minute buckets
# and counts a bucket until all of it is older than a day (a little early, never late).
_DAY = 86_400.0
_BUCKET = 600.0


def refresh_objects(objects: Sequence[str]) -> tuple[str, ...]:
    """The org's objects a refresh reads (those the resync supports)."""
    return tuple(o for o in objects if o in SUPPORTED_OBJECTS)


def cutoff_for(refresh_after: float, now: float | None = None) -> str:
    """The moment before which a record's enrichment is stale, as ISO 8601 UTC."""
    moment = dt.datetime.fromtimestamp((time.time() if now is None else now) - refresh_after,
                                       tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Backlog:
    """Stale records per object, counted against one cutoff."""

    cutoff: str
    counts: tuple[tuple[str, int], ...]

    @property
    def total(self) -> int:
        """Stale records over every object."""
        return sum(n for _, n in self.counts)


def count_backlog(rest: RestClient, objects: Sequence[str], cutoff: str,
                  scope: Sequence[tuple[str, str]] = ()) -> Backlog:
    """One COUNT() per object of the records a refresh with `cutoff` would read.

    An object whose Ily fields (Last Enriched at least) the integration user cannot write
    is left out, as the real-time path leaves it; raises ProvisioningError when that
    leaves none."""
    stale_before = parse_since(cutoff)
    plans = []
    refused: ProvisioningError | None = None
    for sobject in objects:
        try:
            plans += build_plan({sobject: rest.describe(sobject)}, (sobject,), None, scope,
                                stale_before=stale_before)
        except ProvisioningError as exc:
            log.info("refresh_object_left_out", sobject=sobject, reason=str(exc))
            refused = exc
    if not plans and refused is not None:
        raise refused
    return Backlog(cutoff, tuple((p.sobject, reader.count_records(rest, p)) for p in plans))


class RefreshSchedule:
    """The refresh's durable state besides its run: when to count the backlog next, the
    last count, and the ledger of its own API calls. Thread-safe."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        db.migrate("refresh_schedule", _MIGRATIONS)

    def next_check(self, org: str) -> float | None:
        """When the backlog is to be counted next (Unix time), None before the first."""
        row = self._db.connection().execute(
            "SELECT next_check FROM refresh_schedule WHERE org = ?", (org,)).fetchone()
        return None if row is None else float(row["next_check"])

    def backlog(self, org: str) -> int | None:
        """The last count of stale records, None before the first."""
        row = self._db.connection().execute(
            "SELECT backlog FROM refresh_schedule WHERE org = ?", (org,)).fetchone()
        return None if row is None or row["backlog"] is None else int(row["backlog"])

    def plan(self, org: str, next_check: float, backlog: int | None = None) -> None:
        """Set the next count (and, if given, the backlog just counted or estimated)."""
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO refresh_schedule(org, next_check, backlog, checked_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT(org) DO UPDATE SET"
                " next_check = excluded.next_check,"
                " backlog = COALESCE(excluded.backlog, refresh_schedule.backlog),"
                " checked_at = COALESCE(excluded.checked_at, refresh_schedule.checked_at)",
                (org, next_check, backlog, self._clock() if backlog is not None else None))

    def allowance(self, org: str) -> int | None:
        """The org's daily API allowance as last seen, None if never."""
        row = self._db.connection().execute(
            "SELECT allowance FROM refresh_schedule WHERE org = ?", (org,)).fetchone()
        return None if row is None or row["allowance"] is None else int(row["allowance"])

    def set_allowance(self, org: str, allowance: int) -> None:
        """Remember the org's daily API allowance (from Sforce-Limit-Info)."""
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO refresh_schedule(org, next_check, allowance) VALUES (?, 0, ?)"
                " ON CONFLICT(org) DO UPDATE SET allowance = excluded.allowance",
                (org, allowance))

    def add_calls(self, org: str, calls: int) -> None:
        """Count `calls` made now by the refresh."""
        if calls <= 0:
            return
        now = self._clock()
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO refresh_spend(org, bucket, calls) VALUES (?, ?, ?)"
                " ON CONFLICT(org, bucket) DO UPDATE SET calls = calls + excluded.calls",
                (org, int(now // _BUCKET), calls))
            conn.execute("DELETE FROM refresh_spend WHERE org = ? AND bucket < ?",
                         (org, int((now - 2 * _DAY) // _BUCKET)))

    def spent(self, org: str) -> list[tuple[float, int]]:
        """The refresh's calls of the last 24 hours: (when the bucket ages out, calls),
        oldest first."""
        now = self._clock()
        first = int((now - _DAY) // _BUCKET)
        rows = self._db.connection().execute(
            "SELECT bucket, calls FROM refresh_spend WHERE org = ? AND bucket >= ?"
            " ORDER BY bucket", (org, first)).fetchall()
        return [((r["bucket"] + 1) * _BUCKET + _DAY, int(r["calls"])) for r in rows]


class ShareGate:
    """The refresh's `Gate` (ilyd.resync.budget): holds while its own calls of the last
    24 hours reach `share` of the org's daily allowance."""

    def __init__(self, org: str, rest: RestClient, schedule: RefreshSchedule, share: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.org = org
        self._rest = rest
        self._schedule = schedule
        self.share = share
        self._clock = clock
        self._seen = rest.http.usage.calls
        self._allowance = schedule.allowance(org)

    def record(self) -> None:
        """Add the calls the client made since the last look to the ledger."""
        calls = self._rest.http.usage.calls
        self._schedule.add_calls(self.org, calls - self._seen)
        self._seen = calls

    def __call__(self) -> tuple[float, str] | None:
        self.record()
        usage = self._rest.api_usage
        if usage is not None and usage.max > 0 and usage.max != self._allowance:
            self._allowance = usage.max
            self._schedule.set_allowance(self.org, usage.max)
        if not self._allowance:
            return None
        allowed = self.share * self._allowance
        buckets = self._schedule.spent(self.org)
        spent = sum(n for _, n in buckets)
        if spent < allowed:
            return None
        # Hold until enough buckets age out to fall under the share again.
        left = spent
        until = self._clock()
        for ages_out, calls in buckets:
            left -= calls
            until = ages_out
            if left < allowed:
                break
        reason = (f"refresh share: {spent} calls in 24 h, the refresh may use "
                  f"{self.share:.0%} of {self._allowance}")
        return max(1.0, until - self._clock()), reason


def stale_run(store: ResyncStore, org: str) -> bool:
    """True when the store holds a refresh run still to finish (a restart or a yield
    interrupted it)."""
    run = store.run(org)
    return run is not None and run.state is RunState.RUNNING


def begin_refresh(engine: Resync, backlog: Backlog, rest_threshold: int) -> None:
    """Record a new refresh run of the objects with stale records, their counts already
    made (the engine then needs no COUNT() of its own)."""
    objects = tuple(o for o, n in backlog.counts if n > 0)
    engine.begin(ResyncRequest(objects, stale_before=backlog.cutoff))
    for sobject, total in backlog.counts:
        if total > 0:
            engine.store.set_object(engine.org, sobject, total=total,
                                    mode="rest" if total < rest_threshold else "bulk")
    log.info("refresh_started", org=engine.org, cutoff=backlog.cutoff,
             backlog=dict(backlog.counts))
