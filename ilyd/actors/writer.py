"""`WriterComponent`: the org's part around `ilyd.pipeline.writer.Writer`.

Enriched records arrive as `Enriched` messages; a timer tells `_Flush` when the oldest
queued record has waited `writer_window`, and a full batch is sent at once. The timer is
a call on the shared `TIMERS` thread: a thread started per window cost more than the
write itself at a few events per second per org. The org's status shows the window
(`window=…s`, wider while calls are scarce) and the writer's projected daily API use
(`projected_api_use=…%` of the allowance), as of the last flush.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from ilyd.actors.component import Component, ComponentRef
from ilyd.actors.context import OrgContext
from ilyd.errors import AuthError
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.pipeline.wakeup import TIMERS, Timer
from ilyd.pipeline.work import WorkItem
from ilyd.pipeline.writer import Writer

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Enriched:
    """Enricher → writer: records with their computed values."""

    items: tuple[WorkItem, ...]


@dataclass(frozen=True)
class _Flush:
    """Internal: the batching window has passed."""


class WriterComponent(Component):
    """Writes one org's enriched records back to Salesforce."""

    def __init__(self, context: OrgContext, pipeline: OrgPipeline) -> None:
        self._context = context
        self._pipeline = pipeline
        self._writer = Writer(context.name, pipeline.rest, pipeline.inbox, pipeline.state,
                              pipeline.hashes, enrich=context.config.enrich,
                              budget=pipeline.budget, scope=context.config.scope)
        self._timer: Timer | None = None
        self._shown: tuple[str, str | None] | None = None

    def on_start(self) -> None:
        """Show the window."""
        self._show_window()

    def on_stop(self) -> None:
        """Give queued records back to the inbox (they are written after the restart)."""
        self._cancel_timer()
        self._writer.release_all()
        self._pipeline.release()

    def on_receive(self, message: Any) -> Any:
        """Queue records, flush when due."""
        if isinstance(message, Enriched):
            self._writer.add(message.items)
        elif not isinstance(message, _Flush):
            raise TypeError(f"WriterComponent got an unexpected message: {type(message).__name__}")
        else:
            self._timer = None
        self._flush_if_due()
        return None

    def _flush_if_due(self) -> None:
        due = self._writer.due_in()
        if due is None or self._context.stopping.is_set():
            return  # stopping: what is queued goes back to the inbox instead
        if due > 0:
            if self._timer is None:
                self._timer = TIMERS.call_later(due, self._tell_flush)
            return
        self._cancel_timer()
        try:
            report = self._writer.flush()
        except AuthError as exc:
            self._context.publish(needs_reauth=True, reason=str(exc).splitlines()[0])
            raise
        # Rows given back (a retry later, a newer version arrived meanwhile) change when
        # the enricher should look next; a woken enricher finds out in one read. Rows
        # confirmed change nothing for it: no wake-up (a round's read) per flush then.
        if report.released:
            self._pipeline.wake.set()
        self._show_window()
        if report.calls or report.skipped or report.dropped:
            log.debug("writer_flushed", calls=report.calls, written=report.written,
                      skipped=report.skipped, retried=report.retried, dropped=report.dropped)

    def _show_window(self) -> None:
        """Publish the window and the projected use when their shown values change."""
        projected = self._writer.window.projected()
        shown = (f"{self._writer.window.current():.1f}s",
                 None if projected is None else f"{projected:.0%}")
        if shown != self._shown:
            self._shown = shown
            self._context.publish(window=shown[0], projected_api_use=shown[1])

    def _tell_flush(self) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self.ref.tell(_Flush())

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def tell_enriched(writer: ComponentRef, items: Sequence[WorkItem]) -> None:
    """Hand enriched records to a writer (dropped silently if it is gone: the rows stay
    leased in the inbox and are processed again after their lease)."""
    try:
        writer.tell(Enriched(tuple(items)))
    except pykka.ActorDeadError:
        log.info("writer_gone", records=len(items))
