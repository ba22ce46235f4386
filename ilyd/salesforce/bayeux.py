"""A self-healing Bayeux (CometD) client for the Salesforce Streaming API.

handshake → subscribe every channel (with its replay id) → connect, again and again.
Every client of the process runs on one shared I/O loop (ilyd/salesforce/bayeux_hub.py):
a held connect waits on its socket there, not on a thread of the client's own.
Every failure mode users of other Streaming API clients report has its answer here (the
error codes: https://developer.salesforce.com/docs/platform/api-streaming/guide/streaming-error-codes.html):

- "Unknown client" — whatever its code (Salesforce 403, Faye 401) and whatever the
  advice — re-handshakes and resubscribes every channel from its replay id, read fresh
  from `replay_ids()` (the durable store), so nothing is lost around re-handshakes;
- `401::Authentication invalid`, or a denied handshake whose reason starts with 401,
  refreshes the token once through `refresh_token()`; a second one in a row is a long
  backoff in state `backoff` with reason `auth`;
- limit and not-enabled errors: long backoff, Bayeux state cleared;
- network errors and 5xx: exponential backoff with jitter;
- a rejected replay id: `on_gap` is called, the channel is resubscribed with -2
  (the replay-id rules live in ilyd/salesforce/bayeux_subscriptions.py);
- events are handed to `on_events` as soon as a reply is read, and the next /meta/connect
  goes out once it returned: events that come meanwhile wait on the server and arrive
  together in the next reply, not an exchange each (Salesforce expects that connect
  within 40 seconds; a handler slower than that costs a re-handshake, nothing more);
- events the handler could not store (a full state disk) are not acknowledged: the
  client backs off (state `backoff`, reason `unstored`) and resubscribes from the stored
  replay ids, so the server delivers them again once the handler can take them.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from ilyd import metrics
from ilyd.backoff import stop_waits_within
from ilyd.errors import IlydError
from ilyd.salesforce.bayeux_hub import Handle, Wait, hub
from ilyd.salesforce.bayeux_messages import (
    BayeuxEvent,
    FailureKind,
    Message,
    classify,
    failure_text,
    replay_key,
)
from ilyd.salesforce.bayeux_state import BackoffPolicy, ReplayGap, StreamState, StreamStatus
from ilyd.salesforce.bayeux_subscriptions import Subscriptions
from ilyd.salesforce.bayeux_transport import (
    LongPollingTransport,
    TransportError,
    WebSocketTransport,
)

__all__ = [
    "BackoffPolicy", "BayeuxClient", "BayeuxEvent", "ReplayGap", "StreamState", "StreamStatus",
]

log = structlog.get_logger(__name__)

# Salesforce holds a connect up to 110 s; read a little longer before calling it dead.
_DEFAULT_HOLD_SECONDS = 110.0
_META_TIMEOUT_SECONDS = 30.0
# A stopping client's goodbye: best effort, the server forgets a silent client anyway.
_DISCONNECT_TIMEOUT_SECONDS = 2.0


# Salesforce advises a 110 s hold and a 0 ms interval. Longer holds than this are not
# waited for (a huge value overflows the socket and timer APIs), and a pause between
# connects stays far inside the 40 s after which Salesforce forgets a client
# (https://developer.salesforce.com/docs/platform/api-streaming/guide/using-streaming-api-timeouts.html).
_MAX_ADVISED_HOLD_SECONDS = 300.0
_MAX_ADVISED_INTERVAL_SECONDS = 5.0


def _advice(reply: Message) -> Mapping[str, Any]:
    """The reply's advice, or {} when it has none or something else than an object."""
    advice = reply.get("advice")
    return advice if isinstance(advice, Mapping) else {}


