"""The preflight and the provisioning plan for Change Data Capture, against devorg: the
selection line and the deliveries line of `ilyd check`, and the plan step that selects the
objects with source = "cdc"."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from ilyd.actors.context import OrgSecrets
from ilyd.config import OrgConfig
from ilyd.devorg import DevOrg, OrgInfo
from ilyd.provision.checks import CheckResult, Status
from ilyd.provision.plan import ActionKind
from ilyd.provision.service import Provisioner
from ilyd.salesforce.connect import make_org_rest_client
from ilyd.salesforce.rest import RestClient
from tests.devorg.cometd_helpers import OrgClient


@pytest.fixture
def rest(org_config: OrgConfig) -> Iterator[RestClient]:
    client = make_org_rest_client(org_config, OrgSecrets.read(org_config))
    yield client
    client.close()


def provisioner(org_config: OrgConfig, rest: RestClient, source: str) -> Provisioner:
    return Provisioner(org_config.name, rest, objects=org_config.objects,
                       api_version=org_config.api_version, streaming_source=source)


def line(provisioner: Provisioner, step: str) -> CheckResult:
    report = provisioner.check()
    return next(r for s in report.steps for r in s.items if r.step == step)


def test_check_says_which_objects_stream_change_events_and_the_deliveries_today(
        dev: DevOrg, org_config: OrgConfig, rest: RestClient) -> None:
    OrgClient(dev).select_cdc("Lead")
    auto = line(provisioner(org_config, rest, "auto"), "change data capture")
    assert auto.status is Status.PASS
    assert auto.summary == ("Account not selected: PushTopics (auto selects none; 1/5"
                            " entities of the org selected)")
    cdc = line(provisioner(org_config, rest, "cdc"), "change data capture")
    assert cdc.status is Status.TODO
    assert cdc.summary == "Account not selected yet (1/5 entities of the org selected)"
    deliveries = line(provisioner(org_config, rest, "auto"), "change event deliveries")
    assert deliveries.summary.startswith("0 of 25,000 today")


def test_the_plan_selects_the_objects_for_change_events_once(
        dev: DevOrg, org_config: OrgConfig, rest: RestClient) -> None:
    cdc = provisioner(org_config, rest, "cdc")
    steps = [a for a in cdc.plan().actions if a.kind is ActionKind.SELECT_CDC_ENTITY]
    assert [a.target for a in steps] == ["ChangeEvents_AccountChangeEvent",
                                         "ChangeEvents_LeadChangeEvent"]
    auto = provisioner(org_config, rest, "auto").plan()
    assert not [a for a in auto.actions if a.kind is ActionKind.SELECT_CDC_ENTITY]
    report = cdc.provision()
    assert not report.failed
    assert not [a for a in cdc.plan().actions if a.kind is ActionKind.SELECT_CDC_ENTITY]
    assert line(cdc, "change data capture").summary == (
        "Account, Lead selected: change events (2/5 entities of the org selected)")


def test_without_customize_application_the_plan_skips_the_selection_and_check_warns(
        dev: DevOrg, info: OrgInfo, org_config: OrgConfig, rest: RestClient) -> None:
    response = requests.patch(f"{dev.admin}/orgs/{info.name}/permissions", timeout=10,
                              json={"system": {"PermissionsCustomizeApplication": False}})
    assert response.status_code == 200, response.text
    cdc = provisioner(org_config, rest, "cdc")
    plan = cdc.plan()
    assert not [a for a in plan.actions if a.kind is ActionKind.SELECT_CDC_ENTITY]
    assert any("lacks Customize Application" in s for s in plan.skipped)
    warned = line(cdc, "change data capture")
    assert warned.status is Status.WARN
    assert "Customize Application" in str(warned.fix)
