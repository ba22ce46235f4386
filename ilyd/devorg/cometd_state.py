"""Per-org streaming state: Bayeux clients, channel logs, settings, delivery counters.

One `OrgStreaming` per org (kept in `OrgState.extra["cometd"]`) listens to the org's
change feed, logs PushTopic and CDC events per channel, and queues each event for the
clients subscribed to its channel. Held /meta/connect requests wait on the org's
condition variable and wake up when their client has something to deliver.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import random
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from ilyd.devorg.changes import Change, call_origin
from ilyd.devorg.cometd_cdc import CDC_ENTITIES, selected_entities
from ilyd.devorg.cometd_filters import Subscription
from ilyd.devorg.cometd_log import ChannelLog, LoggedEvent, start_id
from ilyd.devorg.cometd_topics import (
    CompiledTopic,
    TopicCache,
    cdc_compact,
    pushtopic_data,
)
from ilyd.devorg.org import OrgState
from ilyd.devorg.query_schema import OrgSchema

__all__ = ["ClientSession", "OrgStreaming", "StreamingSettings", "streaming_of"]

log = structlog.get_logger(__name__)
_DAY = 86400.0


@dataclass
class StreamingSettings:
    """Adjustable through `/_devorg/streaming/<org>/settings` (see ADMIN.md)."""

    hold_seconds: float = 110.0  # how long a /meta/connect is held without events
    reconnect_deadline: float = 40.0  # a client silent this long after a reply is forgotten
    pushtopic_retention: float = _DAY
    cdc_retention: float = 3 * _DAY
    max_retained_events: int = 100_000  # per channel; older events are purged first
    daily_event_limit: int = 200_000  # delivered events per rolling 24 h (Enterprise)
    max_clients: int = 1000  # concurrent CometD clients (Enterprise: 1,000; Dev: 20)
    # Entities an org may select for Change Data Capture without the add-on licence:
    # https://developer.salesforce.com/docs/platform/change-data-capture/guide/cdc-considerations.html
    cdc_entity_limit: int = 5
    # Change events delivered to CometD clients per 24 h (Enterprise Edition), reported in
    # /limits as DailyDeliveredPlatformEvents.
    cdc_daily_delivery_limit: int = 25_000

    def update(self, values: dict[str, Any]) -> list[str]:
        """Apply known keys; returns the unknown ones."""
        known = {f.name: f for f in dataclasses.fields(self)}
        for key, value in values.items():
            if key in known:
                setattr(self, key, type(getattr(self, key))(value))
        return [k for k in values if k not in known]


@dataclass
class ClientSession:
    """One handshaken Bayeux client."""

    client_id: str
    user_id: str
    cookie: str
    # by full channel name (a filtered PushTopic subscription keeps its query string)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    queue: deque[dict[str, Any]] = field(default_factory=deque)
    polling: int = 0  # held connects right now
    poll_generation: int = 0  # a new connect releases an older held one
    connects: int = 0
    last_reply: float = field(default_factory=time.time)
    abort: str | None = None  # "drop" | "forget" | "auth": end the held connect this way
    # time.monotonic() when the queue last went from empty to not empty (None: empty)
    queued_since: float | None = None

    def enqueue(self, messages: list[dict[str, Any]]) -> None:
        """Queue messages for the client's next connect (the org's lock held)."""
        if messages:
            if not self.queue:
                self.queued_since = time.monotonic()
            self.queue.extend(messages)


# Bounds (seconds) of the delivery timing histograms: from a millisecond to the longest
# hold Salesforce allows a connect (110 s) and beyond.
DELIVERY_BOUNDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                   30.0, 120.0)


class DeliveryTimes:
    """Where the oldest event of each connect reply spent its time before the reply:
    waiting for the client's next /meta/connect (the client's side), and from that connect
    or the event, whichever came last, to the reply (the server's side). A benchmark tells
    the two apart with it; fixed buckets, so its size is bounded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.connect_wait = [0] * (len(DELIVERY_BOUNDS) + 1)
        self.answer = [0] * (len(DELIVERY_BOUNDS) + 1)
        self.replies = 0

    def observe(self, queued_since: float, arrived: float, answered: float) -> None:
        """One reply carrying events queued since `queued_since`, to a connect that
        arrived at `arrived`, answered at `answered` (all time.monotonic())."""
        wait = max(0.0, arrived - queued_since)
        answer = max(0.0, answered - max(arrived, queued_since))
        with self._lock:
            self.connect_wait[bisect.bisect_left(DELIVERY_BOUNDS, wait)] += 1
            self.answer[bisect.bisect_left(DELIVERY_BOUNDS, answer)] += 1
            self.replies += 1

    def as_json(self) -> dict[str, Any]:
        """Counts per bucket: `bounds[i]` is bucket i's upper bound (the last: beyond)."""
        with self._lock:
            return {"bounds": list(DELIVERY_BOUNDS), "replies": self.replies,
                    "connect_wait": list(self.connect_wait), "answer": list(self.answer)}


class OrgStreaming:
    """The streaming side of one org."""

    def __init__(self, org: OrgState) -> None:
        self.org = org
        self.settings = StreamingSettings()
        self.cond = threading.Condition()
        self.clients: dict[str, ClientSession] = {}
        self.logs: dict[str, ChannelLog] = {}
        self.topics = TopicCache(org)
        self.handshakes = 0
        self.delivery = DeliveryTimes()
        # Fault injection (`/_devorg/streaming/<org>/mute`): connects are answered, events
        # are logged and retained, but none reaches a client.
        self.muted = False
        # Fault injection (`/_devorg/streaming/<org>/garble`): bodies the next connects of
        # the org are answered with, verbatim, one each, oldest first.
        self.garbled: deque[bytes] = deque()
        self._delivered: deque[tuple[float, int]] = deque()
        self._delivered_total = 0  # the sum over _delivered, kept as entries come and go
        self._cdc_delivered: deque[tuple[float, int]] = deque()
        # OrgSchema of the org's own user for PushTopic queries, with the permission
        # version it was built at: building one reads every field's FLS, once per commit
        # otherwise (see schema_for_topics).
        self._topic_schema: tuple[int, OrgSchema] | None = None
        self._commit_numbers = itertools.count(10_000_000)
        # Where a channel logged for the first time starts its ids (1 after reset-replay).
        self._first_id = start_id()
        self._journal = org.extra.get("event_journal")
        if self._journal is not None:  # --data: the channels as they were, ids continuing
            for channel, (next_id, events) in self._journal.load().items():
                self.logs[channel] = self._new_log(channel, next_id, events)
        self.unsubscribe_feed = org.changes.subscribe_batch(self.on_changes)

    # -- channels and events -------------------------------------------------------------
    def channel_log(self, channel: str) -> ChannelLog:
        """The log of a channel, created on first use."""
        existing = self.logs.get(channel)  # logs are never removed: no lock to find one
        if existing is not None:
            return existing
        with self.cond:
            existing = self.logs.get(channel)
            if existing is None:
                existing = self.logs[channel] = self._new_log(channel, self._first_id, ())
            return existing

    def _new_log(self, channel: str, first_id: int, events: Any) -> ChannelLog:
        cdc = channel.startswith("/data/")
        return ChannelLog(
            channel,
            retention=(lambda: self.settings.cdc_retention) if cdc
            else (lambda: self.settings.pushtopic_retention),
            max_events=lambda: self.settings.max_retained_events,
            first_id=first_id, journal=self._journal, restored=events,
        )

    def reset_replay(self, channel: str | None = None) -> int:
        """Fault injection: drop the retained events of every channel (or one) and restart
        their replay ids at 1, as devorg did after a restart before it kept them (channels
        first logged later start at 1 too); returns how many events went."""
        if not channel:
            self._first_id = 1
        channels = [channel] if channel else list(self.logs)
        return sum(self.channel_log(ch).reset(1) for ch in channels)

    def channel_exists(self, channel: str) -> bool:
        """Whether subscribing to `channel` is allowed (active PushTopic or a CDC channel)."""
        if channel.startswith("/topic/"):
            return self.topics.by_name(channel[len("/topic/"):]) is not None
        # Subscribing to an entity that is not selected succeeds and delivers nothing
        # until it is selected.
        cdc = {f"/data/{o}ChangeEvent" for o in CDC_ENTITIES} | {"/data/ChangeEvents"}
        return channel in cdc

    def on_change(self, change: Change) -> None:
        """Log and fan out the events of one change (see `on_changes`)."""
        self.on_changes([change])

    def on_changes(self, changes: list[Change]) -> None:
        """Change-feed callback for one commit (runs in the writer's thread): log and fan
        out its events. Topics, channel logs and subscribers are looked up once per commit,
        not once per record: a Bulk batch commits thousands of records at a time."""
        if not self.org.settings.streaming_enabled or not changes:
            return
        topics = self.topics.active()
        schema = None
        events: dict[str, list[dict[str, Any]]] = {}
        qualifies: dict[tuple[str, frozenset[str]], bool] = {}
        by_sobject: dict[str, list[CompiledTopic]] = {}
        for change in changes if topics else ():
            candidates = by_sobject.get(change.sobject)
            if candidates is None:
                candidates = by_sobject[change.sobject] = [
                    t for t in topics if t.sobject.lower() == change.sobject.lower()]
            for topic in candidates:
                if change.change_type not in topic.operations:
                    continue
                if change.change_type == "updated":
                    key = (topic.name, change.changed_fields)
                    ok = qualifies.get(key)
                    if ok is None:
                        ok = qualifies[key] = topic.fields_qualify(change.changed_fields)
                    if not ok:
                        continue  # the usual case for a write of fields the topic ignores
                if schema is None:
                    schema = self.schema_for_topics()
                data = pushtopic_data(self.org, topic, change, schema)
                if data is not None:
                    events.setdefault(f"/topic/{topic.name}", []).append(data)
        queued = False
        for channel, datas in events.items():
            queued |= self._publish_many(channel, datas, nested_replay=True)
        selected = selected_entities(self.org) if any(
            c.sobject in CDC_ENTITIES for c in changes) else frozenset()
        cdc = [c for c in changes if c.sobject in selected]
        if cdc:
            # One transaction per commit: shared key and commit number, numbered changes.
            commit_number = next(self._commit_numbers)
            # a version-4 UUID without os.urandom's system call, once per commit
            transaction_key = str(uuid.UUID(int=random.getrandbits(128), version=4))
            names_cache: dict[frozenset[str], tuple[str, ...]] = {}
            compact: dict[str, list[tuple[Any, ...]]] = {}
            origin = call_origin.get()
            for sequence, change in enumerate(cdc, 1):
                compact.setdefault(change.sobject, []).append(cdc_compact(
                    change, commit_number, transaction_key, sequence, names_cache, origin=origin))
            queued |= self._publish_cdc(compact)
        if queued:
            # Once per commit and only when a client got something: each notify wakes
            # every held connect of the org, which otherwise wakes just to wait again.
            with self.cond:
                self.cond.notify_all()

    def _publish_cdc(self, compact: dict[str, list[tuple[Any, ...]]]) -> bool:
        queued = False
        for sobject, items in compact.items():
            queued |= self._publish_many(f"/data/{sobject}ChangeEvent", items, render="cdc")
        queued |= self._publish_many("/data/ChangeEvents", [i for items in compact.values()
                                                            for i in items], render="cdc")
        return queued

    def publish_gap(self, sobject: str, change_type: str, record_ids: tuple[str, ...] = ()
                    ) -> int:
        """Admin trigger: publish a gap event (GAP_CREATE/UPDATE/DELETE/UNDELETE with the
        record ids and no fields) or an overflow event (GAP_OVERFLOW, no ids), as
        Salesforce does when it cannot build a change event or a transaction has too many
        changes; returns how many events were logged (0 when the entity is not selected)."""
        if sobject not in selected_entities(self.org):
            return 0
        ids = () if change_type == "GAP_OVERFLOW" else tuple(record_ids)
        compact = (sobject, ids, change_type, (), (), (),
                   str(uuid.UUID(int=random.getrandbits(128), version=4)), 1,
                   int(time.time() * 1000), next(self._commit_numbers),
                   self.org.identity.user_id, "")
        if self._publish_cdc({sobject: [compact]}):
            with self.cond:
                self.cond.notify_all()
        return 1

    def schema_for_topics(self) -> OrgSchema:
        """The `OrgSchema` PushTopic queries bind to (the org's own user), reused until
        the org's permissions or custom fields change (both bump its permissions
        version): its field maps are the same until then."""
        version = self.org.permissions_version
        cached = self._topic_schema
        if cached is None or cached[0] != version:
            cached = self._topic_schema = (version,
                                           OrgSchema(self.org, self.org.identity.user_id))
        return cached[1]

    def _publish(self, channel: str, data: dict[str, Any], *, nested_replay: bool) -> None:
        if self._publish_many(channel, [data], nested_replay=nested_replay):
            with self.cond:
                self.cond.notify_all()

    def _publish_many(self, channel: str, items: list[Any], *, nested_replay: bool = False,
                      render: str | None = None) -> bool:
        """Log events (data dicts, or compact items with `render`) and queue them for the
        channel's subscribers; whether any client's queue grew (the caller notifies)."""
        def build(data: dict[str, Any], replay_id: int) -> dict[str, Any]:
            if nested_replay:
                return {**data, "event": {**data["event"], "replayId": replay_id}}
            return {**data, "event": {"replayId": replay_id}}

        log = self.channel_log(channel)
        logged = log.extend(items, render=render) if render else log.extend(items, build)
        queued = False
        if self.muted:
            return False
        with self.cond:
            for client in self.clients.values():
                for sub in client.subscriptions.values():
                    if sub.key == channel:
                        messages = self.messages(sub, logged, client)
                        if messages:
                            client.enqueue(messages)
                            queued = True
        return queued

    @staticmethod
    def messages(sub: Subscription, events: Iterable[LoggedEvent], client: ClientSession
                 ) -> list[dict[str, Any]]:
        """The messages delivering `events` to `client` through one subscription: only
        those passing its filter, on the channel name it subscribed to (query string and
        all, as Salesforce delivers filtered subscriptions)."""
        if not sub.conditions:
            return [{"clientId": client.client_id, "channel": sub.name, "data": e.data}
                    for e in events]
        out = []
        for event in events:
            data = event.data
            if sub.matches(data):
                out.append({"clientId": client.client_id, "channel": sub.name, "data": data})
        return out

    # -- clients -------------------------------------------------------------------------
    def sweep(self) -> None:
        """Forget clients that did not reconnect within the deadline (call under cond)."""
        horizon = time.time() - self.settings.reconnect_deadline
        for cid in [c.client_id for c in self.clients.values()
                    if not c.polling and c.last_reply < horizon]:
            del self.clients[cid]

    def new_client(self, user_id: str) -> ClientSession:
        """Register a handshaken client (call under cond, after checking the limit)."""
        client = ClientSession(client_id=secrets.token_hex(14), user_id=user_id,
                               cookie=secrets.token_urlsafe(24))
        self.clients[client.client_id] = client
        self.handshakes += 1
        return client

    def end_polls(self, how: str, client_id: str | None = None) -> int:
        """Fault injection: end held connects (`drop`, `auth`) or forget clients (`forget`)."""
        with self.cond:
            victims = [c for c in self.clients.values()
                       if client_id is None or c.client_id == client_id]
            for client in victims:
                if how == "forget":
                    del self.clients[client.client_id]
                if client.polling:
                    client.abort = how
            self.cond.notify_all()
            return len(victims)

    # -- daily delivery allocation ---------------------------------------------------------
    def delivered_today(self) -> int:
        """Events delivered in the last 24 hours."""
        horizon = time.time() - _DAY
        delivered = self._delivered
        while delivered and delivered[0][0] < horizon:
            self._delivered_total -= delivered.popleft()[1]
        return self._delivered_total

    def count_delivered(self, n: int, cdc: int = 0) -> None:
        """Record `n` delivered events, `cdc` of them change events (which also count
        against the platform-event delivery allocation, see `cdc_delivered_today`)."""
        if n:
            self._delivered.append((time.time(), n))
            self._delivered_total += n
        if cdc:
            self._cdc_delivered.append((time.time(), cdc))

    def cdc_delivered_today(self) -> int:
        """Change events delivered in the last 24 hours: /limits reports them as
        DailyDeliveredPlatformEvents, the allocation shared with high-volume platform events
        (https://developer.salesforce.com/docs/atlas.en-us.platform_events.meta/platform_events/platform_event_limits.htm)."""
        horizon = time.time() - _DAY
        while self._cdc_delivered and self._cdc_delivered[0][0] < horizon:
            self._cdc_delivered.popleft()
        return sum(n for _, n in self._cdc_delivered)


def streaming_of(org: OrgState) -> OrgStreaming:
    """The org's streaming state, created (and wired to its change feed) on first use."""
    with org.lock:
        state = org.extra.get("cometd")
        if state is None:
            state = OrgStreaming(org)
            org.extra["cometd"] = state
        return state  # type: ignore[return-value]
