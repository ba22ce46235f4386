"""The enricher part on its wake-ups: rows announced by `Wake.stored` are handed on
without the fallback look, and a row given back with a delay (`Wake.set`) is picked up
when due."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ilyd.actors import enricher as enricher_actor
from ilyd.actors.component import Component
from ilyd.actors.context import OrgContext
from ilyd.actors.enricher import EnricherComponent
from ilyd.actors.messages import GetParts
from ilyd.actors.writer import Enriched
from ilyd.config import OrgConfig
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.store import Database
from ilyd.store.inbox import InboxEntry
from tests.helpers.actors import start_parts
from tests.pipeline.conftest import wait_until


class _Writer(Component):
    """Stands in for the writer: confirms what it gets, except that the first time it
    sees `refuse` it gives that row back for a retry in `delay` seconds, as the writer
    does with a locked row, and says so on the wake."""

    def __init__(self, pipeline: OrgPipeline, refuse: str | None = None,
                 delay: float = 0.5) -> None:
        self.pipeline = pipeline
        self.refuse = refuse
        self.delay = delay
        self.seen: list[str] = []
        self.lock = threading.Lock()

    def on_receive(self, message: Any) -> Any:
        if not isinstance(message, Enriched):
            return None
        confirm = []
        for work in message.items:
            with self.lock:
                first = work.record_id not in self.seen
                self.seen.append(work.record_id)
            if work.record_id == self.refuse and first:
                self.pipeline.inbox.release([work.item], delay=self.delay,
                                            error="UNABLE_TO_LOCK_ROW")
                self.pipeline.wake.set()
            else:
                confirm.append(work.item)
        self.pipeline.inbox.confirm(confirm)
        return None

    def count(self, record_id: str) -> int:
        with self.lock:
            return self.seen.count(record_id)


def _start(provisioned: OrgConfig, database: Database, pipeline: OrgPipeline,
           writer: _Writer) -> _Writer:
    """The enricher part beside `writer` in an org actor, once its first round is done
    and it waits for a wake-up: rows put after this can reach it only through the
    wake-up (the fallback look is far off)."""

    def enricher(_context: OrgContext) -> Component:
        return EnricherComponent(_context, pipeline.acquire(), writer.ref)

    org, _ = start_parts(provisioned, database,
                         [("writer", lambda _context: writer), ("enricher", enricher)])
    # The org's start queued the first round: asked now, the org answers after it ran.
    org.ask(GetParts(), timeout=10)
    return writer


def _put(pipeline: OrgPipeline, record_id: str) -> None:
    stored = pipeline.inbox.put(pipeline.org, [InboxEntry(
        "Account", record_id, {"Website": "https://acme.example"})])
    pipeline.wake.stored(stored)


def test_rows_announced_as_stored_are_handed_on_without_the_fallback_look(
        monkeypatch: pytest.MonkeyPatch, provisioned: OrgConfig, database: Database,
        pipeline: OrgPipeline) -> None:
    monkeypatch.setattr(enricher_actor, "FALLBACK_SECONDS", 600.0)
    writer = _start(provisioned, database, pipeline, _Writer(pipeline))
    for n in range(5):
        _put(pipeline, f"001{n:015d}")
    wait_until(lambda: all(writer.count(f"001{n:015d}") == 1 for n in range(5)),
               what="the stored rows handed on")
    wait_until(lambda: pipeline.inbox.depth(pipeline.org) == 0, what="the inbox emptied")


def test_a_row_given_back_with_a_delay_is_picked_up_when_due_with_nothing_else_going_on(
        monkeypatch: pytest.MonkeyPatch, provisioned: OrgConfig, database: Database,
        pipeline: OrgPipeline) -> None:
    # No fallback look and no new rows whose claim would take it along: only knowing
    # when the given-back row comes due can find it.
    monkeypatch.setattr(enricher_actor, "FALLBACK_SECONDS", 600.0)
    locked = "001LOCKED000000000"
    writer = _start(provisioned, database, pipeline,
                    _Writer(pipeline, refuse=locked, delay=0.5))
    _put(pipeline, locked)
    wait_until(lambda: writer.count(locked) == 2,
               what="the row given back picked up again")
    wait_until(lambda: pipeline.inbox.depth(pipeline.org) == 0, what="the inbox emptied")
