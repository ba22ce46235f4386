"""One token source per org in a running daemon (`ilyd run` as a child process), on the
refresh_token grant, against a devorg that refuses concurrent refreshes of one refresh
token and, with rotation on, revokes the chain when a rotated-out token comes back."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ilyd.config import OrgConfig, load_config
from ilyd.devorg import DevOrg, OrgInfo
from tests.helpers.orgs import provision, refresh_token_org_toml
from tests.pipeline.conftest import Daemon, SalesforceUser, wait_until

ILY = "Ily_Match_Status__c"
ILYD = (sys.executable, "-m", "ilyd")


def refresh_token_config(tmp_path: Path, dev: DevOrg, info: OrgInfo) -> Path:
    """An ilyd config with one refresh_token-auth org; the token file is ilyd's to rotate."""
    path = tmp_path / "ilyd.toml"
    path.write_text(
        f'[daemon]\nstate_dir = "{tmp_path}/state"\n'
        f'control_socket = "{tmp_path}/control.sock"\nlog_format = "json"\n'
        f'[metrics]\nlisten = "127.0.0.1:0"\n'
        + refresh_token_org_toml(tmp_path, dev, info, "poll_interval = 5\n"))
    return path


class Org:
    """The org under test: its config, a Salesforce user, and devorg's admin API."""

    def __init__(self, dev: DevOrg, info: OrgInfo, config: OrgConfig,
                 config_path: Path) -> None:
        self.dev, self.info, self.config, self.config_path = dev, info, config, config_path
        self.user = SalesforceUser(dev, info)
        self.admin = requests.Session()

    def expire_tokens(self) -> None:
        response = self.admin.post(f"{self.dev.admin}/orgs/{self.info.name}/tokens/expire",
                                   json={}, timeout=10)
        assert response.status_code == 200, response.text

    def slow_bulk_ingest(self, delay: float) -> None:
        """Every Bulk ingest request of the org waits `delay` seconds before devorg serves it."""
        response = self.admin.post(f"{self.dev.admin}/faults", json={
            "org": self.info.name, "kind": "latency", "delay": delay,
            "path_prefix": f"/services/data/v{self.config.api_version}/jobs/ingest"},
            timeout=10)
        assert response.status_code < 300, response.text

    def clear_faults(self) -> None:
        self.admin.delete(f"{self.dev.admin}/faults", timeout=10)

    def accounts(self, count: int, tag: str) -> list[str]:
        return [self.user.create("Account", Name=f"{tag} {n}", Website="https://globex.test")
                for n in range(count)]

    def enriched(self, records: list[str]) -> bool:
        return all(self.user.record(r)[ILY] for r in records)


@pytest.fixture
def org(tmp_path: Path, dev: DevOrg, info: OrgInfo) -> Org:
    config_path = refresh_token_config(tmp_path, dev, info)
    config = load_config(config_path)
    assert not config.org_errors, config.org_errors
    org_config: OrgConfig = config.orgs[0]
    provision(org_config)
    return Org(dev, info, org_config, config_path)


@pytest.fixture
def daemon(org: Org) -> Iterator[Daemon]:
    running = Daemon(org.config_path)
    yield running
    running.stop()


def reauth_lines(config_path: Path) -> list[str]:
    """The daemon's log lines that marked the org as needing `ilyd connect`."""
    log = (config_path.parent / "daemon.log").read_text(errors="replace")
    return [line for line in log.splitlines() if '"needs_reauth": true' in line]


def test_parts_of_an_org_refreshing_at_once_never_mark_it_needs_reauth(
        org: Org, daemon: Daemon) -> None:
    # Salesforce takes a while over each token request and refuses a second one with the
    # same refresh token meanwhile; the provisioner, writer, poller and subscriber all
    # want a token at start and after every session expiry.
    org.user.settings(token_request_seconds=0.5)
    daemon.start()
    first = org.accounts(3, "Before")
    wait_until(lambda: org.enriched(first), timeout=60, what="records enriched after start")
    for round_ in range(3):
        org.expire_tokens()
        batch = org.accounts(2, f"After expiry {round_}")
        wait_until(lambda b=batch: org.enriched(b), timeout=60,
                   what=f"records enriched after expiry {round_}")
    assert reauth_lines(org.config_path) == []


@pytest.mark.slow
def test_with_rotation_a_resync_ilyd_check_and_token_expiries_never_need_reauth(
        org: Org, daemon: Daemon, tmp_path: Path) -> None:
    seeded = org.accounts(40, "Existing")
    org.user.settings(refresh_token_rotation=True, token_request_seconds=0.2)
    daemon.start()
    wait_until(lambda: (config_status(daemon).get("orgs") or {}).get("running"),
               timeout=60, what="the org running")
    # A slow Bulk ingest keeps the resync running through the rounds below.
    org.slow_bulk_ingest(2.0)
    resync = subprocess.Popen([*ILYD, "ctl", "--socket", str(daemon.socket), "--json",
                               "resync", org.info.name, "--wait"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: org.info.name in (config_status(daemon).get("resyncs") or {}),
               timeout=60, what="the resync started")
    created: list[str] = []
    checks: list[subprocess.CompletedProcess[str]] = []
    for round_ in range(3):
        # `ilyd check` beside the daemon refreshes from the same token file while the
        # daemon's parts refresh after the expiry.
        check = subprocess.Popen([*ILYD, "check", org.info.name, "--config",
                                  str(org.config_path), "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        org.expire_tokens()
        created += org.accounts(2, f"Live {round_}")
        out, err = check.communicate(timeout=120)
        checks.append(subprocess.CompletedProcess(check.args, check.returncode, out, err))
    org.clear_faults()
    out, err = resync.communicate(timeout=300)
    assert resync.returncode == 0, (out, err)
    wait_until(lambda: org.enriched(created + seeded), timeout=120,
               what="every record enriched, live and resynced")
    for done in checks:
        assert done.returncode in (0, 1), done.stderr
        assert json.loads(done.stdout)["results"], done.stdout
        assert "ilyd connect" not in done.stdout + done.stderr
    assert reauth_lines(org.config_path) == []
    # The chain is alive: the stored refresh token is the one devorg knows now.
    daemon.stop()
    token = (tmp_path / f"{org.info.name}.refresh_token").read_text().strip()
    answer = requests.post(f"{org.dev.url}/services/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": token,
        "client_id": org.info.client_id}, timeout=10)
    assert answer.status_code == 200, answer.text


def config_status(daemon: Daemon) -> dict[str, object]:
    from ilyd.control.client import ControlClient

    try:
        return dict(ControlClient(daemon.socket, timeout=10).call("status"))
    except Exception:  # not listening yet
        return {}
