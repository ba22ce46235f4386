"""The org id each configured org had last time, in the state database: a sandbox refresh
gives the sandbox a new org id, so a change means the grant and the replay ids belong to
an org that no longer exists."""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from ilyd import metrics
from ilyd.provision.checks import SandboxRefresh
from ilyd.store import Database
from ilyd.store.replay import ReplayStore

log = structlog.get_logger(__name__)

_STEPS = (
    "CREATE TABLE org_identity ("
    " org TEXT PRIMARY KEY, org_id TEXT NOT NULL, seen_at REAL NOT NULL,"
    " previous_org_id TEXT, refreshed_at REAL)",
)


@dataclass(frozen=True)
class StoredIdentity:
    """What the state database remembers about an org's identity."""

    org_id: str
    seen_at: float
    previous_org_id: str | None
    refreshed_at: float | None  # set while a detected refresh awaits `ilyd connect`


class OrgIdentityStore:
    """Org ids per configured org; detects and records sandbox refreshes."""

    def __init__(self, database: Database) -> None:
        self.db = database
        database.migrate("org_identity", _STEPS)

    def get(self, org: str) -> StoredIdentity | None:
        """The stored identity of `org`, or None if it was never seen."""
        row = self.db.connection().execute(
            "SELECT org_id, seen_at, previous_org_id, refreshed_at FROM org_identity"
            " WHERE org = ?", (org,)).fetchone()
        if row is None:
            return None
        return StoredIdentity(row["org_id"], row["seen_at"], row["previous_org_id"],
                              row["refreshed_at"])

    def compare(self, org: str, org_id: str) -> SandboxRefresh:
        """Read-only: the stored org id against the current one (for `ilyd check`)."""
        stored = self.get(org)
        if stored is None:
            return SandboxRefresh(None, org_id)
        if stored.org_id != org_id:
            return SandboxRefresh(stored.org_id, org_id, acknowledged=False)
        if stored.refreshed_at is not None:
            return SandboxRefresh(stored.previous_org_id, org_id, acknowledged=False)
        return SandboxRefresh(stored.org_id, org_id)

    def observe(self, org: str, org_id: str) -> SandboxRefresh:
        """Record the org id seen now. On a change, drop the org's replay ids and mark the
        org as needing re-authorisation (until `acknowledge`)."""
        stored = self.get(org)
        now = time.time()
        with self.db.transaction() as tx:
            if stored is None:
                tx.execute("INSERT INTO org_identity(org, org_id, seen_at) VALUES (?, ?, ?)",
                           (org, org_id, now))
                return SandboxRefresh(None, org_id)
            if stored.org_id == org_id:
                tx.execute("UPDATE org_identity SET seen_at = ? WHERE org = ?", (now, org))
                if stored.refreshed_at is not None:
                    return SandboxRefresh(stored.previous_org_id, org_id, acknowledged=False)
                return SandboxRefresh(org_id, org_id)
            tx.execute("UPDATE org_identity SET org_id = ?, seen_at = ?, previous_org_id = ?,"
                       " refreshed_at = ? WHERE org = ?",
                       (org_id, now, stored.org_id, now, org))
        ReplayStore(self.db).clear(org)
        metrics.SANDBOX_REFRESHES.inc()
        log.warning("sandbox_refreshed", previous_org_id=stored.org_id, org_id=org_id,
                    replay_ids="dropped")
        return SandboxRefresh(stored.org_id, org_id, acknowledged=False)

    def acknowledge(self, org: str, org_id: str) -> None:
        """`ilyd connect` authorised the user against `org_id`: the refresh is handled."""
        now = time.time()
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO org_identity(org, org_id, seen_at) VALUES (?, ?, ?)"
                " ON CONFLICT(org) DO UPDATE SET org_id = excluded.org_id,"
                " seen_at = excluded.seen_at, refreshed_at = NULL", (org, org_id, now))
        stored = self.get(org)
        if stored is not None and stored.previous_org_id and stored.previous_org_id != org_id:
            ReplayStore(self.db).clear(org)
