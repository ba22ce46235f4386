"""Inbox.put with many entries at once: the batch leaves the rows exactly as one put per
entry would have, in one transaction with the replay id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ilyd.store import Database
from ilyd.store.inbox import Inbox, InboxEntry


def entry(record: str, change: str = "updated", **fields: object) -> InboxEntry:
    return InboxEntry("Lead", record, fields, change_type=change)


def rows(inbox: Inbox) -> list[tuple[str, str, dict[str, object]]]:
    return [(i.record_id, i.change_type, dict(i.fields)) for i in inbox.pending("acme")]


BATCH = [
    entry("00QA", "created", Email="a@a.com", Company="A"),
    entry("00QB", "created", Email="b@b.com"),
    entry("00QA", Company="A2"),
    entry("00QC", Website="c.com"),
    entry("00QB", "deleted"),
    entry("00QB", Company="B again"),
    entry("00QC", Email=None),
]


def test_a_batch_leaves_the_same_rows_as_one_put_per_entry(tmp_path: Path) -> None:
    one, many = Database(tmp_path / "one.db"), Database(tmp_path / "many.db")
    try:
        singly, batched = Inbox(one), Inbox(many)
        for inbox in (singly, batched):
            inbox.put("acme", [entry("00QC", "created", Email="c@c.com", Company="C"),
                               entry("00QB", "created", Email="old@b.com", Website="b.com")])
        for e in BATCH:
            singly.put("acme", [e])
        assert batched.put("acme", BATCH) == len(BATCH)
        assert rows(batched) == rows(singly)
        assert rows(batched) == [
            ("00QA", "updated", {"Email": "a@a.com", "Company": "A2"}),
            ("00QB", "updated", {"Company": "B again"}),
            ("00QC", "updated", {"Email": None, "Company": "C", "Website": "c.com"}),
        ]
    finally:
        one.close()
        many.close()


def test_a_batch_renews_the_seq_of_a_pending_row_and_keeps_its_workers_lease(
    db: Database,
) -> None:
    inbox = Inbox(db)
    inbox.put("acme", [entry("00QA", "created", Email="a@a.com"), entry("00QB")])
    [claimed] = inbox.claim("acme", 1, worker="w1")
    inbox.put("acme", [entry("00QZ"), entry(claimed.record_id, Company="Acme")])
    row = next(i for i in inbox.pending("acme") if i.record_id == claimed.record_id)
    assert row.seq > claimed.seq
    assert row.lease_owner == "w1"
    assert dict(row.fields) == {"Email": "a@a.com", "Company": "Acme"}
    assert inbox.confirm([claimed]) == 0  # a newer change arrived: released, not deleted
    assert [i.record_id for i in inbox.claim("acme", 10)] == ["00QB", "00QZ", "00QA"]


def test_a_batch_larger_than_one_select_finds_every_pending_row(db: Database) -> None:
    inbox = Inbox(db)
    inbox.put("acme", [entry(f"00Q{n:015d}", "created", Email=f"{n}@x.com")
                       for n in range(0, 1300, 2)])
    inbox.put("acme", [entry(f"00Q{n:015d}", Company=f"C{n}") for n in range(1300)])
    pending = {i.record_id: dict(i.fields) for i in inbox.pending("acme")}
    assert len(pending) == 1300
    assert pending[f"00Q{1298:015d}"] == {"Email": "1298@x.com", "Company": "C1298"}
    assert pending[f"00Q{1299:015d}"] == {"Company": "C1299"}


def test_the_checkpoint_moves_to_the_newest_time_of_the_batch_only_forward(
    db: Database,
) -> None:
    inbox = Inbox(db)
    t = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    paris = t.astimezone(ZoneInfo("Europe/Paris"))
    inbox.put("acme", [InboxEntry("Lead", "00QA", {}, modstamp=t - timedelta(minutes=1)),
                       InboxEntry("Lead", "00QB", {}, modstamp=paris),
                       InboxEntry("Account", "001A", {}, modstamp=t - timedelta(hours=1)),
                       InboxEntry("Lead", "00QC", {}, modstamp=t - timedelta(minutes=5))],
               channel="/topic/IlyLeads", replay_id=9, replay_time=t)
    assert inbox.replay.checkpoint("acme", "Lead") == t
    assert inbox.replay.checkpoint("acme", "Account") == t - timedelta(hours=1)
    assert inbox.replay.event_time("acme", "/topic/IlyLeads") == t
    inbox.put("acme", [InboxEntry("Lead", "00QD", {}, modstamp=t - timedelta(days=1))])
    assert inbox.replay.checkpoint("acme", "Lead") == t


def test_a_batch_with_a_time_without_zone_stores_nothing(db: Database) -> None:
    inbox = Inbox(db)
    bad = InboxEntry("Lead", "00QB", {}, modstamp=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="time zone"):
        inbox.put("acme", [entry("00QA"), bad], channel="/topic/IlyLeads", replay_id=5)
    assert inbox.depth("acme") == 0
    assert inbox.replay.get("acme", "/topic/IlyLeads") is None


def test_an_empty_batch_still_stores_the_replay_id(db: Database) -> None:
    inbox = Inbox(db)
    assert inbox.put("acme", [], channel="/topic/IlyLeads", replay_id=42) == 0
    assert inbox.replay.get("acme", "/topic/IlyLeads") == 42
