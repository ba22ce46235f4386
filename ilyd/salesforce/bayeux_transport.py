"""Bayeux transports: long polling over one kept HTTP connection, WebSocket via websocket-client.

A transport sends one JSON array of messages and returns the /meta replies to it;
events that arrive meanwhile (in the same array for long polling, as separate frames
for WebSocket) go to `on_events` as soon as they are read. `abort()` may be called from
another thread and makes a held long poll return at once (the socket is shut down), so
that stopping a subscriber does not wait out a 110-second poll.

An exchange over WebSocket, or over long polling without a proxy, is split in two, `send`
and `receive`, so that a held poll waits on its socket in the process's I/O loop
(ilyd/salesforce/bayeux_hub.py) rather than on a thread.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter

from ilyd.errors import BayeuxError
from ilyd.salesforce.bayeux_messages import FailureKind, Message, split_replies
from ilyd.salesforce.keepalive import KeepAliveConnection, env_ca_bundle, proxied

__all__ = ["LongPollingTransport", "TransportError", "WebSocketTransport"]

EventSink = Callable[[list[Message]], None]


class TransportError(BayeuxError):
    """The exchange failed below Bayeux: network, HTTP status, unreadable body."""

    def __init__(self, message: str, kind: FailureKind, *, replies: Sequence[Message] = ()):
        self.kind = kind
        self.replies = list(replies)
        super().__init__(message)


def _tracking_adapter(sockets: weakref.WeakSet[socket.socket]) -> HTTPAdapter:
    """An adapter whose connections register their sockets, so `abort` can shut them."""

    def track(conn: Any) -> None:
        sock = getattr(conn, "sock", None)
        if sock is not None:
            sockets.add(sock)

    class Conn(urllib3.connection.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            track(self)

    class SConn(urllib3.connection.HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            track(self)

    class Pool(urllib3.HTTPConnectionPool):
        ConnectionCls = Conn

    class SPool(urllib3.HTTPSConnectionPool):
        ConnectionCls = SConn

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": SPool}

    return Adapter()


class LongPollingTransport:
    """POSTs JSON arrays to the endpoint on one kept connection (cookies such as
    BAYEUX_BROWSER kept): `KeepAliveConnection` when no proxy applies, else a Session."""

    name = "long-polling"

    def __init__(self, url: str, *, ca_file: str | None = None) -> None:
        self.url = url
        self.session = requests.Session()
        # The environment (proxy variables, CA bundle variables, ~/.netrc) is read once
        # here for the one URL this transport talks to, not by requests on every POST:
        # that re-reading is a large share of the daemon's CPU per event.
        self.session.proxies.update(requests.utils.get_environ_proxies(url))
        self.session.verify = ca_file or env_ca_bundle() or True
        self.session.trust_env = False
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        adapter = _tracking_adapter(self._sockets)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # No proxy in the way: POST on one kept connection through http.client rather
        # than requests (whose per-request work was most of the long poll's CPU).
        self._direct = (None if proxied(self.session.proxies, url) else
                        KeepAliveConnection(url, verify=self.session.verify))

    def cookie_header(self) -> str:
        """The server's cookies as a Cookie header value (for the WebSocket upgrade)."""
        if self._direct is not None:
            return "; ".join(f"{k}={v}" for k, v in self._direct.cookies.items())
        return "; ".join(f"{c.name}={c.value}" for c in self.session.cookies)

    def exchange(
        self, messages: Sequence[Message], *, headers: Mapping[str, str], timeout: float,
        on_events: EventSink,
    ) -> list[Message]:
        """Send the messages; deliver any events; return the /meta replies."""
        if self._direct is None:
            status, body, text = self._post_requests(messages, headers, timeout)
        else:
            status, body, text = self._post_direct(messages, headers, timeout)
        return self._replies(status, body, text, on_events)

    def _replies(self, status: int, body: Any, text: Callable[[], str],
                 on_events: EventSink) -> list[Message]:
        if isinstance(body, dict):
            body = [body]
        if status >= 500:
            raise TransportError(f"POST {self.url} answered HTTP {status}", FailureKind.SERVER)
        if not isinstance(body, list):
            kind = FailureKind.AUTH if status == 401 else FailureKind.PROTOCOL
            raise TransportError(
                f"POST {self.url} answered HTTP {status} without Bayeux"
                f" messages: {text()[:200]!r}", kind,
            )
        replies, events = split_replies(body)
        if events:
            on_events(events)
        return replies

    def send(self, messages: Sequence[Message], *, headers: Mapping[str, str],
             timeout: float) -> socket.socket | None:
        """`exchange`'s first half: write the messages on the kept connection and return
        its socket, to wait on until it is readable and then call `receive`. None when a
        proxy is in the way: requests' exchange cannot be split, use `exchange`."""
        if self._direct is None:
            return None
        try:
            return self._direct.send_post(json.dumps(list(messages)).encode(), headers,
                                          timeout)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise TransportError(
                f"POST {self.url} failed: {type(exc).__name__}: {exc}", FailureKind.NETWORK
            ) from exc

    def receive(self, *, timeout: float, on_events: EventSink) -> list[Message] | None:
        """`exchange`'s second half: read the answer to what `send` wrote; deliver any
        events; return the /meta replies. None: the kept connection had been closed by the
        server and the messages went out again on a new one — wait for `socket` again."""
        assert self._direct is not None
        try:
            reply = self._direct.receive(timeout)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise TransportError(
                f"POST {self.url} failed: {type(exc).__name__}: {exc}", FailureKind.NETWORK
            ) from exc
        if reply is None:
            return None
        return self._replies(reply.status, *self._decoded(reply.body), on_events)

    @property
    def socket(self) -> socket.socket | None:
        """The kept connection's socket (None: none open, or the proxied path)."""
        return None if self._direct is None else self._direct.socket

    def unanswered(self, waited: float) -> TransportError:
        """What `send` wrote got no answer in `waited` seconds: drop the connection (a
        late answer must not be taken for the next request's); returns the error to raise."""
        if self._direct is not None:
            self._direct.close()
        return TransportError(f"POST {self.url} failed: no answer in {waited:.0f} s",
                              FailureKind.NETWORK)

    def _post_direct(self, messages: Sequence[Message], headers: Mapping[str, str],
                     timeout: float) -> tuple[int, Any, Callable[[], str]]:
        assert self._direct is not None
        try:
            status, data = self._direct.post(json.dumps(list(messages)).encode(), headers,
                                             timeout)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise TransportError(
                f"POST {self.url} failed: {type(exc).__name__}: {exc}", FailureKind.NETWORK
            ) from exc
        return status, *self._decoded(data)

    @staticmethod
    def _decoded(data: bytes) -> tuple[Any, Callable[[], str]]:
        try:
            body = json.loads(data)
        except (ValueError, RecursionError):  # not JSON, or nested past the parser
            body = None
        return body, lambda: data.decode("utf-8", "replace")

    def _post_requests(self, messages: Sequence[Message], headers: Mapping[str, str],
                       timeout: float) -> tuple[int, Any, Callable[[], str]]:
        try:
            response = self.session.post(
                self.url, data=json.dumps(list(messages)), timeout=(10.0, timeout),
                headers={"Content-Type": "application/json", **headers},
            )
        except requests.RequestException as exc:
            raise TransportError(
                f"POST {self.url} failed: {type(exc).__name__}: {exc}", FailureKind.NETWORK
            ) from exc
        try:
            body = response.json()
        except (ValueError, RecursionError):  # not JSON, or nested past the parser
            body = None
        return response.status_code, body, lambda: response.text

    def abort(self) -> None:
        """Shut every socket of this transport down (callable from any thread)."""
        if self._direct is not None:
            self._direct.abort()
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):  # already closed: nothing to interrupt
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Release the session's connections."""
        if self._direct is not None:
            self._direct.close()
        self.session.close()


