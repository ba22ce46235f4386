"""Inbox: one pending row per record, replaced by newer changes, leased to workers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from ilyd.store import Database
from ilyd.store.inbox import Inbox, InboxEntry
from ilyd.store.replay import ReplayStore
from tests.helpers.store import write_lock_held


class Clock:
    """A settable clock so lease expiry is tested without waiting."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def lead(n: int, **fields: object) -> InboxEntry:
    return InboxEntry("Lead", f"00Q{n:015d}", fields or {"Email": f"a{n}@example.com"})


def test_put_writes_rows_and_the_replay_id_together(db: Database) -> None:
    inbox = Inbox(db)
    inbox.put("acme", [lead(1), lead(2)], channel="/topic/IlyLeads", replay_id=17)
    assert inbox.depth("acme") == 2
    assert inbox.depth("other") == 0
    assert inbox.replay.get("acme", "/topic/IlyLeads") == 17
    assert [i.source for i in inbox.pending("acme")] == ["/topic/IlyLeads"] * 2


def test_a_failing_put_stores_neither_rows_nor_replay_id(db: Database) -> None:
    inbox = Inbox(db)
    bad = InboxEntry("Lead", "00Q1", {}, modstamp=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="time zone"):
        inbox.put("acme", [lead(1), bad], channel="/topic/IlyLeads", replay_id=5)
    assert inbox.depth("acme") == 0
    assert inbox.replay.get("acme", "/topic/IlyLeads") is None


def test_a_newer_change_replaces_the_pending_one_and_merges_fields(db: Database) -> None:
    inbox = Inbox(db)
    inbox.put("acme", [InboxEntry("Account", "001A", {"Name": "Acme", "Website": "a.com"},
                                  change_type="created")])
    inbox.put("acme", [InboxEntry("Account", "001A", {"Website": "acme.io"})])
    [item] = inbox.pending("acme")
    assert item.fields == {"Name": "Acme", "Website": "acme.io"}
    assert item.change_type == "updated"
    inbox.put("acme", [InboxEntry("Account", "001A", {}, change_type="deleted")])
    [item] = inbox.pending("acme")
    assert (item.change_type, dict(item.fields)) == ("deleted", {})


def test_put_advances_the_catch_up_checkpoint(db: Database) -> None:
    inbox = Inbox(db)
    t = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    inbox.put("acme", [InboxEntry("Lead", "00QA", {}, modstamp=t)])
    assert ReplayStore(db).checkpoint("acme", "Lead") == t


def test_two_workers_never_claim_the_same_row(db: Database) -> None:
    inbox = Inbox(db)
    inbox.put("acme", [lead(n) for n in range(300)])
    claimed: list[list[str]] = [[] for _ in range(6)]

    def work(slot: int) -> None:
        while batch := inbox.claim("acme", 7, worker=f"w{slot}"):
            claimed[slot].extend(i.record_id for i in batch)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    every = [rid for part in claimed for rid in part]
    assert len(every) == 300
    assert len(set(every)) == 300


def test_a_crashed_workers_lease_expires(db: Database) -> None:
    clock = Clock()
    inbox = Inbox(db, lease_seconds=30, clock=clock)
    inbox.put("acme", [lead(1)])
    [first] = inbox.claim("acme", 10, worker="dead")
    assert inbox.claim("acme", 10, worker="alive") == []
    clock.now += 31
    [again] = inbox.claim("acme", 10, worker="alive")
    assert (again.record_id, again.attempts, again.lease_owner) == (first.record_id, 2, "alive")


def test_confirm_deletes_the_claimed_rows(db: Database) -> None:
    inbox = Inbox(db)
    inbox.put("acme", [lead(1), lead(2), lead(3)])
    batch = inbox.claim("acme", 2)
    assert inbox.confirm(batch) == 2
    assert [i.record_id for i in inbox.pending("acme")] == [lead(3).record_id]


