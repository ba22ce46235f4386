"""Tooling CustomField and field-level security, permission objects, PushTopic rules."""

from __future__ import annotations

from .conftest import Client

FIELD = {"FullName": "Account.Ily_Size__c",
         "Metadata": {"label": "Ily Size", "type": "Text", "length": 100}}


def _grant(client: Client, edit: bool = True, assign: bool = True) -> str:
    ps = client.post("/sobjects/PermissionSet", json={"Name": "Ily_Connector",
                                                      "Label": "Ily Connector"}).json()["id"]
    grant = client.post("/sobjects/FieldPermissions", json={
        "ParentId": ps, "SobjectType": "Account", "Field": "Account.Ily_Size__c",
        "PermissionsRead": True, "PermissionsEdit": edit})
    assert grant.status_code == 201, grant.text
    if assign:
        assert client.post("/sobjects/PermissionSetAssignment", json={
            "AssigneeId": client.org.user_id, "PermissionSetId": ps}).status_code == 201
    return ps


def test_a_new_field_is_invisible_until_an_assigned_permission_set_grants_it(
        client: Client) -> None:
    created = client.post("/tooling/sobjects/CustomField", json=FIELD)
    assert created.status_code == 201
    assert created.json()["id"].startswith("00N")
    assert created.json()["success"] is True
    rid = client.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    hidden = client.get("/query", params={"q": "SELECT Ily_Size__c FROM Account"})
    assert hidden.status_code == 400
    assert hidden.json()[0]["errorCode"] == "INVALID_FIELD"
    names = {f["name"] for f in client.get("/sobjects/Account/describe").json()["fields"]}
    assert "Ily_Size__c" not in names
    write = client.patch(f"/sobjects/Account/{rid}", json={"Ily_Size__c": "big"})
    assert write.json()[0]["errorCode"] == "INVALID_FIELD"
    ps = _grant(client, edit=True, assign=False)
    still = client.patch(f"/sobjects/Account/{rid}", json={"Ily_Size__c": "big"})
    assert still.status_code == 400, "a grant on an unassigned permission set gives nothing"
    client.post("/sobjects/PermissionSetAssignment", json={
        "AssigneeId": client.org.user_id, "PermissionSetId": ps})
    assert client.patch(f"/sobjects/Account/{rid}", json={"Ily_Size__c": "big"}
                        ).status_code == 204
    fields = {f["name"]: f for f in client.get("/sobjects/Account/describe").json()["fields"]}
    assert fields["Ily_Size__c"]["updateable"] is True
    assert fields["Ily_Size__c"]["custom"]
    assert client.query(f"SELECT Ily_Size__c FROM Account WHERE Id = '{rid}'"  # noqa: S608
                        )["records"][0]["Ily_Size__c"] == "big"


def test_read_only_grant_makes_the_field_visible_but_not_writable(client: Client) -> None:
    client.post("/tooling/sobjects/CustomField", json=FIELD)
    _grant(client, edit=False)
    rid = client.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    fields = {f["name"]: f for f in client.get("/sobjects/Account/describe").json()["fields"]}
    assert fields["Ily_Size__c"]["updateable"] is False
    refused = client.patch(f"/sobjects/Account/{rid}", json={"Ily_Size__c": "x"})
    assert refused.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert refused.json()[0]["message"].startswith("Unable to create/update fields: Ily_Size__c.")


def test_tooling_query_update_and_delete_of_custom_fields(client: Client) -> None:
    fid = client.post("/tooling/sobjects/CustomField", json=FIELD).json()["id"]
    duplicate = client.post("/tooling/sobjects/CustomField", json=FIELD)
    assert duplicate.json()[0]["errorCode"] == "DUPLICATE_DEVELOPER_NAME"
    found = client.get("/tooling/query", params={"q": "SELECT Id, DeveloperName, TableEnumOrId "
                       "FROM CustomField WHERE DeveloperName LIKE 'Ily%'"}).json()
    assert found["records"][0]["DeveloperName"] == "Ily_Size"
    assert found["records"][0]["TableEnumOrId"] == "Account"
    meta = {"label": "Ily Size", "type": "Text", "length": 200}
    assert client.patch(f"/tooling/sobjects/CustomField/{fid}", json={"Metadata": meta}
                        ).status_code == 204
    assert client.get(f"/tooling/sobjects/CustomField/{fid}").json()["Metadata"]["length"] == 200
    _grant(client)
    assert client.delete(f"/tooling/sobjects/CustomField/{fid}").status_code == 204
    grants = client.query("SELECT Id FROM FieldPermissions WHERE Field = 'Account.Ily_Size__c'")
    assert grants["totalSize"] == 0


