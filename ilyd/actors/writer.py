"""`WriterComponent`: the org's part around `ilyd.pipeline.writer.Writer`.

Enriched records arrive as `Enriched` messages; a timer tells `_Flush` when the oldest
queued record has waited `writer_window`, and a full batch is sent at once. The timer is
a call on the shared `TIMERS` thread: a thread started per window cost more than the
write itself at a few events per second per org. The org's status shows the window
(`window=…s`, wider while calls are scarce) and the writer's projected daily API use
(`projected_api_use=…%` of the allowance), as of the last flush.

A flush's calls wait on Salesforce for a while (hundreds of milliseconds, seconds when it
is slow): they run on a thread of `OFFLOAD`, so the org's thread goes on claiming and
enriching meanwhile. The `Writer` is lent to that call until `_Flushed` comes back; what
the enricher hands on meanwhile waits in `_held`, so only one thread at a time ever
touches the writer's state.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from ilyd.actors.component import Component, ComponentRef
from ilyd.actors.context import OrgContext
from ilyd.actors.offload import OFFLOAD
from ilyd.backoff import stop_waits_within
from ilyd.errors import AuthError
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.pipeline.wakeup import TIMERS, Timer
from ilyd.pipeline.work import WorkItem
from ilyd.pipeline.writer import FlushReport, Writer

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Enriched:
    """Enricher → writer: records with their computed values."""

    items: tuple[WorkItem, ...]


@dataclass(frozen=True)
class _Flush:
    """Internal: the batching window has passed."""


@dataclass(frozen=True)
class _Flushed:
    """Internal: the flush on the offload thread ended (with its report, or its error)."""

    report: FlushReport | None
    error: BaseException | None = None


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
        # The flush in flight on an offload thread (set when it ended), and what was
        # handed on meanwhile.
        self._flushing: threading.Event | None = None
        self._held: list[WorkItem] = []

    def on_start(self) -> None:
        """Show the window."""
        self._show_window()

    def on_stop(self) -> None:
        """Give queued records back to the inbox (they are written after the restart).
        A flush still in flight is waited for until the org's deadline; past it, the
        writer stays lent to it, and only what was held back is given back."""
        self._cancel_timer()
        if self._flushing is not None and self._flushing.wait(self.time_left()):
            self._flushing = None
        if self._held:
            self._pipeline.inbox.release([work.item for work in self._held])
            self._held = []
        if self._flushing is None:
            self._writer.release_all()
        self._pipeline.release()

    def late(self) -> bool:
        """A flush still waiting on Salesforce past the org's stop deadline."""
        flushing = self._flushing
        return flushing is not None and not flushing.is_set()

    def on_receive(self, message: Any) -> Any:
        """Queue records, flush when due."""
        if isinstance(message, Enriched):
            if self._flushing is not None:
                self._held.extend(message.items)
            else:
                self._writer.add(message.items)
        elif isinstance(message, _Flush):
            self._timer = None
        elif isinstance(message, _Flushed):
            self._flushing = None
            self._writer.add(self._held)
            self._held = []
            if not self._context.stopping.is_set():  # stopping: all goes back anyway
                self._flushed(message)
        else:
            raise TypeError(f"WriterComponent got an unexpected message: {type(message).__name__}")
        self._flush_if_due()
        return None

    def _flush_if_due(self) -> None:
        if self._flushing is not None or self._context.stopping.is_set():
            return  # the writer is lent to a flush; stopping: the queue goes back
        due = self._writer.due_in()
        if due is None:
            return
        if due > 0:
            if self._timer is None:
                self._timer = TIMERS.call_later(due, self._tell_flush)
            return
        self._cancel_timer()
        self._flushing = done = threading.Event()
        ref, writer, context = self.ref, self._writer, self._context

        def flush() -> None:  # on an offload thread; the org's thread leaves the writer be
            try:
                with stop_waits_within(context.stopping), \
                        structlog.contextvars.bound_contextvars(org=context.name):
                    outcome = _Flushed(writer.flush())
            except Exception as exc:
                outcome = _Flushed(None, exc)
            finally:
                done.set()
            with contextlib.suppress(pykka.ActorDeadError):  # the org stopped meanwhile
                ref.tell(outcome)

        OFFLOAD.run(flush)

    def _flushed(self, outcome: _Flushed) -> None:
        """A flush ended: an error is the org's (as if raised here), a report shown."""
        if outcome.error is not None:
            if isinstance(outcome.error, AuthError):
                self._context.publish(needs_reauth=True,
                                      reason=str(outcome.error).splitlines()[0])
            raise outcome.error
        report = outcome.report
        assert report is not None
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
