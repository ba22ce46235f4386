"""devorg's /cometd endpoint speaks Salesforce's Bayeux: shapes, errors, replay, limits."""

from __future__ import annotations

import threading
import time
from typing import Any

from ilyd.devorg import DevOrg
from tests.devorg.cometd_helpers import API, OrgClient, RawBayeux, streaming_fixtures
from tests.helpers.waiting import wait_until

dev, org = streaming_fixtures(hold_seconds=2)


def test_handshake_answers_like_salesforce_and_sets_the_cookie(dev: DevOrg, org: OrgClient) -> None:
    bayeux = RawBayeux(dev, org.token)
    reply = bayeux.handshake()
    assert reply["successful"] is True
    assert reply["ext"] == {"replay": True, "payload.format": True}
    assert reply["supportedConnectionTypes"] == ["long-polling"]
    assert "BAYEUX_BROWSER" in bayeux.http.cookies


def post_raw(dev: DevOrg, org: OrgClient, path: str, body: bytes, **headers: str):
    import requests

    return requests.post(f"{dev.url}{path}", data=body, timeout=10,
                         headers={"Content-Type": "application/json", **org.auth, **headers})


def test_requests_without_authorization_get_401_request_requires_authentication(
    dev: DevOrg,
) -> None:
    import requests

    response = requests.post(f"{dev.url}/cometd/{API}", json=[{"channel": "/meta/handshake"}],
                             timeout=10)
    assert response.status_code == 401
    assert response.json()[0]["error"] == "401::Request requires authentication"


def test_old_or_missing_api_versions_bad_bodies_and_big_bodies_are_refused(
    dev: DevOrg, org: OrgClient
) -> None:
    old = post_raw(dev, org, "/cometd/36.0", b"[]")
    assert (old.status_code, old.text) == (
        400, "Unsupported API version. Only API versions '37.0' and later are supported.")
    missing = post_raw(dev, org, "/cometd/", b"[]")
    assert missing.status_code == 400
    assert missing.text.startswith("API version in the URI is mandatory")
    single = post_raw(dev, org, f"/cometd/{API}", b'{"channel": "/meta/handshake"}')
    assert single.status_code == 400
    big = post_raw(dev, org, f"/cometd/{API}", b"[" + b" " * 40_000 + b"]")
    assert (big.status_code, big.text) == (413, "Maximum Request Size Exceeded")


def test_an_invalid_token_is_a_denied_handshake_with_a_401_reason(dev: DevOrg) -> None:
    reply = RawBayeux(dev, "00Dnotatoken!xyz").handshake()
    assert reply["error"] == "403::Handshake denied"
    assert reply["ext"]["sfdc"]["failureReason"] == "401::Authentication invalid"
    assert reply["advice"] == {"reconnect": "none"}


def test_the_first_connect_returns_at_once_with_salesforce_advice(
    dev: DevOrg, org: OrgClient
) -> None:
    bayeux = RawBayeux(dev, org.token)
    bayeux.handshake()
    [reply] = bayeux.connect()
    assert reply["successful"] is True
    assert reply["advice"] == {"reconnect": "retry", "interval": 0, "timeout": 2000}


def test_a_session_without_the_bayeux_browser_cookie_is_refused(
    dev: DevOrg, org: OrgClient
) -> None:
    bayeux = RawBayeux(dev, org.token)
    bayeux.handshake()
    bayeux.http.cookies.clear()
    [reply] = bayeux.connect()
    assert reply["error"] == (f"400::Client {bayeux.client_id} has established a session, "
                              "but no BAYEUX_BROWSER cookie present")


def test_a_session_with_another_clients_bayeux_browser_cookie_is_refused(
    dev: DevOrg, org: OrgClient
) -> None:
    first, second = RawBayeux(dev, org.token), RawBayeux(dev, org.token)
    first.handshake()
    second.handshake()
    [ok] = first.connect()  # its own cookie opens its session
    assert ok["successful"] is True
    theirs = second.http.cookies["BAYEUX_BROWSER"]
    first.http.cookies.clear()
    first.http.cookies.set("BAYEUX_BROWSER", theirs, path="/cometd/")
    [reply] = first.connect()
    assert reply["error"] == (f"400::Client {first.client_id} has established a session, "
                              "but no BAYEUX_BROWSER cookie present")


def test_unknown_channels_and_mismatched_replay_maps_get_salesforce_errors(
    dev: DevOrg, org: OrgClient
) -> None:
    bayeux = RawBayeux(dev, org.token)
    bayeux.handshake()
    assert bayeux.subscribe("/topic/Nope")["error"] == (
        "400::The channel you requested to subscribe to doesn't exist {/topic/Nope}")
    org.push_topic("IlyLeads", "SELECT Id, Email FROM Lead")
    reply = bayeux.post({"channel": "/meta/subscribe", "clientId": bayeux.client_id,
                         "subscription": "/topic/IlyLeads",
                         "ext": {"replay": {"/topic/Other": -1}}}).json()[0]
    assert reply["error"] == (
        "400::The replayId for channel {/topic/IlyLeads} wasn't found using the provided replay"
        " ID map {{/topic/Other=-1}}. Ensure that the channel name you provided in the replay "
        "map is valid and matches the channel name used for subscribing.")
    assert bayeux.subscribe("/topic/IlyLeads", -1)["successful"] is True
    assert bayeux.subscribe("/data/LeadChangeEvent", -1)["successful"] is True


def subscribed_to_new_leads(dev: DevOrg, org: OrgClient, topic: str) -> RawBayeux:
    """A raw session past its first connect, subscribed with -1 to a new Lead PushTopic."""
    org.push_topic(topic, "SELECT Id, Email FROM Lead")
    bayeux = RawBayeux(dev, org.token)
    bayeux.handshake()
    bayeux.connect()
    assert bayeux.subscribe(f"/topic/{topic}", -1)["successful"] is True
    return bayeux


