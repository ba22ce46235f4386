"""The change feed: one `Change` per written record, published after the write commits.

The CometD endpoint (ilyd/devorg/cometd.py) subscribes here to build PushTopic events.
Callbacks run in the writing thread, in commit order; a slow subscriber slows writers, so
subscribers should queue and return.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)


# The origin of the API call being served, as a change event's `changeOrigin` names it:
# `com/salesforce/api/<API>/<version>[;client=<client>]`, the client taken from the
# caller's `Sforce-Call-Options` header. Changes are published in the writing thread, so
# the feed's subscribers read it from there; empty outside an API call.
# https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_event_fields_header.htm
call_origin: contextvars.ContextVar[str] = contextvars.ContextVar("call_origin", default="")


def origin_of(api: str, version: str, call_options: str) -> str:
    """The `changeOrigin` of a call to `api` (rest, toolingrest…) at `version` whose
    `Sforce-Call-Options` header is `call_options` (e.g. `client=ilyd, defaultNamespace=x`)."""
    origin = f"com/salesforce/api/{api}/{version}"
    for option in call_options.split(","):
        key, _, value = option.strip().partition("=")
        if key.strip() == "client" and value.strip():
            return f"{origin};client={value.strip()}"
    return origin


@dataclass(frozen=True)
class Change:
    """One committed change to one record."""

    sobject: str
    record_id: str
    change_type: str  # "created" | "updated" | "deleted" | "undeleted"
    changed_fields: frozenset[str]
    record: Mapping[str, object]  # after the change (before it, for "deleted")
    user_id: str
    timestamp: dt.datetime


class ChangeFeed:
    """Fan-out of an org's committed changes to its subscribers."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[Change], None]] = []
        self._batch_subscribers: list[Callable[[list[Change]], None]] = []
        self._lock = threading.Lock()
        # Serialises publication so subscribers see changes in commit order.
        self.publish_lock = threading.Lock()

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call `callback` for every future change; returns the unsubscribe function."""
        with self._lock:
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]

        return unsubscribe

    def subscribe_batch(self, callback: Callable[[list[Change]], None]) -> Callable[[], None]:
        """Call `callback` with the changes of each future commit, in commit order, at once.

        For subscribers with per-commit work to share (the CometD endpoint looks its
        topics up once per commit, not once per record); returns the unsubscribe function.
        """
        with self._lock:
            self._batch_subscribers = [*self._batch_subscribers, callback]

        def unsubscribe() -> None:
            with self._lock:
                self._batch_subscribers = [s for s in self._batch_subscribers
                                           if s is not callback]

        return unsubscribe

    @property
    def has_subscribers(self) -> bool:
        """Whether anyone listens (writers skip building changes otherwise)."""
        return bool(self._subscribers or self._batch_subscribers)

    def publish(self, changes: list[Change]) -> None:
        """Deliver changes to every subscriber; a failing subscriber is logged, not fatal."""
        for batch_callback in self._batch_subscribers:
            try:
                batch_callback(changes)
            except Exception:  # a subscriber bug must not fail the write
                log.exception("devorg_change_subscriber_failed", sobject=changes[0].sobject)
        subscribers = self._subscribers
        if not subscribers:
            return
        for change in changes:
            for callback in subscribers:
                try:
                    callback(change)
                except Exception:  # a subscriber bug must not fail the write
                    log.exception("devorg_change_subscriber_failed", sobject=change.sobject)
