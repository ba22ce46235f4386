"""Filtered PushTopic subscriptions: `/topic/X?Field=value&Other='(415) 555-1212'`.

As Salesforce documents them
(https://developer.salesforce.com/docs/atlas.en-us.api_streaming.meta/api_streaming/using_filtered_subscriptions.htm):
- only PushTopic channels take a filter;
- conditions are joined with `&`, which acts as a logical OR: an event is delivered
  when ANY condition matches;
- every filter field must be in the topic's SELECT (the notification only carries
  those), else `400::Query fields {…} do not exist on the topic entity`;
- values may be quoted (`Industry='Energy'`) or bare (`Phone=(415) 555-1212`);
- ids are compared as sent, so a 15-character id matches nothing (18 only).

Each filtered subscription is its own Bayeux channel: events are delivered with the
channel name the client subscribed to, query string included, while the replay-map key
is the channel without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

__all__ = ["Subscription", "parse_subscription", "unknown_fields"]


def _value_text(value: Any) -> str:
    """An event field value as a filter compares it (JSON booleans lower-case)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Subscription:
    """One subscription of a client: the full channel name, its key, and its filter.

    `conditions` are (field, value) pairs; empty means unfiltered.
    """

    name: str
    key: str
    conditions: tuple[tuple[str, str], ...] = ()

    def matches(self, data: Mapping[str, Any]) -> bool:
        """Whether the event `data` (`{event, sobject}`) passes the filter."""
        if not self.conditions:
            return True
        sobject = data.get("sobject")
        if not isinstance(sobject, Mapping):
            return False
        by_lower = {str(k).lower(): v for k, v in sobject.items()}
        return any(
            field.lower() in by_lower and _value_text(by_lower[field.lower()]) == value
            for field, value in self.conditions
        )


def parse_subscription(channel: str) -> Subscription:
    """Split `channel` into its key and filter conditions (no validation against a topic)."""
    key, _, query = channel.partition("?")
    conditions = []
    for part in query.split("&") if query else ():
        if not part:
            continue
        field, eq, value = part.partition("=")
        value = unquote(value.strip())
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        # A condition without `=` names a field with no value: kept so that the field
        # check reports it rather than silently dropping it.
        conditions.append((unquote(field.strip()), value if eq else ""))
    return Subscription(channel, key, tuple(conditions))


def unknown_fields(subscription: Subscription, select_fields: Iterable[str]) -> list[str]:
    """Filter fields not in the topic's SELECT (lower-cased names), in the order given."""
    selected = {f.lower() for f in select_fields}
    return list(dict.fromkeys(f for f, _ in subscription.conditions if f.lower() not in selected))
