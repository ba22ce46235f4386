"""Per-org operator flags that survive daemon restarts (today: paused)."""

from __future__ import annotations

from ilyd.store.db import Database

_STEPS = ("CREATE TABLE org_paused (org TEXT PRIMARY KEY, since REAL NOT NULL)",)


class OrgFlagStore:
    """Which orgs an operator paused with `ilyd ctl pause` (a pause that persists)."""

    def __init__(self, database: Database) -> None:
        self._db = database
        database.migrate("org_flags", _STEPS)

    def paused(self) -> frozenset[str]:
        """Every paused org."""
        rows = self._db.connection().execute("SELECT org FROM org_paused").fetchall()
        return frozenset(row["org"] for row in rows)

    def set_paused(self, org: str, paused: bool, now: float) -> None:
        """Remember (or forget) that `org` is paused."""
        with self._db.transaction() as conn:
            if paused:
                conn.execute(
                    "INSERT OR IGNORE INTO org_paused(org, since) VALUES (?, ?)", (org, now)
                )
            else:
                conn.execute("DELETE FROM org_paused WHERE org = ?", (org,))
