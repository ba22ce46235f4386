"""One keep-alive HTTP(S) connection, for the daemon's hot paths.

Under real-time load `requests` is the largest single cost of the two calls the daemon
makes per event burst — the Bayeux long poll and the sObject Collections write: every
request rebuilds a PreparedRequest, merges session settings, walks the cookie jar,
re-checks the CA path on disk and runs urllib3's pool bookkeeping, a few times the cost
of the HTTP exchange itself. This class keeps the connection, the
TLS context, the fixed headers and the server's cookies (such as BAYEUX_BROWSER, which
Salesforce uses to route a streaming session) ready between requests; the exchange itself
is `ilyd.salesforce.http11` (lighter than http.client's).

It is used only when no proxy applies to the endpoint (the requests path still serves
proxied set-ups). TLS verification is always on: the configured CA file (or
REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE), else certifi's bundle, as requests would use.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import http.client
import os
import select
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

from ilyd.salesforce import http11

__all__ = ["KeepAliveConnection", "Reply", "env_ca_bundle", "proxied", "ssl_context"]

# Errors that mean "the server had closed the idle keep-alive connection": the request
# never reached it, so sending it again on a fresh connection is safe.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
          ConnectionAbortedError, ssl.SSLZeroReturnError, ssl.SSLEOFError)


def ssl_context(verify: str | bool) -> ssl.SSLContext:
    """A verifying TLS context: against `verify` (a CA file or directory) when it is a
    path, else certifi's bundle — the trust requests would give the same setting."""
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    try:
        # requests' own CA bundle: the same trust as the requests path.
        import certifi  # noqa: PLC0415
    except ImportError:  # pragma: no cover - certifi comes with requests
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def env_ca_bundle() -> str | None:
    """The CA bundle requests takes from the environment (REQUESTS_CA_BUNDLE, else
    CURL_CA_BUNDLE) in place of its default, read once by the callers that keep it."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")


def proxied(proxies: Mapping[str, str], url: str) -> bool:
    """Whether a requests-style proxy map sends `url` through a proxy."""
    scheme = url.split(":", 1)[0].lower()
    return bool(proxies.get(scheme) or proxies.get("all"))


# Salesforce sets the same cookie (BrowserId) on every answer: parsing it is a third of
# the exchange's CPU, so each distinct Set-Cookie value is parsed once. Expiry is still
# judged at every answer (`_expired`).
@functools.lru_cache(maxsize=64)
def _parse_cookie(header: str) -> tuple[tuple[str, str, str, str], ...]:
    """(name, value, max-age, expires) of each cookie a Set-Cookie value sets; none when
    it cannot be parsed (a cookie we cannot parse is one we cannot send back either)."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return ()
    return tuple((name, morsel.value, morsel["max-age"], morsel["expires"])
                 for name, morsel in jar.items())


@dataclass(frozen=True)
class _Sent:
    """A request written and not yet answered: what `receive` needs to send it again."""

    method: str
    target: str
    body: bytes | None
    headers: dict[str, str]
    resend_stale: bool
    aborts: int  # the connection's abort count when it was first sent


