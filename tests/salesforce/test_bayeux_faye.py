"""ilyd's Bayeux client against a real Faye server (npm `faye`), long polling and WebSocket.

Faye is a generic Bayeux peer, not a Salesforce emulator: its "Unknown client" is
`401::Unknown client` and its advice differs, which is exactly what these tests check
the client copes with.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import requests

from ilyd import metrics
from ilyd.salesforce.bayeux import (
    BackoffPolicy,
    BayeuxClient,
    BayeuxEvent,
    ReplayGap,
    StreamState,
    StreamStatus,
)
from tests.helpers import ROOT
from tests.helpers.serving import serving
from tests.helpers.streaming import connected
from tests.helpers.waiting import wait_until

CHANNEL = "/topic/IlyLeads"
FAST = BackoffPolicy(base=0.05, cap=0.2, long=0.3)


class Faye:
    """A faye server in a node subprocess, with its /control/ API."""

    def __init__(self, hold_seconds: int = 1) -> None:
        self.proc = subprocess.Popen(
            ["node", str(ROOT / "tests/js/faye_server.js"), str(hold_seconds)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )
        assert self.proc.stdout is not None
        self.port = json.loads(self.proc.stdout.readline())["port"]
        self.base = f"http://127.0.0.1:{self.port}"
        self.endpoint = f"{self.base}/cometd/59.0"

    def control(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(f"{self.base}/control/{path}", json=body or {}, timeout=10)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        return self.control("stats")

    def publish(self, replay_id: int, record_id: str) -> None:
        self.control("publish", {"channel": CHANNEL, "data": {
            "event": {"replayId": replay_id, "type": "created",
                      "createdDate": "2024-05-01T12:00:00.000Z"},
            "sobject": {"Id": record_id, "Email": f"{record_id}@example.com"},
        }})

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


class Recorder:
    """Collects what the client hands over, and on which thread."""

    def __init__(self) -> None:
        self.events: list[BayeuxEvent] = []
        self.threads: set[str] = set()
        self.statuses: list[StreamStatus] = []
        self.tokens = ["token-1"]
        self.refreshes = 0

    def on_events(self, events: Sequence[BayeuxEvent]) -> None:
        self.threads.add(threading.current_thread().name)
        self.events.extend(events)

    def on_status(self, status: StreamStatus) -> None:
        self.statuses.append(status)

    def token(self) -> str:
        return self.tokens[-1]

    def refresh(self) -> str:
        self.refreshes += 1
        self.tokens.append(f"token-{len(self.tokens) + 1}")
        return self.tokens[-1]

    def ids(self) -> set[str]:
        return {e.data["sobject"]["Id"] for e in self.events}


@pytest.fixture
def faye() -> Iterator[Faye]:
    server = Faye()
    yield server
    server.close()


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def make_client(faye: Faye, rec: Recorder, *, websocket: bool = False) -> BayeuxClient:
    return BayeuxClient(
        faye.endpoint, channels=[CHANNEL], on_events=rec.on_events, access_token=rec.token,
        refresh_token=rec.refresh, on_status=rec.on_status, org="faye", backoff=FAST,
        allow_websocket=websocket, timeout_margin=5.0,
    )


@pytest.fixture(params=["long-polling", "websocket"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_published_events_reach_the_handler_on_the_shared_loops_worker_threads(
    faye: Faye, rec: Recorder, transport: str
) -> None:
    client = make_client(faye, rec, websocket=transport == "websocket")
    with connected(client):
        wait_until(lambda: faye.stats()["subscribes"], what="subscribed")
        for n in range(1, 6):
            faye.publish(n, f"00Q{n}")
        wait_until(lambda: len(rec.events) >= 5, what="five events")
        assert client.transport_name == transport
        assert faye.stats()["connects"].get(transport, 0) >= 1
        assert rec.ids() == {f"00Q{n}" for n in range(1, 6)}
        assert all(name.startswith("bayeux-worker-") for name in rec.threads)
        # Held polls wait on their socket in the shared loop, not on a thread of their own.
        assert not [t for t in threading.enumerate() if t.name.startswith("bayeux-held-")]
        wait_until(lambda: client.cursor() == {CHANNEL: 5}, what="cursor at replay id 5")
        assert faye.stats()["tokens"] == ["Bearer token-1"]


def test_fayes_unknown_client_is_followed_by_handshake_and_resubscribe_from_the_cursor(
    faye: Faye, rec: Recorder, transport: str
) -> None:
    before = metrics.STREAMING_HANDSHAKES.labels(reason="unknown_client")._value.get()
    client = make_client(faye, rec, websocket=transport == "websocket")
    client.start()
    try:
        wait_until(lambda: faye.stats()["subscribes"], what="subscribed")
        for n in range(1, 4):
            faye.publish(n, f"00Q{n}")
        wait_until(lambda: client.cursor() == {CHANNEL: 3}, what="three events processed")
        assert faye.control("forget")["forgotten"] == 1
        wait_until(lambda: len(faye.stats()["subscribes"]) == 2, what="a second subscribe")
        second = faye.stats()["subscribes"][1]
        assert second["ext"] == {"replay": {CHANNEL: 3}}
        assert faye.stats()["handshakes"] == 2
        wait_until(lambda: client.state is StreamState.CONNECTED, what="connected again")
        faye.publish(4, "00Q4")
        wait_until(lambda: "00Q4" in rec.ids(), what="the event after the re-handshake")
        after = metrics.STREAMING_HANDSHAKES.labels(reason="unknown_client")._value.get()
        if transport == "long-polling":
            # the next connect is answered with Faye's own `401::Unknown client`
            assert any(s.reason == "unknown_client" for s in rec.statuses)
            assert after == before + 1
        else:
            # over WebSocket Faye closes the socket of a forgotten client instead
            assert any(s.reason in ("unknown_client", "network") for s in rec.statuses)
    finally:
        client.stop()


def test_authentication_invalid_refreshes_the_token_once_and_reconnects(
    faye: Faye, rec: Recorder
) -> None:
    client = make_client(faye, rec)
    with connected(client):
        faye.control("reject-auth", {"count": 1})
        wait_until(lambda: "Bearer token-2" in faye.stats()["tokens"],
                   what="the refreshed token used")
        wait_until(lambda: faye.stats()["handshakes"] == 2, what="a new handshake")
        wait_until(lambda: client.state is StreamState.CONNECTED, what="connected again")
        faye.publish(1, "00Q1")
        wait_until(lambda: rec.ids() == {"00Q1"}, what="an event after the refresh")
        assert rec.refreshes == 1


def test_authentication_failing_after_a_refresh_backs_off_without_refreshing_again(
    faye: Faye, rec: Recorder
) -> None:
    client = make_client(faye, rec)
    with connected(client):
        faye.control("reject-auth", {"count": 1000})
        wait_until(
            lambda: sum(s.state is StreamState.BACKOFF and s.reason == "auth"
                        for s in rec.statuses) >= 2,
            what="two auth backoffs",
        )
        assert rec.refreshes == 1


def test_a_rejected_replay_id_resubscribes_with_minus_two_and_reports_the_gap(
    faye: Faye, rec: Recorder
) -> None:
    faye.control("retain-from", {"replayId": 100})
    gaps: list[ReplayGap] = []
    before = metrics.REPLAY_FALLBACKS.labels(org="faye")._value.get()
    client = BayeuxClient(
        faye.endpoint, channels=[CHANNEL], on_events=rec.on_events, access_token=rec.token,
        replay_ids=lambda: {CHANNEL: 42}, on_gap=gaps.append, org="faye", backoff=FAST,
    )
    with connected(client):
        exts = [s["ext"] for s in faye.stats()["subscribes"]]
        assert exts == [{"replay": {CHANNEL: 42}}, {"replay": {CHANNEL: -2}}]
        assert [(g.channel, g.rejected) for g in gaps] == [(CHANNEL, 42)]
        assert "you provided was invalid" in gaps[0].detail
        assert metrics.REPLAY_FALLBACKS.labels(org="faye")._value.get() == before + 1


def test_an_unreachable_server_gives_network_backoff_states(rec: Recorder) -> None:
    with socket_closed_port() as port:
        client = BayeuxClient(
            f"http://127.0.0.1:{port}/cometd/59.0", channels=[CHANNEL],
            on_events=rec.on_events, access_token=rec.token, on_status=rec.on_status,
            org="nowhere", backoff=FAST,
        )
        client.start()
        try:
            wait_until(
                lambda: sum(s.reason == "network" for s in rec.statuses) >= 3,
                what="network backoffs",
            )
            delays = [s.retry_in for s in rec.statuses if s.reason == "network"]
            assert all(d is not None and 0 < d <= FAST.cap for d in delays)
            assert all(s.state is StreamState.BACKOFF for s in rec.statuses
                       if s.reason == "network")
        finally:
            client.stop()


def test_stop_interrupts_a_held_long_poll(rec: Recorder) -> None:
    server = Faye(hold_seconds=120)
    try:
        client = make_client(server, rec)
        client.start()
        wait_until(lambda: server.stats()["connects"].get("long-polling", 0) >= 1,
                   what="a held poll")
        client.stop(timeout=10)
        assert client.state is StreamState.STOPPED
        assert not client.active  # stopped, not given up on after the timeout
    finally:
        server.close()


class socket_closed_port:  # noqa: N801 - used as a context manager
    """A loopback port nobody listens on (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        sock.close()
        return self.port

    def __exit__(self, *exc: object) -> None:
        return None


def test_change_data_capture_events_from_a_real_bayeux_server_are_triaged_like_salesforces(
        faye: Faye, rec: Recorder) -> None:
    from ilyd.pipeline.cdc import triage

    channel = "/data/AccountChangeEvent"
    client = BayeuxClient(faye.endpoint, channels=[channel], on_events=rec.on_events,
                          access_token=rec.token, refresh_token=rec.refresh, org="faye",
                          backoff=FAST, timeout_margin=5.0)

    def change(replay_id: int, change_type: str, origin: str, **fields: object) -> None:
        # The shape of the Change Data Capture Developer Guide's event message.
        faye.control("publish", {"channel": channel, "data": {
            "schema": "IeRuaY6cbI_HsV8Rv1Mc5g", "event": {"replayId": replay_id},
            "payload": {"ChangeEventHeader": {
                "entityName": "Account", "recordIds": [f"001{replay_id:012d}AAA"],
                "changeType": change_type, "changeOrigin": origin,
                "transactionKey": f"tx-{replay_id}", "sequenceNumber": 1,
                "commitTimestamp": 1733572800000, "commitNumber": replay_id,
                "commitUser": "005000000000001AAA", "changedFields": list(fields),
                "diffFields": [], "nulledFields": []}, **fields}}})

    with connected(client):
        wait_until(lambda: faye.stats()["subscribes"], what="subscribed")
        change(1, "CREATE", "com/salesforce/api/soap/68.0;client=SfdcInternalAPI/",
               Name="Acme", Website="https://acme.example")
        change(2, "UPDATE", "com/salesforce/api/rest/68.0;client=ilyd",
               Ily_Domain__c="acme.example")
        change(3, "UPDATE", "com/salesforce/api/rest/68.0;client=other", Phone="555")
        change(4, "UPDATE", "", Website="https://globex.test")
        wait_until(lambda: len(rec.events) >= 4, what="four change events")
        wait_until(lambda: client.cursor() == {channel: 4}, what="cursor at replay id 4")
    batch = triage([e.data["payload"] for e in rec.events], "ilyd", ["Account"])
    assert [(e.record_id, e.change_type, e.fields.get("Website")) for e in batch.entries] == [
        ("001000000000001AAA", "created", "https://acme.example")]
    # An update carries only what changed: the other inputs are read, batched.
    assert [(e.record_id, e.fields.get("Website")) for e in batch.partial] == [
        ("001000000000004AAA", "https://globex.test")]
    assert batch.skipped == {"own_write": 1, "no_input_change": 1}


def test_no_batch_reaches_the_handler_once_stop_has_returned(faye: Faye, rec: Recorder) -> None:
    busy, release = threading.Event(), threading.Event()
    calls: list[list[str]] = []

    def slow(events: Sequence[BayeuxEvent]) -> None:
        calls.append([e.data["sobject"]["Id"] for e in events])
        busy.set()
        release.wait(30)

    client = BayeuxClient(faye.endpoint, channels=[CHANNEL], on_events=slow,
                          access_token=rec.token, org="faye", backoff=FAST, timeout_margin=5.0)
    client.start()
    try:
        wait_until(lambda: faye.stats()["subscribes"], what="subscribed")
        faye.publish(1, "00Q1")
        assert busy.wait(30)
        faye.publish(2, "00Q2")
        client.stop(timeout=0.2)  # the handler holds on: stop does not wait for it
        assert client.state is StreamState.STOPPED
    finally:
        release.set()
    wait_until(lambda: not client.active, what="the handler's step to end")
    assert calls == [["00Q1"]]


class _Proxy(http.server.BaseHTTPRequestHandler):
    """A forward HTTP proxy for plain http:// targets: the request line names the URL."""

    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.forwarded.append(self.path)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "proxy-connection", "connection")}
        with requests.Session() as session:
            session.trust_env = False  # the test's proxy variables name this very proxy
            upstream = session.post(self.path, data=body, headers=headers, timeout=60)
        self.send_response(upstream.status_code)
        self.send_header("Content-Type", upstream.headers.get("Content-Type", "text/plain"))
        self.send_header("Content-Length", str(len(upstream.content)))
        self.end_headers()
        self.wfile.write(upstream.content)