class WebSocketTransport:
    """Bayeux over one WebSocket (generic Bayeux servers; Salesforce offers none)."""

    name = "websocket"

    def __init__(self, url: str, *, ca_file: str | None = None) -> None:
        self.url = "ws" + url[len("http"):] if url.startswith("http") else url
        self._ca_file = ca_file
        self._ws: Any = None
        self._wanted: set[str] = set()  # ids of the messages sent still without a reply
        self._replies: list[Message] = []

    def open(self, headers: Mapping[str, str], cookie: str | None, timeout: float) -> None:
        """Open the socket (raises TransportError when the server refuses the upgrade)."""
        # websocket-client: only loaded when a server offers WebSocket.
        import websocket  # noqa: PLC0415

        sslopt = {"ca_certs": self._ca_file} if self._ca_file else None
        try:
            self._ws = websocket.create_connection(
                self.url, timeout=timeout, header=[f"{k}: {v}" for k, v in headers.items()],
                cookie=cookie, sslopt=sslopt,
            )
        except (OSError, websocket.WebSocketException) as exc:
            raise TransportError(
                f"WebSocket {self.url} failed: {type(exc).__name__}: {exc}", FailureKind.NETWORK
            ) from exc

    def send(self, messages: Sequence[Message], *, headers: Mapping[str, str],
             timeout: float) -> socket.socket:
        """Send the messages in one frame (`headers` went with the upgrade); return the
        socket their replies arrive on, to wait on until it is readable and then call
        `receive`. `timeout` bounds the write."""
        import websocket  # noqa: PLC0415 (as in open)

        if self._ws is None:
            raise TransportError("WebSocket is not open", FailureKind.NETWORK)
        self._wanted = {str(m.get("id")) for m in messages if m.get("id") is not None}
        self._replies = []
        try:
            self._ws.settimeout(timeout)
            self._ws.send(json.dumps(list(messages)))
        except (OSError, websocket.WebSocketException) as exc:
            raise TransportError(
                f"WebSocket {self.url} failed: {type(exc).__name__}: {exc}", FailureKind.NETWORK
            ) from exc
        return self._ws.sock  # type: ignore[no-any-return]

    def receive(self, *, timeout: float, on_events: EventSink) -> list[Message] | None:
        """Read one frame and deliver its events; return the /meta replies once every
        message sent has its own, None until then (wait for `socket` again). A frame is
        read whole once it has begun: `timeout` bounds each read."""
        import websocket  # noqa: PLC0415 (as in open)

        if self._ws is None:
            raise TransportError("WebSocket is not open", FailureKind.NETWORK)
        try:
            self._ws.settimeout(timeout)
            frame = self._ws.recv()
            if not frame:
                raise TransportError("WebSocket closed by the server", FailureKind.NETWORK)
            body = json.loads(frame)
        except (OSError, ValueError, RecursionError, websocket.WebSocketException) as exc:
            raise TransportError(
                f"WebSocket {self.url} failed: {type(exc).__name__}: {exc}", FailureKind.NETWORK
            ) from exc
        got, events = split_replies(body if isinstance(body, list) else [body])
        if events:
            on_events(events)
        for reply in got:
            self._wanted.discard(str(reply.get("id")))
            self._replies.append(reply)
        return None if self._wanted else self._replies

    @property
    def socket(self) -> socket.socket | None:
        """The WebSocket's socket (None: not open)."""
        return None if self._ws is None else self._ws.sock

    def unanswered(self, waited: float) -> TransportError:
        """What `send` sent got no answer in `waited` seconds: close the socket; returns
        the error to raise."""
        self.close()
        return TransportError(f"WebSocket {self.url} failed: no answer in {waited:.0f} s",
                              FailureKind.NETWORK)

    def abort(self) -> None:
        """Shut the socket down (callable from any thread)."""
        ws = self._ws
        sock = getattr(ws, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Close the socket."""
        ws, self._ws = self._ws, None
        if ws is not None:
            # closing a broken socket may fail any way; it is being dropped regardless
            with contextlib.suppress(Exception):
                ws.close(timeout=1)
