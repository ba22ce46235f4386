"""An operator's failover run: the daemon SIGKILLed and started again, then devorg
restarted on the same `--data` file, while people keep creating Leads in bursts. Every
Lead ends up enriched: replay ids a client holds keep naming the same events across
devorg's restart, and the PushTopic publishes from the moment devorg answers again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from ilyd.config import load_config
from ilyd.devorg import OrgInfo
from tests.helpers.devorg_process import DevorgProcess
from tests.helpers.orgs import password_org_toml, provision
from tests.pipeline.conftest import Daemon, wait_until

BURSTS = 10
BURST_SIZE = 200
PAUSE = 0.5  # seconds between bursts: the load's shape, as people create records


@pytest.fixture
def devorg(tmp_path: Path) -> Iterator[DevorgProcess]:
    running = DevorgProcess(tmp_path / "devorg.sqlite")
    yield running
    running.stop()


def create_burst(devorg: DevorgProcess, org: str, burst: int) -> None:
    creates = [{"org": org, "sobject": "Lead",
                "values": {"LastName": f"B{burst}-{i}", "Company": "x",
                           "Email": f"b{burst}.{i}@acme.example"}} for i in range(BURST_SIZE)]
    answer = requests.post(f"{devorg.url}/_devorg/creates", json={"creates": creates},
                           timeout=60)
    assert answer.status_code == 200, answer.text
    assert all(r["success"] for r in answer.json()["results"])


def unenriched_leads(devorg: DevorgProcess, info: OrgInfo) -> int:
    """Leads without Ily values, counted by SOQL as the integration user."""
    session = requests.Session()
    token = session.post(f"{devorg.url}/services/oauth2/token", data={
        "grant_type": "password", "client_id": info.client_id,
        "client_secret": info.client_secret, "username": info.username,
        "password": info.password}, timeout=10).json()["access_token"]
    answer = session.get(f"{devorg.url}/services/data/v62.0/query", params={
        "q": "SELECT COUNT() FROM Lead WHERE Ily_Match_Status__c = null"},
        headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["totalSize"])


@pytest.mark.slow
def test_every_lead_is_enriched_across_a_daemon_kill_and_a_devorg_restart_with_data(
        tmp_path: Path, devorg: DevorgProcess) -> None:
    credentials = devorg.start()
    info = OrgInfo(**credentials["orgs"][0])  # type: ignore[index]
    config = tmp_path / "ilyd.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path}/state"\n'
        f'control_socket = "{tmp_path}/control.sock"\nlog_format = "json"\n'
        '[metrics]\nlisten = "127.0.0.1:0"\n'
        + password_org_toml(tmp_path, SimpleNamespace(url=devorg.url), info))  # type: ignore[arg-type]
    loaded = load_config(config)
    assert not loaded.org_errors, loaded.org_errors
    provision(loaded.orgs[0])
    daemon = Daemon(config)
    daemon.start()
    try:
        for burst in range(1, BURSTS + 1):
            create_burst(devorg, info.name, burst)
            if burst == 3:
                daemon.kill()
            elif burst == 5:
                daemon.start()
            elif burst == 7:
                devorg.stop()
                devorg.start()
            time.sleep(PAUSE)
        wait_until(lambda: unenriched_leads(devorg, info) == 0, timeout=120, interval=1.0,
                   what=f"every one of the {BURSTS * BURST_SIZE} Leads enriched")
    finally:
        daemon.stop()
