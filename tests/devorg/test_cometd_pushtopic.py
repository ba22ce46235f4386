"""PushTopic semantics: which changes notify under each NotifyForFields / NotifyForOperation
setting, the payload's fields, and Change Data Capture events from the same writes."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from ilyd.devorg import DevOrg
from tests.devorg.cometd_helpers import OrgClient, RawBayeux, streaming_fixtures

QUERY = "SELECT Id, Email FROM Lead WHERE Company != 'skip'"
_names = itertools.count(1)


# One devorg for the module: each test makes its own PushTopics and records.
dev, org = streaming_fixtures(hold_seconds=1, scope="module")


def retained(org: OrgClient, channel: str) -> int:
    return int(org.streaming()["channels"].get(channel, {}).get("retained", 0))


# (NotifyForFields, fields written by the update, whether the update notifies)
TABLE = [
    ("All", {"Title": "CEO"}, True),
    ("Referenced", {"Title": "CEO"}, False),
    ("Referenced", {"Email": "new@example.com"}, True),
    ("Referenced", {"Company": "Other"}, True),
    ("Select", {"Email": "new@example.com"}, True),
    ("Select", {"Company": "Other"}, False),
    ("Where", {"Email": "new@example.com"}, False),
    ("Where", {"Company": "Other"}, True),
    ("All", {"Company": "skip"}, False),  # no longer matches WHERE
    ("Referenced", {"Email": "x@example.com", "Company": "skip"}, False),
]


@pytest.mark.parametrize(("notify", "update", "expected"), TABLE)
def test_updates_notify_per_notify_for_fields(
    org: OrgClient, notify: str, update: dict[str, Any], expected: bool
) -> None:
    name = f"T{next(_names)}{notify}"[:25]
    org.push_topic(name, QUERY, notify)
    channel = f"/topic/{name}"
    lead = org.lead(1)
    assert retained(org, channel) == 1  # a matching create always notifies
    org.update("Lead", lead, update)
    assert retained(org, channel) == (2 if expected else 1)


def test_creates_that_do_not_match_where_do_not_notify(org: OrgClient) -> None:
    org.push_topic("TCreateWhere", QUERY, "All")
    org.lead(2, Company="skip")
    assert retained(org, "/topic/TCreateWhere") == 0


def test_operations_switched_off_do_not_notify(org: OrgClient) -> None:
    org.push_topic("TNoUpdate", QUERY, "All", NotifyForOperationUpdate=False,
                   NotifyForOperationDelete=True)
    lead = org.lead(3)
    org.update("Lead", lead, {"Email": "changed@example.com"})
    assert retained(org, "/topic/TNoUpdate") == 1
    org.delete("Lead", lead)
    assert retained(org, "/topic/TNoUpdate") == 2


def test_inactive_topics_are_not_channels(dev: DevOrg, org: OrgClient) -> None:
    org.push_topic("TInactive", QUERY, IsActive=False)
    bayeux = RawBayeux(dev, org.token)
    bayeux.handshake()
    assert "doesn't exist" in bayeux.subscribe("/topic/TInactive", -1)["error"]


def test_the_payload_holds_the_select_fields_and_cdc_carries_the_header(
    dev: DevOrg, org: OrgClient
) -> None:
    org.push_topic("TPayload", "SELECT Id, Email, Company FROM Lead", "Referenced")
    org.select_cdc("Lead")
    bayeux = RawBayeux(dev, org.token)
    bayeux.handshake()
    bayeux.connect()
    bayeux.subscribe("/topic/TPayload", -1)
    bayeux.subscribe("/data/LeadChangeEvent", -1)
    lead = org.lead(4, Title="CTO")
    org.update("Lead", lead, {"Email": "four@example.com"})
    messages: list[dict[str, Any]] = []
    while len([m for m in messages if "data" in m]) < 4:
        messages += bayeux.connect()
    topic = [m["data"] for m in messages if m["channel"] == "/topic/TPayload"]
    assert [t["event"]["type"] for t in topic] == ["created", "updated"]
    assert topic[1]["sobject"] == {"Id": lead, "Email": "four@example.com", "Company": "C4"}
    cdc = [m["data"]["payload"] for m in messages if m["channel"] == "/data/LeadChangeEvent"]
    header = cdc[1]["ChangeEventHeader"]
    assert [c["ChangeEventHeader"]["changeType"] for c in cdc] == ["CREATE", "UPDATE"]
    assert header["recordIds"] == [lead]
    assert header["entityName"] == "Lead"
    assert "Email" in header["changedFields"]
    assert header["commitUser"] == org.info.user_id
    assert isinstance(header["commitTimestamp"], int)
    assert cdc[1]["Email"] == "four@example.com"
    assert cdc[0]["Title"] == "CTO"
    assert "Id" not in cdc[0]


def test_push_topic_queries_salesforce_refuses_are_refused_at_create(org: OrgClient) -> None:
    import requests

    def create(name: str, query: str) -> requests.Response:
        return org.http.post(
            f"{org.dev.url}/services/data/v62.0/sobjects/PushTopic", headers=org.auth,
            json={"Name": name, "Query": query, "ApiVersion": 62.0}, timeout=10)

    long_query = "SELECT Id, Email FROM Lead WHERE Email != '" + "x" * 1300 + "'"
    assert create("TLong", long_query).status_code == 400
    refused = create("TLimit", "SELECT Id FROM Lead LIMIT 5")
    assert refused.status_code == 400
    assert refused.json()[0]["message"] == "'LIMIT' is not allowed"
    assert create("TName" + "x" * 25, "SELECT Id, Email FROM Lead").status_code == 400


def test_a_topic_is_silent_while_its_object_is_unreadable_and_notifies_again_after(
    dev: DevOrg, org: OrgClient
) -> None:
    # The topic's query binds as the org's user; what it may read is looked up again
    # whenever the org's permissions change, not kept from before.
    org.push_topic("TReadable", "SELECT Id, Email FROM Lead", "Referenced")
    channel = "/topic/TReadable"
    permissions = f"{dev.admin}/orgs/{org.info.name}/permissions"
    records = f"{dev.admin}/orgs/{org.info.name}/records/Lead"

    def create(n: int) -> None:
        response = org.http.post(records, json={"LastName": f"R{n}", "Company": f"R{n}"},
                                 timeout=10)
        assert response.status_code == 201, response.text

    create(1)
    assert retained(org, channel) == 1
    before = org.http.get(permissions, timeout=10).json()
    lead_before = before["objects"].get("Lead", {})
    revoke = {"system": {"PermissionsModifyAllData": False, "PermissionsViewAllData": False},
              "objects": {"Lead": {"PermissionsRead": False, "PermissionsViewAllRecords": False,
                                   "PermissionsModifyAllRecords": False}}}
    assert org.http.patch(permissions, json=revoke, timeout=10).status_code == 200
    try:
        create(2)
        assert retained(org, channel) == 1
    finally:
        restore = {"system": {k: before["system"][k] for k in revoke["system"]},
                   "objects": {"Lead": {k: lead_before.get(k, True)
                                        for k in revoke["objects"]["Lead"]}}}
        assert org.http.patch(permissions, json=restore, timeout=10).status_code == 200
    create(3)
    assert retained(org, channel) == 2
