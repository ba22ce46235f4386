"""Per field: what ilyd last wrote, and the fields a person's edit protects.

The `unless_edited` overwrite policy needs to tell ilyd's value from a person's. A
record's value hash (`ilyd.store.record_hashes`) covers the whole record; here each Ily
field ilyd wrote keeps a short digest of the value written:

- `field_digests`: one row per record ilyd wrote (Ily fields only), holding a JSON
  object of field → 8 hex digits of the value's SHA-256 (normalised: "12000" and
  12000.0 agree). Bounded: one row per record, about 30 bytes per Ily field written
  (≈ 600 bytes for a fully enriched record); a record's row goes with its record
  hashes (`forget`). Digests, not values: a person's value is compared, never kept.
- `field_protected`: one row per (record, field) a person changed since ilyd wrote it.
  ilyd leaves such a field alone until its value is cleared in Salesforce or an admin
  releases it (`ilyd ctl release ORG RECORD_ID [--field F]`).
- `field_pending`: the digests of the values of ilyd's last call for each record, stored
  (group-committed) before the call: a write whose answer was lost may have landed, and
  its values are ilyd's, not a person's. One row per record sent.
- `field_tracking`: when digests started being kept in this state file. A record ilyd
  wrote before then has no digests: its values are taken as ilyd's (they were written
  under `always`), not as a person's.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from ilyd.resync.compare import normalise
from ilyd.store.db import Database, execute_values
from ilyd.store.group_commit import register, shared
from ilyd.store.record_hashes import RecordHash

__all__ = ["FieldStateStore", "PendingDigests", "RecordsState", "digest", "digests_json"]

_MIGRATIONS = (
    "CREATE TABLE field_digests ("
    " org TEXT NOT NULL, sobject TEXT NOT NULL, record_id TEXT NOT NULL,"
    " digests TEXT NOT NULL, PRIMARY KEY (org, sobject, record_id)) WITHOUT ROWID;"
    "CREATE TABLE field_protected ("
    " org TEXT NOT NULL, sobject TEXT NOT NULL, record_id TEXT NOT NULL,"
    " field TEXT NOT NULL, since REAL NOT NULL,"
    " PRIMARY KEY (org, sobject, record_id, field)) WITHOUT ROWID;"
    "CREATE TABLE field_tracking (since REAL NOT NULL)",
    # Digests of values about to be sent: a write whose answer was lost (a timeout, a
    # crash before the confirmation) may have landed; its values are still ilyd's.
    "CREATE TABLE field_pending ("
    " org TEXT NOT NULL, sobject TEXT NOT NULL, record_id TEXT NOT NULL,"
    " digests TEXT NOT NULL, PRIMARY KEY (org, sobject, record_id)) WITHOUT ROWID",
)

# SQLite's default limit on host parameters is 999 on old builds: stay well under it.
_CHUNK = 400


def digest(api_name: str, value: object) -> str:
    """A short digest of one Ily value as Salesforce holds it ("" for blank)."""
    if isinstance(value, str) and len(value) > _KEPT_LENGTH:
        return _digest(api_name, value)
    try:
        return _known_digest(api_name, value)
    except TypeError:  # an unhashable value: not kept
        return _digest(api_name, value)


# A writer digests every value it sends, and the same company's values recur across
# records: the digests of recent ones are kept (typed: 1, 1.0 and True digest apart),
# short ones only, so the cache stays a few MiB however long the text fields are.
_KEPT_LENGTH = 256
@lru_cache(maxsize=8192, typed=True)
def _known_digest(api_name: str, value: object) -> str:
    return _digest(api_name, value)


def _digest(api_name: str, value: object) -> str:
    normal = normalise(api_name, value)
    if normal == "":
        return ""
    return hashlib.sha256(f"{normal}".encode()).hexdigest()[:8]


def digests_json(values: Mapping[str, object], skip: Iterable[str] = ()) -> str:
    """The JSON object of digests of `values` (fields in `skip` left out), fields sorted,
    as `json.dumps(..., separators=(",", ":"))` writes it."""
    left_out = set(skip)
    # Joined from pieces (a digest is 8 hex digits, or "" for a blank value, written as
    # it is): an encoder's set-up per call cost more than the encoding of 20 fields.
    return "{" + ",".join([f'{_json_key(k)}"{"" if v is None else digest(k, v)}"'
                           for k, v in sorted(values.items()) if k not in left_out]) + "}"


@lru_cache(maxsize=1024)
def _json_key(name: str) -> str:
    """`name` as a JSON object's key, with its colon."""
    return json.dumps(name) + ":"


@dataclass
class RecordsState:
    """What the state file holds of some records of one sObject, by record id: the
    hashes of what ilyd last wrote (`ilyd.store.record_hashes`), and the `policy_state`
    the overwrite policies read."""

    hashes: dict[str, RecordHash] = field(default_factory=dict)
    written: dict[str, dict[str, str]] = field(default_factory=dict)
    pending: dict[str, dict[str, str]] = field(default_factory=dict)
    protected: dict[str, set[str]] = field(default_factory=dict)


