"""Lead conversion through the admin API: the lead becomes an Account, is marked
converted, and Salesforce's API refuses to update it from then on."""

from __future__ import annotations

import datetime as dt

from ilyd.devorg import Change

from .conftest import Client


def _lead(client: Client, **values: object) -> str:
    body = {"LastName": "Doe", "Company": "Acme Corporation", "Website": "acme.example",
            "City": "Springfield", "Industry": "Energy", **values}
    response = client.admin("POST", "/orgs/org0/records/Lead", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _convert(client: Client, lead: str, **body: object) -> dict:
    return client.admin("POST", f"/orgs/org0/leads/{lead}/convert", json=body).json()


def test_converting_a_lead_creates_its_account_and_marks_the_lead_converted(
        client: Client) -> None:
    lead = _lead(client)
    result = _convert(client, lead)
    assert result["success"] is True
    assert result["accountCreated"] is True
    assert result["contactId"] is None  # devorg has no Contact object
    record = client.get(f"/sobjects/Lead/{lead}").json()
    assert record["IsConverted"] is True
    assert record["ConvertedAccountId"] == result["accountId"]
    assert record["ConvertedDate"] == dt.datetime.now(dt.UTC).date().isoformat()
    assert record["Status"] == "Closed - Converted"
    assert "ConvertedContactId" not in record
    account = client.get(f"/sobjects/Account/{result['accountId']}").json()
    assert account["Name"] == "Acme Corporation"
    assert account["Website"] == "acme.example"
    assert account["BillingCity"] == "Springfield"
    assert account["Industry"] == "Energy"
    converted = client.query("SELECT Id FROM Lead WHERE IsConverted = true")["records"]
    assert [r["Id"] for r in converted] == [lead]


def test_a_converted_lead_refuses_updates_with_salesforces_error(client: Client) -> None:
    lead = _lead(client)
    _convert(client, lead)
    single = client.patch(f"/sobjects/Lead/{lead}", json={"Title": "CEO"})
    assert single.status_code == 400
    assert single.json()[0]["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"
    assert single.json()[0]["message"] == "cannot reference converted lead"
    other = _lead(client, LastName="Roe")
    results = client.patch("/composite/sobjects", json={"records": [
        {"attributes": {"type": "Lead"}, "Id": lead, "Title": "CEO"},
        {"attributes": {"type": "Lead"}, "Id": other, "Title": "CFO"}]}).json()
    assert results[0]["success"] is False
    assert results[0]["errors"][0]["statusCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"
    assert results[1]["success"] is True
    assert client.get(f"/sobjects/Lead/{other}").json()["Title"] == "CFO"


def test_a_lead_converts_into_an_existing_account_once(client: Client) -> None:
    account = client.post("/sobjects/Account", json={"Name": "Globex"}).json()["id"]
    lead = _lead(client)
    result = _convert(client, lead, account_id=account)
    assert result["accountId"] == account
    assert result["accountCreated"] is False
    again = client.admin("POST", f"/orgs/org0/leads/{lead}/convert", json={})
    assert again.status_code == 400
    assert again.json()["errors"][0]["statusCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"


def test_conversion_fields_cannot_be_set_through_the_api(client: Client) -> None:
    lead = _lead(client)
    response = client.patch(f"/sobjects/Lead/{lead}", json={"IsConverted": True})
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    missing = client.admin("POST", "/orgs/org0/leads/00Q000000000000AAA/convert", json={})
    assert missing.status_code == 404


def test_conversion_is_published_on_the_change_feed_and_recorded_in_history(
        client: Client) -> None:
    lead = _lead(client)
    state = client.dev.org_by_name("org0")
    assert state is not None
    seen: list[Change] = []
    unsubscribe = state.changes.subscribe(seen.append)
    try:
        account = _convert(client, lead)["accountId"]
    finally:
        unsubscribe()
    assert [(c.sobject, c.change_type) for c in seen] == [("Account", "created"),
                                                          ("Lead", "updated")]
    assert {"IsConverted", "ConvertedAccountId", "ConvertedDate", "Status"} \
        <= seen[1].changed_fields
    history = client.admin("GET", f"/orgs/org0/records/{lead}/history").json()
    assert history[-1]["change_type"] == "updated"
    assert "IsConverted" in history[-1]["changed_fields"]
    assert client.admin("GET", f"/orgs/org0/records/{account}/history").json()[0][
        "change_type"] == "created"
