"""SIGTERM on a one-process daemon whose orgs are stuck in slow Salesforce calls: it exits
within its stop deadline, says once how many actors it left behind, and every record
still in the inbox is there at the next start and gets written."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ilyd.daemon.process import STOP_TIMEOUT
from ilyd.devorg import DevOrg
from tests.helpers.devorg_process import devorg_fixture
from tests.pipeline.conftest import Daemon, SalesforceUser, provisioned_daemon, wait_until

ILY = "Ily_Match_Status__c"
# Longer than the daemon's stop deadline (and the wait for its exit below): the writes
# are still in flight when it exits, never answered.
SLOW_WRITE_SECONDS = 25.0

dev = devorg_fixture(orgs=4)


@pytest.fixture
def daemon(tmp_path: Path, dev: DevOrg) -> Iterator[Daemon]:
    with provisioned_daemon(tmp_path, dev, daemon="processes = 1\n") as running:
        yield running
    requests.delete(f"{dev.admin}/faults", timeout=10)


def _slow_writes(dev: DevOrg, org: str) -> int:
    """Make every sObject Collections write of `org` hang; the rule's id."""
    response = requests.post(f"{dev.admin}/faults", json={
        "kind": "latency", "delay": SLOW_WRITE_SECONDS, "org": org, "method": "PATCH",
        "path_prefix": "/services/data/", "count": 1000}, timeout=10)
    response.raise_for_status()
    return int(response.json()["id"])


def _hit(dev: DevOrg, rule: int) -> bool:
    """Whether a write has run into the rule (and hangs now)."""
    rules = requests.get(f"{dev.admin}/faults", timeout=10).json()
    return any(r["id"] == rule and r["count"] < 1000 for r in rules)


def _inbox(state: Path) -> set[str]:
    with sqlite3.connect(f"file:{state / 'ilyd.db'}?mode=ro", uri=True) as db:
        return {row[0] for row in db.execute("SELECT record_id FROM inbox")}


def _not_stopped_lines(log: Path) -> list[dict[str, object]]:
    lines = []
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if "not_stopped" in str(entry.get("event")):
            lines.append(entry)
    return lines


@pytest.mark.slow
def test_sigterm_with_orgs_stuck_in_slow_writes_exits_in_time_says_so_once_and_keeps_the_inbox(
        daemon: Daemon, dev: DevOrg, tmp_path: Path) -> None:
    users = {info.name: SalesforceUser(dev, info) for info in dev.orgs}
    warm = [(user, user.create("Account", Name="warm", Website="globex.test"))
            for user in users.values()]
    wait_until(lambda: all(u.record(r)[ILY] for u, r in warm), timeout=60,
               what="every org enriching (all its children up)")
    slow = [info.name for info in dev.orgs[1:]]
    rules = [_slow_writes(dev, org) for org in slow]
    stuck = {users[org].create("Account", Name=f"stuck{i}", Website="initech.test"): org
             for org in slow for i in range(3)}
    wait_until(lambda: all(_hit(dev, rule) for rule in rules), timeout=30,
               what="a write of every slow org in flight")

    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGTERM)
    try:
        code = daemon.process.wait(timeout=STOP_TIMEOUT + 5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the daemon did not exit within {STOP_TIMEOUT + 5} s of SIGTERM")
    assert code == 0

    said = _not_stopped_lines(tmp_path / "daemon.log")
    assert len(said) == 1, said
    assert int(said[0]["count"]) >= len(slow)  # type: ignore[call-overload]
    assert set(stuck) <= _inbox(tmp_path / "state")

    requests.delete(f"{dev.admin}/faults", timeout=10).raise_for_status()
    daemon.start()
    wait_until(lambda: all(users[org].record(r)[ILY] for r, org in stuck.items()), timeout=90,
               what="every stuck record written after the restart")
    wait_until(lambda: not set(stuck) & _inbox(tmp_path / "state"), timeout=30,
               what="the inbox emptied of the stuck records")
