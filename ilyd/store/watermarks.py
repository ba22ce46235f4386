"""Reconciliation watermarks: per (org, object), up to where the last sweep looked.

The reconciliation sweep (ilyd/pipeline/reconcile.py) reads records changed between the
watermark and a moment just behind now, then moves the watermark there. Kept in the
state database so a restarted daemon goes on from the same point: a window is neither
read twice nor skipped. Each row also keeps when the sweep ran and how many records it
found, for `ilyd ctl status`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from ilyd.store.db import Database

__all__ = ["SweepMark", "WatermarkStore"]

_MIGRATIONS = (
    "CREATE TABLE reconcile_watermarks ("
    " org TEXT NOT NULL, sobject TEXT NOT NULL, watermark REAL NOT NULL,"
    " swept_at REAL NOT NULL, found INTEGER NOT NULL, PRIMARY KEY (org, sobject))",
)


@dataclass(frozen=True)
class SweepMark:
    """One object's watermark, when it was last moved, and what that sweep found."""

    watermark: datetime
    swept_at: float
    found: int


class WatermarkStore:
    """Durable reconciliation watermarks, on the shared state database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate("reconcile", _MIGRATIONS)

    def get(self, org: str, sobject: str) -> SweepMark | None:
        """The object's mark, or None before its first sweep."""
        row = self.db.connection().execute(
            "SELECT watermark, swept_at, found FROM reconcile_watermarks"
            " WHERE org = ? AND sobject = ?", (org, sobject)).fetchone()
        if row is None:
            return None
        return SweepMark(datetime.fromtimestamp(row["watermark"], UTC), row["swept_at"],
                         row["found"])

    def advance(self, org: str, sobject: str, watermark: datetime, found: int,
                swept_at: float | None = None) -> None:
        """Move the object's watermark (never back) and record the sweep's result."""
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO reconcile_watermarks(org, sobject, watermark, swept_at, found)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(org, sobject) DO UPDATE SET"
                " watermark = max(watermark, excluded.watermark),"
                " swept_at = excluded.swept_at, found = excluded.found",
                (org, sobject, watermark.timestamp(),
                 time.time() if swept_at is None else swept_at, found))
