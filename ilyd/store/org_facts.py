"""What an org's start-up checks learned, kept so the next start need not ask again.

One row per org: the facts snapshot (JSON, as `ilyd.provision.facts` writes it) with
the time it was read, when the provisioner last finished its start-up run against
them, and how the org was fed (streaming or polling) as last decided. A warm start
decides and subscribes from this row at once; the checks run again in the background
and replace it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from ilyd.store.db import Database

__all__ = ["OrgFactsStore", "StoredFacts"]

_STEPS = (
    "CREATE TABLE org_facts ("
    " org TEXT PRIMARY KEY, facts TEXT NOT NULL, learned_at REAL NOT NULL,"
    " checked_at REAL, feed TEXT, feed_at REAL)",
)


@dataclass(frozen=True)
class StoredFacts:
    """One org's stored row."""

    facts: dict[str, Any]
    learned_at: float  # when the facts were read from Salesforce
    checked_at: float | None  # when the provisioner's start-up run last finished
    feed: str | None  # "streaming" or "polling", as last decided


class OrgFactsStore:
    """The facts, provisioned state and feed decision of each org, on the state database."""

    def __init__(self, database: Database) -> None:
        self._db = database
        database.migrate("org_facts", _STEPS)

    def get(self, org: str) -> StoredFacts | None:
        """The org's stored row, or None before its first start."""
        row = self._db.connection().execute(
            "SELECT facts, learned_at, checked_at, feed FROM org_facts WHERE org = ?",
            (org,)).fetchone()
        if row is None:
            return None
        return StoredFacts(json.loads(row["facts"]), row["learned_at"], row["checked_at"],
                           row["feed"])

    def put(self, org: str, facts: dict[str, Any], learned_at: float | None = None) -> None:
        """Replace the org's facts (the feed decision and check time stay), unless those
        stored were read later: two children may read the org at once at a first start,
        and the slower one's reading is the older."""
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO org_facts(org, facts, learned_at) VALUES (?, ?, ?)"
                " ON CONFLICT(org) DO UPDATE SET facts = excluded.facts,"
                " learned_at = excluded.learned_at"
                " WHERE excluded.learned_at >= org_facts.learned_at",
                (org, json.dumps(facts, sort_keys=True),
                 time.time() if learned_at is None else learned_at))

    def mark_checked(self, org: str) -> None:
        """The provisioner's start-up run finished against the stored facts."""
        with self._db.transaction() as tx:
            tx.execute("UPDATE org_facts SET checked_at = ? WHERE org = ?", (time.time(), org))

    def set_feed(self, org: str, feed: str) -> None:
        """Remember how the org is fed; the next start begins with that child."""
        with self._db.transaction() as tx:
            tx.execute("UPDATE org_facts SET feed = ?, feed_at = ? WHERE org = ?",
                       (feed, time.time(), org))
