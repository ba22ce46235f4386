"""Streaming controls of the admin API: `/_devorg/streaming/<org>[/<action>]`.

GET  /_devorg/streaming/<org>                  clients, channels (retained, last replay id),
                                               delivered events, handshakes, settings, and
                                               `delivery`: where each reply's oldest event
                                               waited (bucket counts; see DeliveryTimes)
PATCH /_devorg/streaming/<org>/settings        hold_seconds, reconnect_deadline,
                                               pushtopic_retention, cdc_retention,
                                               max_retained_events, daily_event_limit,
                                               max_clients, cdc_entity_limit
POST /_devorg/streaming/<org>/forget           forget clients (403::Unknown client next);
                                               body {"client_id": …} for one
POST /_devorg/streaming/<org>/drop             close held /meta/connect connections
POST /_devorg/streaming/<org>/invalidate       expire the org's access tokens and answer held
                                               connects with 401::Authentication invalid
POST /_devorg/streaming/<org>/expire-events    drop retained events; body {"channel": …}
                                               for one channel, {"older_than": seconds}
POST /_devorg/streaming/<org>/reset-replay     drop retained events and restart replay ids
                                               at 1 (ids get reused); body {"channel": …}
                                               for one channel
POST /_devorg/streaming/<org>/gap             publish a gap change event: body {"entity":
                                               "Lead", "record_ids": [...], "change_type":
                                               "GAP_UPDATE"} (or GAP_CREATE, GAP_DELETE,
                                               GAP_UNDELETE): ids, no fields
POST /_devorg/streaming/<org>/overflow        publish a GAP_OVERFLOW event (no ids) for
                                               body {"entity": "Account"}
POST /_devorg/streaming/<org>/mute             answer connects but deliver no event (a
                                               silent stall) until …/unmute; events are
                                               still logged and retained
POST /_devorg/streaming/<org>/garble           the next /meta/connect of the org is
                                               answered 200 with this request's body,
                                               verbatim (any bytes: malformed Bayeux);
                                               each call garbles one more connect

HTTP-level faults on the endpoint (5xx, dropped connections, latency) use the generic
fault rules of `/_devorg/faults` with `"path_prefix": "/cometd/"`.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from ilyd.devorg.cometd_state import streaming_of
from ilyd.devorg.web import Request, Response, json_response

if TYPE_CHECKING:
    from ilyd.devorg.app import DevOrg

__all__ = ["register"]

_PREFIX = "/_devorg/streaming/"
_GAP_TYPES = ("GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE", "GAP_OVERFLOW")


def register(router: Any, dev: DevOrg) -> None:
    """Mount the streaming controls."""
    router.mount(_PREFIX, lambda request: _handle(dev, request))


def _problem(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def _handle(dev: DevOrg, request: Request) -> Response:
    parts = request.path[len(_PREFIX):].strip("/").split("/")
    org = dev.org_by_name(parts[0]) if parts and parts[0] else None
    if org is None:
        return _problem(404, f"no org named {parts[0]!r}")
    action = parts[1] if len(parts) > 1 else ""
    if action == "garble" and request.method == "POST":
        # Taken as bytes, not parsed: the point is to send what no server should.
        streaming = streaming_of(org)
        with streaming.cond:
            streaming.garbled.append(bytes(request.body or b""))
            streaming.cond.notify_all()  # a held connect answers now
            pending = len(streaming.garbled)
        return json_response({"garbled": pending})
    try:
        body = json.loads(request.body or b"{}") if request.method != "GET" else {}
    except ValueError as exc:
        return _problem(400, f"body is not JSON: {exc}")
    streaming = streaming_of(org)
    if action == "" and request.method == "GET":
        return json_response(_status(streaming))
    if action == "settings" and request.method in ("GET", "PATCH", "POST"):
        try:
            unknown = streaming.settings.update(body)
        except (TypeError, ValueError) as exc:
            return _problem(400, f"bad setting value: {exc}")
        if unknown:
            return _problem(400, f"unknown settings: {', '.join(unknown)}")
        return json_response(streaming.settings.__dict__)
    if request.method != "POST":
        return _problem(405, f"{request.method} not allowed here")
    if action == "forget":
        return json_response({"forgotten": streaming.end_polls("forget", body.get("client_id"))})
    if action == "drop":
        return json_response({"dropped": streaming.end_polls("drop", body.get("client_id"))})
    if action == "invalidate":
        expired = dev.tokens.expire_org(org)
        streaming.end_polls("auth")
        return json_response({"expired_tokens": expired})
    if action == "expire-events":
        older = body.get("older_than")
        before = None if older is None else time.time() - float(older)
        channels = [body["channel"]] if body.get("channel") else list(streaming.logs)
        expired = sum(streaming.channel_log(ch).expire(before) for ch in channels)
        return json_response({"expired": expired})
    if action == "reset-replay":
        return json_response({"dropped": streaming.reset_replay(body.get("channel"))})
    if action in ("gap", "overflow"):
        kind = "GAP_OVERFLOW" if action == "overflow" else str(body.get("change_type")
                                                                or "GAP_UPDATE")
        if kind not in _GAP_TYPES:
            return _problem(400, f"change_type must be one of {', '.join(_GAP_TYPES)}")
        ids = body.get("record_ids") or []
        if kind != "GAP_OVERFLOW" and (not isinstance(ids, list) or not ids):
            return _problem(400, "record_ids: a non-empty list of record ids is required")
        published = streaming.publish_gap(str(body.get("entity") or ""), kind,
                                          tuple(str(i) for i in ids))
        if not published:
            return _problem(409, f"{body.get('entity')!r} is not selected for Change Data "
                                 "Capture: no change event is published for it")
        return json_response({"published": published, "change_type": kind})
    if action in ("mute", "unmute"):
        streaming.muted = action == "mute"
        return json_response({"muted": streaming.muted})
    return _problem(404, f"unknown streaming action {action!r}")


def _status(streaming: Any) -> dict[str, Any]:
    with streaming.cond:
        streaming.sweep()
        clients = [{"client_id": c.client_id, "subscriptions": sorted(c.subscriptions),
                    "polling": bool(c.polling), "queued": len(c.queue), "connects": c.connects}
                   for c in streaming.clients.values()]
        logs = dict(streaming.logs)
    channels = {}
    for name, log in logs.items():
        events = log.after(-2)
        channels[name] = {"retained": len(events),
                          "last_replay_id": events[-1].replay_id if events else None}
    return {"clients": clients, "channels": channels, "handshakes": streaming.handshakes,
            "muted": streaming.muted, "garbled": len(streaming.garbled),
            "delivered_today": streaming.delivered_today(),
            "delivery": streaming.delivery.as_json(),
            "settings": streaming.settings.__dict__}
