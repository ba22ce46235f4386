"""The kept connection's HTTP/1.1 exchange against a raw TCP server on loopback that
answers with canned bytes (framings http.client handles and Salesforce may use)."""

from __future__ import annotations

import gzip
import http.client
import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from ilyd.salesforce import http11
from ilyd.salesforce.direct import DirectSession
from ilyd.salesforce.keepalive import KeepAliveConnection


class _Canned:
    """Accepts connections; answers each request with the next canned reply; records the
    raw requests."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.replies: list[bytes] = []
        self.requests: list[bytes] = []
        self.close_after: set[int] = set()  # reply numbers after which to close
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(buf) < length:
                    buf += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + buf[:length])
                buf = buf[length:]
                number = len(self.requests) - 1
                conn.sendall(self.replies[number])
                if number in self.close_after:
                    return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def canned() -> Iterator[_Canned]:
    server = _Canned()
    yield server
    server.close()


def _conn(server: _Canned) -> KeepAliveConnection:
    return KeepAliveConnection(f"http://127.0.0.1:{server.port}/cometd/62.0")


def _get(conn: KeepAliveConnection, path: str = "/x") -> tuple[int, bytes]:
    reply = conn.request("GET", path, None, {"Accept": "*/*"}, 10, resend_stale=True)
    return reply.status, reply.body


def test_content_length_and_chunked_bodies_on_one_connection(canned: _Canned) -> None:
    canned.replies = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Trailer: yes\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
    ]
    conn = _conn(canned)
    assert _get(conn) == (200, b"hello")
    assert _get(conn) == (200, b"wikipedia")
    assert _get(conn) == (204, b"")
    assert len(canned.requests) == 3
    first = canned.requests[0].decode()
    assert first.startswith("GET /x HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{canned.port}\r\n" in first
    conn.close()


def test_an_interim_100_continue_is_skipped_and_folded_headers_joined(canned: _Canned) -> None:
    canned.replies = [b"HTTP/1.1 100 Continue\r\n\r\n"
                      b"HTTP/1.1 201 Created\r\nX-Long: a\r\n  b\r\nContent-Length: 2\r\n\r\nok"]
    conn = _conn(canned)
    reply = conn.request("POST", "/c", b"{}", {}, 10, resend_stale=False)
    assert (reply.status, reply.reason, reply.body) == (201, "Created", b"ok")
    assert ("X-Long", "a b") in reply.headers
    assert b"Content-Length: 2\r\n" in canned.requests[0]
    conn.close()


def test_a_body_framed_by_the_connections_end_and_gzip_are_read(canned: _Canned) -> None:
    zipped = gzip.compress(b'{"a": 1}')
    canned.replies = [b"HTTP/1.0 200 OK\r\nContent-Encoding: gzip\r\n\r\n" + zipped]
    canned.close_after = {0}
    conn = _conn(canned)
    assert _get(conn) == (200, b'{"a": 1}')
    conn.close()


def test_a_cut_off_body_and_a_bad_status_line_raise_http_client_errors(
        canned: _Canned) -> None:
    canned.replies = [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                      b"SMTP ready\r\n\r\n"]
    canned.close_after = {0, 1}
    conn = _conn(canned)
    with pytest.raises(http.client.IncompleteRead):
        _get(conn)
    with pytest.raises(http.client.BadStatusLine):
        _get(conn)


def test_a_server_that_closes_before_answering_is_a_remote_disconnect(canned: _Canned) -> None:
    canned.replies = [b""]
    canned.close_after = {0}
    conn = _conn(canned)
    with pytest.raises(http.client.RemoteDisconnected):
        conn.request("POST", "/c", b"{}", {}, 10, resend_stale=False)
    assert len(canned.requests) == 1  # a POST is not sent twice


def test_header_values_that_would_split_the_request_are_refused(canned: _Canned) -> None:
    canned.replies = [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]
    conn = _conn(canned)
    with pytest.raises(ValueError, match="invalid HTTP header"):
        conn.request("GET", "/x", None, {"X-Evil": "a\r\nInjected: 1"}, 10, resend_stale=True)
    with pytest.raises(ValueError, match="invalid request target"):
        conn.request("GET", "/x HTTP/1.1\r\nX: y", None, {}, 10, resend_stale=True)
    assert canned.requests == []


def test_a_large_body_arrives_whole() -> None:
    body = bytes(range(256)) * 40_000  # ~10 MB in many recv() calls
    left, right = socket.socketpair()
    sender = threading.Thread(target=left.sendall, args=(
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body,))
    sender.start()
    try:
        response = http11.read_response(right, "GET")
    finally:
        sender.join()
        left.close()
        right.close()
    assert response.body == body
    assert not response.will_close


def _direct(server: _Canned) -> tuple[DirectSession, str]:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: the bytes go to `server`
    session.headers.clear()
    session.headers["User-Agent"] = "ilyd-test"
    return DirectSession(session), f"http://127.0.0.1:{server.port}"


def test_a_bodyless_post_on_the_direct_path_sends_content_length_zero_exactly_once(
        canned: _Canned) -> None:
    # RFC 9112 section 6.3: a request whose Content-Length is repeated may be refused
    # (or its framing misread) by a proxy or load balancer on the way.
    canned.replies = [b"HTTP/1.1 204 No Content\r\n\r\n"] * 2
    direct, base = _direct(canned)
    try:
        direct.request("POST", f"{base}/services/oauth2/revoke", timeout=10)
        direct.request("PATCH", f"{base}/x", headers={"content-length": "0"}, timeout=10)
    finally:
        direct.close()
    host = f"127.0.0.1:{canned.port}"
    assert canned.requests == [
        (f"POST /services/oauth2/revoke HTTP/1.1\r\nHost: {host}\r\n"
         "User-Agent: ilyd-test\r\nAccept-Encoding: gzip, deflate\r\n"
         "Content-Length: 0\r\n\r\n").encode(),
        (f"PATCH /x HTTP/1.1\r\nHost: {host}\r\n"
         "User-Agent: ilyd-test\r\nAccept-Encoding: gzip, deflate\r\n"
         "Content-Length: 0\r\n\r\n").encode(),
    ]


def test_a_bodyless_get_sends_no_content_length_and_a_body_is_framed_once(
        canned: _Canned) -> None:
    canned.replies = [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"] * 2
    conn = _conn(canned)
    conn.request("GET", "/x", None, {}, 10, resend_stale=True)
    conn.request("POST", "/y", b"{}", {"Content-Length": "2"}, 10, resend_stale=False)
    conn.close()
    host = f"127.0.0.1:{canned.port}"
    assert canned.requests == [
        f"GET /x HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(),
        f"POST /y HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2\r\n\r\n{{}}".encode(),
    ]
