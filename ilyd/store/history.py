"""Why a value is what it is: ilyd's work on each record, for `ilyd ctl history`.

One row per enrichment of a record that ilyd confirmed (written, or decided without a
write): when, by which path, and a JSON entry with the input seen (the domain and the
field it came from), the match status, each field written (old → new, and the providers
that answered) and each field left alone with why (unchanged, protected, if_blank,
unwritable; a record outside the scope is one entry saying so). The rows are inserted in
the confirmation's own transaction (`ilyd.store.confirmations`): no transaction of their
own on the real-time path. Rows older than the org's `history_days` are pruned once a
day (`prune`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ilyd.store.db import Database, execute_values

__all__ = ["HistoryEntry", "HistoryStore"]

_MIGRATIONS = (
    "CREATE TABLE enrich_history ("
    " org TEXT NOT NULL, record_id TEXT NOT NULL, at REAL NOT NULL, path TEXT NOT NULL,"
    " entry TEXT NOT NULL);"
    "CREATE INDEX enrich_history_by_record ON enrich_history(org, record_id, at);"
    "CREATE INDEX enrich_history_by_time ON enrich_history(at)",
)

_DAY = 86_400.0
_pruned: dict[str, float] = {}  # database path -> when it was last pruned
_prune_lock = threading.Lock()


@dataclass(frozen=True)
class HistoryEntry:
    """One enrichment of a record."""

    at: float
    path: str  # realtime | resync | refresh
    entry: dict[str, Any]


class HistoryStore:
    """The `enrich_history` table. Thread-safe (a connection per thread)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate("enrich_history", _MIGRATIONS)

    @staticmethod
    def insert_rows(tx: sqlite3.Connection,
                    rows: Sequence[tuple[str, str, float, str, str]]) -> None:
        """Insert (org, record id, at, path, entry JSON) rows in the open transaction
        `tx` (the record id is kept as its 15-character form)."""
        execute_values(tx, "INSERT INTO enrich_history(org, record_id, at, path, entry)",
                       [(o, r[:15], a, p, e) for o, r, a, p, e in rows])

    def for_record(self, org: str, record_id: str, since: float) -> list[HistoryEntry]:
        """The record's entries at or after `since`, oldest first."""
        rows = self.db.connection().execute(
            "SELECT at, path, entry FROM enrich_history WHERE org = ? AND record_id = ?"
            " AND at >= ? ORDER BY at", (org, record_id[:15], since)).fetchall()
        return [HistoryEntry(r["at"], r["path"], json.loads(r["entry"])) for r in rows]

    def prune(self, older_than: float) -> int:
        """Delete entries before `older_than` (Unix time); returns how many."""
        with self.db.transaction() as tx:
            return tx.execute("DELETE FROM enrich_history WHERE at < ?", (older_than,)).rowcount

    def prune_daily(self, days: float, now: float | None = None) -> int | None:
        """`prune` entries older than `days`, at most once a day per database file;
        None when it was not due."""
        now = time.time() if now is None else now
        key = str(self.db.path)
        with _prune_lock:
            if now - _pruned.get(key, 0.0) < _DAY:
                return None
            _pruned[key] = now
        return self.prune(now - days * _DAY)
