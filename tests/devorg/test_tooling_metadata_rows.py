"""Tooling serves FullName and Metadata one row per query, as Salesforce does."""

from __future__ import annotations

from .conftest import Client


def _field(client: Client, name: str) -> None:
    created = client.post("/tooling/sobjects/CustomField", json={
        "FullName": f"Account.{name}__c",
        "Metadata": {"label": name, "type": "Text", "length": 100}})
    assert created.status_code == 201, created.text


def test_full_name_or_metadata_over_more_than_one_row_is_a_malformed_query(
        client: Client) -> None:
    _field(client, "Ily_One")
    _field(client, "Ily_Two")
    for column in ("FullName", "Metadata"):
        response = client.get("/tooling/query", params={
            "q": f"SELECT Id, {column} FROM CustomField WHERE DeveloperName LIKE 'Ily%'"})  # noqa: S608
        assert response.status_code == 400, response.text
        [error] = response.json()
        assert error["errorCode"] == "MALFORMED_QUERY"
        assert error["message"].startswith(
            "When retrieving results with Metadata or FullName fields, the query"
            " qualifications must specify no more than one row for retrieval.")


def test_one_row_or_neither_column_is_served(client: Client) -> None:
    _field(client, "Ily_One")
    _field(client, "Ily_Two")
    one = client.get("/tooling/query", params={
        "q": "SELECT Id, FullName FROM CustomField WHERE DeveloperName = 'Ily_One'"})
    assert one.status_code == 200, one.text
    assert one.json()["records"][0]["FullName"] == "Account.Ily_One__c"
    both = client.get("/tooling/query", params={
        "q": "SELECT Id, DeveloperName FROM CustomField WHERE DeveloperName LIKE 'Ily%'"})
    assert both.json()["totalSize"] == 2
