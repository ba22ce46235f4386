"""Idle enrichers sleep until work arrives: `Wake`, the shared `Timers`, and the
enricher part woken by a put (or, for rows put by another process, by its fallback look)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from ilyd.actors import enricher as enricher_actor
from ilyd.actors.component import Component
from ilyd.actors.context import OrgContext
from ilyd.actors.enricher import EnricherComponent
from ilyd.actors.org import stop_org
from ilyd.actors.writer import WriterComponent
from ilyd.config import OrgConfig
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.pipeline.wakeup import Timers, Wake
from ilyd.store import Database
from ilyd.store.inbox import Handed, InboxEntry
from tests.helpers.actors import start_parts
from tests.pipeline.conftest import SalesforceUser, wait_until

ILY = "Ily_Match_Status__c"


def test_timers_run_calls_in_time_order_and_skip_cancelled_ones() -> None:
    timers = Timers()
    ran: list[str] = []
    done = threading.Event()
    timers.call_later(0.3, lambda: (ran.append("late"), done.set()))
    cancelled = timers.call_later(0.1, lambda: ran.append("cancelled"))
    timers.call_later(0.05, lambda: ran.append("early"))
    cancelled.cancel()
    assert done.wait(10)
    assert ran == ["early", "late"]


def test_a_cancelled_call_is_dropped_without_waiting_for_its_time() -> None:
    timers = Timers()
    ran = threading.Event()
    timers.call_later(600.0, lambda: None).cancel()
    timers.call_later(0.0, ran.set)
    assert ran.wait(10)
    wait_until(lambda: not timers.pending(), timeout=10, what="the cancelled call dropped")


def test_a_failing_timer_callback_does_not_stop_later_ones() -> None:
    timers = Timers()
    done = threading.Event()
    timers.call_later(0.0, lambda: 1 / 0)  # type: ignore[func-returns-value]
    timers.call_later(0.05, done.set)
    assert done.wait(10)


def test_wake_calls_its_listeners_until_they_unlisten() -> None:
    wake = Wake()
    calls: list[int | None] = []
    listener = calls.append
    wake.listen(listener)
    wake.stored(3)
    wake.stored(0)  # nothing stored: nobody woken
    wake.set()
    wake.unlisten(listener)
    wake.set()
    assert calls == [3, None]
    assert wake.wait(0)  # the flag, for code that blocks instead


def _writer_and_enricher(config: OrgConfig, database: Database,
                         pipeline: OrgPipeline) -> pykka.ActorRef[Any]:
    """An org actor running the org's writer and enricher parts on `pipeline`."""
    parts: dict[str, Component] = {}

    def writer(context: OrgContext) -> Component:
        parts["writer"] = WriterComponent(context, pipeline.acquire())
        return parts["writer"]

    def enricher(context: OrgContext) -> Component:
        return EnricherComponent(context, pipeline.acquire(), parts["writer"].ref)

    org, _ = start_parts(config, database, [("writer", writer), ("enricher", enricher)])
    return org


@pytest.fixture
def running(provisioned: OrgConfig, database: Database,
            pipeline: OrgPipeline) -> Iterator[tuple[OrgPipeline, pykka.ActorRef[Any]]]:
    """An org actor running the org's writer and enricher on the shared pipeline."""
    org = _writer_and_enricher(provisioned, database, pipeline)
    try:
        yield pipeline, org
    finally:
        stop_org(org).get(timeout=10)


def test_an_idle_enricher_is_woken_by_a_put_in_this_process(
        monkeypatch: pytest.MonkeyPatch, running: tuple[OrgPipeline, pykka.ActorRef[Any]],
        user: SalesforceUser) -> None:
    # No fallback look within the test's deadline: only the wake-up can get it written.
    monkeypatch.setattr(enricher_actor, "FALLBACK_SECONDS", 600.0)
    pipeline, _ = running
    record = user.create("Account", Name="A", Website="acme.example")
    pipeline.inbox.put(pipeline.org, [InboxEntry("Account", record,
                                                 {"Website": "acme.example"})])
    pipeline.wake.set()
    wait_until(lambda: user.record(record)[ILY] == "Matched", timeout=20,
               what="the woken enricher to enrich the record")
    wait_until(lambda: pipeline.inbox.depth(pipeline.org) == 0, what="the inbox emptied")


def test_rows_put_by_another_process_are_found_by_the_fallback_look(
        monkeypatch: pytest.MonkeyPatch, provisioned: OrgConfig, database: Database,
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    monkeypatch.setattr(enricher_actor, "FALLBACK_SECONDS", 0.3)
    org = _writer_and_enricher(provisioned, database, pipeline)
    try:
        record = user.create("Lead", LastName="L", Company="x", Email="jo@globex.test")
        # Nobody sets the wake: as if `ilyd` in another process had put the row.
        pipeline.inbox.put(pipeline.org, [InboxEntry("Lead", record,
                                                     {"Email": "jo@globex.test"})])
        wait_until(lambda: user.record(record)[ILY] == "Matched", timeout=20,
                   what="the fallback look to find the row")
    finally:
        stop_org(org).get(timeout=10)


def test_an_idle_enricher_stops_at_once_whatever_its_sleep(
        monkeypatch: pytest.MonkeyPatch,
        running: tuple[OrgPipeline, pykka.ActorRef[Any]]) -> None:
    monkeypatch.setattr(enricher_actor, "FALLBACK_SECONDS", 600.0)
    _, org = running
    # The org's mailbox is never blocked by the sleep, so the stop is the next thing it does.
    stop_org(org).get(timeout=5)
    assert not org.is_alive()


def test_wake_keeps_handed_rows_for_its_listener_and_says_when_some_were_not() -> None:
    wake = Wake()
    first = Handed("acme", 0, ())
    second = Handed("acme", 0, ())
    wake.stored(1, [first])  # nobody listens yet: nothing kept
    assert wake.take_handed() == ([], True)
    wake.listen(lambda _stored: None)
    wake.stored(1, [first])
    wake.stored(2, [second])
    assert wake.take_handed() == ([first, second], True)
    wake.stored(1, [first])
    wake.stored(3)  # rows put without handing them over (a poller's): read the inbox
    wake.stored(1, [second])
    assert wake.take_handed() == ([], False)
    assert wake.take_handed() == ([], True)
