"""The long poll's kept connection (http.client) against a real HTTP server on loopback."""

from __future__ import annotations

import http.client
import select
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ilyd.salesforce.keepalive import KeepAliveConnection
from tests.helpers.serving import serving
from tests.helpers.waiting import wait_until


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.cookies_seen: list[str | None] = []
        self.set_cookie: list[str] = []
        self.drop_after_reply = False
        self.hold = threading.Event()
        self.holding = threading.Event()
        self.connections: set[int] = set()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.cookies_seen.append(self.headers.get("Cookie"))
        self.server.connections.add(self.client_address[1])
        if body == b"hold":
            self.server.holding.set()
            self.server.hold.wait(30)
        reply = b'[{"channel": "/meta/connect", "successful": true}]'
        self.send_response(200)
        for cookie in self.server.set_cookie:
            self.send_header("Set-Cookie", cookie)
        self.server.set_cookie = []
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
        # Closing without saying so: the client finds out on its next POST.
        self.close_connection = self.server.drop_after_reply


@pytest.fixture
def server() -> Iterator[_Server]:
    with serving(_Server()) as srv:
        yield srv
        srv.hold.set()  # handlers held by a test return before the shutdown


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/cometd/62.0"


def test_cookies_set_by_the_server_are_sent_back_and_expired_ones_dropped(
        server: _Server) -> None:
    conn = KeepAliveConnection(_url(server))
    server.set_cookie = ["BAYEUX_BROWSER=abc123; Path=/cometd; Secure", "other=1"]
    status, body = conn.post(b"[]", {"Authorization": "Bearer t"}, 10)
    assert status == 200
    assert body.startswith(b"[")
    server.set_cookie = ["other=; Max-Age=0"]
    conn.post(b"[]", {}, 10)
    conn.post(b"[]", {}, 10)
    assert server.cookies_seen == [None, "BAYEUX_BROWSER=abc123; other=1",
                                   "BAYEUX_BROWSER=abc123"]
    conn.close()


def test_one_connection_carries_many_posts(server: _Server) -> None:
    conn = KeepAliveConnection(_url(server))
    for _ in range(5):
        conn.post(b"[]", {}, 10)
    assert len(server.connections) == 1
    conn.close()


def test_a_connection_the_server_closed_while_idle_is_replaced(server: _Server) -> None:
    conn = KeepAliveConnection(_url(server))
    server.drop_after_reply = True
    conn.post(b"[]", {}, 10)
    server.drop_after_reply = False
    status, _ = conn.post(b"[]", {}, 10)
    assert status == 200
    assert len(server.cookies_seen) == 2
    conn.close()


def test_abort_ends_a_held_post_and_the_connection_still_works_after(
        server: _Server) -> None:
    conn = KeepAliveConnection(_url(server))
    conn.post(b"[]", {}, 10)
    failures: list[BaseException] = []

    def held() -> None:
        try:
            conn.post(b"hold", {}, 60)
        except (OSError, http.client.HTTPException) as exc:
            failures.append(exc)

    thread = threading.Thread(target=held)
    thread.start()
    assert server.holding.wait(10)
    conn.abort()
    thread.join(30)
    assert not thread.is_alive()
    assert len(failures) == 1  # not retried on a new connection after the abort
    server.hold.set()
    status, _ = conn.post(b"[]", {}, 10)
    assert status == 200
    conn.close()


def test_a_request_sent_now_is_answered_when_read_later_from_the_socket_it_returned(
        server: _Server) -> None:
    conn = KeepAliveConnection(_url(server))
    sock = conn.send_post(b"hold", {}, 10)
    assert server.holding.wait(10)
    assert sock is conn.socket
    server.hold.set()
    readable, _, _ = select.select([sock], [], [], 10)
    assert readable == [sock]
    reply = conn.receive(10)
    assert reply is not None
    assert reply.status == 200
    assert reply.body.startswith(b"[")
    conn.close()


def test_a_kept_connection_closed_by_the_server_is_found_on_reading_and_sent_again(
        server: _Server) -> None:
    conn = KeepAliveConnection(_url(server))
    server.drop_after_reply = True  # after every reply
    conn.post(b"[]", {}, 10)
    wait_until(conn.stale, what="the server's close seen on the idle connection")
    # The write into the closed connection may still succeed: then the read finds the
    # close, and the request goes out again on a new connection (None: wait for it).
    conn.send_post(b"[]", {}, 10)
    reply = conn.receive(10)
    if reply is None:
        reply = conn.receive(10)
    assert reply is not None
    assert reply.status == 200
    assert len(server.cookies_seen) == 2  # the first POST and the one sent again
    conn.close()
