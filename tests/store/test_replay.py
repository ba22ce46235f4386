"""ReplayStore: replay ids per (org, channel) and forward-only catch-up checkpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ilyd.store import Database
from ilyd.store.replay import GapStart, ReplayStore


def test_replay_ids_are_kept_per_org_and_channel(db: Database) -> None:
    store = ReplayStore(db)
    store.set("acme", "/topic/IlyAccounts", 41)
    store.set("acme", "/topic/IlyLeads", 7)
    store.set("other", "/topic/IlyAccounts", 3)
    store.set("acme", "/topic/IlyAccounts", 42)
    assert store.get("acme", "/topic/IlyAccounts") == 42
    assert store.all("acme") == {"/topic/IlyAccounts": 42, "/topic/IlyLeads": 7}
    assert store.get("acme", "/topic/Nothing") is None


def test_replay_ids_survive_reopening_the_file(tmp_path: Path) -> None:
    first = Database(tmp_path / "s.db")
    ReplayStore(first).set("acme", "/data/AccountChangeEvent", 9001)
    first.close()
    second = Database(tmp_path / "s.db")
    assert ReplayStore(second).get("acme", "/data/AccountChangeEvent") == 9001
    second.close()


def test_clear_forgets_one_channel_or_the_whole_org(db: Database) -> None:
    store = ReplayStore(db)
    store.set("acme", "/topic/A", 1)
    store.set("acme", "/topic/B", 2)
    store.clear("acme", "/topic/A")
    assert store.all("acme") == {"/topic/B": 2}
    store.clear("acme")
    assert store.all("acme") == {}


def test_checkpoint_only_moves_forward(db: Database) -> None:
    store = ReplayStore(db)
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert store.checkpoint("acme", "Lead") is None
    store.advance_checkpoint("acme", "Lead", t0)
    store.advance_checkpoint("acme", "Lead", t0 - timedelta(hours=1))
    assert store.checkpoint("acme", "Lead") == t0
    store.advance_checkpoint("acme", "Lead", t0 + timedelta(microseconds=5))
    assert store.checkpoint("acme", "Lead") == t0 + timedelta(microseconds=5)
    assert store.checkpoint("acme", "Account") is None


def test_checkpoint_rejects_a_naive_time(db: Database) -> None:
    with pytest.raises(ValueError, match="time zone"):
        ReplayStore(db).advance_checkpoint("acme", "Lead", datetime(2024, 5, 1))


def test_a_replay_id_keeps_its_events_time_until_replaced(db: Database) -> None:
    store = ReplayStore(db)
    at = datetime(2026, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    store.set("acme", "/topic/A", 5, event_time=at)
    assert store.event_time("acme", "/topic/A") == at
    store.set("acme", "/topic/A", 6)  # an event without a time: the old one no longer applies
    assert store.event_time("acme", "/topic/A") is None
    assert store.event_time("acme", "/topic/Nothing") is None


def test_the_first_subscribed_time_is_kept_from_the_first_call(db: Database) -> None:
    store = ReplayStore(db)
    first = datetime(2026, 5, 1, tzinfo=UTC)
    store.mark_subscribed("acme", "/topic/A", first)
    store.mark_subscribed("acme", "/topic/A", first + timedelta(days=3))
    assert store.first_subscribed("acme", "/topic/A") == first
    assert store.first_subscribed("acme", "/topic/B") is None


def test_a_gap_starts_at_the_earliest_safe_point(db: Database) -> None:
    store = ReplayStore(db)
    origin = datetime(2026, 5, 1, tzinfo=UTC)
    assert store.gap_start("acme", "/topic/A", "Lead").basis == "unknown"
    store.mark_subscribed("acme", "/topic/A", origin)
    start = store.gap_start("acme", "/topic/A", "Lead")
    assert start.basis == "first_subscribed"
    assert start.since is not None
    assert start.since < origin  # less a clock-skew margin
    event = origin + timedelta(hours=2)
    store.set("acme", "/topic/A", 9, event_time=event)
    assert store.gap_start("acme", "/topic/A", "Lead") == GapStart(event, "replay_event")
    # another channel (or the poller) moved the object's checkpoint further: the
    # replay id's own time is still the earlier, safe one
    store.advance_checkpoint("acme", "Lead", event + timedelta(hours=1))
    assert store.gap_start("acme", "/topic/A", "Lead") == GapStart(event, "replay_event")
    store.set("acme", "/topic/A", 10)
    assert store.gap_start("acme", "/topic/A", "Lead") == GapStart(
        event + timedelta(hours=1), "checkpoint")


def test_a_state_file_from_before_event_times_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = Database(path)
    # the replay schema as its first version left it
    old.migrate("replay", (
        "CREATE TABLE replay_ids ("
        " org TEXT NOT NULL, channel TEXT NOT NULL, replay_id INTEGER NOT NULL,"
        " updated_at REAL NOT NULL, PRIMARY KEY (org, channel));"
        "CREATE TABLE catchup_checkpoints ("
        " org TEXT NOT NULL, sobject TEXT NOT NULL, modstamp TEXT NOT NULL,"
        " PRIMARY KEY (org, sobject))",
    ))
    with old.transaction() as tx:
        tx.execute("INSERT INTO replay_ids VALUES ('acme', '/topic/A', 77, 0)")
    old.close()
    db = Database(path)
    store = ReplayStore(db)
    assert store.get("acme", "/topic/A") == 77
    assert store.event_time("acme", "/topic/A") is None
    store.mark_subscribed("acme", "/topic/A")
    assert store.gap_start("acme", "/topic/A", "Lead").basis == "first_subscribed"
    db.close()
