"""Change Data Capture as the real-time source, end to end: a daemon (`ilyd run`) against
devorg with `source = "cdc"` or `"auto"`, and the event triage on devorg's own events."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ilyd.actors.context import OrgSecrets
from ilyd.config import OrgConfig
from ilyd.control.client import ControlClient
from ilyd.devorg import DevOrg, OrgInfo
from ilyd.pipeline.cdc import read_inputs, triage
from ilyd.salesforce.connect import make_org_rest_client
from tests.devorg.cometd_helpers import OrgClient, RawBayeux
from tests.pipeline.conftest import Daemon, SalesforceUser, wait_until, write_config
from tests.pipeline.test_daemon import enriched, ilyd_writes, quiet_calls

OBJECTS = ("Account", "Lead")


@pytest.fixture
def source() -> str:
    return "cdc"


@pytest.fixture
def config_path(tmp_path: Path, dev: DevOrg, info: OrgInfo, source: str) -> Path:
    return write_config(tmp_path, dev, [info], org_extra=f'source = "{source}"\n')


@pytest.fixture
def daemon(provisioned: object, config_path: Path) -> Iterator[Daemon]:
    running = Daemon(config_path)
    yield running
    running.stop()


def detail(daemon: Daemon) -> dict[str, Any]:
    return dict(daemon.org().get("detail") or {})


def subscriptions(dev: DevOrg, info: OrgInfo) -> set[str]:
    status = requests.get(f"{dev.admin}/streaming/{info.name}", timeout=10).json()
    return {s for c in status["clients"] for s in c["subscriptions"]}


def select(dev: DevOrg, *entities: str) -> None:
    OrgClient(dev).select_cdc(*entities)


def test_source_cdc_selects_the_entities_and_enriches_a_burst_with_few_calls_and_no_loop(
        dev: DevOrg, info: OrgInfo, user: SalesforceUser, daemon: Daemon) -> None:
    daemon.start()
    wait_until(lambda: {"/data/AccountChangeEvent", "/data/LeadChangeEvent"}
               <= subscriptions(dev, info), timeout=30, what="subscribed to change events")
    assert detail(daemon)["source"] == "cdc"
    before = quiet_calls(user)
    records = [user.create("Account", Name=f"A{i}", Website=f"https://globex{i}.test")
               for i in range(150)]
    records += [user.create("Lead", LastName=f"L{i}", Company="x", Email=f"p{i}@acme.example")
                for i in range(50)]
    wait_until(lambda: enriched(user, records), timeout=90, what="every record enriched")
    after = quiet_calls(user, settle=3)
    assert (after - before) / len(records) <= 0.05
    assert all(ilyd_writes(user, info, r) == 1 for r in records[::20])
    # ilyd's writes raised change events too (CDC does not filter by field): they were
    # recognised by their client and cost no call, and wrote nothing more.
    assert quiet_calls(user, settle=3) == after
    assert skipped(daemon, info, "own_write") >= len(records)


def skipped(daemon: Daemon, info: OrgInfo, reason: str) -> float:
    """ilyd_events_skipped_total{org, reason} as the daemon's /metrics serves it."""
    url = ControlClient(daemon.socket, timeout=10).call("status")["metrics_url"]
    for family in text_string_to_metric_families(requests.get(url, timeout=10).text):
        for sample in family.samples:
            if (sample.name == "ilyd_events_skipped_total"
                    and sample.labels == {"org": info.name, "reason": reason}):
                return float(sample.value)
    return 0.0


def test_an_update_of_other_fields_costs_nothing_and_an_email_edit_re_enriches(
        dev: DevOrg, info: OrgInfo, user: SalesforceUser, daemon: Daemon) -> None:
    daemon.start()
    wait_until(lambda: "/data/LeadChangeEvent" in subscriptions(dev, info), timeout=30,
               what="subscribed to change events")
    lead = user.create("Lead", LastName="E", Company="x", Email="jo@acme.example")
    wait_until(lambda: enriched(user, [lead]), timeout=30, what="first enrichment")
    calls = quiet_calls(user)
    user.update("Lead", lead, Phone="+1 555 0100")
    assert quiet_calls(user) == calls
    wait_until(lambda: skipped(daemon, info, "no_input_change") >= 1, timeout=10,
               what="the Phone edit counted as no_input_change")
    user.update("Lead", lead, Email="jo@globex.test")
    wait_until(lambda: user.record(lead)["Ily_Company_Name__c"] == "Globex Corporation",
               timeout=30, what="re-enrichment after the Email edit")
    assert ilyd_writes(user, info, lead) == 2


@pytest.mark.parametrize("source", ["auto"])
def test_auto_streams_pushtopics_when_the_org_selected_no_entity(
        dev: DevOrg, info: OrgInfo, daemon: Daemon) -> None:
    daemon.start()
    wait_until(lambda: {"/topic/IlyAccountChanges", "/topic/IlyLeadChanges"}
               <= subscriptions(dev, info), timeout=30, what="subscribed to the PushTopics")
    assert detail(daemon)["source"] == "pushtopic"
    assert "not selected for Change Data Capture" in detail(daemon)["source_reason"]
    members = OrgClient(dev).http.get(
        f"{dev.url}/services/data/v62.0/tooling/query",
        params={"q": "SELECT Id FROM PlatformEventChannelMember"},
        headers=OrgClient(dev).auth, timeout=10).json()
    assert members["totalSize"] == 0  # auto uses no entity of the org's allowance


