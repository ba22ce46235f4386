"""/metrics of a running daemon: the daemon series, per_org switch, promtool."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import requests

from .conftest import wait_until


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is required under CI=true (make system-deps installs it)")
        pytest.skip("promtool not installed (Debian package prometheus; make system-deps)")
    return path


def scrape(daemon) -> str:
    url = daemon.ctl_json("status")["metrics_url"]
    return requests.get(url, timeout=10).text


def test_metrics_answer_with_daemon_series_and_pass_promtool(write_config, start_daemon):
    daemon = start_daemon(write_config("alpha"))
    wait_until(lambda: daemon.org_states() == {"alpha": "running"}, what="alpha running")
    daemon.ctl("status")
    body = scrape(daemon)
    assert 'ilyd_build_info{version="' in body
    assert 'ilyd_orgs{state="running"} 1.0' in body
    assert 'ilyd_org_up{org="alpha"} 1.0' in body
    assert 'ilyd_org_restarts_total{org="alpha"} 0.0' in body
    assert "ilyd_config_last_reload_successful 1.0" in body
    assert "ilyd_config_last_reload_success_timestamp_seconds " in body
    assert 'ilyd_control_requests_total{verb="status"}' in body
    assert "_created" not in body
    checked = subprocess.run([promtool(), "check", "metrics"], input=body, text=True,
                             capture_output=True, timeout=30, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert daemon.stop()[0] == 0


def test_per_org_series_can_be_switched_off(write_config, start_daemon):
    daemon = start_daemon(write_config("alpha", metrics="per_org = false\n"))
    wait_until(lambda: daemon.org_states() == {"alpha": "running"}, what="alpha running")
    body = scrape(daemon)
    assert 'org="alpha"' not in body
    assert 'ilyd_orgs{state="running"} 1.0' in body
    assert daemon.stop()[0] == 0
