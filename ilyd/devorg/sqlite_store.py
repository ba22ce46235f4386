"""`--data FILE`: org state kept in SQLite so a restarted devorg still has its orgs,
records, custom fields, settings and refresh tokens, and its streaming channels'
retained events and replay counters. Writes go through as they commit."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ilyd.devorg.cometd_log import RENDERERS
from ilyd.devorg.ids import counter_of
from ilyd.devorg.org import OrgIdentity, OrgSettings, OrgState, Record
from ilyd.devorg.session import RefreshGrant, TokenStore
from ilyd.devorg.values import coerce, to_json

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    org TEXT NOT NULL, sobject TEXT NOT NULL, id TEXT NOT NULL, deleted INTEGER NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (org, id));
CREATE TABLE IF NOT EXISTS stream_events (
    org TEXT NOT NULL, channel TEXT NOT NULL, replay_id INTEGER NOT NULL,
    logged_at REAL NOT NULL, data TEXT NOT NULL, PRIMARY KEY (org, channel, replay_id))
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stream_counters (
    org TEXT NOT NULL, channel TEXT NOT NULL, next_id INTEGER NOT NULL,
    PRIMARY KEY (org, channel));
"""

# The longest retention of any channel (Change Data Capture's 72 hours): older events
# are not loaded back.
_LONGEST_RETENTION = 3 * 86400.0


