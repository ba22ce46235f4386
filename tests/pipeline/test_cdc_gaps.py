"""Change events that stand for changes ilyd did not see: gap events re-read by id, an
overflow caught up on SystemModstamp, and a switch of source caught up from the last
event stored on the old one — each against a daemon (`ilyd run`) and devorg."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ilyd.devorg import DevOrg, OrgInfo
from tests.devorg.cometd_helpers import OrgClient
from tests.pipeline.conftest import Daemon, SalesforceUser, wait_until, write_config
from tests.pipeline.test_daemon import enriched

TOOLING = "/services/data/v62.0/tooling"


@pytest.fixture
def config_path(tmp_path: Path, dev: DevOrg, info: OrgInfo) -> Path:
    return write_config(tmp_path, dev, [info], org_extra='source = "cdc"\n')


@pytest.fixture
def daemon(provisioned: object, config_path: Path) -> Iterator[Daemon]:
    running = Daemon(config_path)
    yield running
    running.stop()


def subscriptions(dev: DevOrg, info: OrgInfo) -> set[str]:
    status = requests.get(f"{dev.admin}/streaming/{info.name}", timeout=10).json()
    return {s for c in status["clients"] for s in c["subscriptions"]}


def log_text(config_path: Path) -> str:
    return (config_path.parent / "daemon.log").read_text()


def unselected_change(dev: DevOrg, user: SalesforceUser, lead: str, **values: str) -> None:
    """Change a Lead while Lead is not selected for change events (no event at all), then
    select it again."""
    org = OrgClient(dev)
    rows = org.http.get(f"{dev.url}{TOOLING}/query", headers=org.auth, timeout=10, params={
        "q": "SELECT Id FROM PlatformEventChannelMember "
             "WHERE SelectedEntity = 'LeadChangeEvent'"}).json()["records"]
    for row in rows:
        org.http.delete(f"{dev.url}{TOOLING}/sobjects/PlatformEventChannelMember/{row['Id']}",
                        headers=org.auth, timeout=10).raise_for_status()
    user.update("Lead", lead, **values)
    org.select_cdc("Lead")


def started(daemon: Daemon, dev: DevOrg, info: OrgInfo, user: SalesforceUser) -> str:
    """Start the daemon on change events; returns a Lead it enriched."""
    daemon.start()
    wait_until(lambda: "/data/LeadChangeEvent" in subscriptions(dev, info), timeout=30,
               what="subscribed to change events")
    lead = user.create("Lead", LastName="G", Company="x", Email="jo@acme.example")
    wait_until(lambda: enriched(user, [lead]), timeout=30, what="first enrichment")
    return lead


def company(user: SalesforceUser, lead: str) -> str:
    return str(user.record(lead)["Ily_Company_Name__c"])


def test_a_gap_event_has_its_records_read_and_enriched(
        dev: DevOrg, info: OrgInfo, user: SalesforceUser, daemon: Daemon) -> None:
    lead = started(daemon, dev, info, user)
    unselected_change(dev, user, lead, Email="jo@globex.test")
    OrgClient(dev).streaming("gap", {"entity": "Lead", "record_ids": [lead],
                                     "change_type": "GAP_UPDATE"})
    wait_until(lambda: company(user, lead) == "Globex Corporation", timeout=30,
               what="the gap event's record re-read and enriched")


def test_an_overflow_event_catches_the_object_up_and_logs_the_window(
        dev: DevOrg, info: OrgInfo, user: SalesforceUser, daemon: Daemon,
        config_path: Path) -> None:
    lead = started(daemon, dev, info, user)
    unselected_change(dev, user, lead, Email="jo@globex.test")
    OrgClient(dev).streaming("overflow", {"entity": "Lead"})
    wait_until(lambda: company(user, lead) == "Globex Corporation", timeout=30,
               what="the overflowed object caught up")
    line = next(x for x in log_text(config_path).splitlines() if "cdc_overflow_catch_up" in x)
    assert '"since"' in line
    assert '"until"' in line


def test_switching_from_pushtopics_to_change_events_catches_up_from_the_last_topic_event(
        dev: DevOrg, info: OrgInfo, user: SalesforceUser, provisioned: object,
        tmp_path: Path) -> None:
    first = Daemon(write_config(tmp_path, dev, [info], org_extra='source = "pushtopic"\n'))
    first.start()
    try:
        wait_until(lambda: "/topic/IlyLeadChanges" in subscriptions(dev, info), timeout=30,
                   what="subscribed to the PushTopic")
        lead = user.create("Lead", LastName="S", Company="x", Email="jo@acme.example")
        wait_until(lambda: enriched(user, [lead]), timeout=30, what="first enrichment")
    finally:
        first.stop()
    user.update("Lead", lead, Email="jo@globex.test")  # while no daemon runs
    second = Daemon(write_config(tmp_path, dev, [info], org_extra='source = "cdc"\n'))
    second.start()
    try:
        wait_until(lambda: company(user, lead) == "Globex Corporation", timeout=40,
                   what="the change made between the sources caught up")
        assert "source_switch_catch_up" in log_text(tmp_path / "ilyd.toml")
    finally:
        second.stop()


def test_a_change_event_replay_id_no_longer_retained_is_caught_up_by_query(
        dev: DevOrg, info: OrgInfo, user: SalesforceUser, daemon: Daemon,
        config_path: Path) -> None:
    lead = started(daemon, dev, info, user)
    daemon.stop()
    user.update("Lead", lead, Email="jo@globex.test")
    OrgClient(dev).streaming("expire-events", {"channel": "/data/LeadChangeEvent"})
    daemon.start()
    wait_until(lambda: company(user, lead) == "Globex Corporation", timeout=40,
               what="the change whose event expired caught up")
    assert "replay_gap_catch_up" in log_text(config_path)
