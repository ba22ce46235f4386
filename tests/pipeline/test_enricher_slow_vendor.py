"""The enricher part with a vendor that answers slowly (a real HTTP API on loopback): its
lookups run on the lookup threads while the org's own thread stays free, so the org
answers an ask and stops while a lookup is still waiting on the vendor, and an answer
that comes after the org stopped is dropped with its row left in the inbox."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ilyd.actors.component import Component
from ilyd.actors.context import OrgContext
from ilyd.actors.enricher import EnricherComponent
from ilyd.actors.messages import GetParts
from ilyd.actors.org import stop_org
from ilyd.actors.writer import Enriched
from ilyd.config import OrgConfig
from ilyd.devorg import DevOrg, OrgInfo
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.store import Database
from ilyd.store.inbox import InboxEntry
from tests.helpers.actors import start_parts
from tests.helpers.vendor import CompanyVendor
from tests.pipeline.conftest import wait_until, write_config

RECORD = "001SLOW00000000000"


class _Vendor:
    """A vendor API on loopback whose answers wait until the test opens `gate`."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.asked = 0
        self.answered = 0
        self._lock = threading.Lock()
        self._api = CompanyVendor(self._hold, self._answered)
        self.provider_toml = self._api.provider_toml

    def _hold(self, _domain: str) -> None:
        with self._lock:
            self.asked += 1
        self.gate.wait(60)

    def _answered(self, _domain: str) -> None:
        with self._lock:
            self.answered += 1

    def stop(self) -> None:
        self.gate.set()
        self._api.stop()


@pytest.fixture
def vendor() -> Iterator[_Vendor]:
    server = _Vendor()
    yield server
    server.stop()


@pytest.fixture
def config_path(tmp_path: Path, dev: DevOrg, info: OrgInfo, vendor: _Vendor) -> Path:
    return write_config(tmp_path, dev, [info], org_extra=vendor.provider_toml(
        "slow-vendor", timeout=60, max_attempts=1))


class _Writer(Component):
    """Stands in for the writer: keeps what it is handed."""

    def __init__(self) -> None:
        self.handed: list[str] = []

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Enriched):
            self.handed.extend(work.record_id for work in message.items)
        return None


def _start(provisioned: OrgConfig, database: Database, pipeline: OrgPipeline,
           writer: _Writer) -> Any:
    def enricher(context: OrgContext) -> Component:
        return EnricherComponent(context, pipeline.acquire(), writer.ref)

    org, _ = start_parts(provisioned, database,
                         [("writer", lambda _context: writer), ("enricher", enricher)])
    stored = pipeline.inbox.put(pipeline.org, [InboxEntry(
        "Account", RECORD, {"Website": "https://slowpoke.example"})])
    pipeline.wake.stored(stored)
    return org


def test_the_org_answers_an_ask_while_its_lookup_waits_on_a_slow_vendor(
        provisioned: OrgConfig, database: Database, pipeline: OrgPipeline,
        vendor: _Vendor) -> None:
    writer = _Writer()
    org = _start(provisioned, database, pipeline, writer)
    wait_until(lambda: vendor.asked == 1, what="the lookup waiting on the vendor")

    # Never answered while the org's thread waits on the vendor (the gate is shut).
    assert org.ask(GetParts(), timeout=10) == (("writer", "_Writer"),
                                              ("enricher", "EnricherComponent"))
    assert vendor.answered == 0

    vendor.gate.set()
    wait_until(lambda: writer.handed == [RECORD], what="the record handed to the writer")


def test_an_answer_that_comes_after_the_org_stopped_is_dropped_and_its_row_kept(
        provisioned: OrgConfig, database: Database, pipeline: OrgPipeline,
        vendor: _Vendor) -> None:
    writer = _Writer()
    org = _start(provisioned, database, pipeline, writer)
    wait_until(lambda: vendor.asked == 1, what="the lookup waiting on the vendor")

    stop_org(org).get(timeout=10)  # not held by the lookup
    assert vendor.answered == 0
    vendor.gate.set()

    wait_until(lambda: vendor.answered == 1, what="the vendor's answer")
    # The org's own lookup threads end once the answer was dealt with.
    wait_until(lambda: not [t for t in threading.enumerate()
                            if t.name.startswith(f"enrich-{pipeline.org}")],
               what="the org's lookup threads ended")
    assert writer.handed == []
    assert [p.record_id for p in pipeline.inbox.pending(pipeline.org)] == [RECORD]
