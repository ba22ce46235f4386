"""The shared Bayeux I/O loop: many clients' held polls on the hub's fixed threads, a stop
that does not wait out a held poll, and a TLS socket whose bytes are already decrypted.

devorg runs in a process of its own here, so that the threads counted are the clients'
alone (devorg holds each poll on a thread of its own)."""

from __future__ import annotations

import math
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from ilyd.salesforce.auth import make_token_provider
from ilyd.salesforce.bayeux import BayeuxClient, BayeuxEvent, StreamState
from ilyd.salesforce.bayeux_hub import HUB_THREADS, BayeuxHub, Handle, Wait
from ilyd.salesforce.rest import RestClient
from tests.helpers.devorg_process import DevorgProcess
from tests.helpers.streaming import FAST_BACKOFF
from tests.helpers.waiting import wait_until

CLIENTS = 50
TOPIC = "/topic/IlyHubLeads"


class Received:
    """The record ids one client handed over."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, events: Sequence[BayeuxEvent]) -> None:
        with self.lock:
            self.ids.update(str(e.data["sobject"]["Id"]) for e in events)


@dataclass
class Fleet:
    clients: list[BayeuxClient]
    received: list[Received]
    rest: RestClient
    threads_before: int
    threads_connected: int = 0


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """CLIENTS clients of one org, every one subscribed and holding a connect (devorg's
    default hold: 110 s), started after the threads were counted."""
    devorg = DevorgProcess(tmp_path_factory.mktemp("hub") / "devorg.json")
    org = devorg.start()["orgs"][0]  # type: ignore[index]
    try:
        tokens = make_token_provider(
            "password", login_url=org["login_url"], client_id=org["client_id"],
            client_secret=org["client_secret"], username=org["username"],
            password=org["password"], org=org["name"])
        rest = RestClient(org["name"], tokens, export_usage=False)
        rest.create("PushTopic", {"Name": TOPIC.rsplit("/", 1)[1], "ApiVersion": 62.0,
                                  "Query": "SELECT Id, Company FROM Lead"})
        before = threading.active_count()
        received = [Received() for _ in range(CLIENTS)]
        clients = [BayeuxClient(f"{org['instance_url']}/cometd/62.0", channels=[TOPIC],
                                on_events=r, access_token=lambda: tokens.token().access_token,
                                org=f"hub{n}", backoff=FAST_BACKOFF)
                   for n, r in enumerate(received)]
        for client in clients:
            client.start()
        fleet = Fleet(clients, received, rest, before)
        try:
            wait_until(lambda: all(c.state is StreamState.CONNECTED for c in clients),
                       what="every client connected", timeout=60)
            fleet.threads_connected = threading.active_count()
            yield fleet
        finally:
            for client in clients:
                client.stop(timeout=10)
            rest.close()
    finally:
        # Its data is thrown away: no need for an orderly shutdown.
        if devorg.process is not None:
            devorg.process.kill()
        devorg.stop()


def test_fifty_connected_clients_cost_no_more_threads_than_the_hubs_fixed_ones(
        fleet: Fleet) -> None:
    assert fleet.threads_connected - fleet.threads_before <= HUB_THREADS
    lead = fleet.rest.create("Lead", {"LastName": "Hub", "Company": "Fleet"})
    wait_until(lambda: all(lead in r.ids for r in fleet.received),
               what="the lead's event at every client", timeout=60)


def test_stopping_a_client_with_a_held_poll_ends_it_and_the_others_stay_connected(
        fleet: Fleet) -> None:
    stopped, others = fleet.clients[0], fleet.clients[1:]
    stopped.stop(timeout=10)
    assert not stopped.active  # ended, not given up on after the timeout
    assert stopped.state is StreamState.STOPPED
    lead = fleet.rest.create("Lead", {"LastName": "After", "Company": "Stop"})
    wait_until(lambda: all(lead in r.ids for r in fleet.received[1:]),
               what="the lead's event at every client still running", timeout=60)
    assert all(c.state is StreamState.CONNECTED for c in others)
    assert lead not in fleet.received[0].ids


class ReadTwice:
    """Waits on `sock` once, then reads what is there."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self.waited = False
        self.readable: bool | None = None
        self.data = b""
        self.done = threading.Event()

    def step(self, readable: bool) -> Wait | None:
        if not self.waited:
            self.waited = True
            return Wait(self.sock, time.monotonic() + 20)
        self.readable = readable
        if readable:
            self.data = self.sock.recv(4096)
        self.done.set()
        return None


def test_a_tls_socket_holding_decrypted_bytes_is_read_though_select_would_not_say_so(
        tmp_path: Path) -> None:
    from ilyd.devorg.tls import make_certificates

    server_context, ca_file = make_certificates("127.0.0.1", tmp_path)
    server_context.num_tickets = 0  # nothing after the handshake but the record below
    listener = socket.create_server(("127.0.0.1", 0))
    sent = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with server_context.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"x" * 100)  # one TLS record
            sent.set()
            tls.recv(1)  # until the client closes

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    context = ssl.create_default_context(cafile=str(ca_file))
    sock = context.wrap_socket(socket.create_connection(listener.getsockname()),
                               server_hostname="127.0.0.1")
    hub = BayeuxHub(workers=1)
    try:
        assert sock.recv(1) == b"x"  # the whole record is decrypted, one byte taken
        assert sock.pending() == 99
        reader = ReadTwice(sock)
        hub.start(reader)
        assert reader.done.wait(30)
        assert reader.readable is True
        assert reader.data == b"x" * 99
    finally:
        hub.close()
        sock.close()
        listener.close()
        server.join(10)


class SetUp:
    """Takes a setup slot, holds it over one timer wait, gives it back."""

    def __init__(self, hub: BayeuxHub, inside: list[int], lock: threading.Lock) -> None:
        self.hub = hub
        self.inside = inside
        self.lock = lock
        self.handle: Handle | None = None
        self.ready = threading.Event()
        self.entered = False
        self.done = threading.Event()

    def step(self, readable: bool) -> Wait | None:
        assert self.ready.wait(10)
        assert self.handle is not None
        if not self.entered:
            if not self.hub.setups.enter(self.handle):
                return Wait(None, math.inf)  # woken with a slot of its own
            self.entered = True
            with self.lock:
                self.inside[0] += 1
                self.inside[1] = max(self.inside[1], self.inside[0])
            return Wait(None, time.monotonic() + 0.05)
        with self.lock:
            self.inside[0] -= 1
        self.hub.setups.leave(self.handle)
        self.done.set()
        return None


def test_no_more_sessions_than_the_gates_slots_are_set_up_at_once_and_each_gets_its_turn(
) -> None:
    hub = BayeuxHub(workers=2, setups=2)
    inside, lock = [0, 0], threading.Lock()  # now, at most
    try:
        clients = [SetUp(hub, inside, lock) for _ in range(6)]
        for client in clients:
            client.handle = hub.start(client)
            client.ready.set()
        for client in clients:
            assert client.done.wait(30)
        assert inside == [0, 2]
    finally:
        hub.close()
