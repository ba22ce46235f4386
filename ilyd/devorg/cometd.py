"""devorg's Streaming API endpoint: `/cometd/<version>`, Bayeux over long polling.

Behaves as Salesforce documents it (Streaming API Developer Guide, "Clients and
Timeouts" and "Streaming API Error Codes":
https://developer.salesforce.com/docs/platform/api-streaming/guide/using-streaming-api-timeouts.html,
https://developer.salesforce.com/docs/platform/api-streaming/guide/streaming-error-codes.html): POST
only, API 37.0+, JSON-array bodies up to 32,768 bytes, `Authorization: Bearer|OAuth`,
the BAYEUX_BROWSER cookie, replay ext (-1, -2, a retained id; exact error texts), the
110-second hold with Salesforce's advice, the 40-second reconnect deadline, the daily
delivery and concurrent-client allocations, handshake denial with its reason, and
filtered PushTopic subscriptions (ilyd/devorg/cometd_filters.py).
Test controls live under `/_devorg/streaming/` (ilyd/devorg/cometd_admin.py).
"""

from __future__ import annotations

import json
import re
import time
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from ilyd.devorg import cometd_admin
from ilyd.devorg.cometd_filters import parse_subscription, unknown_fields
from ilyd.devorg.cometd_state import ClientSession, OrgStreaming, streaming_of
from ilyd.devorg.web import Request, Response, json_response

if TYPE_CHECKING:
    from ilyd.devorg.app import DevOrg
    from ilyd.devorg.session import Session

__all__ = ["register"]

_MAX_BODY = 32_768
_VERSION = re.compile(r"^/cometd/(\d+)\.(\d+)/?$")
_COOKIE = "BAYEUX_BROWSER"
_UNKNOWN_CLIENT = "403::Unknown client"
_AUTH_INVALID = "401::Authentication invalid"
_REPLAY_INVALID = ("400::The replayId {{{0}}} you provided was invalid.  Please provide a valid "
                   "ID, -2 to replay all events, or -1 to replay only new events.")
_MAP_MISMATCH = ("400::The replayId for channel {{{0}}} wasn't found using the provided replay "
                 "ID map {{{{{1}}}}}. Ensure that the channel name you provided in the replay map "
                 "is valid and matches the channel name used for subscribing.")


def register(router: Any, dev: DevOrg) -> None:
    """Mount the endpoint and its admin controls; wire every org's change feed."""
    for state in dev.states.values():
        streaming_of(state)
    endpoint = _Endpoint(dev)
    router.mount("/cometd/", endpoint.handle)
    cometd_admin.register(router, dev)


def _text(status: int, message: str) -> Response:
    return Response(status, message.encode(), content_type="text/plain;charset=UTF-8")


_COOKIES: dict[str, str | None] = {}  # Cookie header -> its BAYEUX_BROWSER value
_COOKIES_MAX = 4096


def _browser_cookie(header: str) -> str | None:
    """The BAYEUX_BROWSER value of a Cookie header (None without one), as SimpleCookie
    parses it — remembered per header text: a client sends the same one every connect."""
    try:
        return _COOKIES[header]
    except KeyError:
        pass
    cookie = SimpleCookie(header)
    value = cookie[_COOKIE].value if _COOKIE in cookie else None
    if len(_COOKIES) >= _COOKIES_MAX:
        _COOKIES.clear()
    _COOKIES[header] = value
    return value


