"""The threaded HTTP/1.1 server (keep-alive, optional TLS) that carries every devorg route.

TLS handshakes run in the connection's own thread so a slow client never blocks accept().
"""

from __future__ import annotations

import contextlib
import email.parser
import http.client
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import BinaryIO
from urllib.parse import parse_qs, urlsplit

import structlog

from ilyd.devorg.web import Request, Response

log = structlog.get_logger(__name__)
_MAX_BODY = 200 * 1024 * 1024  # above Bulk 2.0's 150 MB upload limit
_JOINED_BODY = 64 * 1024  # bodies up to this size go out in the same send as the head
_date_cache: tuple[int, str] = (-1, "")


# A header line the email parser would read as exactly `name: value` (see _parse_headers).
# (Its lines are str.splitlines' lines: \v \f \x1c-\x1e \x85 end a line there too.)
_SIMPLE_HEADER = re.compile(
    r"([\041-\071\073-\176]+):[ \t]*([^\r\n\x0b\x0c\x1c-\x1e\x85]*?)\r?\n")


def _parse_headers(rfile: BinaryIO, message_class: type[Message]) -> Message:
    """`http.client.parse_headers`, without the email package for the usual header block.

    Reads the lines with the same limits and errors (LineTooLong, HTTPException), then —
    when every line is a plain `Name: value` line ending in a newline — builds the message
    as the email parser would (same names, values, order; empty payload); any other block
    (folded lines, a stray CR, a line that is not a header, no blank line before the end of
    the stream) goes through the email parser itself. The email parser was a fifth of the
    handling of a small request."""
    lines = http.client._read_headers(rfile)  # type: ignore[attr-defined]
    if lines[-1] in (b"\r\n", b"\n"):
        message = message_class()
        match = _SIMPLE_HEADER.fullmatch
        for line in lines[:-1]:
            found = match(line.decode("iso-8859-1"))
            if found is None:
                break
            message.set_raw(found.group(1), found.group(2))
        else:
            message.set_payload("")
            return message
    text = b"".join(lines).decode("iso-8859-1")
    return email.parser.Parser(_class=message_class).parsestr(text)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "devorg"
    sys_version = ""
    # keep-alive + small responses: without TCP_NODELAY each answer waits for delayed ACKs
    disable_nagle_algorithm = True
    server: _Server

    def parse_request(self) -> bool:
        """The standard library's request parsing with the header block read by
        `_parse_headers` (same results, errors and answers to bad requests)."""
        self.command = None  # type: ignore[assignment]
        self.request_version = version = self.default_request_version
        self.close_connection = True
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.requestline = requestline
        words = requestline.split()
        if len(words) == 0:
            return False
        if len(words) >= 3:  # enough to determine the protocol version
            version = words[-1]
            try:
                if not version.startswith("HTTP/"):
                    raise ValueError
                base_version_number = version.split("/", 1)[1]
                version_number = base_version_number.split(".")
                if len(version_number) != 2:
                    raise ValueError
                if any(not component.isdigit() for component in version_number):
                    raise ValueError("non digit in http version")
                if any(len(component) > 10 for component in version_number):
                    raise ValueError("unreasonable length http version")
                numbers = int(version_number[0]), int(version_number[1])
            except (ValueError, IndexError):
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
                return False
            if numbers >= (1, 1) and self.protocol_version >= "HTTP/1.1":
                self.close_connection = False
            if numbers >= (2, 0):
                self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED,
                                f"Invalid HTTP version ({base_version_number})")
                return False
            self.request_version = version
        if not 2 <= len(words) <= 3:
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({requestline!r})")
            return False
        command, path = words[:2]
        if len(words) == 2:
            self.close_connection = True
            if command != "GET":
                self.send_error(HTTPStatus.BAD_REQUEST,
                                f"Bad HTTP/0.9 request type ({command!r})")
                return False
        self.command, self.path = command, path
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")  # reduce to a single /
        try:
            self.headers = _parse_headers(self.rfile, self.MessageClass)  # type: ignore[arg-type]
        except http.client.LineTooLong as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long",
                            str(err))
            return False
        except http.client.HTTPException as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers",
                            str(err))
            return False
        conntype = self.headers.get("Connection", "")
        if conntype.lower() == "close":
            self.close_connection = True
        elif conntype.lower() == "keep-alive" and self.protocol_version >= "HTTP/1.1":
            self.close_connection = False
        expect = self.headers.get("Expect", "")
        if (expect.lower() == "100-continue" and self.protocol_version >= "HTTP/1.1"
                and self.request_version >= "HTTP/1.1"):
            return self.handle_expect_100()
        return True

    def log_message(self, format: str, *args: object) -> None:
        """Silence the stdlib access log (devorg counts calls itself)."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header's text, formatted once per second rather than per answer."""
        global _date_cache
        if timestamp is not None:
            return super().date_time_string(timestamp)
        now = time.time()
        second = int(now)
        cached = _date_cache
        if cached[0] != second:
            cached = _date_cache = (second, super().date_time_string(now))
        return cached[1]

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        request = Request(
            method=self.command, path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=self.headers, read_body=self._read_body,
            client=self.client_address, raw=self, on_my_domain=self.server.my_domain,
        )
        response = self.server.dispatch(request)
        if request._body is None and self.command in ("POST", "PUT", "PATCH", "DELETE"):
            request.body  # noqa: B018 - drain an unread body so keep-alive stays in sync
        if response.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        if response.content_type and response.status != 204:
            self.send_header("Content-Type", response.content_type)
        for key, value in response.headers.items():
            self.send_header(key, value)
        body = response.body
        if isinstance(body, bytes | bytearray):
            if response.status not in (204, 304):
                self.send_header("Content-Length", str(len(body)))
            send_body = bool(body) and self.command != "HEAD"
            if self.request_version != "HTTP/0.9" and (not send_body
                                                       or len(body) <= _JOINED_BODY):
                # Head and body in one send: a send (and a wake-up of the peer) per
                # answer instead of two, for the usual small JSON answer.
                buffer = self._headers_buffer
                buffer.append(b"\r\n")
                if send_body:
                    buffer.append(body)
                self._headers_buffer = []
                self.wfile.write(b"".join(buffer))
                return
            self.end_headers()
            if send_body:
                self.wfile.write(body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in body:
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle  # noqa: N815


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], dispatch: Callable[[Request], Response],
                 ssl_context: ssl.SSLContext | None, my_domain: bool) -> None:
        self.dispatch = dispatch
        self.ssl_context = ssl_context
        self.my_domain = my_domain
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def finish_request(self, request: socket.socket, client_address: tuple[str, int]
                       ) -> None:  # type: ignore[override]
        """Wrap TLS in the connection thread, and track the socket for a clean stop."""
        sock = request
        if self.ssl_context is not None:
            try:
                sock = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                log.debug("devorg_tls_handshake_failed", error=str(exc))
                return
        with self.connections_lock:
            self.open_connections.add(sock)
        try:
            self.RequestHandlerClass(sock, client_address, self)
        except (ConnectionError, ssl.SSLError, TimeoutError):
            pass  # a client that goes away mid-request is normal for a server
        finally:
            with self.connections_lock:
                self.open_connections.discard(sock)

    def handle_error(self, request: object, client_address: object) -> None:
        """Log handler crashes through structlog instead of printing to stderr."""
        log.exception("devorg_handler_crashed")

    def close_all(self) -> None:
        """Shut every open keep-alive connection (used on stop, like a server going away)."""
        with self.connections_lock:
            conns = list(self.open_connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class HttpServer:
    """Owns the listening socket and its accept thread; `my_domain` marks the listener
    that stands for the orgs' My Domain (instance) host rather than the login host."""

    def __init__(self, host: str, port: int, dispatch: Callable[[Request], Response],
                 ssl_context: ssl.SSLContext | None = None, *, my_domain: bool = False
                 ) -> None:
        self._server = _Server((host, port), dispatch, ssl_context, my_domain)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2},
                                        name="devorg-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, close open connections, release the port."""
        if self._thread is not None:  # shutdown() waits for a serve_forever that ran
            self._server.shutdown()
        self._server.close_all()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
