"""The Subscriber: the org's Bayeux stream into the durable inbox.

`SubscriptionLoop` (plain class) owns one `BayeuxClient` (its connect loop runs in the
client's own thread; events arrive on the client's dispatcher thread, never on the
connect thread) and writes every batch of events to the inbox together with the
channel's replay id in ONE transaction. Resubscribing reads the replay ids back from
the store, so whatever was acknowledged is never asked for again and whatever was not
is delivered again. When Salesforce no longer holds a stored id, `on_gap` starts the
SOQL catch-up on SystemModstamp from the earliest safe point (`ReplayStore.gap_start`:
the checkpoint, the stored replay id's event time, or when the channel was first
subscribed), and the window is logged.

`SubscriberComponent` is the org's part around it. The org starts it unless it is fed by
polling (`ilyd.provision.feed`); it decides from the facts an earlier start stored (a
warm start asks Salesforce nothing) or, with none, reads them and stores them. Should
the facts say polling (a first start), it records that and hands the org to a poller,
a part it adds to the org (stopped with the org); later starts begin with the poller.
Otherwise it starts the loop, publishes connected / reconnecting / backoff with the
reason, and runs catch-ups and the reconciliation sweep in its messages.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pykka
import structlog

from ilyd import metrics
from ilyd.actors.component import Component, ComponentRef
from ilyd.actors.context import OrgContext
from ilyd.actors.poller import PollerComponent
from ilyd.actors.sweeps import Reconcile, StartSweeps, Sweeps
from ilyd.errors import IlydError, NeedsReauthError
from ilyd.metrics import EVENTS_SKIPPED, ORG_SOURCE
from ilyd.pipeline.cdc import CDC_CHANNELS, SOURCES, read_inputs, triage
from ilyd.pipeline.cdc_source import choose_source
from ilyd.pipeline.poller import Poller
from ilyd.pipeline.wakeup import TIMERS
from ilyd.provision.facts import OrgFacts, gather
from ilyd.provision.feed import POLLING, STREAMING, decide_feed, remember, stored_facts
from ilyd.provision.spec import PUSH_TOPICS
from ilyd.salesforce.bayeux import (
    BackoffPolicy,
    BayeuxClient,
    BayeuxEvent,
    ReplayGap,
    StreamStatus,
)
from ilyd.salesforce.bayeux_messages import replay_key
from ilyd.store.inbox import Handed, Inbox, InboxEntry
from ilyd.store.org_facts import OrgFactsStore
from ilyd.store.replay import ALL_RETAINED, GapStart

__all__ = ["SubscriberComponent", "SubscriptionLoop", "entries_of", "event_time"]

log = structlog.get_logger(__name__)

_CDC_TYPES = {"CREATE": "created", "UPDATE": "updated", "DELETE": "deleted",
              "UNDELETE": "undeleted"}


def _parse_time(value: object) -> datetime | None:
    if isinstance(value, str):
        return _parse_text_time(value)
    if isinstance(value, int | float):  # CDC commitTimestamp: epoch milliseconds
        return datetime.fromtimestamp(value / 1000.0, UTC)
    return None


# An event's time is read for its entries and again for its replay id: parse it once.
@functools.lru_cache(maxsize=64)
def _parse_text_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def event_time(event: BayeuxEvent) -> datetime | None:
    """When the change behind an event happened (PushTopic createdDate, CDC commitTimestamp)."""
    meta = event.data.get("event")
    if isinstance(meta, Mapping) and meta.get("createdDate") is not None:
        return _parse_time(meta.get("createdDate"))
    payload = event.data.get("payload")
    header = payload.get("ChangeEventHeader") if isinstance(payload, Mapping) else None
    return _parse_time(header.get("commitTimestamp")) if isinstance(header, Mapping) else None


def entries_of(event: BayeuxEvent, sobject: str | None) -> list[InboxEntry]:
    """The inbox entries an event stands for (PushTopic: one; CDC: one per record id).

    Deleted records have nothing left to enrich: they yield no entry (the replay id of
    their event is still stored).
    """
    data = event.data
    if "sobject" in data and isinstance(data["sobject"], Mapping):
        meta = data.get("event") or {}
        kind = str(meta.get("type") or "updated")
        record = dict(data["sobject"])
        record_id = str(record.get("Id") or "")
        if not record_id or not sobject or kind == "deleted":
            return []
        return [InboxEntry(sobject, record_id, record, kind, _parse_time(meta.get("createdDate")))]
    payload = data.get("payload")
    if isinstance(payload, Mapping) and isinstance(payload.get("ChangeEventHeader"), Mapping):
        header = payload["ChangeEventHeader"]
        kind = _CDC_TYPES.get(str(header.get("changeType")), "updated")
        entity = str(header.get("entityName") or sobject or "")
        if kind == "deleted" or not entity:
            return []
        fields = {k: v for k, v in payload.items() if k != "ChangeEventHeader"}
        stamp = _parse_time(header.get("commitTimestamp"))
        return [InboxEntry(entity, str(rid), fields, kind, stamp)
                for rid in header.get("recordIds") or [] if "*" not in str(rid)]
    return []


class SubscriptionLoop:
    """One org's Bayeux subscription feeding the inbox (no actor needed to use it).

    `channels` maps each channel to the sObject its events are about.
    `catch_up(sobject, since)` runs the SOQL catch-up after a replay gap (default: on a
    short-lived thread); `since` is the earliest safe point, or None if none is known.
    """

    def __init__(
        self,
        org: str,
        endpoint: str,
        channels: Mapping[str, str],
        inbox: Inbox,
        *,
        access_token: Callable[[], str],
        refresh_token: Callable[[], str] | None = None,
        on_status: Callable[[StreamStatus], None] | None = None,
        catch_up: Callable[[str, datetime | None], object] | None = None,
        on_gap: Callable[[ReplayGap, str], None] | None = None,
        on_stored: Callable[[int], None] | None = None,
        hand_off: Callable[[int, list[Handed] | None], None] | None = None,
        backoff: BackoffPolicy | None = None,
        ca_file: str | None = None,
        cdc_client: str = "ilyd",
        read_inputs: Callable[[str, Sequence[str]], Mapping[str, Mapping[str, Any]]]
        | None = None,
    ) -> None:
        self.org = org
        self.inbox = inbox
        self.channels = {replay_key(c): s for c, s in channels.items()}
        # Change events: ilyd's own client name, and how the inputs an UPDATE or a gap
        # event lacks are read (one query per object and 200 ids; ilyd/pipeline/cdc.py).
        self._cdc_client = cdc_client
        self._read_inputs = read_inputs
        self._catch_up = catch_up
        self._on_gap = on_gap
        self._on_stored = on_stored
        # Told instead, with the rows as their puts handed them over (None when some
        # were not: see `Inbox.put`), so the enricher need not read them back.
        self._hand_off = hand_off
        self.gaps: list[ReplayGap] = []
        # Catch-up start per object, fixed when the gap is found: by the time the catch-up
        # runs, events replayed with -2 may already have moved the checkpoint past the gap.
        self._gap_starts: dict[str, GapStart] = {}
        self._gap_lock = threading.Lock()
        self.client = BayeuxClient(
            endpoint, channels=list(channels), on_events=self.store,
            access_token=access_token, refresh_token=refresh_token,
            replay_ids=lambda: inbox.replay.all(org), on_status=on_status,
            # First subscription of a channel (nothing stored yet): everything retained,
            # so records changed before the daemon first connected are not skipped.
            default_replay=ALL_RETAINED,
            on_gap=self._gap, org=org, backoff=backoff, ca_file=ca_file,
        )

    def start(self) -> None:
        """Remember when each channel was first subscribed, then start the client."""
        for channel in self.channels:
            self.inbox.replay.mark_subscribed(self.org, channel)
        self.client.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the client; events already received are stored first."""
        self.client.stop(timeout)

    def store(self, events: Sequence[BayeuxEvent]) -> None:
        """Write a batch: per channel, its entries and its last replay id in one transaction."""
        entries: dict[str, list[InboxEntry]] = {}
        last: dict[str, BayeuxEvent] = {}  # per channel, its last event with a replay id
        changes: dict[str, list[Mapping[str, Any]]] = {}  # CDC payloads by channel
        now = time.time()
        for event in events:
            happened = event_time(event)
            if happened is not None:
                metrics.EVENT_AGE_SECONDS.observe(max(0.0, now - happened.timestamp()))
            channel = replay_key(event.channel)
            payload = event.data.get("payload")
            if channel.startswith("/data/") and isinstance(payload, Mapping):
                changes.setdefault(channel, []).append(payload)
                entries.setdefault(channel, [])
            else:
                found = entries_of(event, self.channels.get(channel))
                if channel in entries:
                    entries[channel].extend(found)
                else:
                    entries[channel] = found
            if event.replay_id is not None:
                last[channel] = event
        for channel, payloads in changes.items():
            entries[channel].extend(self._change_entries(payloads))
        stored = 0
        handed: list[Handed] | None = [] if self._hand_off is not None else None
        complete = True
        for channel, batch in entries.items():
            event = last.get(channel)
            before = len(handed) if handed is not None else 0
            put = self.inbox.put(
                self.org, batch, source=channel, channel=channel,
                replay_id=event.replay_id if event else None,
                replay_time=event_time(event) if event else None, handed=handed,
            )
            stored += put
            if put and handed is not None and len(handed) == before:
                complete = False
        if not stored:
            return
        if self._hand_off is not None:
            self._hand_off(stored, handed if complete else None)
        elif self._on_stored is not None:
            self._on_stored(stored)

    def _change_entries(self, payloads: Sequence[Mapping[str, Any]]) -> list[InboxEntry]:
        """Inbox entries of one channel's change events: own writes and updates of other
        fields dropped, missing inputs and gap events' records read, overflows caught up."""
        batch = triage(payloads, self._cdc_client, tuple(set(self.channels.values())))
        for reason, count in batch.skipped.items():
            EVENTS_SKIPPED.labels(org=self.org, reason=reason).inc(count)
        entries = list(batch.entries)
        wanted: dict[str, dict[str, InboxEntry]] = {}
        for entry in batch.partial:
            wanted.setdefault(entry.sobject, {})[entry.record_id] = entry
        for sobject, stamps in batch.reread.items():
            known = wanted.setdefault(sobject, {})
            for record_id, stamp in stamps.items():
                known.setdefault(record_id, InboxEntry(sobject, record_id, {}, "updated", stamp))
        for sobject, pending in wanted.items():
            if self._read_inputs is None:
                continue
            try:
                rows = self._read_inputs(sobject, list(pending))
            except IlydError as exc:
                # The records stay unread: the object's catch-up on SystemModstamp finds them.
                log.error("cdc_read_failed", sobject=sobject, records=len(pending),
                          error=str(exc))
                self._catch_up_later(sobject, min((e.modstamp for e in pending.values()
                                                   if e.modstamp), default=None))
                continue
            for record_id, entry in pending.items():
                row = rows.get(record_id)
                if row is not None:  # absent: deleted since, nothing left to enrich
                    entries.append(InboxEntry(sobject, record_id, {**row, **entry.fields},
                                              entry.change_type, entry.modstamp))
        for sobject, stamp in batch.overflow:
            self._catch_up_later(sobject, stamp, overflow=True)
        return entries

    def _catch_up_later(self, sobject: str, since: datetime | None, *,
                        overflow: bool = False) -> None:
        """Catch `sobject` up on SystemModstamp from the earlier of its own safe start (the
        changes received so far) and `since` (a second early: SOQL compares by the
        second): an overflowing transaction may have begun before its event's time."""
        channel = next((c for c, s in self.channels.items() if s == sobject), "")
        start = self.inbox.replay.gap_start(self.org, channel, sobject)
        if since is not None and (start.since is None
                                  or since - timedelta(seconds=1) < start.since):
            start = GapStart(since - timedelta(seconds=1), "overflow" if overflow else "event")
        if overflow:
            log.warning("cdc_overflow_catch_up", sobject=sobject,
                        since=start.since.isoformat() if start.since else None,
                        until=datetime.now(UTC).isoformat())
        with self._gap_lock:
            pending = self._gap_starts.get(sobject)
            if pending is None or (start.since is not None and (
                    pending.since is None or start.since < pending.since)):
                self._gap_starts[sobject] = start
        gap = ReplayGap(next((c for c, s in self.channels.items() if s == sobject), ""), 0,
                        "overflow" if overflow else "read failed")
        if self._on_gap is not None:
            self._on_gap(gap, sobject)
        elif self._catch_up is not None:
            threading.Thread(target=self.run_catch_up, args=(sobject,), daemon=True,
                             name=f"catch-up-{self.org}").start()

    def switched_from(self, old_channel: str, sobject: str) -> bool:
        """Whether `sobject` arrives on a channel never subscribed to before while
        `old_channel` (its other source) holds a stored replay id; if so the catch-up of
        the object starts from the last event stored there (run it with
        `run_catch_up`), so the switch leaves no gap."""
        stored = self.inbox.replay.all(self.org)
        channel = next((c for c, s in self.channels.items() if s == sobject), "")
        if channel in stored or replay_key(old_channel) not in stored:
            return False
        start = self.inbox.replay.gap_start(self.org, replay_key(old_channel), sobject)
        log.warning("source_switch_catch_up", sobject=sobject, old_channel=old_channel,
                    channel=channel, since=start.since.isoformat() if start.since else None,
                    until=datetime.now(UTC).isoformat())
        with self._gap_lock:
            self._gap_starts[sobject] = start
        return True

    def _gap(self, gap: ReplayGap) -> None:
        self.gaps.append(gap)
        sobject = self.channels.get(gap.channel, "")
        if sobject:
            start = self.inbox.replay.gap_start(self.org, gap.channel, sobject)
            with self._gap_lock:
                pending = self._gap_starts.get(sobject)
                # Two gaps before one catch-up: the earlier known start covers both.
                if (pending is None or pending.since is None
                        or (start.since is not None and start.since < pending.since)):
                    self._gap_starts[sobject] = start
        if self._on_gap is not None:
            self._on_gap(gap, sobject)
        elif self._catch_up is not None and sobject:
            threading.Thread(target=self.run_catch_up, args=(sobject,), daemon=True,
                             name=f"catch-up-{self.org}").start()

    def run_catch_up(self, sobject: str) -> None:
        """Close a replay gap: SOQL on SystemModstamp from the earliest safe point."""
        if self._catch_up is None:
            return
        with self._gap_lock:
            start = self._gap_starts.pop(sobject, None)
        if start is None:  # called directly, not after a gap: the object's own start
            channel = next((c for c, s in self.channels.items() if s == sobject), "")
            start = self.inbox.replay.gap_start(self.org, channel, sobject)
        since = start.since.isoformat() if start.since else None
        log.warning("replay_gap_catch_up", org=self.org, sobject=sobject, since=since,
                    until=datetime.now(UTC).isoformat(), basis=start.basis)
        try:
            found = self._catch_up(sobject, start.since)
        except IlydError as exc:
            # The start stays pending for the next gap or a retry: nothing moved on.
            with self._gap_lock:
                self._gap_starts.setdefault(sobject, start)
            log.error("catch_up_failed", org=self.org, sobject=sobject, since=since,
                      error=str(exc))
            return
        log.warning("replay_gap_closed", org=self.org, sobject=sobject,
                    since=since, basis=start.basis, found=found)


