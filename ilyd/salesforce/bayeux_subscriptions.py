"""The Bayeux client's subscription bookkeeping: which replay id each channel is
subscribed with, the in-memory cursor, and replay ids the server rejected.

Kept apart from the connect loop (ilyd/salesforce/bayeux.py) so the replay rules read
in one place:
- the stored replay id (the durable store's, through `replay_ids()`) wins; without a
  store, the cursor of events already handed to the application;
- a channel subscribed before with -1 but with nothing stored since is resubscribed
  with -2, so events published while the session was down are not skipped;
- a replay id the server rejected is not asked for again until an event moves the
  stored id past it (-2 instead), and the gap is reported once per rejection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence

import structlog

from ilyd import metrics
from ilyd.salesforce.bayeux_messages import BayeuxEvent, replay_key
from ilyd.salesforce.bayeux_state import ReplayGap

__all__ = ["ALL_RETAINED", "Subscriptions"]

# The connect loop's logger: these lines were always the Bayeux client's own.
log = structlog.get_logger("ilyd.salesforce.bayeux")

ALL_RETAINED = -2


class Subscriptions:
    """Replay ids per channel for one org's Bayeux session (thread-safe cursor)."""

    def __init__(
        self,
        channels: Sequence[str],
        *,
        replay_ids: Callable[[], Mapping[str, int]] | None = None,
        default_replay: int = -1,
        on_gap: Callable[[ReplayGap], None] | None = None,
        org: str = "",
    ) -> None:
        self.channels = list(dict.fromkeys(channels))
        self.org = org
        self._stored_replay_ids = replay_ids
        self._default_replay = default_replay
        self._on_gap = on_gap
        self._cursor: dict[str, int] = {}
        self._cursor_lock = threading.Lock()
        self._rejected: dict[str, int] = {}
        self._subscribed: set[str] = set()

    def cursor(self) -> dict[str, int]:
        """The in-memory replay id per channel of events already handed to the application."""
        with self._cursor_lock:
            return dict(self._cursor)

    def replay_for(self, channel: str) -> int:
        """The replay id to subscribe `channel` with now."""
        key = replay_key(channel)
        stored = self._stored_replay_ids() if self._stored_replay_ids else self.cursor()
        if key not in stored and key in self._subscribed:
            # Subscribed before with -1 but no event stored since: -1 again would skip
            # whatever was published while the session was down. -2 may repeat events;
            # processing is idempotent, losing them is not.
            return ALL_RETAINED
        replay = int(stored.get(key, self._default_replay))
        # Until an event moves the stored id past the rejected one, asking for it again
        # would only be rejected again.
        if self._rejected.get(key) == replay:
            return ALL_RETAINED
        return replay

    def subscribed(self, channel: str) -> None:
        """The server accepted the subscription of `channel`."""
        self._subscribed.add(replay_key(channel))

    def gap(self, channel: str, rejected: int, detail: str) -> None:
        """The server no longer holds `rejected`: count it, log it, tell `on_gap`."""
        key = replay_key(channel)
        self._rejected[key] = rejected
        metrics.REPLAY_FALLBACKS.labels(org=self.org).inc()
        log.warning("replay_id_not_retained", org=self.org, channel=key, rejected=rejected,
                    detail=detail, action="resubscribing with -2 and catching up")
        if self._on_gap is not None:
            try:
                self._on_gap(ReplayGap(channel=key, rejected=rejected, detail=detail))
            except Exception:
                log.exception("bayeux_gap_callback_failed", org=self.org, channel=key)

    def advance(self, events: Iterable[BayeuxEvent]) -> None:
        """Move the cursor past events the application has taken."""
        with self._cursor_lock:
            for event in events:
                if event.replay_id is not None:
                    self._cursor[replay_key(event.channel)] = event.replay_id
