"""An integration user without View Setup and Configuration: /limits and the permission
setup objects are closed to it, as on Salesforce; its own permissions stay readable."""

from __future__ import annotations

import pytest

from .conftest import Client

NO_VIEW_SETUP = {"PermissionsViewSetup": False, "PermissionsModifyAllData": False,
                 "PermissionsViewAllData": False,
                 "PermissionsManageProfilesPermissionsets": False,
                 "PermissionsAssignPermissionSets": False, "PermissionsManageUsers": False}


def _without_view_setup(client: Client) -> None:
    response = client.admin("PATCH", f"/orgs/{client.org.name}/permissions",
                            json={"system": NO_VIEW_SETUP})
    assert response.status_code == 200, response.text


def test_limits_answers_403_insufficient_access_and_still_reports_usage(
        client: Client) -> None:
    assert client.get("/limits").status_code == 200
    _without_view_setup(client)
    response = client.get("/limits")
    assert response.status_code == 403
    [error] = response.json()
    assert error["errorCode"] == "INSUFFICIENT_ACCESS"
    assert "View Setup and Configuration" in error["message"]
    assert response.headers["Sforce-Limit-Info"].startswith("api-usage=")


@pytest.mark.parametrize("sobject", ["FieldPermissions", "ObjectPermissions",
                                     "PermissionSet", "PermissionSetAssignment"])
def test_the_permission_setup_objects_do_not_exist_for_the_user(
        client: Client, sobject: str) -> None:
    _without_view_setup(client)
    response = client.get("/query", params={"q": f"SELECT Id FROM {sobject}"})  # noqa: S608
    assert response.status_code == 400, response.text
    [error] = response.json()
    assert error["errorCode"] == "INVALID_TYPE"
    assert f"sObject type '{sobject}' is not supported" in error["message"]
    assert client.get(f"/sobjects/{sobject}/describe").status_code == 404


def test_assign_permission_sets_alone_opens_permission_sets_but_not_field_permissions(
        client: Client) -> None:
    _without_view_setup(client)
    client.admin("PATCH", f"/orgs/{client.org.name}/permissions",
                 json={"system": {"PermissionsAssignPermissionSets": True}})
    assert client.get("/query", params={"q": "SELECT Id FROM PermissionSet"}).ok
    assert client.get("/query", params={"q": "SELECT Id FROM PermissionSetAssignment"}).ok
    assert client.get("/query", params={"q": "SELECT Id FROM FieldPermissions"}).status_code \
        == 400


def test_user_permission_access_gives_the_running_users_own_permissions(
        client: Client) -> None:
    _without_view_setup(client)
    body = client.query("SELECT PermissionsApiEnabled, PermissionsViewSetup,"
                        " PermissionsStreamingApiEnabled FROM UserPermissionAccess")
    [row] = body["records"]
    assert row["PermissionsApiEnabled"] is True
    assert row["PermissionsStreamingApiEnabled"] is True
    assert row["PermissionsViewSetup"] is False
