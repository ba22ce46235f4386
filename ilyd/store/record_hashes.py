"""Per-record hash of what ilyd last wrote: skip writes whose values are unchanged.

Shared by the real-time writer and the complete sync (resync). A row says: for this
(org, object, record), ilyd last wrote values whose fingerprint is `hash`
(`EnrichmentOutcome.fingerprint()`: the Ily values without Last Enriched), by which
path (`source`: "realtime" or "resync"), at `written_at` (Unix time).

- A writer skips a record whose new fingerprint equals the stored one: no API call, no
  LastModifiedDate churn, no echo event.
- The resync skips a record the real-time path wrote after the resync read it: the
  real-time values come from newer inputs and must not be clobbered by older ones.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ilyd.store.db import Database, execute_values

__all__ = ["RecordHash", "RecordHashStore"]

_MIGRATIONS = (
    "CREATE TABLE record_hashes ("
    " org TEXT NOT NULL, sobject TEXT NOT NULL, record_id TEXT NOT NULL,"
    " hash TEXT NOT NULL, source TEXT NOT NULL, written_at REAL NOT NULL,"
    " PRIMARY KEY (org, sobject, record_id)) WITHOUT ROWID",
)

# SQLite's default limit on host parameters is 999 in old builds; stay well below.
_CHUNK = 500


@dataclass(frozen=True)
class RecordHash:
    """What ilyd last wrote to one record."""

    record_id: str
    hash: str
    source: str
    written_at: float


class RecordHashStore:
    """The `record_hashes` table. Thread-safe (one connection per thread)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.db = db
        db.migrate("record_hashes", _MIGRATIONS)

    def get_many(self, org: str, sobject: str,
                 record_ids: Sequence[str]) -> dict[str, RecordHash]:
        """The stored hashes of those of `record_ids` that have one."""
        found: dict[str, RecordHash] = {}
        conn = self._db.connection()
        for start in range(0, len(record_ids), _CHUNK):
            chunk = record_ids[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            # Only "?" placeholders are formatted into the statement.
            rows = conn.execute(
                "SELECT record_id, hash, source, written_at FROM record_hashes"  # noqa: S608
                f" WHERE org = ? AND sobject = ? AND record_id IN ({marks})",
                (org, sobject, *chunk),
            ).fetchall()
            for row in rows:
                found[row["record_id"]] = RecordHash(row["record_id"], row["hash"],
                                                     row["source"], row["written_at"])
        return found

    def unchanged(self, org: str, sobject: str, record_id: str, hash_: str) -> bool:
        """True when ilyd last wrote exactly these values to the record."""
        row = self._db.connection().execute(
            "SELECT hash FROM record_hashes WHERE org = ? AND sobject = ? AND record_id = ?",
            (org, sobject, record_id),
        ).fetchone()
        return row is not None and row["hash"] == hash_

    def put_many(self, org: str, sobject: str,
                 hashes: Mapping[str, str] | Iterable[tuple[str, str]], source: str,
                 written_at: float | None = None, *,
                 conn: sqlite3.Connection | None = None) -> int:
        """Record `record_id -> hash` pairs as written by `source`; return how many.
        `conn`: an open transaction to join."""
        when = time.time() if written_at is None else written_at
        pairs = hashes.items() if isinstance(hashes, Mapping) else hashes
        rows = [(org, sobject, rid, h, source, when) for rid, h in pairs]
        with self._db.joined(conn) as tx:
            self.put_rows(tx, rows)
        return len(rows)

    @staticmethod
    def put_rows(tx: sqlite3.Connection,
                 rows: Sequence[tuple[str, str, str, str, str, float]]) -> None:
        """Record (org, sobject, record id, hash, source, written at) rows, any orgs, in
        the open transaction `tx`, a few statements for any number."""
        execute_values(
            tx, "INSERT INTO record_hashes(org, sobject, record_id, hash, source, written_at)",
            rows, "ON CONFLICT(org, sobject, record_id) DO UPDATE SET hash = excluded.hash,"
            " source = excluded.source, written_at = excluded.written_at")

    def written_since(self, org: str, sobject: str, source: str, since: float,
                      record_ids: Sequence[str]) -> set[str]:
        """Those of `record_ids` that `source` wrote at or after `since` (Unix time)."""
        return {rid for rid, h in self.get_many(org, sobject, record_ids).items()
                if h.source == source and h.written_at >= since}

    def forget(self, org: str, sobject: str, record_ids: Sequence[str]) -> None:
        """Drop the hashes of records whose write did not happen after all."""
        with self._db.transaction() as conn:
            conn.executemany(
                "DELETE FROM record_hashes WHERE org = ? AND sobject = ? AND record_id = ?",
                [(org, sobject, rid) for rid in record_ids])

    def forget_org(self, org: str) -> None:
        """Drop every hash of an org (e.g. after its Ily fields were recreated)."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM record_hashes WHERE org = ?", (org,))
