"""The HTTP/1.1 exchange of `KeepAliveConnection`: one request written in one send, one
response read from a buffered socket.

`http.client` builds a request header by header and parses the response headers through
the `email` package; on the daemon's two per-event exchanges (the Bayeux long poll and
the Collections write) that is most of the connection's CPU. This module does only what
those exchanges need — a status line, headers, a body framed by Content-Length, chunked
transfer coding, or the connection's end — and raises `http.client`'s own exceptions,
so callers handle its failures as theirs.

Why not h11, the kept sans-I/O HTTP/1.1 library: on these two exchanges it costs about
four times this module's CPU, no less than `http.client` (`bench/http_exchange.py`, CPU
µs per exchange, 2-core VM, Python 3.11, h11 0.16):

    exchange / framing               this module    h11   http.client
    Collections PATCH, devorg's          17          73       76
    Collections PATCH, Salesforce's      22         102      107
    Bayeux connect POST, devorg's        17          74       75
    Bayeux connect POST, Salesforce's    22          96       95

Being hand-written, it is tested as h11 is, against the standard library: every framing
`http.server` serves must read as `http.client` reads it, and fail where it fails, with
the same exception (tests/salesforce/test_http11_stdlib.py), and so must generated
answers (tests/fuzz/test_http11_fuzz.py).
"""

from __future__ import annotations

import functools
import http.client
import re
import socket
from collections.abc import Mapping

__all__ = ["Response", "read_response", "write_request"]

_MAX_HEAD = 64 * 1024  # status line + headers; Salesforce's are a few hundred bytes
_MAX_LINE = 8 * 1024  # one chunk-size line
_NO_BODY = frozenset({204, 304})
# RFC 9112 section 2.2: a recipient MAY take a lone LF as a line's end (http.client and
# h11 do), so a head ends at the first empty line, CRLF or LF.
_BLANK_LINE = re.compile(rb"\n\r?\n")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class Response:
    """A response read whole: status, reason, headers (in order, repeats kept), body."""

    __slots__ = ("_index", "body", "headers", "reason", "status", "will_close")

    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]],
                 body: bytes, will_close: bool, *,
                 index: dict[str, list[str]] | None = None) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.will_close = will_close
        # Every value by lower-cased name, in order: each name is lowered once, not once
        # per lookup (a response's few lookups would lower every header again each time).
        self._index = _index_of(headers) if index is None else index

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        values = self._index.get(name.lower())
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        """Every value of header `name`, in order."""
        return list(self._index.get(name.lower(), ()))


def _index_of(headers: list[tuple[str, str]]) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for name, value in headers:
        key = name.lower()
        values = index.get(key)
        if values is None:
            index[key] = [value]
        else:
            values.append(value)
    return index


