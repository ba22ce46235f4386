"""A running daemon stopped with SIGTERM stops in order: exit 0, promptly, no errors logged.

At stop the supervisor is marked dead before it stops the orgs, so whatever the orgs and
their children say on the way down (status detail, "stopped") must be dropped quietly,
and every child (the Bayeux long poll, the enricher's idle wait, the writer's window)
must give up at once rather than run into the org's stop timeout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ilyd.devorg import OrgInfo
from tests.pipeline.conftest import SalesforceUser, wait_until

ILY = "Ily_Match_Status__c"
STOP_DEADLINE = 10.0  # systemd's default TimeoutStopSec is 90 s; ours is STOP_TIMEOUT + slack


@pytest.fixture
def daemon(provisioned: object, config_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (config_path.parent / "daemon.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "ilyd", "run", "--config", str(config_path)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    yield process
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def problems(log: Path) -> list[str]:
    """Every error-or-worse line of the daemon's log (json lines; anything else counts)."""
    found = []
    for line in log.read_text().splitlines():
        try:
            level = json.loads(line).get("level")
        except ValueError:
            found.append(line)  # a bare traceback on stderr
            continue
        if level in ("error", "critical", "exception"):
            found.append(line[:400])
    return found


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the daemon did not exit within {STOP_DEADLINE} s of SIGTERM")


def test_sigterm_on_a_running_org_exits_zero_and_logs_no_error(
        daemon: subprocess.Popen[bytes], user: SalesforceUser, config_path: Path) -> None:
    record = user.create("Account", Name="A", Website="acme.example")
    # Enriched through the stream: every child (subscriber long poll included) is up.
    wait_until(lambda: user.record(record)[ILY], timeout=30, what="the record enriched")
    assert stop(daemon) == 0
    log = config_path.parent / "daemon.log"
    assert problems(log) == []
    assert '"ilyd_stopped"' in log.read_text()


def test_sigterm_mid_burst_exits_zero_and_logs_no_error(
        daemon: subprocess.Popen[bytes], user: SalesforceUser, info: OrgInfo,
        config_path: Path) -> None:
    first = user.create("Account", Name="warm-up", Website="acme.example")
    wait_until(lambda: user.record(first)[ILY], timeout=30, what="the daemon enriching")
    for i in range(30):
        user.create("Lead", LastName=f"L{i}", Company="x", Email=f"p{i}@globex.test")
    assert stop(daemon) == 0
    assert problems(config_path.parent / "daemon.log") == []


def test_sigterm_while_the_org_is_still_starting_exits_zero_and_logs_no_error(
        daemon: subprocess.Popen[bytes], config_path: Path) -> None:
    log = config_path.parent / "daemon.log"
    wait_until(lambda: '"ilyd_started"' in log.read_text(), timeout=30, what="ilyd_started")
    assert stop(daemon) == 0
    assert problems(log) == []