def _other_channel(channel: str, sobject: str) -> str:
    """The object's channel on its other real-time source (PushTopic <-> change events)."""
    cdc = CDC_CHANNELS[sobject]
    return PUSH_TOPICS[sobject].channel if channel == cdc else cdc


def _tell_quietly(ref: ComponentRef, message: Any) -> None:
    """Tell, unless the actor stopped meanwhile (a timer may fire after the org stopped)."""
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)


@dataclass(frozen=True)
class _Decide:
    """Internal: find out whether this org streams, and start if so."""


@dataclass(frozen=True)
class _CatchUp:
    """Internal: run the SOQL catch-up for one object after a replay gap."""

    sobject: str


class SubscriberComponent(Component):
    """Owns one org's `SubscriptionLoop` and reports its connection state."""

    def __init__(self, context: OrgContext, pipeline: Any, *,
                 backoff: BackoffPolicy | None = None) -> None:
        self._context = context
        self._pipeline = pipeline
        self._backoff = backoff
        self._loop: SubscriptionLoop | None = None
        self._poller: Any = None
        self._decide_failures = 0
        self._retry: Any = None  # the pending timer of a retried _Decide
        self._sweeps: Sweeps | None = None

    def on_start(self) -> None:
        """Decide in a message, so the org's start never waits on Salesforce."""
        self.ref.tell(_Decide())
        if Sweeps.wanted(self._context):
            self._sweeps = Sweeps(self._context, self._pipeline, self.ref)
            # In a message: a state-file error there is the org's failure, which the
            # org's start would report as a failed start instead.
            self.ref.tell(StartSweeps())

    def on_stop(self) -> None:
        """Stop the connect loop (a held poll is interrupted) and release the pipeline.
        A poller it handed the org to is a part of the org, stopped before it."""
        if self._retry is not None:
            self._retry.cancel()
        if self._sweeps is not None:
            self._sweeps.cancel()
        if self._loop is not None:
            self._loop.stop(max(0.5, self.time_left()))
            self._context.publish(connection=None, connection_reason=None)
        self._pipeline.release()

    def on_receive(self, message: Any) -> Any:
        """Decide and start, or run a catch-up."""
        if isinstance(message, _Decide):
            self._decide()
        elif isinstance(message, _CatchUp):
            self._run_catch_up(message.sobject)
        elif isinstance(message, Reconcile):
            if self._sweeps is not None:  # None once the org was handed to a poller
                self._sweeps.run()
        elif isinstance(message, StartSweeps):
            if self._sweeps is not None:
                self._sweeps.start()
        else:
            raise TypeError(f"SubscriberComponent got an unexpected message: "
                            f"{type(message).__name__}")
        return None

    def _decide(self) -> None:
        config = self._context.config
        rest = self._pipeline.rest
        store = (OrgFactsStore(self._context.database)
                 if self._context.database is not None else None)
        try:
            facts = self._facts(store)
        except NeedsReauthError as exc:
            self._context.publish(needs_reauth=True, reason=str(exc).splitlines()[0])
            return
        except IlydError as exc:
            # Salesforce unreachable or failing for now: try again later, never give up
            # (the org would otherwise stay without streaming until restarted).
            self._decide_failures += 1
            delay = (self._backoff or BackoffPolicy()).delay(self._decide_failures)
            log.warning("subscriber_cannot_read_org", error=str(exc), retry_in_s=round(delay, 1))
            self._context.publish(connection="backoff", connection_reason=str(exc)[:600],
                                  retry_in=round(delay, 1))
            ref = self.ref
            self._retry = TIMERS.call_later(delay, lambda: _tell_quietly(ref, _Decide()))
            return
        self._decide_failures = 0
        if decide_feed(facts, config.objects, config.source) == POLLING:
            if store is None:
                raise RuntimeError("an org fed by polling needs the state database")
            store.set_feed(self._context.name, POLLING)
            if self._sweeps is not None:  # the poller sweeps
                self._sweeps.cancel()
                self._sweeps = None
            reason = (None if config.source == "polling"
                      else "streaming is not available to the integration user")
            self.host.start("poller", PollerComponent(self._context, self._pipeline.acquire(),
                                                      reason=reason))
            return
        if store is not None:
            store.set_feed(self._context.name, STREAMING)
        tokens = rest.http.tokens
        endpoint = f"{rest.token.instance_url.rstrip('/')}/cometd/{rest.api_version}"
        try:
            choice = choose_source(rest, config.source, config.objects, facts.cdc_selected,
                                   facts.unknown.get("change_data_capture"))
        except NeedsReauthError as exc:
            self._context.publish(needs_reauth=True, reason=str(exc).splitlines()[0])
            return
        channels = dict(choice.channels)
        self._publish_source(choice.source, choice.reason)
        self._poller = Poller(self._context.name, rest, self._pipeline.inbox,
                              self._pipeline.state, config.objects)
        ref = self.ref

        def on_gap(gap: ReplayGap, sobject: str) -> None:  # on the stream's thread
            if sobject:
                _tell_quietly(ref, _CatchUp(sobject))

        self._loop = SubscriptionLoop(
            str(self._context.name), endpoint, channels, self._pipeline.inbox,
            access_token=lambda: tokens.token().access_token,
            refresh_token=lambda: tokens.refresh(stale=tokens.token()).access_token,
            on_status=self._status, on_gap=on_gap,
            catch_up=self._poller.poll_object,
            hand_off=self._pipeline.wake.stored,  # the enricher takes them without a read
            backoff=self._backoff,
            ca_file=str(config.ca_file) if config.ca_file else None,
            cdc_client=config.call_client,
            read_inputs=lambda sobject, ids: read_inputs(rest, sobject, ids),
        )
        switched = [o for c, o in channels.items()
                    if self._loop.switched_from(_other_channel(c, o), o)]
        self._context.publish(streaming=True)
        self._loop.start()
        for sobject in switched:
            ref.tell(_CatchUp(sobject))

    def _facts(self, store: OrgFactsStore | None) -> OrgFacts:
        """The facts an earlier start stored, when they are about the token's org; else
        read now (and stored for the next start)."""
        if store is not None:
            facts = stored_facts(store, self._context.name, self._pipeline.rest.token.org_id)
            if facts is not None:
                return facts
        began = time.time()
        facts = gather(self._pipeline.rest, self._context.config.objects)
        if store is not None:
            remember(store, self._context.name, facts, began)
        return facts

    def _publish_source(self, source: str, reason: str | None) -> None:
        """Where the org's changes come from, and why not from change events if so."""
        if reason:
            log.warning("cdc_not_used", source=source, reason=reason)
        for name in SOURCES:
            ORG_SOURCE.labels(org=str(self._context.name), source=name).set(
                1 if name == source else 0)
        self._context.publish(source=source, source_reason=reason)

    def _run_catch_up(self, sobject: str) -> None:
        if self._loop is not None:
            self._loop.run_catch_up(sobject)
            self._pipeline.wake.set()

    def _status(self, status: StreamStatus) -> None:
        # Called on the client's threads: publishing is a non-blocking tell.
        self._context.publish(
            connection=status.state.value,
            connection_reason=status.reason or None,
            # Room for a state file's path and its fix, not for a whole server page.
            connection_detail=status.detail[:600] or None,
            retry_in=round(status.retry_in, 1) if status.retry_in else None,
        )
