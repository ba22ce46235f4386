"""REST behaviour: ids, describe, CRUD status codes and errors, collections, limits."""

from __future__ import annotations

import requests

from ilyd.devorg.ids import checksum, to18

from .conftest import Client


def test_ids_carry_the_salesforce_checksum_and_key_prefix(client: Client) -> None:
    created = client.post("/sobjects/Lead/", json={"LastName": "Ada", "Company": "Acme"})
    record_id = created.json()["id"]
    assert record_id.startswith("00Q")
    assert record_id[15:] == checksum(record_id[:15])
    assert to18(record_id[:15]) == record_id
    assert checksum("001M000000qfPyS") == "IAU"


def test_versions_list_is_public_and_starts_at_37(client: Client) -> None:
    versions = requests.get(client.dev.url + "/services/data").json()
    assert versions[0]["version"] == "37.0"
    assert {"label", "url", "version"} <= set(versions[-1])
    assert client.http.get(client.dev.url + "/services/data/v36.0/sobjects").status_code == 404


def test_create_read_update_delete_use_salesforce_status_codes(client: Client) -> None:
    created = client.post("/sobjects/Account/", json={"Name": "Acme", "Website": "acme.test"})
    assert created.status_code == 201
    assert created.json()["success"] is True
    assert created.json()["errors"] == []
    rid = created.json()["id"]
    got = client.get(f"/sobjects/Account/{rid}", params={"fields": "Name,Website"}).json()
    assert got["attributes"] == {"type": "Account",
                                 "url": f"/services/data/v59.0/sobjects/Account/{rid}"}
    assert got["Website"] == "acme.test"
    updated = client.patch(f"/sobjects/Account/{rid}", json={"Website": "acme.example"})
    assert updated.status_code == 204
    assert updated.content == b""
    full = client.get(f"/sobjects/Account/{rid}").json()
    assert full["LastModifiedById"] == client.org.user_id
    assert full["SystemModstamp"].endswith("+0000")
    assert client.delete(f"/sobjects/Account/{rid}").status_code == 204
    gone = client.get(f"/sobjects/Account/{rid}")
    assert gone.status_code == 404
    assert gone.json() == [{"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED"}]


