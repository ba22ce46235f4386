"""Replay ids per (org, channel) and catch-up checkpoints per (org, object).

The replay id is where the Bayeux subscription resumes after a restart or a
re-handshake. It is written in the same transaction as the inbox rows of the event it
belongs to (see `ilyd.store.inbox.Inbox.put`), so "stored replay id" always means "every
event up to here is durably in the inbox".

The checkpoint is the newest change time (SystemModstamp, or the event's createdDate)
durably received for an object. When Salesforce no longer holds the stored replay id,
the subscriber resubscribes with -2 and a SOQL catch-up on `SystemModstamp >= checkpoint`
closes whatever the retained events do not cover.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from typing import NewType

from ilyd.store.db import Database

__all__ = ["ALL_RETAINED", "NEW_ONLY", "ReplayId", "ReplayStore"]

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
)


def _iso(ts: datetime) -> str:
    if ts.tzinfo is None:
        raise ValueError(f"checkpoint time {ts!r} has no time zone; pass an aware UTC datetime")
    # Fixed-width UTC text sorts like the instants it names, so MAX() in SQL works.
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
        self, org: str, channel: str, replay_id: int, *, conn: sqlite3.Connection | None = None
    ) -> None:
        """Store the channel's replay id; pass `conn` to join an open transaction."""
        sql = (
            "INSERT INTO replay_ids(org, channel, replay_id, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(org, channel) DO UPDATE SET"
            " replay_id = excluded.replay_id, updated_at = excluded.updated_at"
        )
        params = (org, channel, int(replay_id), time.time())
        if conn is not None:
            conn.execute(sql, params)
            return
        with self.db.transaction() as tx:
            tx.execute(sql, params)

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
        return datetime.strptime(row["modstamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)

    def advance_checkpoint(
        self, org: str, sobject: str, modstamp: datetime, *, conn: sqlite3.Connection | None = None
    ) -> None:
        """Move the object's checkpoint to `modstamp` unless it is already later.

        Only forward: events replayed after a fallback carry older times and must not
        pull the checkpoint back (the catch-up window would grow for nothing).
        """
        sql = (
            "INSERT INTO catchup_checkpoints(org, sobject, modstamp) VALUES (?, ?, ?)"
            " ON CONFLICT(org, sobject) DO UPDATE SET modstamp = excluded.modstamp"
            " WHERE excluded.modstamp > catchup_checkpoints.modstamp"
        )
        params = (org, sobject, _iso(modstamp))
        if conn is not None:
            conn.execute(sql, params)
            return
        with self.db.transaction() as tx:
            tx.execute(sql, params)