def test_events_are_delivered_in_the_connect_reply_and_replayable(
    dev: DevOrg, org: OrgClient
) -> None:
    bayeux = subscribed_to_new_leads(dev, org, "IlyLeads")
    lead_id = org.lead(1)
    messages = bayeux.connect()
    events = [m for m in messages if m["channel"] == "/topic/IlyLeads"]
    assert len(events) == 1
    event = events[0]["data"]
    assert event["event"]["type"] == "created"
    assert event["event"]["createdDate"].endswith("Z")
    assert event["sobject"] == {"Id": lead_id, "Email": "l1@example.com"}
    first = event["event"]["replayId"]
    org.lead(2)
    org.lead(3)

    later = RawBayeux(dev, org.token)
    later.handshake()
    later.subscribe("/topic/IlyLeads", first)
    replayed = [m["data"]["sobject"]["Email"] for m in later.connect() if "data" in m]
    assert replayed == ["l2@example.com", "l3@example.com"]

    every = RawBayeux(dev, org.token)
    every.handshake()
    every.subscribe("/topic/IlyLeads", -2)
    assert len([m for m in every.connect() if "data" in m]) == 3


def test_each_reply_tells_how_long_its_oldest_event_waited_for_the_clients_connect(
    dev: DevOrg, org: OrgClient
) -> None:
    bayeux = subscribed_to_new_leads(dev, org, "IlyWaits")

    def waits_since(before: dict[str, Any]) -> list[int]:
        after = org.streaming()["delivery"]
        assert after["replies"] == before["replies"] + 1
        return [a - b for a, b in zip(after["connect_wait"], before["connect_wait"],
                                      strict=True)]

    # No connect held when the event comes: it waits for the client's next one.
    before = org.streaming()["delivery"]
    org.lead(41)
    time.sleep(0.3)
    assert [m for m in bayeux.connect() if m["channel"] == "/topic/IlyWaits"]
    waited = waits_since(before)
    assert sum(waited) == 1
    bounds = before["bounds"]
    assert bounds[waited.index(1) - 1] >= 0.25  # its bucket starts past 0.25 s

    # A connect held when the event comes: the event waited for no connect.
    before = org.streaming()["delivery"]
    replies: list[list[dict[str, Any]]] = []
    held = threading.Thread(target=lambda: replies.append(bayeux.connect()))
    held.start()
    wait_until(lambda: any(c["polling"] for c in org.streaming()["clients"]
                           if c["client_id"] == bayeux.client_id), what="the connect held")
    org.lead(42)
    held.join(timeout=10)
    assert [m for m in replies[0] if m["channel"] == "/topic/IlyWaits"]
    assert waits_since(before)[0] == 1  # the first bucket: no wait


def test_a_replay_id_out_of_retention_gets_the_exact_invalid_text(
    dev: DevOrg, org: OrgClient
) -> None:
    org.push_topic("IlyLeads", "SELECT Id, Email FROM Lead")
    org.lead(1)
    replay = org.streaming()["channels"]["/topic/IlyLeads"]["last_replay_id"]
    assert org.streaming("expire-events", {"channel": "/topic/IlyLeads"})["expired"] == 1
    bayeux = RawBayeux(dev, org.token)
    bayeux.handshake()
    assert bayeux.subscribe("/topic/IlyLeads", replay)["error"] == (
        f"400::The replayId {{{replay}}} you provided was invalid.  Please provide a valid ID, "
        "-2 to replay all events, or -1 to replay only new events.")


def test_a_forgotten_client_gets_403_unknown_client_with_handshake_advice(
    dev: DevOrg, org: OrgClient
) -> None:
    bayeux = RawBayeux(dev, org.token)
    bayeux.handshake()
    bayeux.connect()
    assert org.streaming("forget")["forgotten"] == 1
    [reply] = bayeux.connect()
    assert reply["error"] == "403::Unknown client"
    assert reply["advice"] == {"reconnect": "handshake", "interval": 0}


def test_a_client_that_misses_the_reconnect_deadline_is_forgotten(
    dev: DevOrg, org: OrgClient
) -> None:
    org.streaming("settings", {"reconnect_deadline": 0.2})
    bayeux = RawBayeux(dev, org.token)
    bayeux.handshake()
    bayeux.connect()
    wait_until(lambda: org.streaming()["clients"] == [], what="the client to expire")
    assert bayeux.connect()[0]["error"] == "403::Unknown client"


def test_streaming_off_limits_and_expired_tokens_have_their_errors(
    dev: DevOrg, org: OrgClient
) -> None:
    org.streaming("settings", {"max_clients": 1})
    first = RawBayeux(dev, org.token)
    assert first.handshake()["successful"] is True
    denied = RawBayeux(dev, org.token).handshake()
    assert denied["ext"]["sfdc"]["failureReason"] == (
        "403::Organization concurrent user limit exceeded")

    org.streaming("settings", {"daily_event_limit": 0})
    first.connect()
    assert first.connect()[0]["error"] == "403::Organization total events daily limit exceeded"

    org.streaming("invalidate")
    response = first.post({"channel": "/meta/connect", "clientId": first.client_id,
                           "connectionType": "long-polling"})
    assert response.status_code == 401
    assert response.json()[0]["error"] == "401::Authentication invalid"

    import requests

    requests.patch(f"{dev.admin}/orgs/{org.info.name}/settings",
                   json={"streaming_enabled": False}, timeout=10).raise_for_status()
    off = RawBayeux(dev, org.login()).handshake()
    assert off["error"] == "403::Handshake denied"
    assert "not enabled" in off["ext"]["sfdc"]["failureReason"]