class SqliteStore:
    """One SQLite file holding every org of a DevOrg."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    # -- writing -------------------------------------------------------------------------
    def attach(self, org: OrgState) -> None:
        """Route the org's committed writes here."""
        name = org.identity.name
        org.persistence = lambda rows: self.write(name, rows)
        org.extra["event_journal"] = EventStore(self, name)

    def write(self, org_name: str, rows: list[tuple[str, str, Record, bool]]) -> None:
        """Upsert committed records."""
        encoded = [(org_name, sobject, rid, int(deleted),
                    json.dumps({k: to_json(v) for k, v in rec.items()}, separators=(",", ":")))
                   for sobject, rid, rec, deleted in rows]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO records (org, sobject, id, deleted, data) VALUES (?,?,?,?,?) "
                "ON CONFLICT (org, id) DO UPDATE SET deleted=excluded.deleted, "
                "data=excluded.data", encoded)
            self._db.execute("COMMIT")

    def write_all(self, org: OrgState) -> None:
        """Write every record of a new org."""
        for sobject, table in org.tables.items():
            rows = [(sobject, rid, rec, False) for rid, rec in table.live.items()]
            for start in range(0, len(rows), 10000):
                self.write(org.identity.name, rows[start:start + 10000])

    def _put_meta(self, key: str, value: object) -> None:
        with self._lock:
            self._db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                             "value=excluded.value", (key, json.dumps(value)))

    def save_org(self, org: OrgState) -> None:
        """Persist an org's identity, settings and JWT certificate."""
        cert = org.jwt_certificate.decode() if org.jwt_certificate else None
        self._put_meta(f"org:{org.identity.name}", {
            "identity": dataclasses.asdict(org.identity),
            "settings": dataclasses.asdict(org.settings), "jwt_certificate": cert})

    def save_tokens(self, tokens: TokenStore) -> None:
        """Persist refresh tokens (access tokens die with the process, as sessions do)."""
        self._put_meta("refresh_tokens", [dataclasses.asdict(g)
                                          for g in list(tokens.refresh.values())])

    # -- loading -------------------------------------------------------------------------
    def load(self, tokens: TokenStore) -> dict[str, OrgState]:
        """Every stored org, its records and refresh tokens (empty for a new file)."""
        with self._lock:
            metas = self._db.execute(
                "SELECT key, value FROM meta WHERE key LIKE 'org:%' ORDER BY rowid").fetchall()
            token_row = self._db.execute(
                "SELECT value FROM meta WHERE key = 'refresh_tokens'").fetchone()
        states: dict[str, OrgState] = {}
        for _, value in metas:
            meta = json.loads(value)
            identity = OrgIdentity(**meta["identity"])
            state = OrgState(identity, OrgSettings(**meta["settings"]))
            if meta.get("jwt_certificate"):
                state.jwt_certificate = meta["jwt_certificate"].encode()
            self._load_records(state)
            self.attach(state)
            states[identity.name] = state
        for grant in json.loads(token_row[0]) if token_row else []:
            tokens.refresh[grant["token"]] = RefreshGrant(**grant)
        return states

    def _load_records(self, org: OrgState) -> None:
        name = org.identity.name
        highest = 0
        # custom fields first: they define how the other tables' values decode
        for pass_custom in (True, False):
            op = "=" if pass_custom else "!="
            with self._lock:
                cursor = self._db.execute(
                    f"SELECT sobject, id, deleted, data FROM records WHERE org = ? "  # noqa: S608
                    f"AND sobject {op} 'CustomField'", (name,))
                rows = cursor.fetchall()
            for sobject, rid, deleted, data in rows:
                obj = org.object_def(sobject) or org.object_def(sobject, tooling=True)
                if obj is None:
                    continue
                raw = json.loads(data)
                rec: Record = {}
                for key, value in raw.items():
                    f = obj.field_map.get(key.lower())
                    rec[key] = coerce(f, value) if f is not None and f.type in (
                        "date", "datetime") else value
                table = org.tables[sobject]
                (table.deleted if deleted else table.live)[rid] = rec
                highest = max(highest, counter_of(rid))
            if pass_custom:
                org.rebuild_custom_fields()
        org.ids.advance_past(highest)
        org.permissions_changed()

    # -- streaming events ------------------------------------------------------------------
    def log_events(self, org_name: str, channel: str,
                   events: Sequence[tuple[int, float, Any, str | None]], oldest: int) -> None:
        """Store a channel's new events and counter; drop its events older than `oldest`."""
        rows = [(org_name, channel, rid, at,
                 json.dumps(RENDERERS[render](payload, rid) if render else payload,
                            separators=(",", ":"), default=str))
                for rid, at, payload, render in events]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO stream_events VALUES (?,?,?,?,?)", rows)
            self._db.execute("DELETE FROM stream_events WHERE org = ? AND channel = ? "
                             "AND replay_id < ?", (org_name, channel, oldest))
            if events:
                self._db.execute(
                    "INSERT INTO stream_counters VALUES (?,?,?) ON CONFLICT (org, channel) "
                    "DO UPDATE SET next_id = max(next_id, excluded.next_id)",
                    (org_name, channel, events[-1][0] + 1))
            self._db.execute("COMMIT")

    def reset_events(self, org_name: str, channel: str, next_id: int) -> None:
        """Forget a channel's events; its counter restarts at `next_id`."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM stream_events WHERE org = ? AND channel = ?",
                             (org_name, channel))
            self._db.execute("INSERT INTO stream_counters VALUES (?,?,?) ON CONFLICT "
                             "(org, channel) DO UPDATE SET next_id = excluded.next_id",
                             (org_name, channel, next_id))
            self._db.execute("COMMIT")

    def load_events(self, org_name: str
                    ) -> dict[str, tuple[int, list[tuple[int, float, Any, None]]]]:
        """Per channel of the org: its next replay id and its events within retention."""
        horizon = time.time() - _LONGEST_RETENTION
        with self._lock:
            counters = self._db.execute(
                "SELECT channel, next_id FROM stream_counters WHERE org = ?",
                (org_name,)).fetchall()
            events = self._db.execute(
                "SELECT channel, replay_id, logged_at, data FROM stream_events WHERE org = ? "
                "AND logged_at >= ? ORDER BY channel, replay_id", (org_name, horizon)).fetchall()
        loaded: dict[str, tuple[int, list[tuple[int, float, Any, None]]]] = {
            channel: (next_id, []) for channel, next_id in counters}
        for channel, rid, at, data in events:
            if channel in loaded:
                loaded[channel][1].append((rid, at, json.loads(data), None))
        return loaded

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


class EventStore:
    """One org's `EventJournal` (ilyd/devorg/cometd_log.py) in the state file."""

    def __init__(self, store: SqliteStore, org_name: str) -> None:
        self._store = store
        self._org = org_name

    def logged(self, channel: str, events: Sequence[tuple[int, float, Any, str | None]],
               oldest: int) -> None:
        """See `EventJournal.logged`."""
        self._store.log_events(self._org, channel, events, oldest)

    def reset(self, channel: str, next_id: int) -> None:
        """See `EventJournal.reset`."""
        self._store.reset_events(self._org, channel, next_id)

    def load(self) -> dict[str, tuple[int, list[tuple[int, float, Any, None]]]]:
        """The org's channels as stored: next replay id and retained events."""
        return self._store.load_events(self._org)
