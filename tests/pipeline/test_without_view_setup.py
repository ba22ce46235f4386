"""An integration user without View Setup and Configuration: /limits and the permission
setup objects are closed to it, and the daemon still streams, throttles and resumes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from ilyd.devorg import DevOrg, OrgInfo
from ilyd.pipeline.runtime import OrgPipeline
from tests.pipeline.conftest import Daemon, SalesforceUser, wait_until

# An API-only integration user: object permissions on Account, Lead and PushTopic, the
# Streaming API, and none of the setup permissions.
NO_SETUP = {"PermissionsViewSetup": False, "PermissionsModifyAllData": False,
            "PermissionsViewAllData": False, "PermissionsCustomizeApplication": False,
            "PermissionsModifyMetadata": False, "PermissionsManageUsers": False,
            "PermissionsAssignPermissionSets": False,
            "PermissionsManageProfilesPermissionsets": False}


def _without_setup(dev: DevOrg, info: OrgInfo) -> None:
    response = requests.patch(f"{dev.admin}/orgs/{info.name}/permissions",
                              json={"system": NO_SETUP}, timeout=10)
    assert response.status_code == 200, response.text


@pytest.fixture
def daemon(provisioned: object, config_path: Path, dev: DevOrg,
           info: OrgInfo) -> Iterator[Daemon]:
    _without_setup(dev, info)
    running = Daemon(config_path)
    running.start()
    yield running
    running.stop()


def _detail(daemon: Daemon) -> dict[str, Any]:
    return dict(daemon.org().get("detail") or {})


def test_the_org_streams_throttles_at_the_allowance_and_resumes_when_it_rolls(
        daemon: Daemon, user: SalesforceUser) -> None:
    wait_until(lambda: _detail(daemon).get("connection") == "connected", timeout=30,
               what="the org streaming")
    first = user.create("Account", Name="A", Website="acme.example")
    wait_until(lambda: user.record(first)["Ily_Match_Status__c"] == "Matched", timeout=30,
               what="the first record enriched")

    user.set_calls(15000)  # the org's whole daily allowance is spent
    second = user.create("Account", Name="G", Website="https://globex.test")
    wait_until(lambda: _detail(daemon).get("throttled"), timeout=30, what="the org throttled")
    assert user.record(second)["Ily_Match_Status__c"] is None

    user.set_calls(0)  # the rolling window frees calls; /limits stays refused
    wait_until(lambda: user.record(second)["Ily_Company_Name__c"] == "Globex Corporation",
               timeout=30, what="the throttle lifted and the record enriched")
    wait_until(lambda: not _detail(daemon).get("throttled"), timeout=10,
               what="the throttle shown lifted")


def test_a_refused_limits_probe_lifts_the_throttle_once_the_header_shows_room(
        pipeline: OrgPipeline, user: SalesforceUser, dev: DevOrg, info: OrgInfo) -> None:
    _without_setup(dev, info)
    user.set_calls(9000)  # 60 % of 15,000, past the default 50 % budget
    pipeline.rest.describe_global()  # any answer carries Sforce-Limit-Info
    assert not pipeline.budget.allow()
    assert pipeline.budget.throttled
    user.set_calls(0)
    wait_until(pipeline.budget.allow, timeout=10, what="a probe lifting the throttle")
    assert not pipeline.budget.throttled
