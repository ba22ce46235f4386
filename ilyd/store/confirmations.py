"""Confirmations: the end of a written record, committed for many orgs at once.

When Salesforce confirms a write, the writer stores three things in one transaction:
the hash of the values written (record_hashes), the inputs they came from
(record_inputs), and the inbox row's deletion — unless a newer change replaced the row
meanwhile. With a hundred orgs each writer did that in a transaction of its own, with a
statement per record and table; the transactions queued for the database's one write
lock, and each held it through a dozen hand-offs of the interpreter lock (every SQLite
step gives it up). Here the confirmations that queue up while one transaction runs are
committed together in the next — with the inbox's puts queued meanwhile
(ilyd/store/group_commit.py `shared`) — in four statements however many orgs and
records they carry.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from ilyd.store.field_state import FieldStateStore
from ilyd.store.group_commit import register, shared
from ilyd.store.history import HistoryStore
from ilyd.store.inbox import Inbox, InboxItem
from ilyd.store.record_hashes import RecordHashStore
from ilyd.store.writes import WriteStateStore

__all__ = ["Confirmation", "confirm"]


@dataclass
class Confirmation:
    """One writer's confirmed records of one org: their inbox rows, and (for records
    written) the hash of the values written and of the inputs they came from."""

    inbox: Inbox
    org: str
    items: Sequence[InboxItem]
    hashes: Sequence[tuple[str, str, str]] = ()  # (sobject, record id, values hash)
    inputs: Sequence[tuple[str, str, str]] = ()  # (sobject, record id, inputs hash)
    digests: Sequence[tuple[str, str, str]] = ()  # (sobject, record id, field digests)
    history: Sequence[tuple[str, str, float, str, str]] = ()  # ilyd.store.history rows
    source: str = "realtime"
    written_at: float = 0.0
    deleted: set[int] = field(default_factory=set)  # the versions deleted (the result)


def confirm(confirmation: Confirmation) -> int:
    """Commit the confirmation (with others queued meanwhile); returns how many inbox
    rows were deleted — the others were replaced by newer changes and are claimable
    again. The rows' leases end once it is committed."""
    shared(confirmation.inbox.db).submit(confirmation)
    confirmation.inbox.end_leases(confirmation.items)
    return len(confirmation.deleted)


def _write(tx: sqlite3.Connection, requests: Sequence[Confirmation]) -> None:
    present = Inbox.delete_versions(tx, [i.seq for r in requests for i in r.items])
    RecordHashStore.put_rows(tx, [(r.org, sobject, record, value, r.source, r.written_at)
                                  for r in requests for sobject, record, value in r.hashes])
    WriteStateStore.remember_rows(tx, [(r.org, sobject, record, value) for r in requests
                                       for sobject, record, value in r.inputs])
    FieldStateStore.remember_rows(tx, [(r.org, sobject, record, value) for r in requests
                                       for sobject, record, value in r.digests])
    HistoryStore.insert_rows(tx, [row for r in requests for row in r.history])
    for r in requests:  # a failed transaction is retried request by request: set again
        r.deleted = {i.seq for i in r.items if i.seq in present}


register(Confirmation, _write, lambda confirmation: confirmation.inbox.db)
