"""The scheduled refresh's run against devorg: only stale records are read, only values
that changed are written (Last Enriched always), a person's edit survives, the scope
holds, its own share of the API allowance pauses it, and its checkpoint resumes."""

from __future__ import annotations

import csv
import dataclasses
import threading
from pathlib import Path
from typing import Any

import pytest

from ilyd.config.enrich import DEFAULT_ENRICH, EnrichConfig, OverwritePolicy
from ilyd.enrich.dataset import DatasetProvider
from ilyd.enrich.dataset_settings import DatasetSettings, sample_dataset_path
from ilyd.provision.grant import grant_profiles
from ilyd.resync.checkpoint import ResyncStore, RunState
from ilyd.resync.engine import Resync, ResyncRequest
from ilyd.resync.progress import Phase
from ilyd.resync.refresh import (
    RefreshSchedule,
    ShareGate,
    begin_refresh,
    count_backlog,
    cutoff_for,
)
from ilyd.salesforce.rest import RestClient
from ilyd.store.history import HistoryStore
from ilyd.store.record_hashes import RecordHashStore
from tests.helpers.waiting import wait_until
from tests.resync.conftest import FAST, OrgEnv

THIRTY_DAYS = 30 * 86400.0
LONG_AGO = "2020-01-01T00:00:00.000Z"
PERSON = "Chosen by a person"


def _changed_dataset(tmp_path: Path) -> DatasetProvider:
    """The bundled sample, with acme.example's industry and name changed since the
    first sync."""
    path = tmp_path / "companies.csv"
    with sample_dataset_path().open(newline="") as src, path.open("w", newline="") as out:
        rows = csv.DictReader(src)
        writer = csv.DictWriter(out, fieldnames=rows.fieldnames or ())
        writer.writeheader()
        for row in rows:
            if row["domain"] == "acme.example":
                row["industry"] = "Aerospace"
                row["company_name"] = "Acme Aerospace"
            writer.writerow(row)
    return DatasetProvider(DatasetSettings(path=path))


def _sync_first(env: OrgEnv, count: int) -> list[str]:
    """Accounts (even: acme.example, odd: globex.test) enriched by a first resync."""
    ids = env.add_sample_accounts(count)
    first = env.resync()
    first.begin(ResyncRequest(("Account",)))
    assert first.run().phase is Phase.DONE
    return ids


def _age(env: OrgEnv, ids: list[str]) -> None:
    """Make the records look enriched by ilyd long ago (written as the integration user)."""
    for record_id in ids:
        env.admin.call("PATCH", f"/orgs/{env.info.name}/records/Account/{record_id}"
                       "?as=integration", {"Ily_Last_Enriched__c": LONG_AGO})


def _refresh(env: OrgEnv, provider: DatasetProvider, *, settings: Any = FAST,
             scope: tuple[tuple[str, str], ...] = (), gate: Any = None,
             enrich: EnrichConfig = DEFAULT_ENRICH) -> Resync:
    return Resync(env.info.name, env.rest, provider, store=ResyncStore(env.db, "refresh"),
                  hashes=RecordHashStore(env.db), settings=settings,
                  integration_user_id=env.user_id, export_metrics=False,
                  enrich=enrich, scope=scope, gate=gate)


def _values(env: OrgEnv, record_id: str) -> dict[str, Any]:
    return env.rest.get("Account", record_id, ["Ily_Industry__c", "Ily_Last_Enriched__c"])


def _last_ily_change(env: OrgEnv, record_id: str) -> set[str]:
    writes = [h for h in env.admin.history(record_id) if h.get("user_id") == env.user_id]
    return {f for f in writes[-1].get("changed_fields") or () if f.startswith("Ily_")}


