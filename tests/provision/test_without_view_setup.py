"""An integration user without View Setup and Configuration: the checks still decide
the mode from describe, and say once what the missing permission costs."""

from __future__ import annotations

from ilyd.provision.checks import Mode, Status

from .conftest import Env

NO_SETUP = {"PermissionsViewSetup": False, "PermissionsModifyAllData": False,
            "PermissionsViewAllData": False, "PermissionsCustomizeApplication": False,
            "PermissionsModifyMetadata": False, "PermissionsManageUsers": False,
            "PermissionsAssignPermissionSets": False,
            "PermissionsManageProfilesPermissionsets": False}


def test_the_org_streams_and_the_check_warns_with_what_the_permission_costs(
        env: Env) -> None:
    env.provisioner().provision()
    env.permissions(system=NO_SETUP)
    provisioner = env.provisioner()
    provisioned = provisioner.provision()
    assert provisioned.mode is Mode.STREAMING
    assert not provisioned.plan.skipped, provisioned.plan.skipped  # nothing it cannot tell
    report = provisioner.check()
    lines = {r.step: r for r in report.results}
    view_setup = lines["permission View Setup and Configuration"]
    assert view_setup.status is Status.WARN
    assert "permission-set introspection" in (view_setup.consequence or "")
    assert "profile grants unavailable" in (view_setup.consequence or "")
    assert "View Setup and Configuration" in (view_setup.fix or "")
    assert lines["permission set Ily_Connector"].status is Status.WARN
    assert lines["field Account.Ily_Domain__c"].status is Status.PASS
    assert lines["object PushTopic"].status is Status.PASS
    assert lines["permission Streaming API"].status is Status.PASS
    used = lines["daily api usage"]
    assert used.status is Status.PASS, used  # from Sforce-Limit-Info, /limits refused
    assert report.ok


def test_with_view_setup_the_line_passes(env: Env) -> None:
    lines = {r.step: r for r in env.provisioner().check().results}
    assert lines["permission View Setup and Configuration"].status is Status.PASS


def test_with_streaming_off_the_org_polls(env: Env) -> None:
    env.provisioner().provision()
    env.permissions(system=NO_SETUP)
    env.admin("PATCH", "/settings", {"streaming_enabled": False})
    assert env.provisioner().provision().mode is Mode.POLLING
