"""`DirectSession`: the org's requests made on kept connections.

`OrgHttp` sends every Salesforce call through `session.request(...)`. At real-time load
the sObject Collections writes made `requests` the daemon's largest CPU cost (see
`ilyd.salesforce.keepalive`), so this class answers the plain requests — a JSON, bytes or
empty body, no streaming, no proxy — itself, on a small pool of kept connections per
origin, and hands everything else (form bodies, proxied instances, redirects) to the
wrapped `requests.Session` unchanged. Both paths return an
`ilyd.salesforce.response.HttpResponse` and raise `requests` exceptions, so callers cannot
tell them apart. Streamed bodies (Bulk results) go through `stream`, which returns
requests' own `Response`: its `raw` reads the socket as the rows arrive.

The environment is read once per origin: proxy variables (HTTPS_PROXY, NO_PROXY, ...) at
the first request to that origin, and REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE at
construction — the same settings requests would apply, without re-reading them (and
`~/.netrc`) on every call.
"""

from __future__ import annotations

import functools
import http.client
import io
import json as jsonlib
import ssl
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
import urllib3
from requests.utils import get_environ_proxies

from ilyd.errors import idempotent
from ilyd.salesforce.keepalive import (
    KeepAliveConnection,
    Reply,
    env_ca_bundle,
    proxied,
    ssl_context,
)
from ilyd.salesforce.response import Headers, HttpResponse