@lru_cache(maxsize=64)
def _records_state_sql(sobjects: int, ids: int) -> str:
    """The statement of `FieldStateStore.records_state` for so many sObjects and ids:
    ?1 the org, then the sObjects, then the ids."""
    kinds = ",".join(f"?{n}" for n in range(2, sobjects + 2))
    marks = ",".join(f"?{n}" for n in range(sobjects + 2, sobjects + ids + 2))
    where = f"WHERE org = ?1 AND sobject IN ({kinds}) AND record_id IN ({marks})"
    # Only numbered placeholders are formatted into the statement.
    return (f"SELECT 0, sobject, record_id, hash, source, written_at FROM record_hashes"  # noqa: S608
            f" {where} UNION ALL SELECT 1, sobject, record_id, digests, NULL, NULL"
            f" FROM field_digests {where} UNION ALL SELECT 2, sobject, record_id, digests,"
            f" NULL, NULL FROM field_pending {where} UNION ALL SELECT 3, sobject,"
            f" record_id, field, NULL, NULL FROM field_protected {where}")


class FieldStateStore:
    """The per-field tables, on the state database. Thread-safe (a connection per
    thread)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate("field_state", _MIGRATIONS)
        with db.transaction() as tx:
            row = tx.execute("SELECT since FROM field_tracking").fetchone()
            if row is None:
                tx.execute("INSERT INTO field_tracking(since) VALUES (?)", (time.time(),))
        self.tracking_since = float(
            db.connection().execute("SELECT since FROM field_tracking").fetchone()["since"])

    def _select(self, sql: str, org: str, sobject: str,
                record_ids: Sequence[str]) -> list[sqlite3.Row]:
        conn = self.db.connection()
        rows: list[sqlite3.Row] = []
        ids = list(dict.fromkeys(record_ids))
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows += conn.execute(sql.format(marks=marks), (org, sobject, *chunk)).fetchall()
        return rows

    def written(self, org: str, sobject: str,
                record_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """Field → digest of what ilyd last wrote, for the records that have some."""
        rows = self._select("SELECT record_id, digests FROM field_digests WHERE org = ?"
                            " AND sobject = ? AND record_id IN ({marks})",
                            org, sobject, record_ids)
        return {r["record_id"]: json.loads(r["digests"]) for r in rows}

    def pending(self, org: str, sobject: str,
                record_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """Field → digest of the values of ilyd's last call, for the records that have
        one (that call's answer may have been lost)."""
        rows = self._select("SELECT record_id, digests FROM field_pending WHERE org = ?"
                            " AND sobject = ? AND record_id IN ({marks})",
                            org, sobject, record_ids)
        return {r["record_id"]: json.loads(r["digests"]) for r in rows}

    def policy_state(self, org: str, sobject: str, record_ids: Sequence[str],
                     ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]],
                                dict[str, set[str]]]:
        """`written`, `pending` and `protected` of those records, read in one statement
        (the writer asks for all three on every flush)."""
        written: dict[str, dict[str, str]] = {}
        pending: dict[str, dict[str, str]] = {}
        found: dict[str, set[str]] = {}
        conn = self.db.connection()
        ids = list(dict.fromkeys(record_ids))
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            # Numbered parameters: the org, the sObject and the ids serve all three parts.
            marks = ",".join(f"?{n}" for n in range(3, len(chunk) + 3))
            where = f"WHERE org = ?1 AND sobject = ?2 AND record_id IN ({marks})"
            # Only numbered placeholders are formatted into the statement.
            sql = (f"SELECT 0, record_id, digests FROM field_digests {where}"  # noqa: S608
                   f" UNION ALL SELECT 1, record_id, digests FROM field_pending {where}"
                   f" UNION ALL SELECT 2, record_id, field FROM field_protected {where}")
            for kind, record_id, value in conn.execute(sql, (org, sobject, *chunk)):
                if kind == 0:
                    written[record_id] = json.loads(value)
                elif kind == 1:
                    pending[record_id] = json.loads(value)
                else:
                    found.setdefault(record_id, set()).add(value)
        return written, pending, found

    def records_state(self, org: str, keys: Iterable[tuple[str, str]],
                      ) -> dict[str, RecordsState]:
        """The hashes and the `policy_state` of (sObject, record id) pairs of any
        sObjects, read in one statement (the writer's flush needs both, for Leads and
        Accounts alike), by sObject: every sObject asked has its entry."""
        wanted = set(keys)
        found = {sobject: RecordsState() for sobject, _ in wanted}
        sobjects = sorted(found)
        ids = sorted({record_id for _, record_id in wanted})
        conn = self.db.connection()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            sql = _records_state_sql(len(sobjects), len(chunk))
            for kind, sobject, record_id, value, source, written_at in conn.execute(
                    sql, (org, *sobjects, *chunk)):
                if (sobject, record_id) not in wanted:
                    continue  # another sObject's id: the IN lists cross
                state = found[sobject]
                if kind == 0:
                    state.hashes[record_id] = RecordHash(record_id, value, source, written_at)
                elif kind == 1:
                    state.written[record_id] = json.loads(value)
                elif kind == 2:
                    state.pending[record_id] = json.loads(value)
                else:
                    state.protected.setdefault(record_id, set()).add(value)
        return found

    def send_pending(self, org: str, rows: Sequence[tuple[str, str, str]]) -> None:
        """Store (sobject, record id, digests JSON) of values about to be sent, with
        other threads' queued writes (ilyd.store.group_commit)."""
        if rows:
            shared(self.db).submit(PendingDigests(self.db, org, rows))

    def protected(self, org: str, sobject: str,
                  record_ids: Sequence[str]) -> dict[str, set[str]]:
        """The protected fields of those records that have some."""
        rows = self._select("SELECT record_id, field FROM field_protected WHERE org = ?"
                            " AND sobject = ? AND record_id IN ({marks})",
                            org, sobject, record_ids)
        found: dict[str, set[str]] = {}
        for r in rows:
            found.setdefault(r["record_id"], set()).add(r["field"])
        return found

    def protect(self, org: str, sobject: str, fields: Sequence[tuple[str, str]]) -> None:
        """Protect (record id, field) pairs from ilyd's writes."""
        if not fields:
            return
        now = time.time()
        with self.db.transaction() as tx:
            execute_values(tx, "INSERT INTO field_protected(org, sobject, record_id, field,"
                           " since)", [(org, sobject, r, f, now) for r, f in fields],
                           "ON CONFLICT DO NOTHING")

    def unprotect(self, org: str, sobject: str, fields: Sequence[tuple[str, str]]) -> None:
        """Forget the protection of (record id, field) pairs (their value was cleared)."""
        if not fields:
            return
        with self.db.transaction() as tx:
            tx.executemany("DELETE FROM field_protected WHERE org = ? AND sobject = ?"
                           " AND record_id = ? AND field = ?",
                           [(org, sobject, r, f) for r, f in fields])

    def release(self, org: str, record_id: str, field: str | None = None) -> list[str]:
        """An admin's release of one record's protected fields (all, or `field`); the
        15- or 18-character Id. Returns the fields released."""
        where = "org = ? AND substr(record_id, 1, 15) = ?"
        args: tuple[str, ...] = (org, record_id[:15])
        if field is not None:
            where, args = where + " AND field = ?", (*args, field)
        with self.db.transaction() as tx:
            # Only the fixed clause above is formatted into the statement.
            names = [r["field"] for r in tx.execute(
                f"SELECT field FROM field_protected WHERE {where} ORDER BY field",  # noqa: S608
                args)]
            tx.execute(f"DELETE FROM field_protected WHERE {where}", args)  # noqa: S608
        return names

    def remember(self, org: str, sobject: str, rows: Sequence[tuple[str, str]], *,
                 conn: sqlite3.Connection | None = None) -> None:
        """Store (record id, digests JSON) of records written. `conn`: an open
        transaction to join."""
        with self.db.joined(conn) as tx:
            self.remember_rows(tx, [(org, sobject, r, d) for r, d in rows])

    @staticmethod
    def remember_rows(tx: sqlite3.Connection,
                      rows: Sequence[tuple[str, str, str, str]]) -> None:
        """Store (org, sobject, record id, digests JSON) rows in the open transaction
        `tx`: the fields written replace their digests, the others keep theirs."""
        execute_values(tx, "INSERT INTO field_digests(org, sobject, record_id, digests)",
                       rows, "ON CONFLICT(org, sobject, record_id)"
                       " DO UPDATE SET digests = json_patch(digests, excluded.digests)")

    def forget(self, org: str, sobject: str, record_ids: Sequence[str]) -> None:
        """Drop the digests of records whose write did not happen, or that are gone."""
        with self.db.transaction() as tx:
            tx.executemany("DELETE FROM field_digests WHERE org = ? AND sobject = ?"
                           " AND record_id = ?", [(org, sobject, r) for r in record_ids])


@dataclass
class PendingDigests:
    """One writer's values about to be sent (group-committed)."""

    db: Database
    org: str
    rows: Sequence[tuple[str, str, str]]  # (sobject, record id, digests JSON)


def _write_pending(tx: sqlite3.Connection, requests: Sequence[PendingDigests]) -> None:
    execute_values(tx, "INSERT INTO field_pending(org, sobject, record_id, digests)",
                   [(r.org, s, i, d) for r in requests for s, i, d in r.rows],
                   "ON CONFLICT(org, sobject, record_id) DO UPDATE SET digests ="
                   " excluded.digests")


register(PendingDigests, _write_pending, lambda request: request.db)
