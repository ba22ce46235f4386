"""An org that runs but cannot do its job shows as `degraded`, with the cause as its last
error, in `ilyd ctl status`, `ilyd_org_up` and `ilyd_org_state` — each cause the runbook
lists for IlydOrgDown's `degraded` state, produced for real."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from ilyd.control.client import ControlClient
from ilyd.devorg import DevOrg, OrgInfo
from tests.helpers.devorg_process import start_devorg
from tests.pipeline.conftest import Daemon, wait_until, write_config


def _orgs(daemon: Daemon) -> list[dict[str, Any]]:
    try:
        return list(ControlClient(daemon.socket, timeout=10).call("orgs"))
    except Exception:  # not up yet
        return []


def _degraded(daemon: Daemon) -> dict[str, Any]:
    return wait_until(lambda: next((o for o in _orgs(daemon) if o["state"] == "degraded"),
                                   None), timeout=45, what="the org shown degraded")


def _metric(daemon: Daemon, line_start: str) -> str:
    url = ControlClient(daemon.socket, timeout=10).call("status")["metrics_url"]
    text = requests.get(url, timeout=10).text
    return next((line for line in text.splitlines() if line.startswith(line_start)), "")


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Any]:
    started: list[Daemon] = []

    def start(config: Path) -> Daemon:
        daemon = Daemon(config)
        daemon.start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def test_a_wrong_client_secret_shows_degraded_with_the_fix_and_org_up_0(
        tmp_path: Path, dev: DevOrg, info: OrgInfo, run: Any) -> None:
    config = write_config(tmp_path, dev, [info])
    (tmp_path / f"{info.name}.secret").write_text("not-the-secret")
    daemon = run(config)
    org = _degraded(daemon)
    assert "invalid_client" in org["last_error"]
    status = ControlClient(daemon.socket, timeout=10).call("status")
    assert status["summary"] == "1 org: 1 degraded"
    assert "fix the client id or secret, then ilyd ctl reload" in org["detail"][
        "provision_error"]
    assert _metric(daemon, f'ilyd_org_up{{org="{info.name}"}}').endswith(" 0.0")
    assert _metric(daemon, f'ilyd_org_state{{org="{info.name}",state="degraded"}}').endswith(
        " 1.0")

    (tmp_path / f"{info.name}.secret").write_text(info.client_secret)
    ControlClient(daemon.socket, timeout=30).call("reload")
    wait_until(lambda: any(o["state"] == "running" and o["last_error"] is None
                           for o in _orgs(daemon)), timeout=60,
               what="the org running again once the secret is fixed and reloaded")


def test_salesforce_unreachable_shows_degraded_with_the_connection_error(
        tmp_path: Path, dev: DevOrg, info: OrgInfo, run: Any) -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    config = write_config(tmp_path, dev, [info])
    config.write_text(config.read_text().replace(dev.url, closed))
    daemon = run(config)
    org = _degraded(daemon)
    assert closed.removeprefix("http://") in org["last_error"] or "onnect" in org["last_error"]


def test_a_tls_failure_shows_degraded_with_the_certificate_problem(
        tmp_path: Path, run: Any) -> None:
    with start_devorg(tls=True) as tls_org:
        # No ca_file: devorg's own CA is not trusted, as with a proxy's on a real host.
        config = write_config(tmp_path, tls_org, [tls_org.orgs[0]])
        daemon = run(config)
        org = _degraded(daemon)
        assert "TLS verification" in org["last_error"]


def test_a_problem_shows_degraded_only_once_it_lasted_degraded_after(
        tmp_path: Path, dev: DevOrg, info: OrgInfo, run: Any) -> None:
    config = write_config(tmp_path, dev, [info])
    config.write_text(config.read_text().replace("degraded_after = 0", "degraded_after = 6"))
    (tmp_path / f"{info.name}.secret").write_text("not-the-secret")
    daemon = run(config)
    seen = wait_until(lambda: next((o for o in _orgs(daemon)
                                    if o["detail"].get("provision_error")), None),
                      timeout=45, what="the refused secret in the org's detail")
    # Within the grace: not degraded yet, so a passing blip never makes the state flap.
    assert seen["state"] in ("starting", "running")
    org = _degraded(daemon)
    assert "invalid_client" in org["last_error"]