class _Endpoint:
    def __init__(self, dev: DevOrg) -> None:
        self.dev = dev

    def handle(self, request: Request) -> Response:
        m = _VERSION.match(request.path)
        if m is None:
            return _text(400, "API version in the URI is mandatory. URI format: '/cometd/62.0'")
        if int(m.group(1)) < 37:
            return _text(400, "Unsupported API version. Only API versions '37.0' and later are "
                              "supported.")
        if request.method != "POST":
            return _text(405, f"HTTP method {request.method} is not supported by this URL")
        body = request.body
        if len(body) > _MAX_BODY:
            return _text(413, "Maximum Request Size Exceeded")
        messages = self._messages(request, body)
        if not isinstance(messages, list) or not all(isinstance(x, dict) for x in messages):
            return _text(400, "Bayeux messages must be sent as a JSON-encoded array")
        if not request.headers.get("Authorization"):
            return json_response([self._error(msg, "401::Request requires authentication")
                                  for msg in messages], 401)
        session = self.dev.authenticate(request)
        replies: list[dict[str, Any]] = []
        headers: dict[str, str] = {}
        status = 200
        for msg in messages:
            channel = str(msg.get("channel") or "")
            if channel == "/meta/handshake":
                reply, cookie = self._handshake(msg, session)
                replies.append(reply)
                if cookie:
                    headers["Set-Cookie"] = f"{_COOKIE}={cookie}; Path=/cometd/; HttpOnly"
                continue
            found = self._client(msg, request, session)
            if isinstance(found, dict):
                if found["error"] == _AUTH_INVALID:
                    status = 401
                replies.append(found)
                continue
            streaming, client = found
            if channel == "/meta/connect":
                with streaming.cond:
                    garbled = streaming.garbled.popleft() if streaming.garbled else None
                if garbled is not None:
                    return Response(200, garbled)
                result = self._connect(msg, streaming, client)
                if isinstance(result, Response):
                    return result
                replies.extend(result)
            elif channel == "/meta/subscribe":
                replies.append(self._subscribe(msg, streaming, client))
            elif channel == "/meta/unsubscribe":
                with streaming.cond:
                    client.subscriptions.pop(str(msg.get("subscription") or ""), None)
                replies.append(self._ok(msg, client, subscription=msg.get("subscription")))
            elif channel == "/meta/disconnect":
                with streaming.cond:
                    streaming.clients.pop(client.client_id, None)
                    streaming.cond.notify_all()
                replies.append(self._ok(msg, client))
            else:
                replies.append(self._error(msg, f"403::Publishing to {channel} is not supported"))
        return json_response(replies, status, headers)

    # -- plumbing -------------------------------------------------------------------------
    @staticmethod
    def _messages(request: Request, body: bytes) -> Any:
        content_type = request.headers.get("Content-Type", "")
        try:
            if "x-www-form-urlencoded" in content_type:
                return json.loads(parse_qs(body.decode())["message"][0])
            return json.loads(body or b"null")
        except (ValueError, KeyError, UnicodeDecodeError):
            return None

    @staticmethod
    def _error(msg: dict[str, Any], error: str, **extra: Any) -> dict[str, Any]:
        reply = {"channel": msg.get("channel"), "successful": False, "error": error, **extra}
        if msg.get("id") is not None:
            reply["id"] = msg["id"]
        if msg.get("clientId"):
            reply["clientId"] = msg["clientId"]
        return reply

    @staticmethod
    def _ok(msg: dict[str, Any], client: ClientSession, **extra: Any) -> dict[str, Any]:
        reply = {"clientId": client.client_id, "channel": msg.get("channel"),
                 "successful": True, **extra}
        if msg.get("id") is not None:
            reply["id"] = msg["id"]
        return reply

    def _handshake(self, msg: dict[str, Any], session: Session | None
                   ) -> tuple[dict[str, Any], str | None]:
        def denied(reason: str) -> tuple[dict[str, Any], None]:
            return self._error(msg, "403::Handshake denied",
                               ext={"sfdc": {"failureReason": reason}},
                               advice={"reconnect": "none"}), None

        if session is None:
            return denied(_AUTH_INVALID)
        org = session.org
        if not org.settings.streaming_enabled:
            return denied("403::Streaming API is not enabled for this organization")
        if not org.access(session.user_id).has("PermissionsStreamingApiEnabled"):
            return denied("403::User not enabled for streaming")
        streaming = streaming_of(org)
        with streaming.cond:
            streaming.sweep()
            if len(streaming.clients) >= streaming.settings.max_clients:
                return denied("403::Organization concurrent user limit exceeded")
            client = streaming.new_client(session.user_id)
        reply = {"ext": {"replay": True, "payload.format": True}, "minimumVersion": "1.0",
                 "clientId": client.client_id, "supportedConnectionTypes": ["long-polling"],
                 "channel": "/meta/handshake", "version": "1.0", "successful": True}
        if msg.get("id") is not None:
            reply["id"] = msg["id"]
        return reply, client.cookie

    def _client(self, msg: dict[str, Any], request: Request, session: Session | None
                ) -> tuple[OrgStreaming, ClientSession] | dict[str, Any]:
        client_id = str(msg.get("clientId") or "")
        if session is None:
            return self._error(msg, _AUTH_INVALID, advice={"reconnect": "none", "interval": 0})
        streaming = streaming_of(session.org)
        with streaming.cond:
            streaming.sweep()
            client = streaming.clients.get(client_id)
        if client is None:
            return self._error(msg, _UNKNOWN_CLIENT, advice={"reconnect": "handshake",
                                                             "interval": 0})
        if _browser_cookie(request.headers.get("Cookie", "")) != client.cookie:
            return self._error(msg, f"400::Client {client_id} has established a session, but no "
                                    f"{_COOKIE} cookie present")
        if not session.org.settings.streaming_enabled:
            return self._error(msg, "403::Streaming API is not enabled for this organization",
                               advice={"reconnect": "none"})
        return streaming, client

    # -- /meta/connect --------------------------------------------------------------------
    def _connect(self, msg: dict[str, Any], streaming: OrgStreaming, client: ClientSession
                 ) -> list[dict[str, Any]] | Response:
        settings = streaming.settings
        arrived = time.monotonic()
        with streaming.cond:
            if streaming.delivered_today() >= settings.daily_event_limit:
                client.last_reply = time.time()
                return [self._error(msg, "403::Organization total events daily limit exceeded",
                                    advice={"reconnect": "none"})]
            client.connects += 1
            first = client.connects == 1
            client.poll_generation += 1
            generation = client.poll_generation
            client.polling += 1
            deadline = time.monotonic() + settings.hold_seconds
            try:
                while (not first and not client.queue and client.abort is None
                       and not streaming.garbled):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or client.poll_generation != generation:
                        break
                    streaming.cond.wait(min(remaining, 1.0))
                abort, client.abort = client.abort, None
                events = list(client.queue)
                client.queue.clear()
                since, client.queued_since = client.queued_since, None
                streaming.count_delivered(len(events), sum(
                    1 for e in events if str(e.get("channel") or "").startswith("/data/")))
            finally:
                client.polling -= 1
                client.last_reply = time.time()
        if abort == "drop":
            with streaming.cond:
                client.queue.extendleft(reversed(events))  # never delivered: keep them
                if events:
                    client.queued_since = since
            return Response(drop=True)
        if abort == "forget":
            return [self._error(msg, _UNKNOWN_CLIENT,
                                advice={"reconnect": "handshake", "interval": 0})]
        if abort == "auth":
            return [self._error(msg, _AUTH_INVALID, advice={"reconnect": "none", "interval": 0})]
        reply = self._ok(msg, client)
        if events and since is not None:
            streaming.delivery.observe(since, arrived, time.monotonic())
        if first:
            reply["advice"] = {"reconnect": "retry", "interval": 0,
                               "timeout": int(settings.hold_seconds * 1000)}
        return [reply, *events]

    # -- /meta/subscribe ------------------------------------------------------------------
    def _subscribe(self, msg: dict[str, Any], streaming: OrgStreaming, client: ClientSession
                   ) -> dict[str, Any]:
        channel = msg.get("subscription")
        if not channel:
            return self._error(msg, "400::Channel name not specified")
        channel = str(channel)
        if not channel.startswith("/"):
            return self._error(msg, "400::Channel subscriptions must start with a leading '/'")
        sub = parse_subscription(channel)
        key = sub.key
        topic = (streaming.topics.by_name(key.removeprefix("/topic/"))
                 if key.startswith("/topic/") else None)
        # Only PushTopic channels take a filter; on any other channel the query string
        # makes a channel name that does not exist (Salesforce's exact text UNVERIFIED).
        if not streaming.channel_exists(key) or (sub.conditions and topic is None):
            return self._error(msg, f"400::The channel you requested to subscribe to doesn't "
                                    f"exist {{{channel}}}", subscription=channel)
        if topic is not None:
            unknown = unknown_fields(sub, topic.select_fields)
            if unknown:
                return self._error(msg, f"400::Query fields {{{', '.join(unknown)}}} do not "
                                        f"exist on the topic entity", subscription=channel)
        ext = msg.get("ext") if isinstance(msg.get("ext"), dict) else {}
        replay_map = ext.get("replay") if isinstance(ext.get("replay"), dict) else None
        replay = -1
        if replay_map is not None:
            if key not in replay_map:
                shown = ", ".join(f"{k}={v}" for k, v in replay_map.items())
                return self._error(msg, _MAP_MISMATCH.format(key, shown), subscription=channel)
            try:
                replay = int(replay_map[key])
            except (TypeError, ValueError):
                return self._error(msg, _REPLAY_INVALID.format(replay_map[key]),
                                   subscription=channel)
        log = streaming.channel_log(key)
        # Reading the backlog and subscribing under the org's lock: an event published in
        # between is in the backlog or fanned out to us (or both: duplicates are allowed).
        with streaming.cond:
            if replay == -1:
                backlog = []
            elif replay == -2 or log.retains(replay):
                backlog = log.after(replay)
            else:
                return self._error(msg, _REPLAY_INVALID.format(replay), subscription=channel)
            client.subscriptions[channel] = sub
            if not streaming.muted:
                client.enqueue(streaming.messages(sub, backlog, client))
            streaming.cond.notify_all()
        return self._ok(msg, client, subscription=channel)