__all__ = ["DirectSession"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Idle connections kept per origin (requests keeps 10 per host, too).
_MAX_IDLE = 10
# Keyword arguments the direct path understands; any other goes to requests.
_DIRECT_KWARGS = frozenset({"params", "json", "data", "headers", "timeout", "verify"})


class DirectSession:
    """Sends plain requests on kept connections, the rest through `session`; thread-safe.

    Exposes what `send_with_retry` and `OrgHttp` use of a session: `request`, `stream`,
    `verify`, `close`.
    """

    def __init__(self, session: requests.Session) -> None:
        self.session = session
        self._env_ca = env_ca_bundle() if session.trust_env else None
        self._lock = threading.Lock()
        self._idle: dict[str, list[KeepAliveConnection]] = {}
        self._proxied: dict[str, bool] = {}
        self._contexts: dict[str | bool, ssl.SSLContext] = {}
        self._closed = False

    @property
    def verify(self) -> str | bool:
        """The session's TLS setting (True, or a CA file / directory)."""
        return self.session.verify  # type: ignore[return-value]

    def request(self, method: str, url: str, **kwargs: Any) -> HttpResponse:
        """`requests.Session.request`'s arguments, the answer read whole: on a kept
        connection when the call is plain, else through requests. Raises TypeError for
        `stream` (see `stream`)."""
        if "stream" in kwargs:
            raise TypeError("DirectSession.request reads the body whole; use stream()")
        origin, path = _split(url)
        if (origin is None or not _DIRECT_KWARGS.issuperset(kwargs)
                or not _plain_body(kwargs.get("data")) or self._through_proxy(origin, url)):
            return HttpResponse.from_requests(self.session.request(method, url, **kwargs))
        method = method.upper()
        if kwargs.get("json") is not None:
            body: bytes | None = _encode_json(kwargs["json"]).encode()
            content_type: str | None = "application/json"
        else:
            data = kwargs.get("data")
            body, content_type = (data or None), None
        params = kwargs.get("params")
        target = _with_params(url, path, params) if params else path
        given = kwargs.get("headers") or {}
        # Only encodings this path decodes (requests may offer br/zstd when installed).
        headers = {**self.session.headers, "Accept-Encoding": "gzip, deflate", **given}
        # The session's headers are case-insensitive already; the caller's are few.
        if content_type and "content-type" not in self.session.headers \
                and not any(k.lower() == "content-type" for k in given):
            headers["Content-Type"] = content_type
        connect_timeout, read_timeout = _timeouts(kwargs.get("timeout"))
        verify = self._trust(kwargs.get("verify", self.session.verify))
        # On a kept connection the server had closed, a request that may be sent again
        # (ilyd.errors.idempotent) is, on a fresh one. It needs no look at the idle
        # socket first (a poll(2), and a GIL hand-off on a busy daemon); one that may
        # not be sent again gets it.
        resend = idempotent(method)
        conn = self._take(origin, verify, connect_timeout, check_stale=not resend)
        try:
            reply = conn.request(method, target, body,
                                 {k: str(v) for k, v in headers.items() if v is not None},
                                 read_timeout, resend_stale=resend)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
            # The peer closed the TLS session: a dropped connection, not a trust problem
            # (send_with_retry reports an SSLError as one and never retries it).
            raise requests.exceptions.ConnectionError(f"{origin}: {exc}") from exc
        except ssl.SSLError as exc:
            raise requests.exceptions.SSLError(str(exc)) from exc
        except TimeoutError as exc:
            raise requests.exceptions.ReadTimeout(f"{origin}: {exc}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise requests.exceptions.ConnectionError(
                f"{origin}: {type(exc).__name__}: {exc}") from exc
        finally:
            self._give_back(origin, conn)
        response = HttpResponse(reply.status, reply.reason, Headers(reply.headers), reply.body,
                                url)
        if reply.status in _REDIRECTS and "location" in response.headers:
            return self._follow(reply, method, url, kwargs)
        return response

    def stream(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """A call whose body is read as it arrives (Bulk results): requests' own
        `Response` with `stream=True`, whose `raw` and `iter_content` read the socket.
        The caller closes it."""
        return self.session.request(method, url, stream=True, **kwargs)

    def _follow(self, reply: Reply, method: str, url: str,
                kwargs: dict[str, Any]) -> HttpResponse:
        """Follow a redirect with requests' own rules (a POST answered 303 becomes a GET,
        Authorization is dropped for another host, at most 30 hops) — from this answer,
        so the request already sent is not sent again. Salesforce does not redirect API
        calls; this is for servers that do."""
        prepared = self.session.prepare_request(requests.Request(
            method, url, headers=kwargs.get("headers"), params=kwargs.get("params"),
            json=kwargs.get("json"), data=kwargs.get("data")))
        # The reply as requests' adapter would have built it. Its body is already
        # decoded, so the headers that framed and encoded it on the wire are left out.
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(reply.body), status=reply.status, reason=reply.reason,
            headers=urllib3.HTTPHeaderDict(
                [(k, v) for k, v in reply.headers
                 if k.lower() not in ("content-length", "content-encoding",
                                      "transfer-encoding")]),
            preload_content=False, decode_content=False)
        first = self.session.get_adapter(url).build_response(prepared, raw)
        hops = list(self.session.resolve_redirects(
            first, prepared, timeout=kwargs.get("timeout"),
            verify=kwargs.get("verify", self.session.verify)))
        return HttpResponse.from_requests(hops[-1] if hops else first)

    def close(self) -> None:
        """Close the kept connections and the wrapped session."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()
        self.session.close()

    # -- the pool -----------------------------------------------------------------------

    def _take(self, origin: str, verify: str | bool, timeout: float, *,
              check_stale: bool) -> KeepAliveConnection:
        with self._lock:
            pool = self._idle.get(origin) or []
            while pool:
                conn = pool.pop()
                if not (check_stale and conn.stale()):
                    return conn
                conn.close()
            context = self._contexts.get(verify)
        if context is None and origin.startswith("https:"):
            context = ssl_context(verify)  # loading a CA bundle is slow: once per setting
            with self._lock:
                self._contexts.setdefault(verify, context)
        return KeepAliveConnection(origin, verify=verify, connect_timeout=timeout,
                                   context=context)

    def _give_back(self, origin: str, conn: KeepAliveConnection) -> None:
        with self._lock:
            pool = self._idle.setdefault(origin, [])
            if not self._closed and len(pool) < _MAX_IDLE:
                pool.append(conn)
                return
        conn.close()

    def _through_proxy(self, origin: str, url: str) -> bool:
        through = self._proxied.get(origin)
        if through is None:
            proxies = dict(self.session.proxies)
            if self.session.trust_env:
                proxies.update(get_environ_proxies(url, no_proxy=proxies.get("no_proxy")))
            through = self._proxied[origin] = proxied(proxies, url)
        return through

    def _trust(self, verify: str | bool | None) -> str | bool:
        if verify is False:
            # Never switched off (make_session sets True or a CA file); refuse loudly.
            raise requests.exceptions.SSLError("TLS verification cannot be turned off")
        if verify is None or verify is True:
            return self._env_ca or True
        return verify


# As requests encodes a json= body (NaN refused: it is not JSON); one encoder for every
# call (json.dumps with an option builds a new one each time).
_encode_json = jsonlib.JSONEncoder(allow_nan=False).encode


# A client calls a handful of URLs again and again (the Collections endpoint above all):
# each is taken apart once.
@functools.lru_cache(maxsize=256)
def _split(url: str) -> tuple[str | None, str]:
    """(origin, request target) of `url`; origin None when this path cannot send to it."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        return None, target
    return f"{parts.scheme}://{parts.netloc}", target


def _with_params(url: str, target: str, params: Mapping[str, Any]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
    if query:
        target += ("&" if urlsplit(url).query else "?") + query
    return target


def _plain_body(data: object) -> bool:
    return data is None or isinstance(data, bytes)


def _timeouts(timeout: object) -> tuple[float, float]:
    if isinstance(timeout, tuple):
        connect, read = timeout
        return float(connect or 120.0), float(read or 120.0)
    value = float(timeout) if isinstance(timeout, int | float) else 120.0
    return value, value