def test_a_change_arriving_during_processing_is_not_confirmed_away(db: Database) -> None:
    inbox = Inbox(db)
    inbox.put("acme", [lead(1, Email="old@example.com")])
    [old] = inbox.claim("acme", 1, worker="w")
    inbox.put("acme", [lead(1, Email="new@example.com")])
    # still leased to w: no second worker processes the newer version concurrently
    assert inbox.claim("acme", 1, worker="other") == []
    assert inbox.confirm([old]) == 0
    [newer] = inbox.claim("acme", 1, worker="other")
    assert newer.fields["Email"] == "new@example.com"


def test_release_with_delay_makes_the_row_claimable_later(db: Database) -> None:
    clock = Clock()
    inbox = Inbox(db, clock=clock)
    inbox.put("acme", [lead(1)])
    batch = inbox.claim("acme", 1)
    inbox.release(batch, delay=60, error="provider timed out")
    assert inbox.claim("acme", 1) == []
    clock.now += 61
    [item] = inbox.claim("acme", 1)
    assert item.last_error == "provider timed out"
    assert inbox.oldest_age("acme") == 61


def test_a_confirm_joined_to_a_failed_transaction_deletes_nothing(db: Database) -> None:
    from ilyd.store.record_hashes import RecordHashStore

    inbox = Inbox(db)
    hashes = RecordHashStore(db)
    inbox.put("acme", [lead(1)])
    items = inbox.claim("acme", 10)

    def confirm_then_fail() -> None:
        with db.transaction() as tx:
            hashes.put_many("acme", "Lead", {items[0].record_id: "h1"}, "realtime", conn=tx)
            assert inbox.confirm(items, conn=tx) == 1
            raise RuntimeError("crash before the commit")

    with pytest.raises(RuntimeError):
        confirm_then_fail()
    assert inbox.depth("acme") == 1
    assert hashes.get_many("acme", "Lead", [items[0].record_id]) == {}
    with db.transaction() as tx:
        hashes.put_many("acme", "Lead", {items[0].record_id: "h1"}, "realtime", conn=tx)
        inbox.confirm(items, conn=tx)
    assert inbox.depth("acme") == 0
    assert hashes.get_many("acme", "Lead", [items[0].record_id])[items[0].record_id].hash == "h1"


def test_a_claim_is_a_read_and_does_not_wait_for_another_writer(db: Database) -> None:
    inbox = Inbox(db)
    inbox.put("acme", [lead(1)])
    claimed: list[str] = []
    with write_lock_held(db):
        claimer = threading.Thread(
            target=lambda: claimed.extend(i.record_id for i in inbox.claim("acme", 5)))
        claimer.start()
        claimer.join(10)
        assert not claimer.is_alive(), "claim waited for the write transaction"
    assert claimed == [lead(1).record_id]


def test_due_counts_rows_in_a_workers_hands_from_their_lease_end(db: Database) -> None:
    clock = Clock()
    inbox = Inbox(db, lease_seconds=30, clock=clock)
    inbox.put("acme", [lead(1)])
    assert inbox.due("acme") == (True, None)
    [item] = inbox.claim("acme", 5)
    assert inbox.due("acme") == (False, clock.now + 30)
    inbox.release([item], delay=10, error="provider down")
    assert inbox.due("acme") == (False, clock.now + 10)
    clock.now += 11
    assert inbox.due("acme") == (True, None)


def test_a_retry_keeps_its_claim_count_and_error_across_a_restart(db: Database) -> None:
    clock = Clock()
    first = Inbox(db, clock=clock)
    first.put("acme", [lead(1)])
    [item] = first.claim("acme", 5)
    first.release([item], delay=5, error="UNABLE_TO_LOCK_ROW")
    clock.now += 6
    restarted = Inbox(db, clock=clock)  # a restarted daemon's inbox
    [again] = restarted.claim("acme", 5)
    assert (again.attempts, again.last_error) == (2, "UNABLE_TO_LOCK_ROW")
    assert restarted.confirm([again]) == 1
    # A worker's rows are free for the restarted daemon at once (its leases died with it).
    first.put("acme", [lead(2)])
    [held] = first.claim("acme", 5)
    [taken] = Inbox(db, clock=clock).claim("acme", 5)
    assert taken.record_id == held.record_id
