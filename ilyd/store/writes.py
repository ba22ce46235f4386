"""The inputs each record was last enriched from, and the Ily fields an org refuses.

`record_inputs` keeps, per (org, object, record), the hash of the input fields
(Website, Email…) of the last write. The poller skips a row whose inputs are unchanged,
which is what keeps ilyd's own writes — they bump SystemModstamp — from coming back as
work. (The hash of the values written, for skip-if-unchanged writes, is
`ilyd.store.record_hashes`, shared with the resync.)

`unwritable_fields` remembers fields Salesforce refused with
INVALID_FIELD_FOR_INSERT_UPDATE (or INVALID_FIELD) so they are left out of later writes
until an admin fixes field-level security; the writer clears the flag when a fresh
describe shows the field editable again (`check` shows the flagged fields).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ilyd.store.db import Database, execute_values

__all__ = ["UnwritableField", "WriteStateStore"]

_MIGRATIONS = (
    "CREATE TABLE record_inputs ("
    " org TEXT NOT NULL, sobject TEXT NOT NULL, record_id TEXT NOT NULL,"
    " inputs_hash TEXT NOT NULL, PRIMARY KEY (org, sobject, record_id)) WITHOUT ROWID;"
    "CREATE TABLE unwritable_fields ("
    " org TEXT NOT NULL, sobject TEXT NOT NULL, field TEXT NOT NULL,"
    " reason TEXT NOT NULL, since REAL NOT NULL, PRIMARY KEY (org, sobject, field))",
)

# SQLite's default limit on host parameters is 999 on old builds: stay well under it.
_CHUNK = 500


@dataclass(frozen=True)
class UnwritableField:
    """An Ily field the org refused, and Salesforce's words for why."""

    sobject: str
    field: str
    reason: str
    since: float


class WriteStateStore:
    """Per-record input hashes and per-org unwritable fields, on the state database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate("writes", _MIGRATIONS)

    # -- record inputs ------------------------------------------------------------------

    def inputs(self, org: str, sobject: str, record_ids: Sequence[str]) -> dict[str, str]:
        """The stored input hashes of those records that have one."""
        conn = self.db.connection()
        found: dict[str, str] = {}
        for start in range(0, len(record_ids), _CHUNK):
            chunk = list(record_ids[start:start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            # Only "?" placeholders are formatted into the statement.
            sql = ("SELECT record_id, inputs_hash FROM record_inputs"  # noqa: S608
                   f" WHERE org = ? AND sobject = ? AND record_id IN ({marks})")
            rows = conn.execute(sql, (org, sobject, *chunk)).fetchall()
            found.update((row["record_id"], row["inputs_hash"]) for row in rows)
        return found

    def remember(self, org: str, rows: Iterable[tuple[str, str, str]], *,
                 conn: sqlite3.Connection | None = None) -> None:
        """Store (sobject, record id, inputs hash) of records Salesforce confirmed.
        `conn`: an open transaction to join."""
        with self.db.joined(conn) as tx:
            self.remember_rows(tx, [(org, s, r, h) for s, r, h in rows])

    @staticmethod
    def remember_rows(tx: sqlite3.Connection, rows: Sequence[tuple[str, str, str, str]]) -> None:
        """Store (org, sobject, record id, inputs hash) rows, any orgs, in the open
        transaction `tx`, a few statements for any number."""
        execute_values(tx, "INSERT INTO record_inputs(org, sobject, record_id, inputs_hash)",
                       rows, "ON CONFLICT(org, sobject, record_id)"
                       " DO UPDATE SET inputs_hash = excluded.inputs_hash")

    def forget(self, org: str, sobject: str, record_ids: Iterable[str]) -> None:
        """Drop the input hashes of records that are gone (deleted, converted)."""
        with self.db.transaction() as tx:
            tx.executemany(
                "DELETE FROM record_inputs WHERE org = ? AND sobject = ? AND record_id = ?",
                [(org, sobject, r) for r in record_ids],
            )

    # -- unwritable fields --------------------------------------------------------------

    def unwritable(self, org: str) -> list[UnwritableField]:
        """Every field the org refused, by object and name."""
        rows = self.db.connection().execute(
            "SELECT sobject, field, reason, since FROM unwritable_fields WHERE org = ?"
            " ORDER BY sobject, field", (org,),
        ).fetchall()
        return [UnwritableField(r["sobject"], r["field"], r["reason"], r["since"]) for r in rows]

    def mark_unwritable(self, org: str, sobject: str, field: str, reason: str) -> None:
        """Remember that `sobject.field` cannot be written in `org` (first reason kept)."""
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT OR IGNORE INTO unwritable_fields(org, sobject, field, reason, since)"
                " VALUES (?, ?, ?, ?, ?)", (org, sobject, field, reason, time.time()),
            )

    def clear_unwritable(self, org: str, sobject: str | None = None,
                         field: str | None = None) -> int:
        """Forget the org's unwritable fields (after an admin fixed them) — all, one
        object's, or one field's; returns how many."""
        with self.db.transaction() as tx:
            if sobject is None:
                cur = tx.execute("DELETE FROM unwritable_fields WHERE org = ?", (org,))
            elif field is None:
                cur = tx.execute("DELETE FROM unwritable_fields WHERE org = ? AND sobject = ?",
                                 (org, sobject))
            else:
                cur = tx.execute("DELETE FROM unwritable_fields WHERE org = ? AND sobject = ?"
                                 " AND field = ?", (org, sobject, field))
        return cur.rowcount
