"""Filtered PushTopic subscriptions on devorg: `&` is an OR of field=value conditions over
the SELECT fields, events arrive on the filtered channel name, unknown fields and filters on
non-PushTopic channels are refused, and the replay-map key is the channel without its query
string."""

from __future__ import annotations

from typing import Any

from ilyd.devorg import DevOrg
from tests.devorg.cometd_helpers import OrgClient, RawBayeux, streaming_fixtures

QUERY = "SELECT Id, LastName, Company, Phone FROM Lead"
FILTERED = "/topic/IlyFiltered?Company=Acme&Phone=(415) 555-1212"


dev, org = streaming_fixtures(hold_seconds=1, topics={"IlyFiltered": QUERY})


def events(bayeux: RawBayeux) -> list[dict[str, Any]]:
    return [m for m in bayeux.connect() if "data" in m]


def session(dev: DevOrg, org: OrgClient) -> RawBayeux:
    bayeux = RawBayeux(dev, org.token)
    bayeux.handshake()
    bayeux.connect()  # the first connect returns at once with the advice
    return bayeux


def test_a_filter_delivers_records_matching_any_condition_on_the_filtered_channel(
    dev: DevOrg, org: OrgClient
) -> None:
    bayeux = session(dev, org)
    assert bayeux.subscribe(FILTERED, -1)["successful"] is True
    acme = org.lead(1, Company="Acme")
    phoned = org.lead(2, Company="Other", Phone="(415) 555-1212")
    org.lead(3, Company="Other", Phone="(415) 555-0000")
    org.lead(4, Company="acme")  # values compare exactly
    received = events(bayeux)
    assert [m["data"]["sobject"]["Id"] for m in received] == [acme, phoned]
    assert {m["channel"] for m in received} == {FILTERED}


def test_quoted_values_and_an_update_into_the_filter_are_matched(
    dev: DevOrg, org: OrgClient
) -> None:
    bayeux = session(dev, org)
    assert bayeux.subscribe("/topic/IlyFiltered?Company='Acme Corp'", -1)["successful"] is True
    lead = org.lead(1, Company="Other")
    org.update("Lead", lead, {"Company": "Acme Corp"})
    received = events(bayeux)
    assert [(m["data"]["event"]["type"], m["data"]["sobject"]["Company"]) for m in received] == [
        ("updated", "Acme Corp")]


def test_replay_through_a_filter_returns_only_matching_retained_events(
    dev: DevOrg, org: OrgClient
) -> None:
    org.lead(1, Company="Other")
    acme = org.lead(2, Company="Acme")
    bayeux = session(dev, org)
    assert bayeux.subscribe(FILTERED, -2)["successful"] is True
    assert [m["data"]["sobject"]["Id"] for m in events(bayeux)] == [acme]


def test_filtered_and_unfiltered_subscriptions_of_one_client_are_separate_channels(
    dev: DevOrg, org: OrgClient
) -> None:
    bayeux = session(dev, org)
    assert bayeux.subscribe(FILTERED, -1)["successful"] is True
    assert bayeux.subscribe("/topic/IlyFiltered", -1)["successful"] is True
    acme = org.lead(1, Company="Acme")
    other = org.lead(2, Company="Other")
    received = sorted((m["channel"], m["data"]["sobject"]["Id"]) for m in events(bayeux))
    assert received == sorted([(FILTERED, acme), ("/topic/IlyFiltered", acme),
                               ("/topic/IlyFiltered", other)])
    reply = bayeux.post({"channel": "/meta/unsubscribe", "clientId": bayeux.client_id,
                         "subscription": FILTERED}).json()[0]
    assert reply["successful"] is True
    again = org.lead(3, Company="Acme")
    assert [(m["channel"], m["data"]["sobject"]["Id"]) for m in events(bayeux)] == [
        ("/topic/IlyFiltered", again)]


def test_filter_fields_outside_the_select_are_refused(dev: DevOrg, org: OrgClient) -> None:
    bayeux = session(dev, org)
    reply = bayeux.subscribe("/topic/IlyFiltered?Company=Acme&Email=x@example.com&Title=CEO", -1)
    assert reply["successful"] is False
    assert reply["error"] == "400::Query fields {Email, Title} do not exist on the topic entity"
    # field names are not case-sensitive, as everywhere in Salesforce
    assert bayeux.subscribe("/topic/IlyFiltered?company=Acme", -1)["successful"] is True


def test_only_pushtopic_channels_take_a_filter(dev: DevOrg, org: OrgClient) -> None:
    bayeux = session(dev, org)
    reply = bayeux.subscribe("/data/LeadChangeEvent?Company=Acme", -1)
    assert reply["successful"] is False
    assert reply["error"] == ("400::The channel you requested to subscribe to doesn't exist "
                              "{/data/LeadChangeEvent?Company=Acme}")


def test_the_replay_map_key_of_a_filtered_subscription_is_the_channel_without_its_query(
    dev: DevOrg, org: OrgClient
) -> None:
    bayeux = session(dev, org)
    channel = "/topic/IlyFiltered?LastName='Smith'"
    reply = bayeux.post({"channel": "/meta/subscribe", "clientId": bayeux.client_id,
                         "subscription": channel, "ext": {"replay": {channel: -1}}}).json()[0]
    assert reply["error"] == (
        "400::The replayId for channel {/topic/IlyFiltered} wasn't found using the provided "
        "replay ID map {{/topic/IlyFiltered?LastName='Smith'=-1}}. Ensure that the channel name "
        "you provided in the replay map is valid and matches the channel name used for "
        "subscribing.")
    empty = bayeux.post({"channel": "/meta/subscribe", "clientId": bayeux.client_id,
                         "subscription": channel, "ext": {"replay": {}}}).json()[0]
    assert "provided replay ID map {{}}" in empty["error"]
    assert bayeux.subscribe(channel, -1)["successful"] is True  # keyed without the query
