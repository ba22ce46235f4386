"""ilyd's HTTP/1.1 response reader against `http.client` on generated answers: any status
line, headers (repeated, in any case), framing (Content-Length, chunked with extensions
and trailers, the connection's end), CRLF or lone-LF line ends, GET or HEAD — both
readers must see the same status, reason, headers, body and keep-alive verdict."""

from __future__ import annotations

import http.client
import socket

from hypothesis import given
from hypothesis import strategies as st

from ilyd.salesforce import http11
from tests.fuzz.settings import PURE

_NAMES = st.sampled_from(["Content-Type", "Set-Cookie", "set-cookie", "Sforce-Limit-Info",
                          "X-Many", "x-many", "Vary", "ETag"])
# Field values as servers send them: visible ASCII, inner spaces, none at the ends.
_VALUES = st.from_regex(r"([!-~]([ !-~]{0,24}[!-~])?)?", fullmatch=True)


@st.composite
def answers(draw: st.DrawFn) -> tuple[bytes, str]:
    """One response's bytes and the method it answers."""
    method = draw(st.sampled_from(["GET", "POST", "HEAD"]))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0"]))
    status, reason = draw(st.sampled_from([
        (200, "OK"), (201, "Created"), (204, "No Content"), (304, "Not Modified"),
        (400, "Bad Request"), (401, "Unauthorized"), (503, "Service Unavailable"), (200, "")]))
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    headers = draw(st.lists(st.tuples(_NAMES, _VALUES), max_size=6))
    connection = draw(st.sampled_from([None, "close", "keep-alive"]))
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    body = draw(st.binary(max_size=300))
    if connection:
        headers.append(("Connection", connection))
    no_body = method == "HEAD" or status in (204, 304)
    # RFC 9110 sections 8.6 and 6.1: no Content-Length or Transfer-Encoding on a 204,
    # no Transfer-Encoding on a 304 (http.client would read a chunked body after them).
    if status == 204 or (status == 304 and framing == "chunked"):
        framing = "close" if status == 204 else "length"
    if framing == "length":
        headers.append(("Content-Length", str(len(body))))
    elif framing == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
    head = (f"{version} {status}" + (f" {reason}" if reason else "")).encode()
    raw = head + eol + b"".join(f"{k}: {v}".encode() + eol for k, v in headers) + eol
    if no_body:
        return raw, method
    if framing != "chunked":
        return raw + body, method
    sizes = draw(st.lists(st.integers(1, 64), max_size=8))
    rest = body
    for size in sizes:
        piece, rest = rest[:size], rest[size:]
        if piece:
            extension = draw(st.sampled_from([b"", b";name=value", b' ; q="a;b"']))
            raw += b"%x%s%s%s\r\n" % (len(piece), extension, eol, piece)
    if rest:
        raw += b"%x%s%s\r\n" % (len(rest), eol, rest)
    trailers = draw(st.lists(st.tuples(_NAMES, _VALUES), max_size=2))
    return raw + b"0" + eol + b"".join(f"{k}: {v}".encode() + eol for k, v in trailers) + eol, \
        method


def _socket_with(data: bytes) -> socket.socket:
    left, right = socket.socketpair()
    with left:
        left.sendall(data)
        left.shutdown(socket.SHUT_WR)
    right.settimeout(5)  # a reader that waits for more than was sent fails, not hangs
    return right


@PURE
@given(answers())
def test_http11_reads_any_answer_as_http_client_reads_it(answer: tuple[bytes, str]) -> None:
    raw, method = answer
    with _socket_with(raw) as sock:
        theirs = http.client.HTTPResponse(sock, method=method)
        theirs.begin()
        expected = (theirs.status, theirs.reason, theirs.getheaders(), theirs.read(),
                    theirs.will_close)
    with _socket_with(raw) as sock:
        ours = http11.read_response(sock, method)
    assert (ours.status, ours.reason, ours.headers, ours.body, ours.will_close) == expected
