"""Value errors as Salesforce words them: the field's label first; NotifyForFields is a
restricted picklist."""

from __future__ import annotations

from .conftest import Client

TOPIC = {"Name": "T1", "Query": "SELECT Id, Name FROM Account", "ApiVersion": 62.0}


def test_string_too_long_starts_with_the_field_label(client: Client) -> None:
    response = client.post("/sobjects/Account/", json={"Name": "A", "BillingCity": "c" * 41})
    assert response.status_code == 400
    [error] = response.json()
    assert error["errorCode"] == "STRING_TOO_LONG"
    assert error["message"].startswith("Billing City: data value too large: ccc")
    assert error["fields"] == ["BillingCity"]


def test_string_length_counts_utf16_units_so_an_emoji_is_two(client: Client) -> None:
    # BillingCity is 40 long: 20 rockets are 40 units and fit, 21 are 42 and do not.
    fits = client.post("/sobjects/Account/", json={"Name": "A", "BillingCity": "\U0001F680" * 20})
    assert fits.status_code == 201, fits.text
    response = client.post("/sobjects/Account/",
                           json={"Name": "A", "BillingCity": "\U0001F680" * 21})
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "STRING_TOO_LONG"


def test_a_push_topic_with_an_unknown_notify_for_fields_value_is_refused(
        client: Client) -> None:
    response = client.post("/sobjects/PushTopic/", json={**TOPIC, "NotifyForFields": "Some"})
    assert response.status_code == 400
    assert response.json() == [{
        "message": "Notify For Fields: bad value for restricted picklist field: Some",
        "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "fields": ["NotifyForFields"]}]
    assert client.post("/sobjects/PushTopic/",
                       json={**TOPIC, "NotifyForFields": "Select"}).status_code == 201


def test_describe_marks_notify_for_fields_restricted(client: Client) -> None:
    fields = {f["name"]: f for f in client.get("/sobjects/PushTopic/describe").json()["fields"]}
    assert fields["NotifyForFields"]["restrictedPicklist"] is True
    assert fields["Query"]["restrictedPicklist"] is False