def write_request(sock: socket.socket, method: str, target: str, host: str, *,
                  headers: Mapping[str, str], body: bytes | None) -> None:
    """Send the request line, headers and body in one `sendall`.

    The body's framing is this function's alone: a Content-Length in `headers` is
    replaced by one computed from `body` (as requests does), sent once — a repeated
    Content-Length may be refused by a proxy or load balancer (RFC 9112 section 6.3) —
    and only for a body or a method that defines one (RFC 9110 section 8.6).
    Raises ValueError for a header name or value that would split the request (CR, LF).
    """
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        line = _header_line(name, value)
        if line:
            lines.append(line)
    if body is not None or method in _BODY_METHODS:
        lines.append(f"Content-Length: {len(body or b'')}")
    if "\r" in target or "\n" in target or " " in target:
        raise ValueError(f"invalid request target {target!r}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    sock.sendall(head + body if body else head)


# A client sends the same few headers (its agent, its token, the content type) on every
# request: each is checked and formatted once.
@functools.lru_cache(maxsize=512)
def _header_line(name: str, value: str) -> str:
    """`name: value` as sent; "" for a Content-Length (the body's framing is
    `write_request`'s); ValueError for a name or value that would split the request."""
    if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
        raise ValueError(f"invalid HTTP header {name!r}")
    return "" if name.lower() == "content-length" else f"{name}: {value}"


class _Reader:
    """Buffered reads from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()
        self.started = False  # any byte received

    def _fill(self) -> bool:
        data = self._sock.recv(65536)
        if not data:
            return False
        self.started = True
        self._buf += data
        return True

    def head(self) -> str:
        """The status line and header lines, up to the empty line that ends them."""
        start = 0
        while True:
            found = _BLANK_LINE.search(self._buf, start)
            if found:
                end = found.start()
                if end > _MAX_HEAD:
                    break
                data = self._buf[:end].decode("latin-1")
                del self._buf[:found.end()]
                return data
            if len(self._buf) > _MAX_HEAD:
                break
            start = max(0, len(self._buf) - 2)
            self._more()
        raise http.client.LineTooLong("response header")

    def line(self) -> bytes:
        """One line (a chunk size or a trailer field), without its CRLF or LF."""
        start = 0
        while True:
            end = self._buf.find(b"\n", start)
            if end >= 0:
                data = bytes(self._buf[:end]).removesuffix(b"\r")
                del self._buf[:end + 1]
                return data
            if len(self._buf) > _MAX_LINE:
                raise http.client.LineTooLong("chunk size or trailer")
            start = len(self._buf)
            self._more()

    def _more(self) -> None:
        if not self._fill():
            if not self.started:
                raise http.client.RemoteDisconnected(
                    "Remote end closed connection without response")
            raise http.client.IncompleteRead(bytes(self._buf))

    def exactly(self, count: int) -> bytes:
        while len(self._buf) < count:
            if not self._fill():
                raise http.client.IncompleteRead(bytes(self._buf), count - len(self._buf))
        data = bytes(self._buf[:count])
        del self._buf[:count]
        return data

    def rest(self) -> bytes:
        while self._fill():
            pass
        data = bytes(self._buf)
        self._buf.clear()
        return data

    @property
    def leftover(self) -> bool:
        return bool(self._buf)


def read_response(sock: socket.socket, method: str) -> Response:
    """Read one final response (1xx interim responses skipped).

    Raises http.client.RemoteDisconnected when the server closed the connection before
    answering (a stale kept connection), other http.client.HTTPException subclasses for
    malformed or cut-off responses, OSError for socket errors and timeouts.
    """
    reader = _Reader(sock)
    while True:
        head = reader.head()
        status_line, _, rest = head.partition("\n")
        status_line = status_line.removesuffix("\r")
        version, _, status_reason = status_line.partition(" ")
        code, _, reason = status_reason.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit() or len(code) != 3:
            raise http.client.BadStatusLine(status_line)
        status = int(code)
        if 100 <= status < 200 and status != 101:
            continue  # 100 Continue and friends: the real answer follows
        break
    headers = _parse_headers(rest)
    index = _index_of(headers)
    connection = index.get("connection", ("",))[0].lower()
    will_close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
    if method == "HEAD" or status in _NO_BODY:
        body = b""
    else:
        encoding = index.get("transfer-encoding", ("",))[0]
        length = index.get("content-length", (None,))[0]
        if "chunked" in encoding.lower():
            body = _chunked(reader)
        elif length is not None:
            if not length.strip().isdigit():
                raise http.client.HTTPException(f"bad Content-Length {length!r}")
            body = reader.exactly(int(length))
        else:
            body, will_close = reader.rest(), True
    # Bytes after the response (none are expected: requests are not pipelined) mean the
    # framing cannot be trusted for the next exchange.
    return Response(status, reason, headers, body, will_close or reader.leftover,
                    index=index)


def _parse_headers(text: str) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for raw in text.split("\n"):
        line = raw.removesuffix("\r")
        if not line:
            continue
        if line[0] in " \t" and headers:  # obsolete line folding
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise http.client.HTTPException(f"malformed response header {line[:100]!r}")
        headers.append((name.strip(), value.strip()))
    return headers


def _chunked(reader: _Reader) -> bytes:
    parts = []
    while True:
        size_line = reader.line().split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise http.client.HTTPException(f"bad chunk size {size_line[:20]!r}") from None
        if size == 0:
            # Trailers (if any) end with an empty line.
            while reader.line():
                pass
            return b"".join(parts)
        parts.append(reader.exactly(size))
        if reader.exactly(2) != b"\r\n":
            raise http.client.HTTPException("chunk not followed by CRLF")
