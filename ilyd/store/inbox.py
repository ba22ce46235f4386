"""The durable inbox: records waiting to be enriched, one row per (org, object, record id).

The subscriber (or the poller, or a catch-up query) `put`s changes; enricher workers
`claim` rows under a lease, and the writer `confirm`s them once Salesforce has the
values. A newer change to a pending record replaces it — enrichment only needs the
latest inputs — and its fields are merged over the pending ones, because a Change Data
Capture update carries only the fields that changed.

Every row carries a version (`seq`, from an AUTOINCREMENT key that a replacement
renews). Confirming a row deletes it only if it is still the version the worker
claimed; if a newer change arrived meanwhile, the row is released and processed again.
A worker that dies keeps its rows only until its lease runs out.

Leases are kept in memory (ilyd/store/leases.py), so a claim is a read: under load from a
hundred orgs, claims written as leases would be a large share of all write transactions. A
release with a retry delay or an error stores the delay, the error and the claim count.
A put of new records (none pending: one INSERT) can hand its rows over as a claim would
read them (`Handed`), and the org's enricher leases them without that read (`take`).

Puts from many threads (every streaming org has its own) share transactions when they
queue up behind one another (ilyd/store/group_commit.py), and a transaction writes
any number of entries with a fixed handful of statements.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import NamedTuple

from ilyd.store.db import MAX_PARAMETERS, Database, execute_values
from ilyd.store.group_commit import register, shared
from ilyd.store.leases import Leases
from ilyd.store.replay import ReplayStore

__all__ = ["Handed", "Inbox", "InboxEntry", "InboxItem"]

_MIGRATIONS = (
    "CREATE TABLE inbox ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " org TEXT NOT NULL, sobject TEXT NOT NULL, record_id TEXT NOT NULL,"
    " change_type TEXT NOT NULL, fields TEXT NOT NULL, source TEXT NOT NULL,"
    " received_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " lease_owner TEXT, lease_until REAL, last_error TEXT,"
    " UNIQUE (org, sobject, record_id));"
    "CREATE INDEX inbox_by_org_seq ON inbox(org, seq)",
)

# How long a claimed row stays with its worker unless confirmed or released.
DEFAULT_LEASE_SECONDS = 120.0

# Keys per SELECT of pending rows, padded to one of these sizes so a handful of
# statements stay in the connection's statement cache; 3 parameters a key stays under
# SQLite's 999 (before 3.32). The keys drive the join, so each is one index search.
_SELECT_SIZES = (1, 8, 64, 256)
_SELECT_PENDING = {
    size: "SELECT i.seq, i.org, i.sobject, i.record_id, i.fields, i.lease_owner,"  # noqa: S608 - placeholders only
          f" i.lease_until FROM (VALUES {','.join(['(?, ?, ?)'] * size)}) AS k"
          " CROSS JOIN inbox AS i ON i.org = k.column1 AND i.sobject = k.column2"
          " AND i.record_id = k.column3"
    for size in _SELECT_SIZES
}

# One encoder for every row: json.dumps(default=...) builds a new one per call.
_dumps = json.JSONEncoder(default=str).encode

# The INSERT of new rows (no record's row pending: its UNIQUE key refuses the statement
# otherwise), for up to a few rows without formatting it again.
_INSERT_WIDTH = 9


def _insert_sql(count: int) -> str:
    marks = ", ".join(["(" + ", ".join(["?"] * _INSERT_WIDTH) + ")"] * count)
    return ("INSERT INTO inbox(org, sobject, record_id, change_type, fields, source,"  # noqa: S608 - placeholders only
            f" received_at, lease_owner, lease_until) VALUES {marks}")


_INSERT_NEW = ["", *(_insert_sql(n) for n in range(1, 9))]


class _Put(NamedTuple):
    """One `put` call, waiting for its (group's) transaction."""

    inbox: Inbox
    org: str
    entries: Sequence[InboxEntry]
    source: str
    newest: dict[str, datetime]  # the checkpoint advance per object
    channel: str | None
    replay_id: int | None
    replay_time: datetime | None
    now: float
    # Filled by the write with the rows as a claim would read them when every entry's
    # record had no pending row (see `Handed`); None: not wanted.
    handed: list[InboxItem] | None = None


class _Row(NamedTuple):
    """A record's changes in one transaction, folded: `over_pending` when its fields
    still merge over those of a row already pending for it; `put` is the request of its
    latest change."""

    change_type: str
    fields: dict[str, object]
    over_pending: bool
    source: str
    now: float
    put: _Put


@dataclass(frozen=True)
class InboxEntry:
    """A change to put into the inbox.

    `modstamp` (the record's SystemModstamp, or the event's time) advances the object's
    catch-up checkpoint in the same transaction.
    """

    sobject: str
    record_id: str
    fields: Mapping[str, object] = field(default_factory=dict)
    change_type: str = "updated"
    modstamp: datetime | None = None


@dataclass(frozen=True)
class Handed:
    """Rows a `put` wrote for records with no row pending, as a claim would read them:
    the org's enricher takes them with `Inbox.take`, without reading the inbox — unless
    the org's rows were claimed since the put began (`epoch`: such a claim may have
    read them too, so the enricher claims from the inbox instead)."""

    org: str
    epoch: int
    items: tuple[InboxItem, ...]


@dataclass(frozen=True)
class InboxItem:
    """A pending record as a worker sees it; `seq` is the version it claimed."""

    org: str
    sobject: str
    record_id: str
    change_type: str
    fields: Mapping[str, object]
    source: str
    seq: int
    received_at: float
    attempts: int
    lease_owner: str | None
    last_error: str | None


def _item(row: sqlite3.Row, *, attempts: int | None = None,
          lease_owner: str | None = None) -> InboxItem:
    """The row as an item; a claim passes its own count and owner (leases are kept in
    memory, see the module's notes)."""
    return InboxItem(
        org=row["org"], sobject=row["sobject"], record_id=row["record_id"],
        change_type=row["change_type"], fields=json.loads(row["fields"]), source=row["source"],
        seq=row["seq"], received_at=row["received_at"],
        attempts=row["attempts"] if attempts is None else attempts,
        lease_owner=row["lease_owner"] if lease_owner is None else lease_owner,
        last_error=row["last_error"],
    )


class Inbox:
    """Pending records of every org, with leases for concurrent workers."""

    def __init__(
        self,
        db: Database,
        replay: ReplayStore | None = None,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.replay = replay if replay is not None else ReplayStore(db)
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._group = shared(db)
        self._leases = Leases()
        self._insert_first = True  # see `_upsert`
        db.migrate("inbox", _MIGRATIONS)
        # Rows up to this version were here before this process opened the inbox: a
        # previous run may have written them and died before confirming.
        self.recovered_through: int = db.connection().execute(
            "SELECT COALESCE(MAX(seq), 0) FROM inbox").fetchone()[0]

    # -- producers ----------------------------------------------------------------------

    def put(
        self,
        org: str,
        entries: Iterable[InboxEntry],
        *,
        source: str = "",
        channel: str | None = None,
        replay_id: int | None = None,
        replay_time: datetime | None = None,
        handed: list[Handed] | None = None,
    ) -> int:
        """Store the changes — and the channel's replay id, if given, with its event's
        time `replay_time` — in ONE transaction.

        Returns how many entries were written. With `handed`, the rows written are
        appended to it as one `Handed` when no record of the entries had a row pending
        (nothing is appended otherwise: the rows are then claimed from the inbox).
        A crash before the commit leaves neither the rows nor the replay id, so the
        event is simply delivered again. Puts that arrive while another's transaction
        runs (any org's, on the same database) are committed together in the next one;
        so never call `put` inside an open transaction of this database (the put would
        wait for the group, and the group for that transaction).
        """
        batch = entries if isinstance(entries, list | tuple) else list(entries)
        newest: dict[str, datetime] = {}
        for entry in batch:
            stamp = entry.modstamp
            if stamp is None:
                continue
            if stamp.tzinfo is None:
                raise ValueError(f"checkpoint time {stamp!r} has no time zone; pass an aware"
                                 " UTC datetime")
            # The checkpoint only moves forward: the batch's newest time per object is the
            # one statement that has the effect of advancing it entry by entry.
            known = newest.get(entry.sobject)
            if known is None or stamp > known:
                newest[entry.sobject] = stamp
        # Read before the write: a claim after it may read the rows (see `Handed`).
        epoch = self._leases.epoch(org) if handed is not None and batch else 0
        slot: list[InboxItem] | None = [] if handed is not None and batch else None
        request = _Put(self, org, batch, source or channel or "", newest, channel, replay_id,
                       replay_time, self._clock(), slot)
        self._group.submit(request)
        if slot and handed is not None:
            handed.append(Handed(org, epoch, tuple(slot)))
        return len(batch)

    def take(self, handed: Handed, *, worker: str | None = None,
             lease_seconds: float | None = None) -> list[InboxItem] | None:
        """Lease the handed rows as `claim` would have (records leased already are
        skipped), without reading the inbox; None when the org's rows were claimed since
        they were put: claim them from the inbox instead."""
        owner = worker or uuid.uuid4().hex
        now = self._clock()
        until = now + (self.lease_seconds if lease_seconds is None else lease_seconds)
        taken = self._leases.take(handed.org, handed.epoch, handed.items, owner=owner,
                                  now=now, until=until)
        if taken is None:
            return None
        return [InboxItem(i.org, i.sobject, i.record_id, i.change_type, i.fields, i.source,
                          i.seq, i.received_at, attempts, owner, i.last_error)
                for i, attempts in taken]

    @staticmethod
    def _upsert(tx: sqlite3.Connection, requests: Sequence[_Put]) -> None:
        """Insert the requests' rows, merged over pending ones, as one put per entry
        would have left them: one SELECT of the pending rows touched, one INSERT."""
        # Folded per record first: a deletion replaces the fields, anything else merges
        # over them (and over the pending row's, unless a deletion came in between).
        rows: dict[tuple[str, str, str], _Row] = {}
        for r in requests:
            if r.handed is not None:
                r.handed.clear()  # a retried write fills it again
            for entry in r.entries:
                key = (r.org, entry.sobject, entry.record_id)
                row = rows.pop(key, None)  # re-added last: rows go in by their latest change
                fields = entry.fields if type(entry.fields) is dict else dict(entry.fields)
                if entry.change_type == "deleted":
                    row = _Row(entry.change_type, fields, False, r.source, r.now, r)
                elif row is None:
                    row = _Row(entry.change_type, fields, True, r.source, r.now, r)
                else:
                    row = _Row(entry.change_type, {**row.fields, **fields}, row.over_pending,
                               r.source, r.now, r)
                rows[key] = row
        if not rows:
            return
        # A put over pending rows (a backlog, a throttled org) would fail the one INSERT
        # first: after such a failure, merge at once until a merge finds nothing pending.
        inbox = requests[0].inbox
        if inbox._insert_first:
            if Inbox._insert_new(tx, rows):
                return
            inbox._insert_first = False
        old: dict[tuple[str, str, str], sqlite3.Row] = {}
        keys = list(rows)
        largest = _SELECT_SIZES[-1]
        for at in range(0, len(keys), largest):
            chunk = keys[at:at + largest]
            for size in _SELECT_SIZES:  # the first that fits
                if size >= len(chunk):
                    break
            chunk += chunk[:1] * (size - len(chunk))  # a repeated key finds nothing new
            params = [value for key in chunk for value in key]
            for found in tx.execute(_SELECT_PENDING[size], params):
                old[(found["org"], found["sobject"], found["record_id"])] = found
        inbox._insert_first = not old
        Inbox.delete_versions(tx, [r["seq"] for r in old.values()])
        values = []
        for key, row in rows.items():
            fields = row.fields
            lease_owner = lease_until = None
            pending = old.get(key)
            if pending is not None:
                if row.over_pending:
                    fields = {**json.loads(pending["fields"]), **fields}
                # A worker may be processing the older version right now: it keeps its
                # lease, so the new version is not processed concurrently; its confirm then
                # sees a new seq and releases the row instead of deleting it.
                lease_owner, lease_until = pending["lease_owner"], pending["lease_until"]
            values.append((*key, row.change_type, _dumps(fields), row.source, row.now,
                           lease_owner, lease_until))
        execute_values(tx, "INSERT INTO inbox(org, sobject, record_id, change_type, fields,"
                       " source, received_at, lease_owner, lease_until)", values)

    @staticmethod
    def _insert_new(tx: sqlite3.Connection, rows: dict[tuple[str, str, str], _Row]) -> bool:
        """Insert the rows in one statement if no record of them has a row pending (the
        usual case: a record changes again seldom before it is written); False, with
        nothing written, if one has (the statement fails whole) or they need more than
        one statement. Fills the requests' `handed` slots."""
        if len(rows) * _INSERT_WIDTH > MAX_PARAMETERS:
            return False
        values = []
        texts = []
        for key, row in rows.items():
            text = _dumps(row.fields)
            texts.append(text)
            values.extend((*key, row.change_type, text, row.source, row.now, None, None))
        try:
            cursor = tx.execute(_INSERT_NEW[len(rows)] if len(rows) < len(_INSERT_NEW)
                                else _insert_sql(len(rows)), values)
        except sqlite3.IntegrityError:  # a record's row is pending (UNIQUE): merge instead
            return False
        # One statement's rows take consecutive versions, in order (AUTOINCREMENT, and
        # this transaction holds the write lock).
        seq = int(cursor.lastrowid or 0) - len(rows)
        owned: dict[int, int] = {}  # per request (by id), its rows here
        for (org, sobject, record_id), row, text in zip(rows, rows.values(), texts,
                                                         strict=True):
            seq += 1
            slot = row.put.handed
            if slot is not None:
                # The fields as a claim would read them back (JSON's own types).
                slot.append(InboxItem(org, sobject, record_id, row.change_type,
                                      json.loads(text), row.source, seq, row.now, 0, None,
                                      None))
                owned[id(row.put)] = owned.get(id(row.put), 0) + 1
        for request in {id(row.put): row.put for row in rows.values()}.values():
            # A request whose record's latest change is another request's hands nothing.
            if request.handed and owned.get(id(request), 0) != len(
                    {(e.sobject, e.record_id) for e in request.entries}):
                request.handed.clear()
        return True

    # -- workers ------------------------------------------------------------------------

    def claim(
        self, org: str, limit: int, *, worker: str | None = None, lease_seconds: float | None = None
    ) -> list[InboxItem]:
        """Lease up to `limit` unleased (or lease-expired) rows of the org, oldest first.

        A read of the database: the lease is kept in this Inbox (see the module's notes).
        Rows put back with a delay are claimable once it has passed.
        """
        owner = worker or uuid.uuid4().hex
        now = self._clock()
        until = now + (self.lease_seconds if lease_seconds is None else lease_seconds)
        conn = self.db.connection()

        def read(n: int) -> list[sqlite3.Row]:
            return conn.execute(
                "SELECT * FROM inbox WHERE org = ? AND (lease_until IS NULL OR lease_until <= ?)"
                " ORDER BY seq LIMIT ?", (org, now, n),
            ).fetchall()

        taken = self._leases.claim(org, read, owner=owner, now=now, until=until, limit=limit)
        return [_item(row, attempts=attempts, lease_owner=owner)  # type: ignore[arg-type]
                for row, attempts in taken]

    def due(self, org: str) -> tuple[bool, float | None]:
        """(Is a row of the org claimable now?, the earliest time one that is not becomes
        claimable: a retry delay's or a lease's end, None if none)."""
        now = self._clock()
        leased = {key: lease.until for key, lease in self._leases.live(org, now).items()}
        conn = self.db.connection()
        rows = conn.execute(
            "SELECT sobject, record_id FROM inbox WHERE org = ?"
            " AND (lease_until IS NULL OR lease_until <= ?) ORDER BY seq LIMIT ?",
            (org, now, len(leased) + 1),
        ).fetchall()
        ready = any((r["sobject"], r["record_id"]) not in leased for r in rows)
        later = conn.execute("SELECT MIN(lease_until) FROM inbox WHERE org = ? AND lease_until > ?",
                             (org, now)).fetchone()[0]
        ends = list(leased.values())
        if later is not None:
            ends.append(float(later))
        return ready, min(ends) if ends else None

    def confirm(self, items: Iterable[InboxItem], *,
                conn: sqlite3.Connection | None = None) -> int:
        """Delete the rows these items were claimed as; returns how many were deleted.

        A row replaced by a newer change since the claim is not deleted but released, so
        the newer change gets processed. `conn`: an open transaction to join.
        """
        items = list(items)
        with self.db.joined(conn) as tx:
            deleted = len(self.delete_versions(tx, [item.seq for item in items]))
        self._leases.end(items)
        return deleted

    @staticmethod
    def delete_versions(tx: sqlite3.Connection, seqs: Sequence[int]) -> set[int]:
        """Delete the rows still at these versions (any orgs) in the open transaction `tx`;
        returns the versions deleted (the others were replaced by newer changes). Two
        statements for any number."""
        present: set[int] = set()
        for at in range(0, len(seqs), MAX_PARAMETERS):
            chunk = list(seqs[at:at + MAX_PARAMETERS])
            marks = ", ".join(["?"] * len(chunk))
            found = tx.execute(f"SELECT group_concat(seq) FROM inbox WHERE seq IN ({marks})",  # noqa: S608 - placeholders only
                               chunk).fetchone()[0]
            if found:
                present.update(int(seq) for seq in str(found).split(","))
                tx.execute(f"DELETE FROM inbox WHERE seq IN ({marks})", chunk)  # noqa: S608
        return present

    def end_leases(self, items: Iterable[InboxItem]) -> list[InboxItem]:
        """End the items' leases still held by their workers (rows confirmed in a
        transaction of the caller's, or given back); returns those items."""
        return self._leases.end(items)  # type: ignore[return-value]

    def release(
        self, items: Iterable[InboxItem], *, delay: float = 0.0, error: str | None = None
    ) -> None:
        """Give claimed rows back, claimable again after `delay` seconds (a retry later).

        A delay or an error is stored with the row, and so is its claim count; a plain
        give-back (stopping) only ends the leases.
        """
        until = self._clock() + delay if delay > 0 else None
        mine = self.end_leases(items)
        if not mine or (until is None and error is None):
            return
        with self.db.transaction() as tx:
            for item in mine:
                tx.execute(
                    "UPDATE inbox SET lease_until = ?, last_error = COALESCE(?, last_error),"
                    " attempts = MAX(attempts, ?)"
                    " WHERE org = ? AND sobject = ? AND record_id = ?",
                    (until, error, item.attempts, item.org, item.sobject, item.record_id),
                )

    # -- read-back ----------------------------------------------------------------------

    def depth(self, org: str | None = None) -> int:
        """How many records wait (claimed or not), for one org or all."""
        conn = self.db.connection()
        if org is None:
            return int(conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0])
        return int(conn.execute("SELECT COUNT(*) FROM inbox WHERE org = ?", (org,)).fetchone()[0])

    def pending(self, org: str) -> list[InboxItem]:
        """Every row of the org, oldest first, with the worker holding it if any (for ctl
        status and tests)."""
        rows = self.db.connection().execute(
            "SELECT * FROM inbox WHERE org = ? ORDER BY seq", (org,)
        ).fetchall()
        held = self._leases.live(org, self._clock())
        items = []
        for row in rows:
            item = _item(row)
            lease = held.get((item.sobject, item.record_id))
            if lease is not None:
                item = replace(item, lease_owner=lease.owner, attempts=lease.attempts)
            items.append(item)
        return items

    def waiting(self, org: str, sobject: str, record_ids: Sequence[str]) -> set[str]:
        """Which of these records have a row in the inbox (claimed or not)."""
        conn = self.db.connection()
        found: set[str] = set()
        per = MAX_PARAMETERS - 2
        for start in range(0, len(record_ids), per):
            chunk = list(record_ids[start:start + per])
            # Only "?" placeholders are formatted into the statement.
            sql = ("SELECT record_id FROM inbox WHERE org = ? AND sobject = ?"  # noqa: S608
                   f" AND record_id IN ({','.join('?' * len(chunk))})")
            found.update(row[0] for row in conn.execute(sql, (org, sobject, *chunk)))
        return found

    def oldest_age(self, org: str) -> float | None:
        """Seconds the oldest waiting row of the org has waited, or None when empty."""
        row = self.db.connection().execute(
            "SELECT MIN(received_at) AS t FROM inbox WHERE org = ?", (org,)
        ).fetchone()
        return None if row["t"] is None else max(0.0, self._clock() - row["t"])


def _write(tx: sqlite3.Connection, requests: Sequence[_Put]) -> None:
    """Write the requests (of any orgs' inboxes on one database) in the open transaction
    `tx`, with a fixed number of statements however many requests and entries: under
    load, statements (each a GIL handoff) and commits are most of an event's cost."""
    replay = requests[0].inbox.replay
    Inbox._upsert(tx, requests)
    checkpoints = [(r.org, sobject, stamp) for r in requests
                   for sobject, stamp in r.newest.items()]
    if checkpoints:
        replay.advance_checkpoints(checkpoints, conn=tx)
    replay_ids = [(r.org, r.channel, r.replay_id, r.replay_time) for r in requests
                  if r.channel is not None and r.replay_id is not None]
    if replay_ids:
        replay.set_many(replay_ids, conn=tx)


# Every org's Inbox on a database shares its group commit (with the writers'
# confirmations): it is the orgs' puts that queue up together.
register(_Put, _write, lambda put: put.inbox.db)