def _milliseconds(value: object) -> float | None:
    """An advice duration (milliseconds) in seconds; None unless a number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value) / 1000.0
    return None if math.isnan(seconds) or seconds < 0 else seconds


@dataclass
class _Action(Exception):  # noqa: N818 - control flow inside the loop, never escapes it
    kind: FailureKind
    detail: str
    rehandshake: bool = True
    advice: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Exchange:
    """A message sent and its reply not yet taken."""

    message: Message
    timeout: float
    deadline: float  # time.monotonic() past which the reply is given up
    then: Callable[[Message], Wait]  # takes the reply; returns what to wait for next
    on_thread: bool  # the exchange runs on a thread of its own, which wakes the client


class BayeuxClient:
    """One org's Bayeux session over all its channels. `start()` runs it, a step at a
    time, on the process's shared Bayeux loop (`ilyd.salesforce.bayeux_hub`), which
    calls `on_events` and `on_status` on its worker threads.

    `access_token()` returns the current token; `refresh_token()` forces a new one and
    returns it (`ilyd.salesforce.auth.TokenProvider` fits both). `replay_ids()` returns
    the stored replay id per channel; without it the client keeps its own in-memory
    cursor, advanced after `on_events` returns.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        channels: Sequence[str],
        on_events: Callable[[Sequence[BayeuxEvent]], None],
        access_token: Callable[[], str],
        refresh_token: Callable[[], str] | None = None,
        replay_ids: Callable[[], Mapping[str, int]] | None = None,
        default_replay: int = -1,
        on_status: Callable[[StreamStatus], None] | None = None,
        on_gap: Callable[[ReplayGap], None] | None = None,
        org: str = "",
        allow_websocket: bool = False,
        ca_file: str | None = None,
        backoff: BackoffPolicy | None = None,
        timeout_margin: float = 15.0,
    ) -> None:
        self.endpoint = endpoint
        self.subscriptions = Subscriptions(channels, replay_ids=replay_ids,
                                           default_replay=default_replay, on_gap=on_gap, org=org)
        self.channels = self.subscriptions.channels
        self.org = org
        self.allow_websocket = allow_websocket
        self.backoff = backoff or BackoffPolicy()
        self._ca_file = ca_file
        self._access_token = access_token
        self._refresh_token = refresh_token
        self._on_events = on_events
        self._on_status = on_status
        self._margin = timeout_margin
        self._http = LongPollingTransport(endpoint, ca_file=ca_file)
        self._transport: LongPollingTransport | WebSocketTransport = self._http
        self._client_id: str | None = None
        self._hold = _DEFAULT_HOLD_SECONDS
        self._interval = 0.0
        self._next_id = 0
        self._failures = 0
        self._refreshed = False
        self._handshake_reason = "initial"
        self._stop = threading.Event()
        self._redeliver = False  # the handler failed a batch: resubscribe after this reply
        self._unstored = ""  # why the handler last failed to take a batch
        self._unstored_failures = 0  # in a row; reset by a batch taken
        self._handle: Handle | None = None
        self._hub = hub()
        self._setting_up = False  # holding one of the hub's setup slots
        # Held by a step from its check of `_stop` until `on_events` returned, so that no
        # batch is handed over once `stop()` has returned.
        self._delivering = threading.RLock()  # stop() may be called from on_events
        self._exchange: _Exchange | None = None  # a message sent, its reply not taken
        # What an exchange on a thread of its own (a WebSocket, or long polling through a
        # proxy) got: (replies, events) or the error it raised.
        self._blocking_result: tuple[list[Message], list[Message]] | BaseException | None = None
        # Looked up once: `.labels()` per received batch was a visible share of its CPU.
        # The children outlive nothing: the org's metrics are forgotten after it stops.
        self._events_received = metrics.EVENTS_RECEIVED.labels(org=org)
        self._last_event_time = metrics.LAST_EVENT_TIMESTAMP.labels(org=org)
        self.state = StreamState.STOPPED
        self.handshakes = 0

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Run the client on the process's shared I/O loop."""
        self._set_state(StreamState.CONNECTING)
        self._handle = self._hub.start(self)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the client without waiting out a held poll; a best-effort /meta/disconnect
        goes out afterwards on the loop's threads. Once this returns, `on_events` is not
        called again (a batch read but not handed over is not acknowledged either: the
        server delivers it again from the stored replay ids)."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._transport.abort()
        self._http.abort()
        handle, finished = self._handle, True
        if handle is not None:
            finished = handle.cancel(timeout)
        if not finished:
            # A step still runs (a handler storing a batch, a token request): it goes no
            # further than its next check of the stop flag, and hands nothing more over.
            if self._delivering.acquire(timeout=max(0.0, deadline - time.monotonic())):
                self._delivering.release()
        elif handle is not None:
            # No step runs any more, so the transports are free for the goodbye.
            client_id, self._client_id = self._client_id, None
            self._hub.submit(lambda: self._disconnect(client_id))
        if handle is not None:
            self._hub.setups.leave(handle)  # a slot held or waited for
        self._set_state(StreamState.STOPPED)

    def run(self) -> None:
        """Run the client (`start`) and return once it has stopped."""
        self.start()
        assert self._handle is not None
        self._handle.join()

    @property
    def active(self) -> bool:
        """True from `start()` until the client is stopped and no step of it runs."""
        return self._handle is not None and self._handle.active

    @property
    def transport_name(self) -> str:
        """`long-polling` or `websocket`."""
        return self._transport.name

    def cursor(self) -> dict[str, int]:
        """The in-memory replay id per channel of events already handed to `on_events`."""
        return self.subscriptions.cursor()

    def step(self, readable: bool) -> Wait | None:
        """One step of the session, run by the hub: take the reply to the message in
        flight (`readable`) or give it up (its deadline passed), hand its events over,
        and send the next message (a handshake, a subscribe, a connect); returns what to
        wait for next."""
        if self._stop.is_set():
            return None
        try:
            # A token request's retry waits end at stop(); the thread serves others next.
            with stop_waits_within(self._stop):
                return self._step(readable)
        finally:
            if self._stop.is_set():
                # stop() did not wait for this step (it timed out, or was called from
                # one of its callbacks): nothing else closes the connections.
                self._transport.close()
                self._http.close()

    def _step(self, readable: bool) -> Wait | None:
        try:
            exchange = self._exchange
            if exchange is not None:
                replies = self._replies(exchange, readable)
                if replies is None:  # not all in yet, or sent again on a new connection
                    return Wait(None if exchange.on_thread else self._transport.socket,
                                math.inf if exchange.on_thread else exchange.deadline)
                self._exchange = None
                return exchange.then(self._reply_to(exchange.message, replies))
            if self._client_id is None:
                return self._handshake()
            return self._send_connect()
        except _Action as action:
            delay = self._recover(action)
        except TransportError as exc:
            # A dead WebSocket cannot carry the session on: start a new one. Long
            # polling keeps its clientId; the server says if it forgot it.
            on_socket = self._transport is not self._http
            delay = self._recover(_Action(exc.kind, str(exc), rehandshake=on_socket))
        except Exception as exc:
            if self._stop.is_set():  # a token request given up because the org stops
                return None
            # A reply no server should send tripped something unforeseen: the
            # org's stream must outlive it, as after any protocol error.
            log.exception("bayeux_unexpected_error", org=self.org)
            delay = self._recover(_Action(FailureKind.PROTOCOL,
                                          f"unexpected {type(exc).__name__}: {exc}"))
        self._exchange = None  # given up with its connection
        self._set_up()  # a backoff is waited out without a setup slot
        if self._stop.is_set():
            return None
        return Wait(None, time.monotonic() + delay)

    # -- the protocol: every exchange is sent in one step and its reply taken in another --

    def _message_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._access_token()}"}

    def _send(self, message: Message, timeout: float, then: Callable[[Message], Wait]) -> Wait:
        """Send `message`; its reply goes to `then` in a later step, which returns what to
        wait for next. Returns what to wait for meanwhile."""
        if self._stop.is_set():  # stop() was called from a callback of this very step
            raise _Action(FailureKind.PROTOCOL, "stopping")
        message = {**message, "id": self._message_id()}
        headers = self._headers()
        deadline = time.monotonic() + timeout
        sock = self._transport.send([message], headers=headers, timeout=_META_TIMEOUT_SECONDS)
        if sock is not None:
            self._exchange = _Exchange(message, timeout, deadline, then, on_thread=False)
            return Wait(sock, deadline)
        # Long polling through a proxy: requests' exchange cannot be split, so it waits on
        # a thread of its own, as every held poll did before the shared loop, keeping the
        # loop's threads free. A proxied set-up costs a thread per org, no more.
        self._exchange = _Exchange(message, timeout, deadline, then, on_thread=True)
        self._blocking_result = None
        http, handle = self._http, self._handle
        assert handle is not None

        def exchange() -> None:
            events: list[Message] = []
            try:
                replies = http.exchange([message], headers=headers, timeout=timeout,
                                        on_events=events.extend)
                self._blocking_result = (replies, events)
            except BaseException as exc:
                self._blocking_result = exc
            handle.wake()

        threading.Thread(target=exchange, name=f"bayeux-held-{self.org}", daemon=True).start()
        return Wait(None, math.inf)

    def _replies(self, exchange: _Exchange, readable: bool) -> list[Message] | None:
        """The replies to the exchange in flight; None: not in yet, wait again."""
        if exchange.on_thread:
            result, self._blocking_result = self._blocking_result, None
            if result is None:
                return None
            if isinstance(result, BaseException):
                raise result
            replies, events = result
            if events:
                self._received(events)
            return replies
        if not readable:
            raise self._transport.unanswered(exchange.timeout)
        # The server has begun to answer: the rest follows at once, or the connection
        # is as good as dead.
        return self._transport.receive(timeout=_META_TIMEOUT_SECONDS,
                                       on_events=self._received)

    def _reply_to(self, message: Message, replies: Sequence[Message]) -> Message:
        for reply in replies:
            if reply.get("channel") == message["channel"] and str(reply.get("id")) == message["id"]:
                return reply
        for reply in replies:  # some servers omit the id on errors
            if reply.get("channel") == message["channel"]:
                return reply
        raise TransportError(
            f"{message['channel']} got no reply from {self.endpoint}", FailureKind.PROTOCOL
        )

    def _handshake(self) -> Wait:
        if not self._setting_up:
            assert self._handle is not None
            if not self._hub.setups.enter(self._handle):
                return Wait(None, math.inf)  # woken when a slot is ours
            self._setting_up = True
        self._use_long_polling()
        types = ["long-polling", "websocket"] if self.allow_websocket else ["long-polling"]
        metrics.STREAMING_HANDSHAKES.labels(reason=self._handshake_reason).inc()
        self.handshakes += 1
        return self._send({
            "channel": "/meta/handshake", "version": "1.0", "minimumVersion": "1.0",
            "supportedConnectionTypes": types, "ext": {"replay": True},
        }, _META_TIMEOUT_SECONDS, self._handshaken)

    def _handshaken(self, reply: Message) -> Wait:
        self._take_advice(reply)
        if not reply.get("successful"):
            raise _Action(classify(reply), failure_text(reply), advice=_advice(reply))
        client_id = reply.get("clientId")
        if not isinstance(client_id, str) or not client_id:
            raise _Action(FailureKind.PROTOCOL, "handshake reply without a clientId")
        self._client_id = client_id
        offered = reply.get("supportedConnectionTypes") or []
        if self.allow_websocket and "websocket" in offered:
            self._use_websocket()
        log.info("bayeux_handshake", org=self.org, reason=self._handshake_reason,
                 transport=self._transport.name)
        return self._subscribe(0)

    def _use_long_polling(self) -> None:
        if self._transport is not self._http:
            self._transport.close()
            self._transport = self._http

    def _use_websocket(self) -> None:
        ws = WebSocketTransport(self.endpoint, ca_file=self._ca_file)
        cookies = self._http.cookie_header()
        try:
            ws.open(self._headers(), cookies or None, _META_TIMEOUT_SECONDS)
        except TransportError as exc:
            log.warning("bayeux_websocket_refused", org=self.org, error=str(exc),
                        transport="long-polling")
            return
        self._transport = ws

    def _subscribe(self, index: int) -> Wait:
        """Subscribe channel number `index`, then the next ones, then connect."""
        if index == len(self.channels):
            self._set_up()
            self._set_state(StreamState.CONNECTED)
            return self._send_connect()
        channel = self.channels[index]
        replay = self.subscriptions.replay_for(channel)

        def subscribed(reply: Message) -> Wait:
            if reply.get("successful"):
                self.subscriptions.subscribed(channel)
                return self._subscribe(index + 1)
            kind = classify(reply)
            if kind is FailureKind.REPLAY_INVALID:
                self.subscriptions.gap(channel, replay, failure_text(reply))
                raise _Action(kind, failure_text(reply))
            raise _Action(kind, f"subscribe {channel}: {failure_text(reply)}",
                          advice=_advice(reply))

        return self._send({
            "channel": "/meta/subscribe", "clientId": self._client_id,
            "subscription": channel, "ext": {"replay": {replay_key(channel): replay}},
        }, _META_TIMEOUT_SECONDS, subscribed)

    def _set_up(self) -> None:
        """The session is set up (or given up): its slot goes to another client."""
        if self._setting_up and self._handle is not None:
            self._setting_up = False
            self._hub.setups.leave(self._handle)

    def _send_connect(self) -> Wait:
        return self._send({
            "channel": "/meta/connect", "clientId": self._client_id,
            "connectionType": self._transport.name,
        }, self._hold + self._margin, self._connected)

    def _connected(self, reply: Message) -> Wait:
        self._take_advice(reply)
        if not reply.get("successful"):
            raise _Action(classify(reply), failure_text(reply), advice=_advice(reply))
        self._failures = 0
        self._refreshed = False
        self._set_state(StreamState.CONNECTED)
        advice = _advice(reply)
        if advice.get("reconnect") == "handshake":
            raise _Action(FailureKind.PROTOCOL, "server advised handshake", advice=advice)
        if advice.get("reconnect") == "none":
            raise _Action(FailureKind.PROTOCOL, "server advised reconnect none", advice=advice)
        if self._redeliver:
            self._redeliver = False
            raise _Action(FailureKind.UNSTORED, self._unstored)
        if self._interval > 0:  # the next step sends the connect
            return Wait(None, time.monotonic() + self._interval)
        return self._send_connect()

    def _take_advice(self, reply: Message) -> None:
        advice = _advice(reply)
        timeout = _milliseconds(advice.get("timeout"))
        if timeout is not None and timeout > 0:
            self._hold = min(timeout, _MAX_ADVISED_HOLD_SECONDS)
        interval = _milliseconds(advice.get("interval"))
        if interval is not None:
            self._interval = min(interval, _MAX_ADVISED_INTERVAL_SECONDS)

    def _disconnect(self, client_id: str | None) -> None:
        try:
            with stop_waits_within(self._stop):  # no token retries for a goodbye
                if client_id is not None:
                    self._use_long_polling()
                    self._http.exchange(
                        [{"channel": "/meta/disconnect", "clientId": client_id,
                          "id": self._message_id()}],
                        headers=self._headers(), timeout=_DISCONNECT_TIMEOUT_SECONDS,
                        on_events=lambda _events: None,
                    )
        except Exception as exc:
            log.debug("bayeux_disconnect_failed", org=self.org, error=str(exc))
        finally:
            self._transport.close()
            self._http.close()

    # -- recovery -----------------------------------------------------------------------

    def _recover(self, action: _Action) -> float:
        """Say what went wrong and set the session up again; returns the seconds to wait
        before the next step."""
        if self._stop.is_set():
            return 0.0
        kind = action.kind
        self._failures += 1
        if kind is FailureKind.REPLAY_INVALID:
            # Not a failure of the connection: resubscribe right away with -2.
            self._failures -= 1
            self._restart_session(kind.value)
            return self._wait(StreamState.RECONNECTING, kind, action.detail, 0.0)
        if kind is FailureKind.AUTH:
            if self._refresh_once(action.detail):
                self._restart_session(kind.value)
                return self._wait(StreamState.RECONNECTING, kind, action.detail, 0.0)
            delay = self._wait(StreamState.BACKOFF, kind, action.detail, self.backoff.long)
            self._restart_session(kind.value)
            return delay
        if kind in (FailureKind.LIMIT, FailureKind.NOT_ENABLED):
            self._restart_session(kind.value)
            return self._wait(StreamState.BACKOFF, kind, action.detail, self.backoff.long)
        if kind is FailureKind.UNSTORED:
            # Not the server's fault, and a re-handshake per attempt would be refused as
            # too many clients: resubscribe from the stored replay ids after a backoff of
            # its own, counted until a batch is stored (a full disk can last a while).
            self._failures -= 1
            self._restart_session("redeliver")
            return self._wait(StreamState.BACKOFF, kind, action.detail,
                              self.backoff.delay(self._unstored_failures))
        if kind is FailureKind.UNKNOWN_CLIENT:
            # Expected every few hours on Salesforce: come back at once the first time,
            # but never hot-loop when the server keeps forgetting us.
            self._restart_session(kind.value)
            delay = 0.0 if self._failures <= 1 else self.backoff.delay(self._failures - 1)
            return self._wait(StreamState.RECONNECTING, kind, action.detail, delay)
        if action.rehandshake or action.advice.get("reconnect") == "handshake":
            self._restart_session(kind.value if kind is not FailureKind.PROTOCOL else "advice")
            self._use_long_polling()
        return self._wait(StreamState.BACKOFF, kind, action.detail,
                          self.backoff.delay(self._failures))

    def _refresh_once(self, detail: str) -> bool:
        if self._refresh_token is None or self._refreshed:
            return False
        self._refreshed = True
        try:
            self._refresh_token()
        except Exception as exc:
            log.warning("bayeux_token_refresh_failed", org=self.org, error=str(exc))
            return False
        log.info("bayeux_token_refreshed", org=self.org, after="auth failure", detail=detail)
        return True

    def _restart_session(self, reason: str) -> None:
        self._client_id = None
        self._handshake_reason = reason

    def _wait(self, state: StreamState, kind: FailureKind, detail: str, delay: float) -> float:
        log.warning("bayeux_connection_problem", org=self.org, reason=kind.value, detail=detail,
                    retry_in_s=round(delay, 3), state=state.value)
        self._set_state(state, kind.value, detail, delay)
        return delay

    def _set_state(
        self, state: StreamState, reason: str = "", detail: str = "", retry_in: float | None = None
    ) -> None:
        if state is self.state and state is StreamState.CONNECTED:
            return
        if self._stop.is_set() and state is not StreamState.STOPPED:
            return  # a step that ends after stop() says nothing more
        self.state = state
        if self._on_status is not None:
            try:
                self._on_status(StreamStatus(state, reason, detail, retry_in))
            except Exception:
                log.exception("bayeux_status_callback_failed", org=self.org)

    # -- events -------------------------------------------------------------------------

    def _received(self, messages: list[Message]) -> None:
        events = [BayeuxEvent.from_message(m) for m in messages]
        self._events_received.inc(len(events))
        self._last_event_time.set(time.time())
        with self._delivering:
            if not self._stop.is_set():
                self._deliver(events)

    def _deliver(self, events: Sequence[BayeuxEvent]) -> None:
        try:
            self._on_events(events)
        except Exception as exc:
            # Not stored, so not acknowledged: a re-handshake resubscribes from the stored
            # replay ids and the server delivers these events again.
            self._unstored_failures += 1
            self._unstored = f"events not stored: {exc}"
            if isinstance(exc, IlydError):
                log.error("bayeux_events_not_stored", org=self.org, count=len(events),
                          error=str(exc), failures=self._unstored_failures)
            else:
                log.exception("bayeux_events_not_stored", org=self.org, count=len(events),
                              failures=self._unstored_failures)
            self._redeliver = True
            return
        self._unstored_failures = 0
        self.subscriptions.advance(events)
