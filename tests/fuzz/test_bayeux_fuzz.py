"""Malformed Bayeux replies: property tests of the message parsing, and ilyd's Bayeux
client against devorg's garble fault (the next /meta/connect answered with any bytes).
The client never crashes: it backs off with a reason and comes back for new events."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import requests
from hypothesis import example, given
from hypothesis import strategies as st

from ilyd.devorg import DevOrg, OrgInfo
from ilyd.salesforce.auth import make_token_provider
from ilyd.salesforce.bayeux import BayeuxClient, BayeuxEvent, StreamState, StreamStatus
from ilyd.salesforce.bayeux_messages import (
    FailureKind,
    classify,
    failure_text,
    is_event,
    split_replies,
)
from ilyd.salesforce.http import RetryPolicy
from ilyd.salesforce.rest import RestClient
from ilyd.salesforce.versions import DEFAULT_API_VERSION
from tests.fuzz.settings import NETWORK, PURE
from tests.helpers.devorg_process import devorg_fixture
from tests.helpers.streaming import FAST_BACKOFF
from tests.helpers.waiting import wait_until

scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
           | st.sampled_from(["²", "-", "1" * 5000, "/meta/connect", "403::Unknown client",
                              "401::Authentication invalid"]))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["channel", "data", "event", "replayId", "sobject", "Id", "error",
                         "ext", "sfdc", "failureReason", "successful", "advice", "timeout",
                         "interval", "reconnect", "id", "clientId", "payload", "x"]),
        inner, max_size=6),
    max_leaves=20,
)
# Durations in milliseconds; the huge ones are explicit examples (each costs a pause).
numbers = (st.integers(max_value=500) | st.floats(max_value=500) | st.sampled_from([0, -1])
           | st.text(max_size=5))
advice = st.fixed_dictionaries({}, optional={
    "reconnect": st.sampled_from(["retry", "handshake", "none", ""]) | json_values,
    "timeout": numbers, "interval": numbers})
connect_replies = st.fixed_dictionaries(
    {"channel": st.just("/meta/connect")},
    optional={"successful": st.booleans() | json_values, "advice": advice | json_values,
              "error": json_values, "clientId": json_values, "id": json_values,
              "ext": json_values})
events = st.fixed_dictionaries(
    {"channel": st.sampled_from(["/topic/IlyFuzz", "/topic/Other", "/data/LeadChangeEvent"])
     | json_values},
    optional={"data": st.fixed_dictionaries({}, optional={
        "event": st.fixed_dictionaries({}, optional={"replayId": numbers | json_values}),
        "sobject": json_values}) | json_values})
messages = st.lists(connect_replies | events | json_values, max_size=5)


@given(json_values)
@example({"channel": "/topic/X", "data": {"event": {"replayId": "²"}}})  # isdigit, not int
@example({"channel": "/topic/X", "data": {"event": {"replayId": "1" * 5000}}})
@PURE
def test_any_message_parses_to_an_event_or_a_classified_failure(message):
    if not isinstance(message, dict):
        message = {"data": message}
    event = BayeuxEvent.from_message(message)
    assert isinstance(event.channel, str)
    assert event.replay_id is None or type(event.replay_id) is int
    assert isinstance(is_event(message), bool)
    assert isinstance(classify(message), FailureKind)
    assert isinstance(failure_text(message), str)


@given(messages)
@PURE
def test_any_reply_array_splits_into_meta_replies_and_events(body):
    replies, delivered = split_replies(body)
    assert all(str(r.get("channel", "")).startswith("/meta/") for r in replies)
    assert all("data" in e for e in delivered)


TOPIC = "/topic/IlyFuzz"


class Listener:
    """The client's event handler and status sink: lead ids seen, statuses."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.statuses: list[StreamStatus] = []
        self.lock = threading.Lock()

    def __call__(self, events: Sequence[BayeuxEvent]) -> None:
        with self.lock:
            for event in events:
                sobject = event.data.get("sobject")
                if isinstance(sobject, dict) and isinstance(sobject.get("Id"), str):
                    self.ids.add(sobject["Id"])


dev = devorg_fixture(scope="module")


