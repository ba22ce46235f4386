"""A write naming a column the object lacks: Salesforce names it in the message only."""

from __future__ import annotations

from .conftest import Client

NO_SUCH = {"message": "No such column 'Nope__c' on sobject of type Account",
           "errorCode": "INVALID_FIELD"}


def test_a_single_record_patch_answers_400_without_a_fields_list(client: Client) -> None:
    rid = client.post("/sobjects/Account/", json={"Name": "A"}).json()["id"]
    response = client.patch(f"/sobjects/Account/{rid}", json={"Nope__c": "x"})
    assert response.status_code == 400
    assert response.json() == [NO_SUCH]


def test_a_collections_patch_fails_as_a_whole_and_saves_nothing(client: Client) -> None:
    first = client.post("/sobjects/Account/", json={"Name": "A"}).json()["id"]
    second = client.post("/sobjects/Account/", json={"Name": "B"}).json()["id"]
    response = client.patch("/composite/sobjects", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Account"}, "Id": first, "Name": "A2"},
        {"attributes": {"type": "Account"}, "Id": second, "Nope__c": "x"}]})
    assert response.status_code == 400
    assert response.json() == [NO_SUCH]
    assert client.get(f"/sobjects/Account/{first}").json()["Name"] == "A"