@dataclass(frozen=True)
class Reply:
    """One HTTP response, read whole (body decoded from gzip/deflate)."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class KeepAliveConnection:
    """Requests to one origin over one persistent connection (not thread-safe, except
    `abort`, which may be called from any thread)."""

    def __init__(self, url: str, *, verify: str | bool = True,
                 connect_timeout: float = 10.0, user_agent: str = "ilyd",
                 context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._host_header = parts.netloc.rpartition("@")[2]
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # Built at the first connection unless shared: a missing CA file then fails that
        # request (and is retried with backoff) instead of the client's construction.
        self._verify = verify
        self._context = context
        self._connect_timeout = connect_timeout
        self._sock: socket.socket | None = None
        self._sent: _Sent | None = None  # written, its response not read yet
        self._sent_reused = False  # ... on a connection that had carried one before
        self._aborts = 0
        self._lock = threading.Lock()
        self.cookies: dict[str, str] = {}
        self._headers = {"Content-Type": "application/json", "Accept": "application/json",
                         "Accept-Encoding": "gzip", "User-Agent": user_agent,
                         "Connection": "keep-alive"}

    def post(self, body: bytes, headers: Mapping[str, str],
             timeout: float) -> tuple[int, bytes]:
        """POST `body` to the connection's URL; return the status and the (decoded) body.

        A reused connection the server had closed is replaced and the POST sent again
        (the Bayeux messages it carries may be repeated). Raises OSError or
        http.client.HTTPException when the exchange fails.
        """
        reply = self.request("POST", self._path, body, {**self._headers, **headers},
                             timeout, resend_stale=True)
        return reply.status, reply.body

    def send_post(self, body: bytes, headers: Mapping[str, str],
                  timeout: float) -> socket.socket:
        """`post`'s first half: write the POST and return the socket to wait on; then
        `receive` reads its answer (None: sent again, wait again)."""
        return self.send("POST", self._path, body, {**self._headers, **headers}, timeout,
                         resend_stale=True)

    def request(self, method: str, target: str, body: bytes | None,
                headers: Mapping[str, str], timeout: float, *,
                resend_stale: bool) -> Reply:
        """Send one request with exactly `headers` (plus the server's cookies) and read
        its response: `send`, then `receive` until it answers.

        `resend_stale`: when a reused connection turns out closed by the server, send
        again on a fresh one — only for requests whose repetition does no harm.
        Raises OSError or http.client.HTTPException when the exchange fails.
        """
        self.send(method, target, body, headers, timeout, resend_stale=resend_stale)
        while (reply := self.receive(timeout)) is None:
            pass
        return reply

    def send(self, method: str, target: str, body: bytes | None,
             headers: Mapping[str, str], timeout: float, *,
             resend_stale: bool) -> socket.socket:
        """Write one request (as `request` does) and return the socket its response will
        arrive on, for a caller that waits for it elsewhere (a selector) and then reads
        it with `receive`. `timeout` bounds the write."""
        sent = dict(headers)
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return self._write(_Sent(method, target, body, sent, resend_stale, self._aborts),
                           timeout)

    def _write(self, request: _Sent, timeout: float) -> socket.socket:
        for attempt in (0, 1):
            reused = self._sock is not None
            sock = self._sock or self._open()
            try:
                # settimeout is a system call (and a hand-off of the interpreter lock)
                # even when the timeout is unchanged, as it is on nearly every request.
                if sock.gettimeout() != timeout:
                    sock.settimeout(timeout)
                http11.write_request(sock, request.method, request.target, self._host_header,
                                     headers=request.headers, body=request.body)
            except _STALE:
                self.close()
                # Only a reused connection may have gone stale; never retry past an abort
                # (a stopping client must not start a new request).
                if (attempt or not reused or not request.resend_stale
                        or request.aborts != self._aborts):
                    raise
                continue
            except BaseException:
                self.close()
                raise
            self._sent, self._sent_reused = request, reused
            return sock
        raise AssertionError("unreachable")  # pragma: no cover

    def receive(self, timeout: float) -> Reply | None:
        """Read the response to the request `send` wrote, waiting at most `timeout`
        seconds between reads.

        None when the reused connection turned out closed by the server before it
        answered and the request went out again on a fresh one (see `request`'s
        `resend_stale`): wait for `socket` again, then call this again.
        Raises OSError or http.client.HTTPException when the exchange fails.
        """
        request, sock = self._sent, self._sock
        if request is None or sock is None:
            raise http.client.ResponseNotReady("no request sent on this connection")
        self._sent = None
        try:
            if sock.gettimeout() != timeout:
                sock.settimeout(timeout)
            response = http11.read_response(sock, request.method)
        except _STALE:
            self.close()
            if (not self._sent_reused or not request.resend_stale
                    or request.aborts != self._aborts):
                raise
            self._write(request, timeout)
            return None
        except BaseException:
            self.close()
            raise
        self._take_cookies(response.all("Set-Cookie"))
        if response.will_close:
            self.close()
        data = response.body
        encoding = (response.header("Content-Encoding") or "").lower()
        if encoding == "gzip":
            data = gzip.decompress(data)
        elif encoding == "deflate":
            data = zlib.decompress(data)
        return Reply(response.status, response.reason, response.headers, data)

    @property
    def socket(self) -> socket.socket | None:
        """The connection's socket, None while there is none (for a selector to wait on:
        a TLS socket may already hold decrypted bytes, see `ssl.SSLSocket.pending`)."""
        return self._sock

    def stale(self) -> bool:
        """True when the idle connection has been closed (or written to) by the server:
        a request on it would fail, so the caller should open another. One poll(2)."""
        sock = self._sock
        if sock is None:
            return False
        poller = select.poll()
        try:
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    def _open(self) -> socket.socket:
        sock = socket.create_connection((self._host, self._port), timeout=self._connect_timeout)
        try:
            # Each request goes out in one send; no reason to wait for the peer's ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._https:
                if self._context is None:
                    self._context = ssl_context(self._verify)
                sock = self._context.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise
        with self._lock:
            self._sock = sock
        return sock

    def _take_cookies(self, headers: object) -> None:
        for header in headers:  # type: ignore[attr-defined]
            for name, value, max_age, expires in _parse_cookie(str(header)):
                if self._expired(max_age, expires):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = value

    @staticmethod
    def _expired(max_age: str, expires: str) -> bool:
        if max_age:
            with contextlib.suppress(ValueError):
                return int(max_age) <= 0
        if expires:
            with contextlib.suppress(TypeError, ValueError):
                return parsedate_to_datetime(expires).timestamp() <= time.time()
        return False

    def abort(self) -> None:
        """Shut the connection's socket down, so a held request returns at once."""
        with self._lock:
            self._aborts += 1
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing to interrupt
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Drop the connection (the next request opens a new one)."""
        self._sent = None  # its answer, if any, is gone with it
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
