"""Replay ids per (org, channel) and catch-up checkpoints per (org, object).

The replay id is where the Bayeux subscription resumes after a restart or a
re-handshake. It is written in the same transaction as the inbox rows of the event it
belongs to (see `ilyd.store.inbox.Inbox.put`), so "stored replay id" always means "every
event up to here is durably in the inbox".

The checkpoint is the newest change time (SystemModstamp, or the event's createdDate)
durably received for an object. When Salesforce no longer holds the stored replay id,
the subscriber resubscribes with -2 and a SOQL catch-up on `SystemModstamp >= since`
closes whatever the retained events do not cover. `since` is the earliest safe point
(`gap_start`): the checkpoint, or the stored replay id's own event time when that is
earlier or the only one known, else the time the channel was first subscribed (kept
here too) — never "a few seconds ago", which would skip a whole outage.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NewType

from ilyd.store.db import Database, execute_values

__all__ = ["ALL_RETAINED", "NEW_ONLY", "GapStart", "ReplayId", "ReplayStore"]

ReplayId = NewType("ReplayId", int)

# Salesforce's replay options: -1 = only events after subscribing, -2 = every retained event.
NEW_ONLY = ReplayId(-1)
ALL_RETAINED = ReplayId(-2)

_MIGRATIONS = (
    "CREATE TABLE replay_ids ("
    " org TEXT NOT NULL, channel TEXT NOT NULL, replay_id INTEGER NOT NULL,"
    " updated_at REAL NOT NULL, PRIMARY KEY (org, channel));"
    "CREATE TABLE catchup_checkpoints ("
    " org TEXT NOT NULL, sobject TEXT NOT NULL, modstamp TEXT NOT NULL,"
    " PRIMARY KEY (org, sobject))",
    # The time of the event a replay id belongs to, and when each channel was first
    # subscribed: where a replay-gap catch-up can safely start without a checkpoint.
    "ALTER TABLE replay_ids ADD COLUMN event_time TEXT;"
    "CREATE TABLE subscription_origins ("
    " org TEXT NOT NULL, channel TEXT NOT NULL, first_at TEXT NOT NULL,"
    " PRIMARY KEY (org, channel))",
)

# Upserts written with execute_values (one statement for many rows; within it, rows are
# applied in order: for one channel the last replay id wins, the newest checkpoint wins).
_SET_REPLAY_ID = (
    "INSERT INTO replay_ids(org, channel, replay_id, updated_at, event_time)",
    "ON CONFLICT(org, channel) DO UPDATE SET"
    " replay_id = excluded.replay_id, updated_at = excluded.updated_at,"
    " event_time = excluded.event_time",
)
_ADVANCE_CHECKPOINT = (
    "INSERT INTO catchup_checkpoints(org, sobject, modstamp)",
    "ON CONFLICT(org, sobject) DO UPDATE SET modstamp = excluded.modstamp"
    " WHERE excluded.modstamp > catchup_checkpoints.modstamp",
)

# Our clock against the org's: the first-subscribed time is ours, change stamps are theirs.
_ORIGIN_SKEW = timedelta(minutes=1)


def _iso(ts: datetime) -> str:
    if ts.tzinfo is not UTC:
        if ts.tzinfo is None:
            raise ValueError(f"checkpoint time {ts!r} has no time zone; pass an aware UTC"
                             " datetime")
        ts = ts.astimezone(UTC)
    # Fixed-width UTC text sorts like the instants it names, so MAX() in SQL works.
    # isoformat ends in "+00:00" here; it is several times cheaper than strftime.
    return ts.isoformat(timespec="microseconds")[:-6] + "Z"


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class GapStart:
    """Where a replay-gap catch-up starts, and why (`checkpoint`, `replay_event`,
    `first_subscribed`, or `unknown` with `since` None)."""

    since: datetime | None
    basis: str


class ReplayStore:
    """Durable replay ids and catch-up checkpoints, on the shared state database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate("replay", _MIGRATIONS)

    # -- replay ids ---------------------------------------------------------------------

    def get(self, org: str, channel: str) -> ReplayId | None:
        """The stored replay id of the channel, or None if nothing was ever stored."""
        row = self.db.connection().execute(
            "SELECT replay_id FROM replay_ids WHERE org = ? AND channel = ?", (org, channel)
        ).fetchone()
        return ReplayId(row["replay_id"]) if row else None

    def all(self, org: str) -> dict[str, ReplayId]:
        """Every stored replay id of the org, keyed by channel."""
        rows = self.db.connection().execute(
            "SELECT channel, replay_id FROM replay_ids WHERE org = ?", (org,)
        ).fetchall()
        return {row["channel"]: ReplayId(row["replay_id"]) for row in rows}

    def set(
        self, org: str, channel: str, replay_id: int, *, event_time: datetime | None = None,
        conn: sqlite3.Connection | None = None,
    ) -> None:
        """Store the channel's replay id, with its event's time when known; pass `conn` to
        join an open transaction."""
        self.set_many([(org, channel, replay_id, event_time)], conn=conn)

    def set_many(
        self, replay_ids: Iterable[tuple[str, str, int, datetime | None]], *,
        conn: sqlite3.Connection | None = None,
    ) -> None:
        """`set` for several (org, channel, replay id, event time), in one statement; for
        one channel the last one wins."""
        now = time.time()
        params = [(org, channel, int(replay_id), now, None if at is None else _iso(at))
                  for org, channel, replay_id, at in replay_ids]
        self._write(_SET_REPLAY_ID, params, conn)

    def event_time(self, org: str, channel: str) -> datetime | None:
        """When the event of the stored replay id happened, if it was recorded."""
        row = self.db.connection().execute(
            "SELECT event_time FROM replay_ids WHERE org = ? AND channel = ?", (org, channel)
        ).fetchone()
        return _parse(row["event_time"]) if row and row["event_time"] else None

    def mark_subscribed(self, org: str, channel: str, at: datetime | None = None) -> None:
        """Remember when the channel was first subscribed (later calls change nothing)."""
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO subscription_origins(org, channel, first_at) VALUES (?, ?, ?)"
                " ON CONFLICT(org, channel) DO NOTHING",
                (org, channel, _iso(at or datetime.now(UTC))),
            )

    def first_subscribed(self, org: str, channel: str) -> datetime | None:
        """When the channel was first subscribed, or None if never recorded."""
        row = self.db.connection().execute(
            "SELECT first_at FROM subscription_origins WHERE org = ? AND channel = ?",
            (org, channel),
        ).fetchone()
        return _parse(row["first_at"]) if row else None

    def gap_start(self, org: str, channel: str, sobject: str) -> GapStart:
        """The earliest safe start of a catch-up after `channel`'s replay id was rejected.

        The earlier of the object's checkpoint and the replay id's event time (both mean
        "received up to here"; the checkpoint may have been moved on by another channel
        or the poller), else the first-subscribed time less a clock-skew margin.
        """
        known = [(t, basis) for t, basis in (
            (self.checkpoint(org, sobject) if sobject else None, "checkpoint"),
            (self.event_time(org, channel), "replay_event"),
        ) if t is not None]
        if known:
            since, basis = min(known, key=lambda k: k[0])
            return GapStart(since, basis)
        origin = self.first_subscribed(org, channel)
        if origin is not None:
            return GapStart(origin - _ORIGIN_SKEW, "first_subscribed")
        return GapStart(None, "unknown")

    def clear(self, org: str, channel: str | None = None) -> None:
        """Forget the org's replay ids (one channel, or all), e.g. after an org-id change."""
        with self.db.transaction() as tx:
            if channel is None:
                tx.execute("DELETE FROM replay_ids WHERE org = ?", (org,))
            else:
                tx.execute("DELETE FROM replay_ids WHERE org = ? AND channel = ?", (org, channel))

    # -- catch-up checkpoints ----------------------------------------------------------

    def checkpoint(self, org: str, sobject: str) -> datetime | None:
        """The newest change time durably received for the object, or None."""
        row = self.db.connection().execute(
            "SELECT modstamp FROM catchup_checkpoints WHERE org = ? AND sobject = ?",
            (org, sobject),
        ).fetchone()
        if row is None:
            return None
        return _parse(row["modstamp"])

    def advance_checkpoint(
        self, org: str, sobject: str, modstamp: datetime, *, conn: sqlite3.Connection | None = None
    ) -> None:
        """Move the object's checkpoint to `modstamp` unless it is already later.

        Only forward: events replayed after a fallback carry older times and must not
        pull the checkpoint back (the catch-up window would grow for nothing).
        """
        self.advance_checkpoints([(org, sobject, modstamp)], conn=conn)

    def advance_checkpoints(
        self, checkpoints: Iterable[tuple[str, str, datetime]], *,
        conn: sqlite3.Connection | None = None,
    ) -> None:
        """`advance_checkpoint` for several (org, object, time), in one statement."""
        params = [(org, sobject, _iso(at)) for org, sobject, at in checkpoints]
        self._write(_ADVANCE_CHECKPOINT, params, conn)

    def _write(self, sql: tuple[str, str], params: list[tuple[object, ...]],
               conn: sqlite3.Connection | None) -> None:
        head, tail = sql
        with self.db.joined(conn) as tx:
            execute_values(tx, head, params, tail)
