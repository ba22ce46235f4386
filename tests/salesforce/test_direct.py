"""DirectSession (plain requests on kept connections, the rest through requests) against
a real HTTP server on loopback."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from ilyd.salesforce.direct import DirectSession
from ilyd.salesforce.http import make_session
from ilyd.salesforce.response import HttpResponse
from tests.helpers.serving import serving
from tests.helpers.waiting import wait_until


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[dict[str, object]] = []
        self.ports: set[int] = set()
        self.close_after_reply = False
        self.gzip_replies = False
        self.stall = threading.Event()
        self.closed = 0

    def shutdown_request(self, request: object) -> None:
        super().shutdown_request(request)  # type: ignore[arg-type]
        self.closed += 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.ports.add(self.client_address[1])
        self.server.seen.append({"method": self.command, "line": self.requestline,
                                 "headers": dict(self.headers), "body": body})
        if self.path.startswith("/create-then-see"):
            self.send_response(303)
            self.send_header("Location", "/services/data/v62.0/sobjects/Account/001")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/moved"):
            self.send_response(307)
            self.send_header("Location", "/services/data/v62.0/limits")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/slow"):
            self.server.stall.wait(10)
        reply = json.dumps({"path": self.path, "method": self.command}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Sforce-Limit-Info", "api-usage=5/15000")
        if self.server.gzip_replies:
            reply = gzip.compress(reply)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
        # Closing without saying so: the client finds out when it next uses it.
        self.close_connection = self.server.close_after_reply

    do_GET = do_POST = do_PATCH = do_DELETE = _answer  # noqa: N815 - http.server's names


@pytest.fixture
def server() -> Iterator[_Server]:
    with serving(_Server()) as srv:
        yield srv
        srv.stall.set()  # handlers held by a test return before the shutdown


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[DirectSession]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    direct = DirectSession(make_session())
    yield direct
    direct.close()


def _base(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_a_json_patch_with_params_and_headers_arrives_as_requests_would_send_it(
        server: _Server, session: DirectSession) -> None:
    response = session.request("PATCH", f"{_base(server)}/services/data/v62.0/composite/sobjects",
                               params={"q": "SELECT Id FROM Account", "skip": None},
                               json={"allOrNone": False, "records": [{"Name": "Zoë"}]},
                               headers={"Authorization": "Bearer tok"}, timeout=10)
    assert isinstance(response, HttpResponse)
    assert response.status_code == 200
    assert response.headers["sforce-limit-info"] == "api-usage=5/15000"
    assert response.json()["path"] == (
        "/services/data/v62.0/composite/sobjects?q=SELECT+Id+FROM+Account")
    seen = server.seen[0]
    headers = seen["headers"]
    assert isinstance(headers, dict)
    assert headers["Authorization"] == "Bearer tok"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("ilyd/")
    assert json.loads(seen["body"]) == {"allOrNone": False,  # type: ignore[arg-type]
                                        "records": [{"Name": "Zoë"}]}


def test_many_calls_share_one_kept_connection(server: _Server, session: DirectSession) -> None:
    for n in range(5):
        assert session.request("GET", f"{_base(server)}/r/{n}", timeout=10).status_code == 200
    assert len(server.ports) == 1
    assert len(server.seen) == 5


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_connection_the_server_closed_while_idle_is_replaced_without_a_failure(
        server: _Server, session: DirectSession, method: str) -> None:
    # POST: the idle socket is looked at before use; PATCH: sent, found closed, resent.
    server.close_after_reply = True
    for n in range(3):
        response = session.request(method, f"{_base(server)}/create", json={}, timeout=10)
        assert response.status_code == 200
        wait_until(lambda n=n: server.closed > n, timeout=10,
                   what="the server to close the connection (now idle)")
    assert len(server.seen) == 3  # each call reached the server exactly once
    assert len(server.ports) == 3


def test_a_gzip_body_is_decoded(server: _Server, session: DirectSession) -> None:
    server.gzip_replies = True
    response = session.request("GET", f"{_base(server)}/zipped", timeout=10)
    assert response.json() == {"path": "/zipped", "method": "GET"}
    assert "gzip" in str(server.seen[0]["headers"]["Accept-Encoding"])  # type: ignore[index]


def test_a_redirect_is_followed_as_requests_follows_it(
        server: _Server, session: DirectSession) -> None:
    response = session.request("GET", f"{_base(server)}/moved", timeout=10)
    assert response.json()["path"] == "/services/data/v62.0/limits"


def test_a_post_answered_303_is_not_sent_again_and_the_redirect_is_a_get(
        server: _Server, session: DirectSession) -> None:
    response = session.request("POST", f"{_base(server)}/create-then-see", json={"a": 1},
                               headers={"Authorization": "Bearer tok"}, timeout=10)
    assert response.json() == {"path": "/services/data/v62.0/sobjects/Account/001",
                               "method": "GET"}
    assert [seen["method"] for seen in server.seen] == ["POST", "GET"]
    assert response.url == f"{_base(server)}/services/data/v62.0/sobjects/Account/001"


def test_a_streamed_request_goes_through_requests_and_streams(
        server: _Server, session: DirectSession) -> None:
    with pytest.raises(TypeError, match=r"use stream\(\)"):
        session.request("GET", f"{_base(server)}/big", stream=True, timeout=10)
    response = session.stream("GET", f"{_base(server)}/big", timeout=10)
    assert isinstance(response, requests.Response)
    assert b"".join(response.iter_content(4)) == b'{"path": "/big", "method": "GET"}'
    response.close()


def test_with_a_proxy_in_the_environment_the_call_goes_through_the_proxy(
        server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    # The loopback server plays the proxy: a proxied request line carries the full URL.
    monkeypatch.setenv("HTTP_PROXY", _base(server))
    monkeypatch.setenv("NO_PROXY", "")
    direct = DirectSession(make_session())
    try:
        target = "http://salesforce.invalid/services/data/v62.0/limits"
        assert direct.request("GET", target, timeout=10).status_code == 200
    finally:
        direct.close()
    assert server.seen[0]["line"] == f"GET {target} HTTP/1.1"


def test_concurrent_calls_each_get_a_connection_and_all_succeed(
        server: _Server, session: DirectSession) -> None:
    def call(n: int) -> int:
        return session.request("GET", f"{_base(server)}/c/{n}", timeout=10).json()["path"]

    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(call, range(40)))
    assert paths == [f"/c/{n}" for n in range(40)]
    assert 1 <= len(server.ports) <= 8


def test_a_refused_connection_and_a_read_timeout_raise_requests_exceptions(
        server: _Server, session: DirectSession) -> None:
    with pytest.raises(requests.exceptions.Timeout):
        session.request("GET", f"{_base(server)}/slow", timeout=0.2)
    server.stall.set()
    closed = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    port = closed.server_address[1]
    closed.server_close()
    with pytest.raises(requests.exceptions.ConnectionError):
        session.request("GET", f"http://127.0.0.1:{port}/", timeout=5)