@pytest.mark.parametrize("source", ["auto"])
def test_auto_streams_change_events_of_the_entities_the_org_already_selected(
        dev: DevOrg, info: OrgInfo, user: SalesforceUser, daemon: Daemon) -> None:
    select(dev, "Lead")
    daemon.start()
    wait_until(lambda: {"/topic/IlyAccountChanges", "/data/LeadChangeEvent"}
               <= subscriptions(dev, info), timeout=30, what="Lead on CDC, Account on its topic")
    assert detail(daemon)["source"] == "cdc"
    records = [user.create("Lead", LastName="L", Company="x", Email="jo@acme.example"),
               user.create("Account", Name="G", Website="https://globex.test")]
    wait_until(lambda: enriched(user, records), timeout=30, what="both records enriched")


def test_cdc_falls_back_to_pushtopics_when_the_entity_allowance_is_used_up(
        dev: DevOrg, info: OrgInfo, user: SalesforceUser, daemon: Daemon) -> None:
    OrgClient(dev).streaming("settings", {"cdc_entity_limit": 1}, method="PATCH")
    daemon.start()
    wait_until(lambda: {"/data/AccountChangeEvent", "/topic/IlyLeadChanges"}
               <= subscriptions(dev, info), timeout=30, what="Account on CDC, Lead on its topic")
    reason = detail(daemon)["source_reason"]
    assert "Lead not selected for Change Data Capture" in reason
    assert "LIMIT_EXCEEDED" in reason or "up to 1 entities" in reason
    lead = user.create("Lead", LastName="L", Company="x", Email="jo@acme.example")
    wait_until(lambda: enriched(user, [lead]), timeout=30, what="the Lead enriched")


def test_triage_drops_own_writes_and_updates_of_other_fields_and_sorts_gap_events(
        dev: DevOrg) -> None:
    org = OrgClient(dev)
    org.streaming("settings", {"hold_seconds": 1}, method="PATCH")
    org.select_cdc("Lead")
    bayeux = RawBayeux(dev, org.token)
    bayeux.handshake()
    bayeux.connect()
    bayeux.subscribe("/data/LeadChangeEvent", -1)
    lead = org.lead(1)
    org.update("Lead", lead, {"Phone": "555"})
    org.update("Lead", lead, {"Company": "Globex"})
    org.http.patch(f"{dev.url}/services/data/v62.0/sobjects/Lead/{lead}",
                   json={"Title": "ilyd wrote this"}, timeout=10,
                   headers={**org.auth, "Sforce-Call-Options": "client=ilyd"})
    org.streaming("gap", {"entity": "Lead", "record_ids": [lead]})
    org.streaming("overflow", {"entity": "Lead"})
    payloads: list[dict[str, Any]] = []
    for _ in range(15):
        payloads += [m["data"]["payload"] for m in bayeux.connect() if "data" in m]
        if len(payloads) >= 6:
            break
    batch = triage(payloads, "ilyd", OBJECTS)
    assert batch.skipped == {"no_input_change": 1, "own_write": 1}
    created = batch.entries[0]
    assert (created.record_id, created.change_type) == (lead, "created")
    assert created.fields == {"Id": lead, "Email": "l1@example.com", "Company": "C1",
                              "Website": None, "IsConverted": False}
    # The Company edit carries Company only: the other inputs are read, batched.
    assert [(e.record_id, dict(e.fields)) for e in batch.partial] == [
        (lead, {"Id": lead, "Company": "Globex"})]
    assert list(batch.reread) == ["Lead"]
    assert list(batch.reread["Lead"]) == [lead]
    assert [sobject for sobject, _ in batch.overflow] == ["Lead"]


def test_records_are_read_with_one_query_per_200_ids(
        user: SalesforceUser, org_config: OrgConfig) -> None:
    leads = [user.create("Lead", LastName=f"R{i}", Company="x", Email=f"r{i}@acme.example")
             for i in range(450)]
    rest = make_org_rest_client(org_config, OrgSecrets.read(org_config))
    try:
        rest.query("SELECT Id FROM Lead LIMIT 1")  # the login, before counting
        before = user.calls()
        rows = read_inputs(rest, "Lead", leads)
        assert user.calls() - before == 3
    finally:
        rest.close()
    assert len(rows) == 450
    assert rows[leads[7]] == {"Id": leads[7], "Email": "r7@acme.example", "Company": "x",
                              "Website": None, "IsConverted": False}


def test_tail_follows_the_change_event_channels_of_a_cdc_org(
        dev: DevOrg, user: SalesforceUser, config_path: Path) -> None:
    select(dev, "Lead")
    lead = user.create("Lead", LastName="T", Company="x", Email="t@acme.example")
    result = subprocess.run(
        [sys.executable, "-m", "ilyd", "tail", dev.orgs[0].name, "--config", str(config_path),
         "--replay", "-2", "--count", "1"],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    (event,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert event["channel"] == "/data/LeadChangeEvent"
    assert event["data"]["payload"]["ChangeEventHeader"]["recordIds"] == [lead]
