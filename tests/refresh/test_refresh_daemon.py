"""The scheduled refresh in a real daemon (`ilyd run` as a child process) on devorg:
stale records are enriched again on schedule, and `ilyd ctl orgs` and the metrics show
the backlog, the next run and what was refreshed."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ilyd.control.client import ControlClient
from tests.helpers.waiting import wait_until
from tests.pipeline.conftest import Daemon, write_config
from tests.resync.conftest import SAMPLE_DOMAINS, OrgEnv

LONG_AGO = "2020-01-01T00:00:00.000Z"


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory: the control socket's path must fit 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="rf", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _metric(daemon: Daemon, name: str, org: str) -> float | None:
    url = ControlClient(daemon.socket, timeout=10).call("status")["metrics_url"]
    for family in text_string_to_metric_families(requests.get(url, timeout=10).text):
        for sample in family.samples:
            if sample.name == name and sample.labels == {"org": org}:
                return float(sample.value)
    return None


def _last_enriched(env: OrgEnv, record_id: str) -> str:
    return str(env.rest.get("Account", record_id, ["Ily_Last_Enriched__c"])
               ["Ily_Last_Enriched__c"] or "")


def test_the_daemon_refreshes_stale_records_and_shows_backlog_next_run_and_counts(
        env: OrgEnv, dev: Any, short_dir: Path) -> None:
    config = write_config(short_dir, SimpleNamespace(url=dev.url), [env.info],  # type: ignore[arg-type]
                          extra='[defaults.enrich]\nrefresh_interval = "1s"\n')
    daemon = Daemon(config)
    daemon.start()
    try:
        wait_until(lambda: daemon.org().get("state") == "running", timeout=60,
                   what="the org running")
        ids = [env.admin.call("POST", f"/orgs/{env.info.name}/records/Account",
                              {"Name": f"Stale {n}", "Website": f"https://{SAMPLE_DOMAINS[0]}"}
                              )["id"] for n in range(3)]
        wait_until(lambda: all(_last_enriched(env, i) for i in ids), timeout=60,
                   what="real-time enrichment of the new records")
        for record_id in ids[:2]:  # enriched long ago, as far as Salesforce knows
            env.admin.call("PATCH", f"/orgs/{env.info.name}/records/Account/{record_id}"
                           "?as=integration", {"Ily_Last_Enriched__c": LONG_AGO})
        fresh = _last_enriched(env, ids[2])
        wait_until(lambda: all(not _last_enriched(env, i).startswith("2020") for i in ids[:2]),
                   timeout=60, what="the stale records enriched again")
        assert _last_enriched(env, ids[2]) == fresh  # not stale: not read, not written
        detail = wait_until(lambda: (d := daemon.org().get("detail", {})).get(
            "refresh_backlog") == 0 and d, timeout=30, what="the backlog counted empty")
        assert str(detail["refresh_next"]).endswith("Z")
        shown = daemon.ctl("orgs")
        assert "refresh_backlog=0" in shown
        assert "refresh_next=" in shown
        org = env.info.name
        assert _metric(daemon, "ilyd_refresh_records_total", org) == 2
        assert _metric(daemon, "ilyd_refresh_changed_records_total", org) == 0
        assert _metric(daemon, "ilyd_refresh_backlog_records", org) == 0
        assert (_metric(daemon, "ilyd_refresh_next_run_timestamp_seconds", org) or 0) > 0
    finally:
        daemon.stop()
