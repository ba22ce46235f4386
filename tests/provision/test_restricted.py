"""Orgs where the integration user lacks a permission, or the Streaming API is off: the
right WARN/FAIL lines, the right mode, and provisioning does what it still can."""

from __future__ import annotations

from typing import Any

import pytest

from ilyd.provision.checks import Mode, Status

from .conftest import Env

NO_MAD = {"PermissionsModifyAllData": False}

CASES: list[tuple[str, dict[str, Any], dict[str, Status], Mode]] = [
    ("no Modify All Data", {"system": NO_MAD},
     {"permission Modify All Data": Status.WARN}, Mode.STREAMING),
    ("no Customize Application", {"system": {"PermissionsCustomizeApplication": False}},
     {"permission Customize Application": Status.WARN,
      "field Account.Ily_Domain__c": Status.FAIL}, Mode.PARTIAL),
    ("no Modify Metadata", {"system": {"PermissionsModifyMetadata": False}},
     {"permission Modify Metadata Through Metadata API Functions": Status.WARN},
     Mode.STREAMING),
    ("no Streaming API permission", {"system": {"PermissionsStreamingApiEnabled": False}},
     {"permission Streaming API": Status.WARN, "pushtopic IlyAccountChanges": Status.WARN},
     Mode.POLLING),
    ("no PushTopic create/edit", {"system": NO_MAD, "objects": {"PushTopic": {
        "PermissionsCreate": False, "PermissionsEdit": False}}},
     {"object PushTopic": Status.WARN, "pushtopic IlyLeadChanges": Status.WARN}, Mode.POLLING),
    ("no Lead edit", {"system": NO_MAD, "objects": {"Lead": {"PermissionsEdit": False}}},
     {"object Lead": Status.FAIL, "field Lead.Ily_Domain__c": Status.FAIL}, Mode.PARTIAL),
]


@pytest.mark.parametrize(("restriction", "change", "expected", "mode"), CASES,
                         ids=[c[0] for c in CASES])
def test_a_missing_permission_gives_its_line_and_mode(
        env: Env, restriction: str, change: dict[str, Any], expected: dict[str, Status],
        mode: Mode) -> None:
    env.permissions(**change)
    provisioner = env.provisioner()
    report = provisioner.provision()
    assert report.mode is mode, (restriction, report.as_dict())
    statuses = {r.step: r for r in provisioner.check().results}
    for step, status in expected.items():
        assert statuses[step].status is status, statuses[step]
        assert statuses[step].fix, statuses[step]


def test_without_customize_application_provisioning_skips_fields_and_points_to_the_package(
        env: Env) -> None:
    env.permissions(system={"PermissionsCustomizeApplication": False})
    report = env.provisioner().provision()
    assert not any(a.kind == "create_field" for a in report.done)
    assert any("ilyd fields package" in s for s in report.plan.skipped)
    line = next(r for r in env.provisioner().check().results
                if r.step == "field Lead.Ily_Domain__c")
    assert "ilyd fields package" in (line.fix or "")


def test_streaming_off_for_the_org_means_polling_and_no_push_topics(env: Env) -> None:
    env.admin("PATCH", "/settings", {"streaming_enabled": False})
    provisioner = env.provisioner()
    report = provisioner.provision()
    assert report.mode is Mode.POLLING
    assert not any(a.kind == "create_push_topic" for a in report.done)
    lines = {r.step: r for r in provisioner.check().results}
    assert lines["streaming api (org)"].status is Status.WARN
    assert "Enable Streaming API" in (lines["streaming api (org)"].fix or "")
    assert provisioner.check().ok
