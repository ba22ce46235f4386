"""ReplayStore: replay ids per (org, channel) and forward-only catch-up checkpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ilyd.store import Database
from ilyd.store.replay import ReplayStore


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
