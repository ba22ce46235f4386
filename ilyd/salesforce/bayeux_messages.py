"""Bayeux message shapes and how ilyd reads Salesforce's (and generic servers') errors.

Errors are `code:args:message` strings (`403::Unknown client`). Codes differ between
servers — Salesforce sends `403::Unknown client`, Faye and old CometD `401::Unknown
client`, old Salesforce builds `402::Unknown client` — so the text decides, not the
code (https://developer.salesforce.com/docs/platform/api-streaming/guide/streaming-error-codes.html).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["BayeuxEvent", "FailureKind", "classify", "failure_text", "is_event", "replay_key"]

Message = dict[str, Any]
# A replay id sent as text: ASCII digits of a 64-bit long (str.isdigit() also takes "²",
# which int() refuses, and int() refuses more than 4300 digits).
_REPLAY_TEXT = re.compile(r"-?[0-9]{1,19}")


class FailureKind(StrEnum):
    """What a failed Bayeux reply (or HTTP exchange) means for the connect loop."""

    UNKNOWN_CLIENT = "unknown_client"  # re-handshake and resubscribe, whatever the advice
    AUTH = "auth"  # refresh the token once, then re-handshake
    LIMIT = "limit"  # allocation spent: long backoff
    NOT_ENABLED = "not_enabled"  # Streaming API / permission off: long backoff
    REPLAY_INVALID = "replay_invalid"  # stored replay id out of retention: -2 and a gap
    SUBSCRIBE = "subscribe"  # channel missing or refused
    SERVER = "server"  # 5xx: exponential backoff
    NETWORK = "network"  # connection refused/reset, timeout: exponential backoff
    PROTOCOL = "protocol"  # anything else the server refused
    UNSTORED = "unstored"  # events received but not stored here: back off, then redeliver


@dataclass(frozen=True)
class BayeuxEvent:
    """One event from a subscribed channel.

    `channel` is as delivered; `replay_id` is `data.event.replayId` (None on servers
    without replay); `data` is the message's data (`event` + `sobject`, or a CDC
    `payload`).
    """

    channel: str
    data: Mapping[str, Any] = field(default_factory=dict)
    replay_id: int | None = None

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> BayeuxEvent:
        """Build the event from a delivered Bayeux message."""
        data = message.get("data")
        if not isinstance(data, Mapping):
            data = {"payload": data}
        event = data.get("event")
        replay = event.get("replayId") if isinstance(event, Mapping) else None
        if type(replay) is not int:  # Salesforce sends an int; others may send text
            if isinstance(replay, str) and _REPLAY_TEXT.fullmatch(replay):
                replay = int(replay)
            elif not isinstance(replay, int) or isinstance(replay, bool):
                replay = None
        channel = message.get("channel", "")
        return cls(
            channel=channel if type(channel) is str else str(channel),
            data=data,
            replay_id=None if replay is None else int(replay),
        )


def replay_key(channel: str) -> str:
    """The replay-map key of a channel: without a PushTopic filter query string."""
    return channel.split("?", 1)[0]


def is_event(message: Mapping[str, Any]) -> bool:
    """True for a delivered event (not a /meta reply, not a publish acknowledgement)."""
    channel = str(message.get("channel", ""))
    return not channel.startswith("/meta/") and "data" in message


def failure_text(message: Mapping[str, Any]) -> str:
    """The error with Salesforce's failure reason, e.g. `403::Handshake denied (401::…)`."""
    error = str(message.get("error") or "unsuccessful reply without error")
    reason = _failure_reason(message)
    return f"{error} ({reason})" if reason else error


def _failure_reason(message: Mapping[str, Any]) -> str:
    ext = message.get("ext")
    sfdc = ext.get("sfdc") if isinstance(ext, Mapping) else None
    reason = sfdc.get("failureReason") if isinstance(sfdc, Mapping) else None
    return str(reason) if reason else ""


def classify(message: Mapping[str, Any]) -> FailureKind:
    """What an unsuccessful /meta reply asks of the client."""
    error = str(message.get("error") or "")
    reason = _failure_reason(message)
    text = f"{error} {reason}".lower()
    if "unknown client" in text:
        return FailureKind.UNKNOWN_CLIENT
    if reason.startswith("401") or error.startswith("401"):
        return FailureKind.AUTH
    if "limit exceeded" in text:
        return FailureKind.LIMIT
    if "not enabled" in text or "streaming api is disabled" in text:
        return FailureKind.NOT_ENABLED
    if "replayid" in text and "invalid" in text:
        return FailureKind.REPLAY_INVALID
    if message.get("channel") == "/meta/subscribe":
        return FailureKind.SUBSCRIBE
    return FailureKind.PROTOCOL


def split_replies(messages: Sequence[Mapping[str, Any]]) -> tuple[list[Message], list[Message]]:
    """(meta replies, events) of a response array, whatever their order."""
    replies: list[Message] = []
    events: list[Message] = []
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        channel = str(message.get("channel", ""))
        # Decoded JSON objects are fresh dicts already: copied only when they are not.
        if channel.startswith("/meta/"):
            replies.append(message if type(message) is dict else dict(message))
        elif "data" in message:
            events.append(message if type(message) is dict else dict(message))
    return replies, events
