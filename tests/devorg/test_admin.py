"""Admin API: faults, read-back of calls and history, writes by another user,
persistence across a restart with --data, and the change feed."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests

from ilyd.devorg import Change
from tests.helpers.devorg_process import start_devorg

from .conftest import Client, login


def test_status_fault_answers_5xx_for_its_count_then_clears(client: Client) -> None:
    fault = client.admin("POST", "/faults", json={"kind": "status", "status": 503,
                                                  "path_prefix": "/services/data/", "count": 2})
    assert fault.status_code == 201
    codes = [client.get("/sobjects").status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    assert client.admin("GET", "/faults").json() == []


def test_drop_fault_closes_the_connection_without_an_answer(client: Client) -> None:
    client.admin("POST", "/faults", json={"kind": "drop", "count": 1,
                                          "path_prefix": "/services/data/"})
    with pytest.raises(requests.ConnectionError):
        requests.get(client.base + "/sobjects",
                     headers={"Authorization": f"Bearer {client.token}"})
    assert client.get("/sobjects").status_code == 200


def test_lock_row_fault_fails_a_share_of_written_rows(client: Client) -> None:
    client.admin("POST", "/faults", json={"kind": "lock_row", "share": 1.0, "org": "org0"})
    rid = client.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    body = {"records": [{"attributes": {"type": "Account"}, "id": rid, "Website": "x.test"}]}
    result = client.patch("/composite/sobjects", json=body).json()[0]
    assert result["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    client.admin("DELETE", "/faults")
    assert client.patch("/composite/sobjects", json=body).json()[0]["success"] is True


def test_calls_are_counted_by_endpoint(client: Client) -> None:
    client.admin("DELETE", "/orgs/org0/calls")
    client.get("/sobjects")
    client.query("SELECT Id FROM Lead")
    client.query("SELECT Id FROM Lead")
    calls = client.admin("GET", "/orgs/org0/calls").json()
    assert calls["used"] == 3
    assert calls["by_endpoint"] == {"GET describeGlobal": 1, "GET query": 2}


def test_record_history_has_timestamps_users_and_values(client: Client) -> None:
    created = client.admin("POST", "/orgs/org0/records/Lead",
                           json={"LastName": "Human", "Company": "Co"})
    rid = created.json()["id"]
    client.patch(f"/sobjects/Lead/{rid}", json={"Website": "co.test"})
    history = client.admin("GET", f"/orgs/org0/records/{rid}/history").json()
    assert [h["change_type"] for h in history] == ["created", "updated"]
    other = client.admin("GET", "/orgs/org0").json()["other_user_id"]
    assert history[0]["user_id"] == other
    assert history[1]["user_id"] == client.org.user_id
    assert history[1]["values"] == {"Website": "co.test"}
    assert history[1]["timestamp"].endswith("+0000")


def test_many_creates_in_one_request_are_separate_records_and_events(client: Client) -> None:
    answer = client.admin("POST", "/creates", json={"creates": [
        {"org": "org0", "sobject": "Lead", "values": {"LastName": "One", "Company": "A"}},
        {"org": "org0", "sobject": "Account", "values": {"Name": "Two"}},
        {"org": "org0", "sobject": "Lead", "values": {"Company": "no last name"}},
    ]})
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["success"] for r in results] == [True, True, False]
    assert results[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    other = client.admin("GET", "/orgs/org0").json()["other_user_id"]
    for result in results[:2]:
        history = client.admin("GET", f"/orgs/org0/records/{result['id']}/history").json()
        assert [(h["change_type"], h["user_id"]) for h in history] == [("created", other)]
    unknown = client.admin("POST", "/creates", json={"creates": [
        {"org": "nowhere", "sobject": "Lead", "values": {}}]})
    assert unknown.status_code == 404
    assert client.admin("POST", "/creates", json={"creates": "x"}).status_code == 400


def test_state_survives_a_restart_with_data(tmp_path: Path) -> None:
    data = tmp_path / "devorg.sqlite"
    with start_devorg(data=data, seed_records=5) as first:
        org = first.orgs[0]
        client = login(first, org)
        client.post("/tooling/sobjects/CustomField", json={
            "FullName": "Lead.Ily_Kept__c",
            "Metadata": {"label": "Kept", "type": "Text", "length": 10}})
        rid = client.post("/sobjects/Lead/", json={"LastName": "Stay",
                                                   "Company": "Co"}).json()["id"]
        client.admin("PATCH", "/orgs/org0/settings", json={"api_limit": 777})
    with start_devorg(data=data) as second:
        assert second.orgs[0].org_id == org.org_id
        token = requests.post(second.url + "/services/oauth2/token", data={
            "grant_type": "refresh_token", "client_id": org.client_id,
            "refresh_token": org.refresh_token}).json()["access_token"]
        base = second.url + "/services/data/v59.0"
        headers = {"Authorization": f"Bearer {token}"}
        lead = requests.get(f"{base}/sobjects/Lead/{rid}", headers=headers)
        assert lead.json()["LastName"] == "Stay"
        assert requests.get(f"{base}/query", params={"q": "SELECT Id FROM Lead"},
                            headers=headers).json()["totalSize"] == 6
        fields = requests.get(f"{base}/tooling/query", headers=headers, params={
            "q": "SELECT DeveloperName FROM CustomField"}).json()
        assert fields["records"][0]["DeveloperName"] == "Ily_Kept"
        assert lead.headers["Sforce-Limit-Info"].endswith("/777")
        fresh = requests.post(f"{base}/sobjects/Lead/", headers=headers,
                              json={"LastName": "New", "Company": "Co"}).json()["id"]
        assert fresh != rid


def test_change_feed_publishes_one_change_per_committed_record(client: Client) -> None:
    state = client.dev.states["org0"]
    seen: list[Change] = []
    got = threading.Event()

    def on_change(change: Change) -> None:
        seen.append(change)
        if len(seen) == 3:
            got.set()

    unsubscribe = state.changes.subscribe(on_change)
    rid = client.post("/sobjects/Account/", json={"Name": "Feed"}).json()["id"]
    client.patch(f"/sobjects/Account/{rid}", json={"Website": "feed.test"})
    client.delete(f"/sobjects/Account/{rid}")
    assert got.wait(5)
    unsubscribe()
    assert [c.change_type for c in seen] == ["created", "updated", "deleted"]
    assert "Website" in seen[1].changed_fields
    assert "Name" not in seen[1].changed_fields
    assert seen[1].record["Website"] == "feed.test"
    assert seen[2].record["Name"] == "Feed"
    assert all(c.user_id == client.org.user_id for c in seen)
    assert seen[0].timestamp.tzinfo is not None
