"""Tooling CustomField writes need Customize Application (plus Modify All Data or Modify
Metadata Through Metadata API Functions); without them Salesforce refuses the write."""

from __future__ import annotations

import pytest

from .conftest import Client

FIELD = {"FullName": "Account.Ily_Size__c",
         "Metadata": {"label": "Ily Size", "type": "Text", "length": 100}}
REFUSED = ("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id")


def _system(client: Client, **perms: bool) -> None:
    response = client.admin("PATCH", "/orgs/org0/permissions", json={"system": perms})
    assert response.status_code == 200, response.text


def test_custom_field_create_without_customize_application_is_refused(client: Client) -> None:
    _system(client, PermissionsCustomizeApplication=False)
    refused = client.post("/tooling/sobjects/CustomField", json=FIELD)
    assert refused.status_code == 400
    assert (refused.json()[0]["errorCode"], refused.json()[0]["message"]) == REFUSED
    existing = client.get("/tooling/query", params={
        "q": "SELECT Id FROM CustomField WHERE DeveloperName = 'Ily_Size'"}).json()
    assert existing["totalSize"] == 0
    _system(client, PermissionsCustomizeApplication=True)
    assert client.post("/tooling/sobjects/CustomField", json=FIELD).status_code == 201


@pytest.mark.parametrize("kept", ["PermissionsModifyAllData", "PermissionsModifyMetadata"])
def test_customize_application_with_either_data_or_metadata_permission_may_create(
        client: Client, kept: str) -> None:
    other = {"PermissionsModifyAllData", "PermissionsModifyMetadata"} - {kept}
    _system(client, **dict.fromkeys(other, False))
    assert client.post("/tooling/sobjects/CustomField", json=FIELD).status_code == 201


def test_customize_application_alone_is_not_enough(client: Client) -> None:
    _system(client, PermissionsModifyAllData=False, PermissionsModifyMetadata=False)
    refused = client.post("/tooling/sobjects/CustomField", json=FIELD)
    assert refused.status_code == 400
    assert refused.json()[0]["errorCode"] == REFUSED[0]


def test_an_existing_field_cannot_be_changed_or_deleted_without_customize_application(
        client: Client) -> None:
    field_id = client.post("/tooling/sobjects/CustomField", json=FIELD).json()["id"]
    _system(client, PermissionsCustomizeApplication=False)
    changed = client.patch(f"/tooling/sobjects/CustomField/{field_id}", json={
        "Metadata": {**FIELD["Metadata"], "label": "Ily Bigness"}})
    assert changed.status_code == 400
    assert changed.json()[0]["errorCode"] == REFUSED[0]
    assert client.delete(f"/tooling/sobjects/CustomField/{field_id}").status_code == 400
    assert client.get(f"/tooling/sobjects/CustomField/{field_id}").status_code == 200