def test_validation_errors_have_salesforce_codes_and_fields(client: Client) -> None:
    missing = client.post("/sobjects/Lead/", json={"LastName": "X"})
    assert missing.status_code == 400
    assert missing.json() == [{"message": "Required fields are missing: [Company]",
                               "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Company"]}]
    too_long = client.post("/sobjects/Account/", json={"Name": "A", "Website": "w" * 256})
    assert too_long.json()[0]["errorCode"] == "STRING_TOO_LONG"
    assert too_long.json()[0]["message"].startswith("Website: data value too large: www")
    assert too_long.json()[0]["message"].endswith("(max length=255)")
    unknown = client.post("/sobjects/Account/", json={"Name": "A", "Nope__c": 1})
    assert unknown.json()[0] == {"message": "No such column 'Nope__c' on sobject of type "
                                 "Account", "errorCode": "INVALID_FIELD"}
    read_only = client.post("/sobjects/Account/", json={"Name": "A", "CreatedDate": "x"})
    assert read_only.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    bad_type = client.post("/sobjects/Account/", json={"Name": "A", "NumberOfEmployees": "x"})
    assert bad_type.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    bad_json = client.http.post(client.base + "/sobjects/Account/", data=b"{nope",
                                headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400
    assert bad_json.json()[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_converted_leads_cannot_be_updated(client: Client) -> None:
    lead = client.post("/sobjects/Lead/", json={"LastName": "C", "Company": "Co",
                                                "IsConverted": True}).json()["id"]
    response = client.patch(f"/sobjects/Lead/{lead}", json={"Website": "co.test"})
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"
    assert response.json()[0]["message"] == "cannot reference converted lead"


def test_unknown_ids_and_resources_answer_not_found(client: Client) -> None:
    missing = client.get("/sobjects/Account/001000000000zzzAAA")
    assert missing.json() == [{"message": "The requested resource does not exist",
                               "errorCode": "NOT_FOUND"}]
    malformed = client.get("/sobjects/Account/xyz")
    assert malformed.status_code == 404
    assert "Provided external ID field does not exist" in malformed.json()[0]["message"]
    assert client.get("/sobjects/Nothing/describe").status_code == 404


def test_expired_or_bad_token_gets_invalid_session_id(client: Client) -> None:
    bad = requests.get(client.base + "/sobjects", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert bad.json() == [{"message": "Session expired or invalid",
                           "errorCode": "INVALID_SESSION_ID"}]


def test_describe_global_lists_objects_with_key_prefixes(client: Client) -> None:
    body = client.get("/sobjects").json()
    prefixes = {o["name"]: o["keyPrefix"] for o in body["sobjects"]}
    assert prefixes["Account"] == "001"
    assert prefixes["Lead"] == "00Q"
    assert prefixes["PermissionSetAssignment"] == "0Pa"
    assert prefixes["PushTopic"] == "0IF"
    assert body["maxBatchSize"] == 200
    fields = {f["name"]: f for f in client.get("/sobjects/Lead/describe").json()["fields"]}
    assert fields["Website"]["type"] == "url"
    assert fields["Website"]["length"] == 255
    assert fields["IsConverted"]["updateable"] is False


def test_every_call_reports_usage_and_the_limit_is_enforced(client: Client) -> None:
    first = client.get("/sobjects")
    used, limit = first.headers["Sforce-Limit-Info"].removeprefix("api-usage=").split("/")
    second = client.get("/sobjects")
    assert second.headers["Sforce-Limit-Info"] == f"api-usage={int(used) + 1}/{limit}"
    limits = client.get("/limits").json()
    remaining = int(limit) - int(used) - 2
    assert limits["DailyApiRequests"] == {"Max": int(limit), "Remaining": remaining}
    client.admin("PATCH", "/orgs/org0/settings", json={"api_limit": 10})
    client.admin("PATCH", "/orgs/org0/calls", json={"used": 10})
    refused = client.get("/sobjects")
    assert refused.status_code == 403
    assert refused.json() == [{"message": "TotalRequests Limit exceeded.",
                               "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert refused.headers["Sforce-Limit-Info"] == "api-usage=10/10"


def test_collections_report_per_record_errors_in_order(client: Client) -> None:
    ids = [client.post("/sobjects/Account/", json={"Name": f"A{i}"}).json()["id"]
           for i in range(2)]
    body = {"allOrNone": False, "records": [
        {"attributes": {"type": "Account"}, "id": ids[0], "Website": "one.test"},
        {"attributes": {"type": "Account"}, "id": ids[1], "Website": "w" * 300},
    ]}
    results = client.patch("/composite/sobjects", json=body)
    assert results.status_code == 200
    first, second = results.json()
    assert first == {"id": ids[0], "success": True, "errors": []}
    assert second["success"] is False
    assert second["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    assert second["errors"][0]["fields"] == ["Website"]


def test_collections_all_or_none_rolls_everything_back(client: Client) -> None:
    rid = client.post("/sobjects/Account/", json={"Name": "Keep"}).json()["id"]
    body = {"allOrNone": True, "records": [
        {"attributes": {"type": "Account"}, "id": rid, "Name": "Changed"},
        {"attributes": {"type": "Account"}, "id": rid, "NumberOfEmployees": "many"},
    ]}
    first, second = client.patch("/composite/sobjects", json=body).json()
    assert first["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert second["success"] is False
    assert client.get(f"/sobjects/Account/{rid}").json()["Name"] == "Keep"


def test_collections_refuse_more_than_200_records(client: Client) -> None:
    body = {"records": [{"attributes": {"type": "Account"}, "Name": "x"}] * 201}
    response = client.post("/composite/sobjects", json=body)
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_query_pages_follow_next_records_url_paths(client: Client) -> None:
    first = client.http.get(client.base + "/query",
                            params={"q": "SELECT Id FROM Account"},
                            headers={"Sforce-Query-Options": "batchSize=200"}).json()
    assert first["totalSize"] == 30
    assert first["done"] is True
    client.admin("POST", "/orgs/org0/seed", json={"sobject": "Account", "count": 450})
    page = client.http.get(client.base + "/query", params={"q": "SELECT Id FROM Account"},
                           headers={"Sforce-Query-Options": "batchSize=200"}).json()
    seen = len(page["records"])
    while not page["done"]:
        assert page["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
        page = client.http.get(client.dev.url + page["nextRecordsUrl"]).json()
        seen += len(page["records"])
    assert seen == page["totalSize"] == 480