@pytest.mark.parametrize("path", ["rest", "bulk"])
def test_a_refresh_writes_only_what_changed_on_stale_records_and_keeps_a_persons_edit(
        env, tmp_path, path):
    ids = _sync_first(env, 6)
    _age(env, ids[:4])  # 0, 2: acme.example; 1, 3: globex.test; 4, 5 fresh
    # The org's human user (Standard User profile) may edit the industry.
    grant_profiles(env.rest, ["Standard User"], ["Account.Ily_Industry__c"], edit=True)
    env.admin.update_as_user("Account", ids[0], {"Ily_Industry__c": PERSON})
    writes_before = {i: env.ily_writes(i) for i in ids}
    changed = _changed_dataset(tmp_path)
    # REST below rest_threshold records, Bulk 2.0 at or above it.
    settings = dataclasses.replace(FAST, rest_threshold=100 if path == "rest" else 2)
    engine = _refresh(env, changed, settings=settings)

    backlog = count_backlog(env.rest, ("Account",), cutoff_for(THIRTY_DAYS))
    assert backlog.total == 4
    begin_refresh(engine, backlog, settings.rest_threshold)
    progress = engine.run()

    assert progress.phase is Phase.DONE
    assert ResyncStore(env.db, "refresh").objects(env.info.name)[0].mode == path
    snapshot = progress.snapshot()
    assert (snapshot["read"], snapshot["changed"], snapshot["written"]) == (4, 2, 4)
    assert _values(env, ids[2])["Ily_Industry__c"] == "Aerospace"
    assert _last_ily_change(env, ids[2]) == {"Ily_Industry__c", "Ily_Company_Name__c",
                                             "Ily_Last_Enriched__c"}
    assert _values(env, ids[0])["Ily_Industry__c"] == PERSON  # the person's edit survives
    # `ilyd ctl history` tells the refresh's writes from the resync's.
    paths = [e.path for e in HistoryStore(env.db).for_record(env.info.name, ids[2], 0)]
    assert paths[-1] == "refresh"
    assert "resync" in paths
    assert _last_ily_change(env, ids[0]) == {"Ily_Company_Name__c", "Ily_Last_Enriched__c"}
    for confirmed in (ids[1], ids[3]):
        assert _last_ily_change(env, confirmed) == {"Ily_Last_Enriched__c"}
    for record_id in ids[:4]:
        assert not _values(env, record_id)["Ily_Last_Enriched__c"].startswith("2020")
    for fresh in ids[4:]:
        assert env.ily_writes(fresh) == writes_before[fresh]
    assert count_backlog(env.rest, ("Account",), cutoff_for(THIRTY_DAYS)).total == 0
    # The operator's resync keeps its own run: the refresh did not replace it.
    assert ResyncStore(env.db).run(env.info.name).state is RunState.DONE  # type: ignore[union-attr]
    changed.close()


def test_a_refresh_leaves_stale_records_outside_the_orgs_scope_alone(env, tmp_path):
    ids = _sync_first(env, 4)
    _age(env, ids)
    for record_id in ids[:2]:
        env.admin.update_as_user("Account", record_id, {"BillingCountry": "DE"})
    writes_before = {i: env.ily_writes(i) for i in ids}
    scope = (("Account", "BillingCountry = 'DE'"),)
    changed = _changed_dataset(tmp_path)
    engine = _refresh(env, changed, scope=scope)

    backlog = count_backlog(env.rest, ("Account",), cutoff_for(THIRTY_DAYS), scope)
    assert backlog.total == 2
    begin_refresh(engine, backlog, FAST.rest_threshold)
    assert engine.run().phase is Phase.DONE

    assert _values(env, ids[0])["Ily_Industry__c"] == "Aerospace"
    for outside in ids[2:]:
        assert env.ily_writes(outside) == writes_before[outside]
        assert _values(env, outside)["Ily_Last_Enriched__c"].startswith("2020")
    changed.close()


def test_a_refresh_pauses_at_its_own_share_of_the_allowance_and_resumes_from_its_checkpoint(
        env, tmp_path):
    ids = _sync_first(env, 4)
    _age(env, ids)
    # Other integrations' calls are not the refresh's: a third of the allowance used
    # elsewhere leaves its 5 % whole.
    env.admin.set_calls_used(5000)
    schedule = RefreshSchedule(env.db)
    roomy = ShareGate(env.info.name, env.rest, schedule, 0.05)
    assert roomy() is None
    # A share of 0.02 % of 15,000 calls is 3 calls: the count and describe spend it.
    tight = ShareGate(env.info.name, env.rest, schedule, 0.0002)
    changed = _changed_dataset(tmp_path)
    engine = _refresh(env, changed, gate=tight)
    backlog = count_backlog(env.rest, ("Account",), cutoff_for(THIRTY_DAYS))
    begin_refresh(engine, backlog, FAST.rest_threshold)
    runner = threading.Thread(target=engine.run)
    runner.start()
    try:
        wait_until(lambda: engine.progress is not None
                   and engine.progress.phase is Phase.PAUSED, timeout=30,
                   what="the refresh paused at its share")
        assert engine.progress is not None
        assert (engine.progress.reason or "").startswith("refresh share:")
        assert engine.progress.count("written") == 0
    finally:
        engine.stop()  # a daemon stop: the run stays to resume
        runner.join(30)
    run = ResyncStore(env.db, "refresh").run(env.info.name)
    assert run is not None
    assert run.state is RunState.RUNNING
    assert run.stale_before == backlog.cutoff

    again = _refresh(env, changed, gate=ShareGate(env.info.name, env.rest, schedule, 0.05))
    assert again.resumable()
    again.resume()
    assert again.run().phase is Phase.DONE
    assert {_values(env, i)["Ily_Industry__c"] for i in ids[::2]} == {"Aerospace"}
    changed.close()


