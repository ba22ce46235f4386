"""Composite `POST /composite` in devorg: several queries in one call, counted as one call,
each answered in `compositeResponse` with its own status and body."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from ilyd.salesforce.soql import soql

from .conftest import API, Client


def query_url(soql: str) -> str:
    return f"{API}/query/?{urlencode({'q': soql})}"


def composite(client: Client, *urls: str, all_or_none: bool = False) -> Any:
    return client.post("/composite", json={"allOrNone": all_or_none, "compositeRequest": [
        {"method": "GET", "url": url, "referenceId": f"r{i}"} for i, url in enumerate(urls)]})


def used(client: Client) -> int:
    return int(client.admin("GET", f"/orgs/{client.org.name}/calls").json()["used"])


def test_two_queries_in_one_composite_call_count_as_one_call_and_answer_each(
        client: Client) -> None:
    account = client.post("/sobjects/Account/", json={"Name": "Acme"}).json()["id"]
    lead = client.post("/sobjects/Lead/", json={"LastName": "Doe", "Company": "X"}).json()["id"]
    before = used(client)
    answer = composite(client,
                       query_url(soql("SELECT Id, Name FROM Account WHERE Id = {id}", id=account)),
                       query_url(soql("SELECT Id, Company FROM Lead WHERE Id = {id}", id=lead)))
    assert used(client) == before + 1
    assert answer.status_code == 200
    first, second = answer.json()["compositeResponse"]
    assert first["referenceId"] == "r0"
    assert first["httpStatusCode"] == 200
    assert first["httpHeaders"] == {}
    assert first["body"]["totalSize"] == 1
    assert first["body"]["records"][0]["Name"] == "Acme"
    assert second["referenceId"] == "r1"
    assert second["body"]["records"][0]["Company"] == "X"


def test_a_failing_query_answers_its_error_and_the_others_their_rows(client: Client) -> None:
    client.post("/sobjects/Account/", json={"Name": "Acme"})
    answer = composite(client, query_url("SELECT Id, Nope__c FROM Account"),
                       query_url("SELECT Id, Name FROM Account"))
    failed, ok = answer.json()["compositeResponse"]
    assert failed["httpStatusCode"] == 400
    assert failed["body"][0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Nope__c'" in failed["body"][0]["message"]
    assert ok["httpStatusCode"] == 200
    assert ok["body"]["totalSize"] >= 1


def test_with_all_or_none_the_subrequests_after_a_failure_are_halted(client: Client) -> None:
    answer = composite(client, query_url("SELECT Id, Nope__c FROM Account"),
                       query_url("SELECT Id FROM Account"), all_or_none=True)
    _, halted = answer.json()["compositeResponse"]
    assert halted["httpStatusCode"] == 400
    assert halted["body"][0]["errorCode"] == "PROCESSING_HALTED"


def test_more_than_five_queries_are_refused(client: Client) -> None:
    answer = composite(client, *[query_url("SELECT Id FROM Account")] * 6)
    assert answer.status_code == 400
    assert answer.json()[0]["errorCode"] == "LIMIT_EXCEEDED"


def test_write_subrequests_are_refused_as_devorg_serves_reads_only(client: Client) -> None:
    answer = client.post("/composite", json={"compositeRequest": [
        {"method": "POST", "url": f"{API}/sobjects/Account", "referenceId": "a",
         "body": {"Name": "Acme"}}]})
    assert answer.status_code == 400
    assert answer.json()[0]["errorCode"] == "INVALID_INPUT"


# -- Tooling composite: creates of Tooling records ----------------------------------------

def field_create(name: str, sobject: str = "Account") -> dict[str, Any]:
    return {"method": "POST", "url": f"{API}/tooling/sobjects/CustomField",
            "referenceId": name, "body": {
                "FullName": f"{sobject}.{name}__c",
                "Metadata": {"label": name, "type": "Text", "length": 40}}}


def test_a_tooling_composite_creates_fields_in_one_call_each_answered_with_its_id(
        client: Client) -> None:
    before = used(client)
    answer = client.post("/tooling/composite", json={"allOrNone": False, "compositeRequest": [
        field_create("Ily_Comp_A"), field_create("Ily_Comp_B", "Lead")]})
    assert used(client) == before + 1
    assert answer.status_code == 200
    first, second = answer.json()["compositeResponse"]
    assert first["httpStatusCode"] == second["httpStatusCode"] == 201
    assert first["body"]["success"] is True
    assert first["httpHeaders"]["Location"].endswith("/CustomField/" + first["body"]["id"])
    names = {r["DeveloperName"] for r in client.get(
        "/tooling/query/", params={"q": "SELECT DeveloperName FROM CustomField"
                                        " WHERE DeveloperName LIKE 'Ily_Comp_%'"}
    ).json()["records"]}
    assert names == {"Ily_Comp_A", "Ily_Comp_B"}


def test_a_refused_create_answers_its_error_and_the_next_one_is_still_made(
        client: Client) -> None:
    bad = field_create("Ily_Comp_Bad")
    bad["body"]["FullName"] = "Nowhere.Ily_Comp_Bad__c"
    answer = client.post("/tooling/composite", json={"compositeRequest": [
        bad, field_create("Ily_Comp_C")]})
    refused, made = answer.json()["compositeResponse"]
    assert refused["httpStatusCode"] >= 400
    assert refused["body"][0]["errorCode"]
    assert made["httpStatusCode"] == 201


def test_tooling_creates_with_all_or_none_are_refused_as_devorg_does_not_roll_back(
        client: Client) -> None:
    answer = client.post("/tooling/composite", json={"allOrNone": True, "compositeRequest": [
        field_create("Ily_Comp_D")]})
    assert answer.status_code == 400
    assert answer.json()[0]["errorCode"] == "INVALID_INPUT"


def test_a_tooling_composite_runs_tooling_resources_only(client: Client) -> None:
    answer = client.post("/tooling/composite", json={"compositeRequest": [
        {"method": "GET", "url": query_url("SELECT Id FROM Account"), "referenceId": "q"}]})
    assert answer.status_code == 400
    assert answer.json()[0]["errorCode"] == "INVALID_INPUT"
