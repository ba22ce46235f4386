"""A warm start (the daemon started again on the state an earlier start left) subscribes
from the facts that start stored, counted by devorg's call counter, and the checks it
runs again in the background act on what changed while the daemon was stopped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ilyd.actors.context import OrgSecrets
from ilyd.config import OrgConfig
from ilyd.devorg import DevOrg, OrgInfo
from ilyd.provision.spec import PUSH_TOPICS
from ilyd.salesforce.connect import make_org_rest_client
from tests.pipeline.conftest import Daemon, SalesforceUser, wait_until, write_config

ILY = "Ily_Match_Status__c"


def calls_by_endpoint(user: SalesforceUser) -> dict[str, int]:
    return dict(requests.get(f"{user.base}/calls", timeout=10).json()["by_endpoint"])


def reset_calls(user: SalesforceUser) -> None:
    requests.delete(f"{user.base}/calls", timeout=10).raise_for_status()


def lead_topics(org: OrgConfig) -> list[str]:
    """Ids of the Lead PushTopic, read as the integration user (an admin would see them
    in Setup)."""
    rest = make_org_rest_client(org, OrgSecrets.read(org))
    try:
        return [str(r["Id"]) for r in rest.query(
            f"SELECT Id FROM PushTopic WHERE Name = '{PUSH_TOPICS['Lead'].name}'")]  # noqa: S608
    finally:
        rest.close()


def delete_lead_topic(org: OrgConfig) -> None:
    rest = make_org_rest_client(org, OrgSecrets.read(org))
    try:
        for topic in lead_topics(org):
            rest.delete("PushTopic", topic)
    finally:
        rest.close()


def connected(daemon: Daemon) -> bool:
    return daemon.org().get("detail", {}).get("connection") == "connected"


@pytest.fixture
def recheck_config(tmp_path: Path, dev: DevOrg, info: OrgInfo) -> Path:
    """The org checked again within a second of a warm start."""
    return write_config(tmp_path, dev, [info], org_extra="recheck_within = 1\n")


@pytest.fixture
def stopped_after_first_start(provisioned: object, config_path: Path) -> Iterator[Daemon]:
    """A daemon that started once (the org subscribed, its checks stored), then stopped."""
    daemon = Daemon(config_path)
    daemon.start()
    try:
        wait_until(lambda: connected(daemon), timeout=60, what="the first start subscribed")
    finally:
        daemon.stop()
    yield daemon
    daemon.stop()


def test_a_warm_start_makes_at_most_five_api_calls_before_it_subscribes(
        stopped_after_first_start: Daemon, user: SalesforceUser) -> None:
    daemon = stopped_after_first_start
    reset_calls(user)
    daemon.start()
    wait_until(lambda: connected(daemon), timeout=60, what="the warm start subscribed")
    calls = calls_by_endpoint(user)
    assert sum(calls.values()) <= 5, calls


def test_streaming_revoked_while_stopped_is_found_by_the_recheck_and_the_org_polls(
        provisioned: object, recheck_config: Path, dev: DevOrg, info: OrgInfo,
        user: SalesforceUser) -> None:
    daemon = Daemon(recheck_config)
    daemon.start()
    try:
        wait_until(lambda: connected(daemon), timeout=60, what="the first start subscribed")
        daemon.stop()
        requests.patch(f"{user.base}/permissions", timeout=10, json={
            "system": {"PermissionsStreamingApiEnabled": False}}).raise_for_status()
        daemon.start()
        wait_until(lambda: daemon.org().get("detail", {}).get("source") == "polling",
                   timeout=60, what="the org polling after the re-check")
        log = (recheck_config.parent / "daemon.log").read_text()
        assert '"org_feed_changed"' in log
        lead = user.create("Lead", LastName="L", Company="x", Email="jo@acme.example")
        wait_until(lambda: user.record(lead)[ILY], timeout=60, what="the polled Lead enriched")
    finally:
        daemon.stop()


def test_a_push_topic_deleted_while_stopped_is_created_again_by_the_recheck(
        provisioned: OrgConfig, recheck_config: Path, user: SalesforceUser) -> None:
    daemon = Daemon(recheck_config)
    daemon.start()
    try:
        wait_until(lambda: connected(daemon), timeout=60, what="the first start subscribed")
        daemon.stop()
        delete_lead_topic(provisioned)
        daemon.start()
        wait_until(lambda: '"org_started_from_stored_facts"' in (
            recheck_config.parent / "daemon.log").read_text(), timeout=60,
            what="the warm start from the stored facts")
        wait_until(lambda: lead_topics(provisioned), timeout=60,
                   what="the Lead PushTopic created again")
        wait_until(lambda: connected(daemon), timeout=60, what="subscribed again")
        lead = user.create("Lead", LastName="L", Company="x", Email="jo@acme.example")
        wait_until(lambda: user.record(lead)[ILY], timeout=60, what="the streamed Lead enriched")
    finally:
        daemon.stop()