class _ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Proxy)
        self.forwarded: list[str] = []

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a held poll whose client stopped: nobody to answer any more


def test_through_a_proxy_the_stream_goes_on_with_its_held_poll_on_a_thread_of_its_own(
        faye: Faye, rec: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    with serving(_ProxyServer()) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = make_client(faye, rec)
        with connected(client):
            faye.publish(1, "00Q1")
            wait_until(lambda: rec.ids() == {"00Q1"}, what="an event through the proxy")
            assert any(t.name == "bayeux-held-faye" for t in threading.enumerate())
            assert all(name.startswith("bayeux-worker-") for name in rec.threads)
        assert client.state is StreamState.STOPPED
        assert faye.endpoint in proxy.forwarded  # (so went the test's control calls)


def test_run_returns_once_the_client_is_stopped_in_a_backoff_wait(rec: Recorder) -> None:
    with socket_closed_port() as port:
        client = BayeuxClient(
            f"http://127.0.0.1:{port}/cometd/59.0", channels=[CHANNEL],
            on_events=rec.on_events, access_token=rec.token, on_status=rec.on_status,
            org="nowhere", backoff=BackoffPolicy(base=60, cap=120, long=120))
        runner = threading.Thread(target=client.run, daemon=True)
        runner.start()
        wait_until(lambda: any(s.reason == "network" for s in rec.statuses),
                   what="a long backoff")
        client.stop(timeout=10)
        wait_until(lambda: not runner.is_alive(), what="run() to return")
