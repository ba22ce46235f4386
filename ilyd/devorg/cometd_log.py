"""Per-channel event logs with opaque increasing replay ids and retention.

Salesforce keeps PushTopic events 24 hours and Change Data Capture events 72 hours;
a subscriber may replay from any retained id (events after it), from -2 (everything
retained) or -1 (only new ones). Retention is shortenable for tests, and a log also
has a size cap so that a million-record bulk load does not hold a million events.

A channel's replay ids only grow, may skip, and are never reused, and retained events
outlive server restarts (https://developer.salesforce.com/docs/atlas.en-us.202.0.api_streaming.meta/api_streaming/using_streaming_api_durability.htm,
"Event Numbering"). With `--data` a journal keeps the
retained events and the counter across restarts; without it a log starts at a
per-start epoch in the high bits (`start_id`), above any id an earlier run handed out.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol

__all__ = ["RENDERERS", "ChannelLog", "EventJournal", "LoggedEvent", "start_id"]

# Ids of a run start at (start time in milliseconds) << 10: a run would have to log more
# than 1,024 events per millisecond of its life to reach the next run's first id, and
# the ids stay below 2**53 (exact in JavaScript clients) for two more centuries.
_EPOCH_BITS = 10


def start_id(now: float | None = None) -> int:
    """The first replay id of a channel that has no journal (a new org, or no `--data`)."""
    return int((time.time() if now is None else now) * 1000) << _EPOCH_BITS


class EventJournal(Protocol):
    """Where a channel's events and replay counter are kept across restarts."""

    def logged(self, channel: str, events: Sequence[tuple[int, float, Any, str | None]],
               oldest: int) -> None:
        """Events were logged; `oldest` is the first id still retained (older ones went)."""

    def reset(self, channel: str, next_id: int) -> None:
        """Every event went and the counter restarts at `next_id`."""


# Renderers of compact events by name (see LoggedEvent): cometd_topics registers "cdc".
RENDERERS: dict[str, Callable[[Any, int], dict[str, Any]]] = {}


class LoggedEvent(NamedTuple):
    """One event as stored: its replay id, when it was logged, and its Bayeux `data` — or,
    when `render` names a renderer, the compact tuple of plain values the data is built
    from on delivery. A Bulk job logs an event per record; kept as dicts, a channel's
    100,000 retained events would be half a million objects for the garbage collector to
    walk over and over, and most are never delivered."""

    replay_id: int
    logged_at: float
    payload: Any
    render: str | None = None

    @property
    def data(self) -> dict[str, Any]:
        """The event's Bayeux `data`."""
        if self.render is None:
            return self.payload  # type: ignore[no-any-return]
        return RENDERERS[self.render](self.payload, self.replay_id)


_event = LoggedEvent._make


class _Logged(Sequence[LoggedEvent]):
    """Events just logged, as LoggedEvent only when looked at: usually nobody is
    subscribed, and a commit logs thousands."""

    def __init__(self, stored: list[tuple[int, float, Any, str | None]]) -> None:
        self._stored = stored

    def __len__(self) -> int:
        return len(self._stored)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [_event(e) for e in self._stored[index]]
        return _event(self._stored[index])

    def __iter__(self) -> Iterator[LoggedEvent]:
        return map(_event, self._stored)


class ChannelLog:
    """The retained events of one channel, oldest first."""

    def __init__(self, channel: str, *, retention: Callable[[], float],
                 max_events: Callable[[], int], first_id: int = 1,
                 journal: EventJournal | None = None,
                 restored: Sequence[tuple[int, float, Any, str | None]] = ()) -> None:
        self.channel = channel
        self._retention = retention
        self._max_events = max_events
        # (replay_id, logged_at, payload, render) as plain tuples; LoggedEvent when read
        self._events: deque[tuple[int, float, Any, str | None]] = deque(restored)
        self._next_id = first_id
        self._ids = itertools.count(first_id)
        self._journal = journal
        self._lock = threading.Lock()
        with self._lock:
            self._prune_locked()

    def append(self, build: Callable[[int], dict[str, Any]]) -> LoggedEvent:
        """Log one event; `build(replay_id)` returns its data."""
        with self._lock:
            replay_id = next(self._ids)
            stored = (replay_id, time.time(), build(replay_id), None)
            self._events.append(stored)
            self._prune_locked()
            self._journal_locked([stored])
            return _event(stored)

    def extend(self, items: list[Any], build: Callable[[Any, int], dict[str, Any]] | None = None,
               *, render: str | None = None) -> Sequence[LoggedEvent]:
        """Log one event per item (one commit's changes): `build(item, replay_id)` returns
        its data, or with `render` the item is kept compact and rendered on delivery. As
        `append` for each, with one lock, clock read and prune for all."""
        with self._lock:
            logged_at = time.time()
            ids = self._ids
            if render is not None:
                # Plain tuples in the log: the GC stops tracking a tuple of plain values
                # (never a NamedTuple), so a full log costs collections nothing.
                stored = [(next(ids), logged_at, item, render) for item in items]
            else:
                assert build is not None
                stored = []
                for item in items:
                    replay_id = next(ids)
                    stored.append((replay_id, logged_at, build(item, replay_id), None))
            self._events.extend(stored)
            self._prune_locked()
            self._journal_locked(stored)
            return _Logged(stored)

    def _journal_locked(self, stored: list[tuple[int, float, Any, str | None]]) -> None:
        # Under the lock: the journal sees a channel's events in replay-id order.
        self._next_id = stored[-1][0] + 1 if stored else self._next_id
        if self._journal is not None and stored:
            self._journal.logged(self.channel, stored, self._oldest_locked())

    def _oldest_locked(self) -> int:
        return self._events[0][0] if self._events else self._next_id

    def reset(self, first_id: int = 1) -> int:
        """Drop every event and restart the counter at `first_id` (the fault that reuses
        replay ids, see ADMIN.md); returns how many events went."""
        with self._lock:
            count = len(self._events)
            self._events.clear()
            self._ids = itertools.count(first_id)
            self._next_id = first_id
            if self._journal is not None:
                self._journal.reset(self.channel, first_id)
            return count

    def _prune_locked(self) -> None:
        horizon = time.time() - self._retention()
        cap = max(1, self._max_events())
        events = self._events
        for _ in range(len(events) - cap):  # over the cap: the oldest go, in one sweep
            events.popleft()
        while events and events[0][1] < horizon:
            events.popleft()

    def retains(self, replay_id: int) -> bool:
        """Whether `replay_id` names an event still retained (a valid replay position)."""
        with self._lock:
            self._prune_locked()
            return any(e[0] == replay_id for e in self._events)

    def after(self, replay_id: int) -> list[LoggedEvent]:
        """Retained events after `replay_id` (-2: all retained)."""
        with self._lock:
            self._prune_locked()
            if replay_id == -2:
                return [_event(e) for e in self._events]
            return [_event(e) for e in self._events if e[0] > replay_id]

    def expire(self, before: float | None = None) -> int:
        """Drop events logged before `before` (all when None); returns how many."""
        with self._lock:
            count = 0
            while self._events and (before is None or self._events[0][1] < before):
                self._events.popleft()
                count += 1
            if count and self._journal is not None:
                self._journal.logged(self.channel, (), self._oldest_locked())
            return count

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)
