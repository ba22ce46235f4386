"""Change Data Capture as Salesforce delivers it over CometD: the entity selection through
Tooling PlatformEventChannelMember and its limit, the header and payload shapes, the
writer's client in changeOrigin, gap and overflow events, and a third-party client."""

from __future__ import annotations

import subprocess
from typing import Any

import requests

from ilyd.devorg import DevOrg
from tests.devorg.cometd_helpers import API, Lines, OrgClient, RawBayeux, streaming_fixtures
from tests.helpers import ROOT

dev, org = streaming_fixtures(hold_seconds=1)

TOOLING = f"/services/data/v{API}/tooling"


def events(bayeux: RawBayeux, channel: str, count: int, connects: int = 15
           ) -> list[dict[str, Any]]:
    """The data of the next `count` events on `channel` (connects until then, at most
    `connects` times; each connect is held a second when nothing comes). Events of other
    channels are kept for a later call."""
    kept: list[dict[str, Any]] = bayeux.__dict__.setdefault("kept", [])
    for _ in range(connects):
        if len([m for m in kept if m.get("channel") == channel]) >= count:
            break
        kept += [m for m in bayeux.connect() if "data" in m]
    found = [m for m in kept if m.get("channel") == channel][:count]
    for message in found:
        kept.remove(message)
    return [m["data"] for m in found]


def subscribed(dev: DevOrg, org: OrgClient, *channels: str) -> RawBayeux:
    bayeux = RawBayeux(dev, org.token)
    bayeux.handshake()
    bayeux.connect()
    for channel in channels:
        assert bayeux.subscribe(channel, -1)["successful"] is True
    return bayeux


def tooling(org: OrgClient, method: str, path: str, **kw: Any) -> requests.Response:
    return org.http.request(method, f"{org.dev.url}{TOOLING}{path}", headers=org.auth,
                            timeout=10, **kw)


def test_only_selected_entities_publish_change_events(dev: DevOrg, org: OrgClient) -> None:
    bayeux = subscribed(dev, org, "/data/ChangeEvents")
    org.create("Account", {"Name": "Before selection"})
    org.select_cdc("Lead")
    lead = org.lead(1)
    org.create("Account", {"Name": "Not selected"})
    found = events(bayeux, "/data/ChangeEvents", 1)
    assert [e["payload"]["ChangeEventHeader"]["recordIds"] for e in found] == [[lead]]
    assert org.streaming()["channels"].get("/data/AccountChangeEvent") is None


def test_channel_members_are_queried_described_and_deleted_through_tooling(
    dev: DevOrg, org: OrgClient
) -> None:
    (member,) = org.select_cdc("Account")
    rows = tooling(org, "GET", "/query", params={
        "q": "SELECT Id, DeveloperName, EventChannel, SelectedEntity "
             "FROM PlatformEventChannelMember"}).json()["records"]
    assert [(r["DeveloperName"], r["EventChannel"], r["SelectedEntity"]) for r in rows] == [
        ("ChangeEvents_AccountChangeEvent", "ChangeEvents", "AccountChangeEvent")]
    described = tooling(org, "GET", "/sobjects/PlatformEventChannelMember/describe").json()
    assert {"DeveloperName", "EventChannel", "SelectedEntity", "FullName", "Metadata"} <= {
        f["name"] for f in described["fields"]}
    again = org.http.post(f"{dev.url}{TOOLING}/sobjects/PlatformEventChannelMember",
                          headers=org.auth, timeout=10,
                          json={"FullName": "ChangeEvents_AccountChangeEvent",
                                "Metadata": {"eventChannel": "ChangeEvents",
                                             "selectedEntity": "AccountChangeEvent"}})
    assert again.status_code == 400
    assert again.json()[0]["errorCode"] == "DUPLICATE_VALUE"
    assert tooling(org, "DELETE", f"/sobjects/PlatformEventChannelMember/{member}"
                   ).status_code == 204
    bayeux = subscribed(dev, org, "/data/AccountChangeEvent")
    org.create("Account", {"Name": "After deselection"})
    org.select_cdc("Lead")
    lead = org.lead(2)
    assert events(bayeux, "/data/AccountChangeEvent", 1, connects=3) == []
    assert org.streaming()["channels"]["/data/LeadChangeEvent"]["retained"] == 1
    assert lead


