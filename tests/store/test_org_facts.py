"""OrgFactsStore: one row per org; a reading that began before the stored one never
replaces it, and the feed decision and check time outlive a new reading."""

from __future__ import annotations

from ilyd.store import Database
from ilyd.store.org_facts import OrgFactsStore
from tests.helpers.store import database_fixture

db = database_fixture()


def test_an_older_reading_does_not_replace_a_newer_one(db: Database) -> None:
    store = OrgFactsStore(db)
    store.put("acme", {"read": "second"}, learned_at=200.0)
    store.put("acme", {"read": "first"}, learned_at=100.0)
    stored = store.get("acme")
    assert stored is not None
    assert (stored.facts, stored.learned_at) == ({"read": "second"}, 200.0)


def test_the_feed_and_check_time_outlive_a_new_reading(db: Database) -> None:
    store = OrgFactsStore(db)
    store.put("acme", {"read": 1}, learned_at=100.0)
    store.mark_checked("acme")
    store.set_feed("acme", "polling")
    store.put("acme", {"read": 2}, learned_at=300.0)
    stored = store.get("acme")
    assert stored is not None
    assert (stored.facts, stored.feed, stored.checked_at is not None) == (
        {"read": 2}, "polling", True)
    assert store.get("other") is None
