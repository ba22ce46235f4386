"""An org is one actor and one thread: `ilyd run` with N orgs on devorg has at most one
thread per org beside a fixed few once every org is fed; and an org held by a call to a
slow Salesforce is restarted within its stop deadline, not when the call ends."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from structlog.testing import capture_logs

from ilyd.actors.messages import GetSnapshot, OrgState, RestartOrg
from ilyd.actors.org import ORG_STOP_TIMEOUT
from ilyd.actors.supervisor import SupervisorActor
from ilyd.config import load_config
from ilyd.control.client import ControlClient
from ilyd.devorg import DevOrg
from ilyd.store import Database
from tests.helpers.devorg_process import devorg_fixture
from tests.helpers.orgs import provision
from tests.pipeline.conftest import (
    Daemon,
    SalesforceUser,
    provisioned_daemon,
    wait_until,
    write_config,
)

ORGS = 12
# The daemon's own threads whatever its orgs: main, control server, metrics server,
# timers, the lookup pool's few started threads, the stream's shared loop, the state
# store's and the logs' helpers. Well under one more per org.
FIXED = 16

dev = devorg_fixture(orgs=ORGS)


def _threads(pid: int) -> int:
    """Threads of the process and of its children."""
    total, pending = 0, [pid]
    while pending:
        member = pending.pop()
        with open(f"/proc/{member}/status") as status:
            total += next(int(line.split()[1]) for line in status
                          if line.startswith("Threads:"))
        for task in os.listdir(f"/proc/{member}/task"):
            with contextlib.suppress(FileNotFoundError), \
                    open(f"/proc/{member}/task/{task}/children") as children:
                pending += [int(child) for child in children.read().split()]
    return total


def _orgs(daemon: Daemon) -> list[dict[str, Any]]:
    try:
        return list(ControlClient(daemon.socket, timeout=10).call("orgs"))
    except Exception:  # not up yet
        return []


def _fed(daemon: Daemon, key: str, value: object) -> bool:
    orgs = _orgs(daemon)
    return len(orgs) == ORGS and all(o["detail"].get(key) == value for o in orgs)


@pytest.fixture
def polling(tmp_path: Path, dev: DevOrg) -> Iterator[Daemon]:
    with provisioned_daemon(tmp_path, dev, daemon="processes = 1\n",
                            org_extra='source = "polling"\n') as running:
        yield running


@pytest.fixture
def streaming(tmp_path: Path, dev: DevOrg) -> Iterator[Daemon]:
    with provisioned_daemon(tmp_path, dev, daemon="processes = 1\n") as running:
        yield running


def test_a_daemon_polling_n_orgs_has_at_most_one_thread_per_org_beside_a_fixed_few(
        polling: Daemon) -> None:
    wait_until(lambda: _fed(polling, "polling", True), timeout=120,
               what="every org polling")
    assert polling.process is not None
    assert _threads(polling.process.pid) <= ORGS + FIXED


def test_a_daemon_streaming_n_orgs_has_at_most_one_thread_per_org_beside_a_fixed_few(
        streaming: Daemon) -> None:
    wait_until(lambda: _fed(streaming, "connection", "connected"), timeout=120,
               what="every org subscribed")
    assert streaming.process is not None
    assert _threads(streaming.process.pid) <= ORGS + FIXED


# Longer than the org's stop deadline and the wait below: the call is still in flight
# when the org is restarted.
SLOW_SECONDS = 25.0


def _state(supervisor: Any) -> tuple[OrgState, int]:
    org = supervisor.ask(GetSnapshot(), timeout=5).orgs[0]
    return org.state, org.restarts


def _restart_while_slow(tmp_path: Path, dev: DevOrg, method: str, what: str,
                        said: set[str], org_extra: str = "") -> list[dict[str, Any]]:
    """Run one org, make its `method` calls hang, do `what` (create a record, or wait for
    the next poll) until one is in flight, restart the org and wait until it runs again
    (within its stop deadline and a margin, far less than the hanging call) and one of
    the events `said` is logged; the log."""
    info = dev.orgs[0]
    config = load_config(write_config(tmp_path, dev, [info], org_extra=org_extra))
    provision(config.orgs[0])
    database = Database(tmp_path / "state" / "ilyd.db")
    supervisor = SupervisorActor.start(config, database=database)
    try:
        wait_until(lambda: _state(supervisor)[0] is OrgState.RUNNING, timeout=60,
                   what="the org running")
        rule = requests.post(f"{dev.admin}/faults", json={
            "kind": "latency", "delay": SLOW_SECONDS, "org": info.name, "method": method,
            "path_prefix": "/services/data/", "count": 1000}, timeout=10).json()["id"]
        if what == "write":
            SalesforceUser(dev, info).create("Account", Name="stuck", Website="initech.test")
        wait_until(lambda: any(r["id"] == rule and r["count"] < 1000 for r in
                               requests.get(f"{dev.admin}/faults", timeout=10).json()),
                   timeout=60, what=f"the org's {what} in flight")
        with capture_logs() as logs:
            supervisor.ask(RestartOrg(info.name), timeout=5)
            wait_until(lambda: _state(supervisor) == (OrgState.RUNNING, 1),
                       timeout=ORG_STOP_TIMEOUT + 8, what="the org restarted")
            wait_until(lambda: any(e["event"] in said for e in logs),
                       timeout=ORG_STOP_TIMEOUT + 8, what="the old org said what it left")
        return logs
    finally:
        requests.delete(f"{dev.admin}/faults", timeout=10)
        supervisor.stop(timeout=30)
        database.close()


def test_an_org_whose_write_hangs_is_restarted_within_its_stop_deadline(
        tmp_path: Path, dev: DevOrg) -> None:
    # The write waits on a thread of its own: the org stops by itself, naming the writer.
    logs = _restart_while_slow(tmp_path, dev, "PATCH", "write", {"org_children_not_stopped"})
    late = [e["children"] for e in logs if e["event"] == "org_children_not_stopped"]
    assert late == [["writer"]]


def test_an_org_whose_poll_hangs_is_restarted_within_its_stop_deadline(
        tmp_path: Path, dev: DevOrg) -> None:
    # The poll holds the org's thread: the supervisor goes on without the old org.
    logs = _restart_while_slow(tmp_path, dev, "GET", "poll", {"org_stop_overdue"},
                               'source = "polling"\n')
    assert [e["event"] for e in logs if e["event"] == "org_stop_overdue"] \
        == ["org_stop_overdue"]