def test_bad_field_metadata_and_permission_rows_are_refused(client: Client) -> None:
    no_length = client.post("/tooling/sobjects/CustomField", json={
        "FullName": "Lead.Ily_X__c", "Metadata": {"label": "X", "type": "Text"}})
    assert no_length.status_code == 400
    bad_name = client.post("/tooling/sobjects/CustomField", json={
        "FullName": "Lead.Ily__X__c", "Metadata": {"label": "X", "type": "Checkbox",
                                                   "defaultValue": "false"}})
    assert bad_name.status_code == 400
    ps = client.post("/sobjects/PermissionSet", json={"Name": "P", "Label": "P"}).json()["id"]
    unknown = client.post("/sobjects/FieldPermissions", json={
        "ParentId": ps, "SobjectType": "Account", "Field": "Account.Nope__c",
        "PermissionsRead": True})
    assert unknown.json()[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    twice = {"AssigneeId": client.org.user_id, "PermissionSetId": ps}
    client.post("/sobjects/PermissionSetAssignment", json=twice)
    duplicate = client.post("/sobjects/PermissionSetAssignment", json=twice)
    assert duplicate.json()[0]["errorCode"] == "DUPLICATE_VALUE"


def test_profile_owned_permission_sets_are_queryable(client: Client) -> None:
    rows = client.query("SELECT PermissionSet.Name, PermissionSet.IsOwnedByProfile, "  # noqa: S608
                        "PermissionSet.PermissionsModifyAllData FROM PermissionSetAssignment "
                        f"WHERE AssigneeId = '{client.org.user_id}'")["records"]
    assert any(r["PermissionSet"]["IsOwnedByProfile"] for r in rows)
    assert any(r["PermissionSet"]["PermissionsModifyAllData"] for r in rows)


def test_admin_permissions_switch_api_access_and_object_rights(client: Client) -> None:
    client.admin("PATCH", "/orgs/org0/permissions",
                 json={"system": {"PermissionsModifyAllData": False},
                       "objects": {"Lead": {"PermissionsEdit": False}}})
    lead = client.query("SELECT Id FROM Lead LIMIT 1")["records"][0]["Id"]
    refused = client.patch(f"/sobjects/Lead/{lead}", json={"Website": "x.test"})
    assert refused.json()[0]["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    client.admin("PATCH", "/orgs/org0/permissions",
                 json={"system": {"PermissionsApiEnabled": False}})
    disabled = client.get("/sobjects")
    assert disabled.status_code == 403
    assert disabled.json()[0]["errorCode"] == "API_DISABLED_FOR_ORG"


def test_push_topics_are_validated_and_hidden_when_streaming_is_off(client: Client) -> None:
    good = {"Name": "IlyAccounts", "Query": "SELECT Id, Name, Website FROM Account",
            "ApiVersion": 59.0, "NotifyForFields": "Referenced"}
    assert client.post("/sobjects/PushTopic", json=good).status_code == 201
    duplicate = client.post("/sobjects/PushTopic", json=good)
    assert duplicate.json()[0]["errorCode"] == "DUPLICATE_VALUE"
    limited = client.post("/sobjects/PushTopic", json={**good, "Name": "L",
                                                       "Query": good["Query"] + " LIMIT 5"})
    assert limited.json()[0] == {"message": "'LIMIT' is not allowed",
                                 "errorCode": "INVALID_FIELD", "fields": ["Query"]}
    long_name = client.post("/sobjects/PushTopic", json={**good, "Name": "N" * 26})
    assert long_name.json()[0]["errorCode"] == "STRING_TOO_LONG"
    client.admin("PATCH", "/orgs/org0/settings", json={"streaming_enabled": False})
    assert client.get("/sobjects/PushTopic/describe").status_code == 404
