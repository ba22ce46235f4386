"""ilyd's Bayeux client against devorg's Streaming API, under every fault devorg injects,
while records are being created: the set of received record ids must be complete
(duplicates allowed, none lost)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import requests

from ilyd.devorg import DevOrg, OrgInfo
from ilyd.salesforce.auth import TokenProvider
from ilyd.salesforce.bayeux import BayeuxClient, BayeuxEvent, StreamStatus
from ilyd.salesforce.rest import RestClient
from tests.helpers.streaming import FAST_BACKOFF, connected
from tests.helpers.waiting import wait_until

# Recovering from devorg's injected faults while records are being created takes longer
# than the shared wait's usual 20 seconds.
RECOVERY = 30.0


class Streaming:
    """devorg's /_devorg/streaming/<org> controls and the generic fault rules."""

    def __init__(self, dev: DevOrg, org: OrgInfo) -> None:
        self.base = f"{dev.admin}/streaming/{org.name}"
        self.admin = dev.admin
        self.org = org

    def __call__(self, action: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.post(f"{self.base}/{action}", json=body or {}, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def fault(self, **spec: Any) -> None:
        response = requests.post(f"{self.admin}/faults", timeout=10, json={
            "org": self.org.name, "path_prefix": "/cometd/", **spec})
        assert response.status_code < 300, response.text


class Received:
    """Record ids seen by the event handler."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.count = 0
        self.lock = threading.Lock()
        self.statuses: list[StreamStatus] = []

    def __call__(self, events: Sequence[BayeuxEvent]) -> None:
        with self.lock:
            for event in events:
                self.count += 1
                self.ids.add(str(event.data["sobject"]["Id"]))


class Creator(threading.Thread):
    """Creates leads one after another until stopped."""

    def __init__(self, rest: RestClient) -> None:
        super().__init__(daemon=True)
        self.rest = rest
        self.created: list[str] = []
        self.failures: list[str] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopped.is_set():
            n += 1
            try:
                self.created.append(self.rest.create("Lead", {
                    "LastName": f"F{n}", "Company": "Faulty", "Email": f"f{n}@example.com"}))
            except Exception as exc:
                self.failures.append(repr(exc))
            self.stopped.wait(0.01)


@pytest.fixture
def streaming(dev: DevOrg, org: OrgInfo) -> Iterator[Streaming]:
    control = Streaming(dev, org)
    control("settings", {"hold_seconds": 1, "reconnect_deadline": 40})
    yield control
    requests.delete(f"{dev.admin}/faults", timeout=10)


@pytest.fixture
def topic(rest: RestClient) -> str:
    name = f"IlyF{int(time.time() * 1000) % 10**9}"
    rest.create("PushTopic", {"Name": name, "ApiVersion": 62.0, "NotifyForFields": "Referenced",
                              "Query": "SELECT Id, Email, Company FROM Lead"})
    return f"/topic/{name}"


def make_client(dev: DevOrg, tp: TokenProvider, topic: str, received: Received) -> BayeuxClient:
    return BayeuxClient(
        f"{dev.url}/cometd/62.0", channels=[topic], on_events=received,
        access_token=lambda: tp.token().access_token,
        refresh_token=lambda: tp.refresh(tp.token()).access_token,
        on_status=received.statuses.append, org="faults", backoff=FAST_BACKOFF,
    )


FAULTS: list[tuple[str, Callable[[Streaming], None]]] = [
    ("403 unknown client", lambda s: s("forget")),
    ("401 authentication invalid", lambda s: s("invalidate")),
    ("held polls dropped", lambda s: s("drop")),
    ("HTTP 503", lambda s: s.fault(kind="status", status=503, count=3)),
    ("connections dropped", lambda s: s.fault(kind="drop", count=2)),
    ("slow responses", lambda s: s.fault(kind="latency", delay=0.3, count=3)),
]


def test_every_fault_while_records_are_created_loses_no_record(
    dev: DevOrg, streaming: Streaming, topic: str, rest: RestClient,
    provider_for: Callable[..., TokenProvider],
) -> None:
    received = Received()
    client = make_client(dev, provider_for("refresh_token"), topic, received)
    client.start()
    creator = Creator(rest)
    try:
        wait_until(lambda: client.state == "connected", what="connected", timeout=RECOVERY)
        creator.start()
        for name, inject in FAULTS:
            inject(streaming)
            mark = len(creator.created)
            wait_until(lambda m=mark: any(i in received.ids for i in creator.created[m:]),
                       what=f"events again after: {name}", timeout=RECOVERY)
        creator.stopped.set()
        creator.join(30)
        created = set(creator.created)
        assert len(created) > 20
        wait_until(lambda: created <= received.ids,
                   what="every created lead to arrive", timeout=60)
        reasons = {s.reason for s in received.statuses}
        assert {"unknown_client", "auth"} <= reasons
    finally:
        creator.stopped.set()
        client.stop()


def test_a_client_restarted_from_stored_replay_ids_gets_what_it_missed(
    dev: DevOrg, streaming: Streaming, topic: str, rest: RestClient,
    provider_for: Callable[..., TokenProvider],
) -> None:
    tp = provider_for("refresh_token")
    first = Received()
    with connected(make_client(dev, tp, topic, first)) as client:
        rest.create("Lead", {"LastName": "A", "Company": "X"})
        wait_until(lambda: first.count == 1, what="the first event", timeout=RECOVERY)
        stored = client.cursor()

    missed = [rest.create("Lead", {"LastName": f"M{n}", "Company": "X"}) for n in range(3)]
    second = Received()
    again = BayeuxClient(
        f"{dev.url}/cometd/62.0", channels=[topic], on_events=second,
        access_token=lambda: tp.token().access_token, replay_ids=lambda: stored,
        org="faults", backoff=FAST_BACKOFF,
    )
    again.start()
    try:
        wait_until(lambda: set(missed) <= second.ids, what="the missed events", timeout=RECOVERY)
        assert second.count == 3
    finally:
        again.stop()


def test_a_filtered_channel_is_keyed_without_its_query_and_survives_a_rehandshake(
    dev: DevOrg, streaming: Streaming, topic: str, rest: RestClient,
    provider_for: Callable[..., TokenProvider],
) -> None:
    tp = provider_for("refresh_token")
    received = Received()
    filtered = f"{topic}?Company=Acme&Email='x@example.com'"
    client = make_client(dev, tp, filtered, received)
    with connected(client):
        acme = rest.create("Lead", {"LastName": "A", "Company": "Acme"})
        rest.create("Lead", {"LastName": "B", "Company": "Other"})
        by_email = rest.create("Lead", {"LastName": "C", "Company": "Other",
                                        "Email": "x@example.com"})
        wait_until(lambda: received.ids == {acme, by_email},
                   what="the two matching leads", timeout=RECOVERY)
        wait_until(lambda: topic in client.cursor(),
                   what="the cursor under the plain channel", timeout=RECOVERY)
        assert list(client.cursor()) == [topic]
        # Resubscribing after "Unknown client" sends the replay map keyed without the
        # query: devorg would refuse any other key with the replay-map error.
        streaming("forget")
        wait_until(lambda: any(s.reason == "unknown_client" for s in received.statuses),
                   what="the forget noticed", timeout=RECOVERY)
        later = rest.create("Lead", {"LastName": "D", "Company": "Acme"})
        wait_until(lambda: later in received.ids,
                   what="a matching lead after the re-handshake", timeout=RECOVERY)
        assert received.count == 3  # resumed from the cursor: nothing delivered twice
        assert not any(s.reason == "subscribe" for s in received.statuses)


def test_events_that_come_while_the_handler_stores_a_batch_arrive_in_one_reply(
    dev: DevOrg, streaming: Streaming, topic: str, rest: RestClient,
    provider_for: Callable[..., TokenProvider],
) -> None:
    received, busy, release = Received(), threading.Event(), threading.Event()
    batches: list[int] = []

    def slow_store(events: Sequence[BayeuxEvent]) -> None:
        batches.append(len(events))
        if len(batches) == 1:
            busy.set()
            release.wait(30)
        received(events)

    tp = provider_for("refresh_token")
    client = BayeuxClient(
        f"{dev.url}/cometd/62.0", channels=[topic], on_events=slow_store,
        access_token=lambda: tp.token().access_token,
        refresh_token=lambda: tp.refresh(tp.token()).access_token, org="gather",
        backoff=FAST_BACKOFF)
    client.start()
    try:
        wait_until(lambda: client.state == "connected", what="connected", timeout=RECOVERY)
        first = rest.create("Lead", {"LastName": "First", "Company": "Gather"})
        assert busy.wait(30)
        connects = streaming_connects(streaming)
        later = [rest.create("Lead", {"LastName": f"L{n}", "Company": "Gather"})
                 for n in range(5)]
        # While the first is being stored the client stays away from the server, so the
        # five wait there, not one exchange each.
        assert streaming_connects(streaming) == connects
        release.set()
        wait_until(lambda: {first, *later} <= received.ids, what="all six leads", timeout=RECOVERY)
        assert batches == [1, 5]
    finally:
        release.set()
        client.stop()


def streaming_connects(streaming: Streaming) -> int:
    """/meta/connect requests devorg has received from the org's clients."""
    status = requests.get(streaming.base, timeout=10).json()
    return sum(int(c["connects"]) for c in status["clients"])