def test_selecting_more_entities_than_the_org_allows_is_refused(org: OrgClient) -> None:
    org.streaming("settings", {"cdc_entity_limit": 1}, method="PATCH")
    org.select_cdc("Lead")
    refused = tooling(org, "POST", "/sobjects/PlatformEventChannelMember",
                      json={"FullName": "ChangeEvents_AccountChangeEvent",
                            "Metadata": {"eventChannel": "ChangeEvents",
                                         "selectedEntity": "AccountChangeEvent"}})
    assert refused.status_code == 400
    assert refused.json()[0]["errorCode"] == "LIMIT_EXCEEDED"
    assert "up to 1 entities" in refused.json()[0]["message"]


def test_an_unknown_entity_cannot_be_selected(org: OrgClient) -> None:
    refused = tooling(org, "POST", "/sobjects/PlatformEventChannelMember",
                      json={"FullName": "ChangeEvents_WidgetChangeEvent",
                            "Metadata": {"eventChannel": "ChangeEvents",
                                         "selectedEntity": "WidgetChangeEvent"}})
    assert refused.status_code == 400
    assert refused.json()[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"


def test_change_origin_names_the_api_and_the_writers_client(dev: DevOrg, org: OrgClient) -> None:
    org.select_cdc("Account")
    bayeux = subscribed(dev, org, "/data/AccountChangeEvent")
    plain = org.create("Account", {"Name": "Plain"})
    response = org.http.patch(
        f"{dev.url}/services/data/v{API}/sobjects/Account/{plain}", json={"Phone": "555"},
        headers={**org.auth, "Sforce-Call-Options": "client=ilyd, defaultNamespace=x"},
        timeout=10)
    assert response.status_code == 204, response.text
    origins = [e["payload"]["ChangeEventHeader"]["changeOrigin"]
               for e in events(bayeux, "/data/AccountChangeEvent", 2)]
    assert origins == [f"com/salesforce/api/rest/{API}",
                       f"com/salesforce/api/rest/{API};client=ilyd"]


def test_create_carries_non_null_fields_and_update_only_the_changed_ones_nested(
    dev: DevOrg, org: OrgClient
) -> None:
    org.select_cdc("Lead", "Account")
    bayeux = subscribed(dev, org, "/data/LeadChangeEvent", "/data/AccountChangeEvent")
    lead = org.create("Lead", {"FirstName": "Ada", "LastName": "Byron", "Company": "Acme",
                               "City": "London", "Title": "Countess"})
    org.update("Lead", lead, {"FirstName": "Augusta", "Title": None})
    account = org.create("Account", {"Name": "Acme"})
    org.update("Account", account, {"BillingCity": "Paris"})
    created, updated = (e["payload"] for e in events(bayeux, "/data/LeadChangeEvent", 2))
    header = created["ChangeEventHeader"]
    assert header["changeType"] == "CREATE"
    assert header["changedFields"] == []
    assert header["nulledFields"] == []
    assert header["diffFields"] == []
    assert created["Name"] == {"FirstName": "Ada", "LastName": "Byron"}
    assert created["Address"] == {"City": "London"}
    assert created["Company"] == "Acme"
    assert created["Title"] == "Countess"
    assert not {"Email", "Id", "SystemModstamp"} & set(created)
    header = updated["ChangeEventHeader"]
    assert header["changeType"] == "UPDATE"
    assert sorted(header["changedFields"]) == ["LastModifiedDate", "Name.FirstName", "Title"]
    assert header["nulledFields"] == ["Title"]
    assert updated["Name"] == {"FirstName": "Augusta"}
    assert updated["Title"] is None
    assert set(updated) == {"ChangeEventHeader", "Name", "Title", "LastModifiedDate"}
    for key in ("transactionKey", "sequenceNumber", "commitTimestamp", "commitNumber",
                "commitUser", "entityName", "recordIds", "changeOrigin"):
        assert key in header
    account_update = events(bayeux, "/data/AccountChangeEvent", 2)[-1]["payload"]
    assert account_update["BillingAddress"] == {"City": "Paris"}
    assert "BillingAddress.City" in account_update["ChangeEventHeader"]["changedFields"]


def test_admin_triggers_publish_gap_and_overflow_events(dev: DevOrg, org: OrgClient) -> None:
    org.select_cdc("Lead")
    bayeux = subscribed(dev, org, "/data/LeadChangeEvent")
    ids = [org.lead(n) for n in range(2)]
    events(bayeux, "/data/LeadChangeEvent", 2)
    org.streaming("gap", {"entity": "Lead", "record_ids": ids, "change_type": "GAP_UPDATE"})
    org.streaming("overflow", {"entity": "Lead"})
    gap, overflow = (e["payload"] for e in events(bayeux, "/data/LeadChangeEvent", 2))
    assert gap["ChangeEventHeader"]["changeType"] == "GAP_UPDATE"
    assert gap["ChangeEventHeader"]["recordIds"] == ids
    assert set(gap) == {"ChangeEventHeader"}
    assert overflow["ChangeEventHeader"]["changeType"] == "GAP_OVERFLOW"
    assert overflow["ChangeEventHeader"]["recordIds"] == []
    assert overflow["ChangeEventHeader"]["entityName"] == "Lead"


def test_change_events_are_kept_72_hours_and_push_topic_events_24(org: OrgClient) -> None:
    settings = org.streaming()["settings"]
    assert settings["cdc_retention"] == 72 * 3600
    assert settings["pushtopic_retention"] == 24 * 3600
    assert settings["cdc_entity_limit"] == 5


def test_jsforce_receives_account_change_events_in_salesforces_shape(
    dev: DevOrg, org: OrgClient
) -> None:
    org.select_cdc("Account")
    proc = subprocess.Popen(
        ["node", str(ROOT / "tests/js/jsforce_stream.js"), dev.url, org.token,
         "/data/AccountChangeEvent", "-1", "2"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    lines = Lines(proc.stdout)
    try:
        assert lines.wait(1)[0] == {"subscribed": True}
        account = org.create("Account", {"Name": "Interop", "Website": "interop.example"})
        org.update("Account", account, {"Website": "www.interop.example"})
        created, updated = lines.wait(3)[1:]
        assert created["payload"]["ChangeEventHeader"]["changeType"] == "CREATE"
        assert created["payload"]["Website"] == "interop.example"
        assert isinstance(created["event"]["replayId"], int)
        assert updated["payload"]["ChangeEventHeader"]["recordIds"] == [account]
        assert "Website" in updated["payload"]["ChangeEventHeader"]["changedFields"]
        assert updated["schema"]
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()


def test_limits_count_change_events_delivered_against_the_platform_event_allocation(
        dev: DevOrg, org: OrgClient) -> None:
    org.select_cdc("Lead")
    bayeux = subscribed(dev, org, "/data/LeadChangeEvent", "/data/ChangeEvents")
    org.lead(1)
    assert len(events(bayeux, "/data/LeadChangeEvent", 1)) == 1
    assert len(events(bayeux, "/data/ChangeEvents", 1)) == 1
    limits = org.http.get(f"{dev.url}/services/data/v{API}/limits", headers=org.auth,
                          timeout=10).json()
    assert limits["DailyDeliveredPlatformEvents"] == {"Max": 25000, "Remaining": 24998}
