"""`ilyd ctl history ORG RECORD_ID [--json]` on a running daemon against devorg: each
enrichment of the record, the domain seen, each field written (old -> new, provider) and
each left alone with why; entries older than history_days are pruned."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ilyd.pipeline.runtime import OrgPipeline
from ilyd.provision.grant import grant_profiles
from ilyd.store import Database
from ilyd.store.history import HistoryStore
from tests.pipeline.conftest import (  # noqa: F401 - fixtures used by the tests below
    Daemon,
    SalesforceUser,
    _stop_all_actors,
    config_path,
    database,
    dev,
    info,
    org_config,
    pipeline,
    provisioned,
    user,
    wait_until,
)

INDUSTRY, NAME = "Ily_Industry__c", "Ily_Company_Name__c"


@pytest.fixture
def daemon(pipeline: OrgPipeline, config_path: Path) -> Iterator[Daemon]:  # noqa: F811
    grant_profiles(pipeline.rest, ["Standard User"], [f"Account.{INDUSTRY}"], edit=True)
    running = Daemon(config_path)
    running.start()
    yield running
    running.stop()



def test_history_shows_each_enrichment_with_old_and_new_values_and_why_a_field_was_kept(
        daemon: Daemon, user: SalesforceUser) -> None:  # noqa: F811
    wait_until(lambda: daemon.org().get("state") == "running", timeout=30,
               what="the org running")
    account = user.create("Account", Name="A", Website="acme.example")
    wait_until(lambda: user.record(account)[NAME] == "Acme Corporation", timeout=30,
               what="first enrichment")
    user.update("Account", account, **{INDUSTRY: "Curated by Sales"})
    user.update("Account", account, Website="https://globex.test")
    wait_until(lambda: user.record(account)[NAME] == "Globex Corporation", timeout=30,
               what="re-enrichment after the Website edit")

    result = wait_until(lambda: (r := json.loads(daemon.ctl("--json", "history", "org0",
                                                     account)))["entries"][1:] and r,
                        timeout=30, what="two history entries")
    first, second = (e["entry"] for e in result["entries"])
    assert (first["domain"], first["domain_source"]) == ("acme.example", "Website")
    assert first["written"][NAME] == [None, "Acme Corporation"]
    assert first["written"][INDUSTRY] == [None, "Manufacturing"]
    assert first["source"] == "dataset"
    assert second["domain"] == "globex.test"
    assert second["written"][NAME] == ["Acme Corporation", "Globex Corporation"]
    assert second["skipped"][INDUSTRY] == "protected"
    assert INDUSTRY not in second["written"]

    text = daemon.ctl("history", "org0", account[:15])
    assert "domain globex.test from Website" in text
    assert "wrote   Ily_Company_Name__c: 'Acme Corporation' -> 'Globex Corporation'" in text
    assert "skipped Ily_Industry__c: protected" in text


def test_entries_older_than_history_days_are_pruned_once_a_day(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    store = HistoryStore(db)
    now = time.time()
    with db.transaction() as tx:
        HistoryStore.insert_rows(tx, [("o", "001000000000001AAA", now - 31 * 86_400,
                                       "realtime", "{}"),
                                      ("o", "001000000000001AAA", now - 86_400, "realtime",
                                       "{}")])
    assert store.prune_daily(30, now) == 1
    assert [e.at for e in store.for_record("o", "001000000000001", 0)] == [now - 86_400]
    assert store.prune_daily(30, now + 3600) is None  # once a day
    assert store.prune_daily(0.5, now + 86_401) == 1
    db.close()
