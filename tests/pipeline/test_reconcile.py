"""The reconciliation sweep: records no event brought are found by SOQL and enriched.

Against devorg's faults that a client cannot see: replay ids reused (reset-replay, what
devorg did after a restart before it kept its event logs) and a silent stall (mute).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from ilyd import metrics
from ilyd.config.tables import SUPPORTED_OBJECTS
from ilyd.control.client import ControlClient
from ilyd.control.render import render_status
from ilyd.devorg import DevOrg, OrgInfo
from ilyd.pipeline.reconcile import Reconciler
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.pipeline.work import inputs_hash
from ilyd.store.inbox import InboxEntry
from ilyd.store.watermarks import WatermarkStore
from tests.pipeline.conftest import Daemon, SalesforceUser, wait_until, write_config

ILY = "Ily_Match_Status__c"


def enriched(user: SalesforceUser, records: list[str]) -> bool:
    return all(user.record(r)[ILY] for r in records)


def streaming(dev: DevOrg, info: OrgInfo, action: str) -> Any:
    response = requests.post(f"{dev.admin}/streaming/{info.name}/{action}", json={},
                             timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def reconciled(daemon: Daemon, org: str, sobject: str = "Lead") -> float:
    """ilyd_reconciled_records_total{org, sobject} as the daemon exports it."""
    url = ControlClient(daemon.socket, timeout=10).call("status")["metrics_url"]
    text = requests.get(url, timeout=10).text
    pattern = (r'^ilyd_reconciled_records_total\{'
               rf'(?=[^}}]*org="{re.escape(org)}")(?=[^}}]*sobject="{sobject}")'
               r'[^}]*\} (\S+)$')
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def org_detail(daemon: Daemon, org: str) -> dict[str, Any]:
    orgs = ControlClient(daemon.socket, timeout=10).call("orgs")
    return dict(next(o for o in orgs if o["name"] == org)["detail"])


@pytest.fixture
def sweeping(tmp_path: Path, dev: DevOrg, info: OrgInfo, provisioned: object
             ) -> Iterator[Daemon]:
    """The daemon, sweeping every 2 seconds (its window ends 1 second behind now)."""
    running = Daemon(write_config(tmp_path, dev, [info], org_extra="reconcile_interval = 2\n"))
    running.start()
    yield running
    running.stop()


def leads(user: SalesforceUser, count: int, tag: str) -> list[str]:
    return [user.create("Lead", LastName=f"{tag}{i}", Company="x",
                        Email=f"{tag}{i}@acme.example") for i in range(count)]


@pytest.mark.slow
def test_the_sweep_enriches_leads_a_reused_replay_id_skipped(
        dev: DevOrg, info: OrgInfo, user: SalesforceUser, sweeping: Daemon) -> None:
    streaming(dev, info, "reset-replay")  # ids from 1 again: the daemon's stored id is reused
    first = leads(user, 5, "before")
    wait_until(lambda: enriched(user, first), timeout=40, what="the first leads enriched")
    sweeping.stop()
    # devorg "restarts" without its event log: ids start at 1 again, and the daemon's
    # stored id 5 now names the fifth event of the new stream.
    streaming(dev, info, "reset-replay")
    skipped = leads(user, 5, "skipped")
    delivered = leads(user, 3, "after")
    sweeping.start()
    wait_until(lambda: enriched(user, skipped + delivered), timeout=60,
               what="the leads behind the reused replay id enriched by the sweep")
    assert reconciled(sweeping, info.name) >= len(skipped)


@pytest.mark.slow
def test_the_sweep_recovers_leads_of_a_silent_stall_and_the_counter_rises(
        dev: DevOrg, info: OrgInfo, user: SalesforceUser, sweeping: Daemon) -> None:
    first = leads(user, 2, "live")
    wait_until(lambda: enriched(user, first), timeout=40, what="streaming works")
    assert reconciled(sweeping, info.name) == 0
    streaming(dev, info, "mute")
    stalled = leads(user, 6, "stalled")
    wait_until(lambda: enriched(user, stalled), timeout=40,
               what="the leads of the stall enriched by the sweep")
    assert reconciled(sweeping, info.name) == len(stalled)
    detail = org_detail(sweeping, info.name)
    assert detail["reconciled_at"].endswith("Z")
    assert "reconciled" in detail
    log = (sweeping.config.parent / "daemon.log").read_text()
    assert "reconcile_found_unenriched" in log
    assert "window_start" in log


def test_ctl_status_names_an_org_whose_last_sweep_found_records() -> None:
    shown = render_status({
        "version": "0", "started": 0.0, "generation": 1, "config": "ilyd.toml",
        "summary": "1 running", "reconciled": {"acme": {"at": "2026-01-01T10:00:00Z",
                                                        "found": 6}}})
    assert "sweep acme: 6 records no event brought, found 2026-01-01T10:00:00Z" in shown


def test_a_sweep_counts_only_changes_in_its_window_neither_enriched_nor_waiting(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    org = pipeline.org
    enriched_lead, waiting_lead, missed_lead = leads(user, 3, "w")
    record = user.record(enriched_lead)
    pipeline.state.remember(org, [("Lead", enriched_lead, inputs_hash("Lead", record))])
    pipeline.inbox.put(org, [InboxEntry("Lead", waiting_lead, {"Email": "w1@acme.example"})])
    watermarks = WatermarkStore(pipeline.database)
    now = datetime.now(UTC)
    watermarks.advance(org, "Lead", now - timedelta(minutes=5), 0)
    sweeper = Reconciler(org, pipeline.rest, inbox=pipeline.inbox, state=pipeline.state,
                         hashes=pipeline.hashes, watermarks=watermarks, objects=("Lead",),
                         interval=4, clock=lambda: now + timedelta(seconds=5))
    assert sweeper.sweep().found == {"Lead": 1}
    assert {i.record_id for i in pipeline.inbox.pending(org)} == {waiting_lead, missed_lead}
    mark = watermarks.get(org, "Lead")
    assert mark is not None
    assert mark.watermark == (now + timedelta(seconds=3)).replace(microsecond=0)
    assert mark.found == 1
    # The next sweep starts where this one ended: nothing is found twice.
    assert sweeper.sweep().found == {"Lead": 0}


def test_the_counter_is_pre_created_for_every_object_ilyd_enriches() -> None:
    assert metrics.RECONCILE_OBJECTS == SUPPORTED_OBJECTS


def test_a_first_start_sets_the_watermark_but_reports_no_sweep_until_one_ran(
        pipeline: OrgPipeline) -> None:
    watermarks = WatermarkStore(pipeline.database)
    sweeper = Reconciler(pipeline.org, pipeline.rest, inbox=pipeline.inbox,
                         state=pipeline.state, hashes=pipeline.hashes, watermarks=watermarks,
                         objects=("Lead",), interval=900)
    sweeper.start()
    assert watermarks.get(pipeline.org, "Lead") is not None
    assert sweeper.last() is None
    sweeper.sweep()
    last = sweeper.last()
    assert last is not None
    assert last[1] == 0