def test_the_refresh_ledger_counts_a_day_of_its_own_calls_and_says_when_they_age_out(env):
    clock = [1_000_000.0]
    schedule = RefreshSchedule(env.db, clock=lambda: clock[0])
    schedule.add_calls("o", 5)
    clock[0] += 3600
    schedule.add_calls("o", 7)
    assert sum(n for _, n in schedule.spent("o")) == 12
    (first_out, _), _ = schedule.spent("o")
    assert 1_000_000.0 + 86400 <= first_out <= 1_000_000.0 + 86400 + 600
    clock[0] += 86400 - 1800  # the first hour's calls are more than a day old
    assert sum(n for _, n in schedule.spent("o")) == 7


def test_an_object_whose_last_enriched_is_not_writable_is_left_out_of_the_backlog(env):
    ids = _sync_first(env, 2)
    _age(env, ids)
    rows = list(env.rest.query("SELECT Id FROM FieldPermissions"
                               " WHERE Field = 'Lead.Ily_Last_Enriched__c'"))
    assert rows
    for row in rows:  # what an admin does in Setup: Edit off for the field
        env.rest.update("FieldPermissions", row["Id"], {"PermissionsEdit": False})
    env.rest.forget_describe()

    backlog = count_backlog(env.rest, ("Account", "Lead"), cutoff_for(THIRTY_DAYS))

    assert backlog.counts == (("Account", 2),)


def test_a_spent_share_holds_a_fresh_client_before_its_first_call(env):
    schedule = RefreshSchedule(env.db)
    seen = ShareGate(env.info.name, env.rest, schedule, 0.05)
    env.rest.describe("Account")  # one answer: the allowance (15,000) is learnt
    assert seen() is None
    schedule.add_calls(env.info.name, 750)  # 5 % of 15,000
    calls = env.admin.calls()["used"]
    fresh = RestClient(env.info.name, env.rest.http.tokens, export_usage=False)
    try:
        held = ShareGate(env.info.name, fresh, schedule, 0.05)()
    finally:
        fresh.close()
    assert held is not None
    assert held[1].startswith("refresh share: 751 calls in 24 h")
    assert env.admin.calls()["used"] == calls


def test_always_overwrites_a_persons_edit_on_refresh_and_if_blank_keeps_a_filled_field(
        env, tmp_path):
    ids = _sync_first(env, 2)
    _age(env, ids)
    grant_profiles(env.rest, ["Standard User"],
                   ["Account.Ily_Industry__c", "Account.Ily_Company_Name__c"], edit=True)
    env.admin.update_as_user("Account", ids[0], {"Ily_Industry__c": PERSON,
                                                  "Ily_Company_Name__c": PERSON})
    enrich = EnrichConfig(overwrite=(("Ily_Company_Name__c", OverwritePolicy.IF_BLANK),
                                     ("Ily_Industry__c", OverwritePolicy.ALWAYS)))
    changed = _changed_dataset(tmp_path)
    engine = _refresh(env, changed, enrich=enrich)
    begin_refresh(engine, count_backlog(env.rest, ("Account",), cutoff_for(THIRTY_DAYS)),
                  FAST.rest_threshold)
    assert engine.run().phase is Phase.DONE

    record = env.rest.get("Account", ids[0], ["Ily_Industry__c", "Ily_Company_Name__c"])
    assert record["Ily_Industry__c"] == "Aerospace"  # always: ilyd owns the field
    assert record["Ily_Company_Name__c"] == PERSON  # if_blank: it is filled
    changed.close()