@pytest.fixture(scope="module")
def streaming_client(dev: DevOrg) -> Iterator[tuple[BayeuxClient, Listener, RestClient, Any]]:
    """A BayeuxClient subscribed to a Lead PushTopic, run on a thread of ours so that an
    exception escaping it is seen; and a RestClient to create leads with."""
    org: OrgInfo = dev.orgs[0]
    tokens = make_token_provider(
        "refresh_token", login_url=org.login_url, client_id=org.client_id,
        client_secret=org.client_secret, org=org.name, refresh_token=org.refresh_token,
        retry=RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05))
    rest = RestClient(org.name, tokens, retry=RetryPolicy(attempts=4, base_delay=0.01,
                                                          max_delay=0.05))
    rest.create("PushTopic", {"Name": TOPIC.rsplit("/", 1)[1], "ApiVersion": 62.0,
                              "NotifyForFields": "Referenced",
                              "Query": "SELECT Id, Company FROM Lead"})
    requests.patch(f"{dev.admin}/streaming/{org.name}/settings", json={"hold_seconds": 1},
                   timeout=10).raise_for_status()
    listener = Listener()
    client = BayeuxClient(
        f"{dev.url}/cometd/{DEFAULT_API_VERSION}", channels=[TOPIC], on_events=listener,
        access_token=lambda: tokens.token().access_token,
        refresh_token=lambda: tokens.refresh(tokens.token()).access_token,
        on_status=listener.statuses.append, org="fuzz", backoff=FAST_BACKOFF)
    crashed: list[BaseException] = []

    def run() -> None:
        try:
            client.run()
        except BaseException as exc:
            crashed.append(exc)
            raise

    thread = threading.Thread(target=run, name="bayeux-fuzz", daemon=True)
    thread.start()
    wait_until(lambda: client.state == StreamState.CONNECTED, what="the client to connect")
    yield client, listener, rest, (thread, crashed)
    client.stop()
    thread.join(10)
    rest.close()


def garbled_pending(dev: DevOrg) -> int:
    status = requests.get(f"{dev.admin}/streaming/{dev.orgs[0].name}", timeout=10).json()
    return int(status["garbled"])


def _is_bayeux(body: bytes) -> bool:
    """Whether `body` decodes to a message or an array of messages at all."""
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(decoded, dict | list)


bodies = st.one_of(
    messages.map(lambda m: json.dumps(m).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=100),
    st.just(b"<html><body>502 Bad Gateway</body></html>"),
    st.just(b"[" * 100_000),
)


@pytest.mark.slow
@given(bodies)
@example(json.dumps([{"channel": "/meta/connect", "successful": True,
                      "advice": {"interval": 1e308}}]).encode())
@example(json.dumps([{"channel": "/meta/connect", "successful": True,
                      "advice": {"timeout": 1e308}}]).encode())
@example(json.dumps([{"channel": "/meta/connect", "successful": True},
                     {"channel": TOPIC, "data": {"event": {"replayId": "²"}}}]).encode())
@example(b"[" * 100_000)  # nested past the JSON parser's recursion
@example(json.dumps([{"channel": "/meta/connect", "successful": True,
                      "x": "a" * (4 << 20)}]).encode())  # huge
@NETWORK
def test_a_garbled_connect_reply_never_crashes_the_client_and_it_comes_back(
        dev, streaming_client, body):
    _client, listener, rest, (thread, crashed) = streaming_client
    mark = len(listener.statuses)
    requests.post(f"{dev.admin}/streaming/{dev.orgs[0].name}/garble", data=body,
                  timeout=30).raise_for_status()
    wait_until(lambda: garbled_pending(dev) == 0 or not thread.is_alive(),
               what="the garbled reply to be taken")
    lead = rest.create("Lead", {"LastName": "Fuzz", "Company": f"F{time.monotonic_ns()}"})
    # An advised interval is obeyed up to a few seconds: a longer deadline than usual.
    wait_until(lambda: lead in listener.ids or not thread.is_alive(),
               what="the client to receive a new lead after the garbled reply", timeout=30)
    assert thread.is_alive(), f"the Bayeux client crashed: {crashed!r}"
    for status in listener.statuses[mark:]:
        if status.state in (StreamState.BACKOFF, StreamState.RECONNECTING):
            assert status.reason, status
            assert status.detail, status
    if not _is_bayeux(body):
        assert any(s.state is StreamState.BACKOFF and s.reason == "protocol"
                   for s in listener.statuses[mark:]), "a reply that is no Bayeux is backed off"
    # Start the next example from a fresh session (and the server's own advice).
    requests.post(f"{dev.admin}/streaming/{dev.orgs[0].name}/forget", json={},
                  timeout=10).raise_for_status()
