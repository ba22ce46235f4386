"""ilyd's HTTP/1.1 exchange (`ilyd.salesforce.http11`) against the standard library, as
h11 tests itself: `http.server` answers on loopback, and every framing is read both by
http11 and by `http.client`, which must agree on status, headers, body and failure."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ilyd.salesforce import http11
from ilyd.salesforce.keepalive import KeepAliveConnection
from tests.helpers.serving import serving

_CHUNKED = (b"4;name=value\r\nwiki\r\n5 ; quoted=\"a;b\"\r\npedia\r\n"
            b"E\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\nX-Trailer: 1\r\n\r\n")


class _Handler(BaseHTTPRequestHandler):
    """Answers GET and HEAD /<case> with the framing the case names."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.ports.add(self.client_address[1])
        CASES[self.path.lstrip("/")](self)

    do_HEAD = do_GET  # noqa: N815 - http.server's name

    def reply(self, status: int, headers: list[tuple[str, str]], body: bytes = b"") -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _raw(data: bytes, *, close: bool = False) -> Callable[[_Handler], None]:
    def answer(handler: _Handler) -> None:
        handler.wfile.write(data)
        handler.close_connection = close
    return answer


CASES: dict[str, Callable[[_Handler], None]] = {
    "content-length": lambda h: h.reply(200, [("Content-Type", "application/json"),
                                              ("Content-Length", "11")], b'{"ok":true}'),
    "chunked": lambda h: h.reply(200, [("Transfer-Encoding", "chunked")], _CHUNKED),
    "close-delimited": _raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
                            b"all of it, to the end", close=True),
    "http10-close-delimited": _raw(b"HTTP/1.0 200 OK\r\n\r\nold style", close=True),
    "http10-keep-alive": _raw(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
                              b"Content-Length: 4\r\n\r\nkept"),
    "no-content": lambda h: h.reply(204, [("X-Id", "1")]),
    "not-modified": _raw(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n"
                         b"ETag: \"v1\"\r\n\r\n"),
    "head": lambda h: h.reply(200, [("Content-Length", "10")], b"0123456789"),
    "repeated-headers": lambda h: h.reply(200, [
        ("Set-Cookie", "BrowserId=a; Path=/"), ("X-Many", "one"),
        ("Set-Cookie", "BAYEUX_BROWSER=b; Path=/cometd"), ("X-Many", "two"),
        ("Content-Length", "0")]),
    "no-reason": _raw(b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"),
    # RFC 9112 section 2.2: a recipient MAY take a lone LF as a line's end; http.client
    # and h11 do, in the head and in chunk-size lines.
    "bare-lf": _raw(b"HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 2\n\nok"),
    "bare-lf-chunked": _raw(b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n"
                            b"2\nok\r\n0\n\n"),
    "cut-off-body": _raw(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", close=True),
    "cut-off-chunk": _raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"a\r\nshort", close=True),
    "closed-without-answer": _raw(b"", close=True),
    "oversized-head": _raw(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\n"
                           b"Content-Length: 0\r\n\r\n", close=True),
    "bad-status-line": _raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", close=True),
}

AGREE = ["content-length", "chunked", "close-delimited", "http10-close-delimited",
         "http10-keep-alive", "no-content", "not-modified", "repeated-headers", "no-reason",
         "bare-lf", "bare-lf-chunked"]
FAIL = ["cut-off-body", "cut-off-chunk", "closed-without-answer", "oversized-head",
        "bad-status-line"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.ports: set[int] = set()


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    with serving(_Server()) as srv:
        yield srv


def _port(server: _Server) -> int:
    return int(server.server_address[1])


def _ours(server: _Server, case: str, method: str = "GET") -> http11.Response:
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=5) as sock:
        http11.write_request(sock, method, f"/{case}", f"127.0.0.1:{_port(server)}",
                             headers={}, body=None)
        return http11.read_response(sock, method)


def _stdlib(server: _Server, case: str,
            method: str = "GET") -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", _port(server), timeout=5)
    try:
        conn.request(method, f"/{case}")
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def _seen(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # Date and Server come from http.server's clock and version, not from the case.
    return [(k.lower(), v) for k, v in headers if k.lower() not in ("date", "server")]


@pytest.mark.parametrize("case", AGREE)
def test_http11_reads_each_framing_as_http_client_does(server: _Server, case: str) -> None:
    ours = _ours(server, case)
    theirs, body = _stdlib(server, case)
    assert (ours.status, ours.reason, ours.body) == (theirs.status, theirs.reason, body)
    assert _seen(ours.headers) == _seen(theirs.getheaders())
    assert ours.will_close == theirs.will_close


def test_the_chunked_body_is_joined_and_its_trailers_are_consumed(server: _Server) -> None:
    assert _ours(server, "chunked").body == b"wikipedia in\r\n\r\nchunks."


def test_a_head_answer_has_no_body_whatever_its_content_length(server: _Server) -> None:
    ours = _ours(server, "head", "HEAD")
    theirs, body = _stdlib(server, "head", "HEAD")
    assert (ours.status, ours.body) == (theirs.status, body) == (200, b"")
    assert ours.header("Content-Length") == "10"
    assert not ours.will_close


@pytest.mark.parametrize("case", FAIL)
def test_http11_refuses_what_http_client_refuses_with_the_same_exception(
        server: _Server, case: str) -> None:
    with pytest.raises(http.client.HTTPException) as stdlib_error:
        _stdlib(server, case)
    with pytest.raises(http.client.HTTPException) as ours_error:
        _ours(server, case)
    assert type(ours_error.value) is type(stdlib_error.value)


def test_one_kept_connection_carries_every_framing_in_turn(server: _Server) -> None:
    # A body misread by a single byte would garble every answer after it.
    server.ports.clear()
    conn = KeepAliveConnection(f"http://127.0.0.1:{_port(server)}/")
    try:
        answers = [conn.request(method, f"/{case}", None, {}, 5, resend_stale=True)
                   for method, case in [("GET", "content-length"), ("GET", "chunked"),
                                        ("HEAD", "head"), ("GET", "no-content"),
                                        ("GET", "not-modified"), ("GET", "repeated-headers"),
                                        ("GET", "http10-keep-alive"),
                                        ("GET", "content-length")]]
    finally:
        conn.close()
    assert [(a.status, a.body) for a in answers] == [
        (200, b'{"ok":true}'), (200, b"wikipedia in\r\n\r\nchunks."), (200, b""),
        (204, b""), (304, b""), (200, b""), (200, b"kept"), (200, b'{"ok":true}')]
    assert len(server.ports) == 1
