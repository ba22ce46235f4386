"""Rows a put hands over (`Handed`): taken by the enricher as a claim would have read
them, without reading the inbox, and never when a claim may have read them too."""

from __future__ import annotations

from datetime import UTC, datetime

from ilyd.store import Database
from ilyd.store.inbox import Handed, Inbox, InboxEntry


def lead(n: int, **fields: object) -> InboxEntry:
    return InboxEntry("Lead", f"00Q{n:015d}", fields or {"Email": f"a{n}@example.com"},
                      modstamp=datetime(2026, 12, 7, 12, 0, n, tzinfo=UTC))


def test_handed_rows_are_the_rows_a_claim_reads_and_taking_them_leases_them(
        db: Database) -> None:
    inbox = Inbox(db)
    handed: list[Handed] = []
    inbox.put("acme", [lead(1), lead(2, Website="https://acme.com/", Employees=12)],
              channel="/topic/IlyLeads", replay_id=5, handed=handed)
    assert len(handed) == 1
    taken = inbox.take(handed[0], worker="w1")
    assert taken is not None
    # What a claim would have read, the leases' owner and count included.
    other = Inbox(db)
    assert taken == other.claim("acme", 10, worker="w1")
    assert inbox.claim("acme", 10, worker="w2") == []  # leased already
    assert inbox.confirm(taken) == 2
    assert inbox.depth("acme") == 0


def test_a_put_over_a_pending_row_hands_nothing_and_merges_as_before(db: Database) -> None:
    inbox = Inbox(db)
    inbox.put("acme", [lead(1, Email="old@acme.com", Company="Acme")])
    handed: list[Handed] = []
    inbox.put("acme", [lead(1, Email="new@acme.com"), lead(2)], handed=handed)
    assert handed == []
    items = inbox.claim("acme", 10)
    assert [dict(i.fields) for i in items] == [
        {"Email": "new@acme.com", "Company": "Acme"}, {"Email": "a2@example.com"}]


def test_rows_are_not_taken_when_a_claim_ran_since_their_put_began(db: Database) -> None:
    inbox = Inbox(db)
    handed: list[Handed] = []
    inbox.put("acme", [lead(1)], handed=handed)
    claimed = inbox.claim("acme", 10, worker="w1")
    assert len(claimed) == 1
    inbox.confirm(claimed)
    assert inbox.take(handed[0], worker="w1") is None  # the claim may have read them


def test_a_record_leased_already_is_skipped_by_take(db: Database) -> None:
    inbox = Inbox(db)
    first: list[Handed] = []
    inbox.put("acme", [lead(1)], handed=first)
    held = inbox.take(first[0], worker="w1")
    assert held is not None
    second: list[Handed] = []
    inbox.put("acme", [lead(2)], handed=second)
    again = Handed("acme", second[0].epoch, (*held, *second[0].items))
    assert [i.record_id for i in inbox.take(again, worker="w2") or []] == [lead(2).record_id]
