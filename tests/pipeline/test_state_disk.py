"""The state directory failing under a running daemon: a full disk and a read-only
filesystem, for real (a small tmpfs mounted over the state directory, which needs root;
the store-level tests in tests/store/test_disk_faults.py cover the rest without it)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ilyd.devorg import DevOrg, OrgInfo
from tests.pipeline.conftest import Daemon, SalesforceUser, provisioned_daemon, wait_until

ILY = "Ily_Match_Status__c"


def _mount(target: Path, *options: str) -> bool:
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(("size=4m", *options)),
                           "tmpfs", str(target)], capture_output=True, check=False)
    return done.returncode == 0


@pytest.fixture
def small_state_dir(tmp_path: Path) -> Iterator[Path]:
    """tmp_path/state as a 4 MiB tmpfs of its own."""
    state = tmp_path / "state"
    state.mkdir()
    if os.geteuid() != 0 or not _mount(state):
        if os.environ.get("CI"):
            pytest.fail("CI runs as root and must be able to mount a tmpfs for this test")
        pytest.skip("mounting a small tmpfs needs root")
    yield state
    subprocess.run(["umount", "-l", str(state)], check=False)


@pytest.fixture
def daemon(small_state_dir: Path, tmp_path: Path, dev: DevOrg, info: OrgInfo) -> Iterator[Daemon]:
    with provisioned_daemon(tmp_path, dev, [info]) as running:
        yield running


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True,
                   check=False)
    return filler


def _log_events(daemon: Daemon, name: str) -> list[dict[str, Any]]:
    lines = (daemon.config.parent / "daemon.log").read_text(errors="replace").splitlines()
    found = []
    for line in lines:
        if name in line and line.startswith("{"):
            found.append(json.loads(line))
    return found


def test_a_full_state_disk_is_reported_with_the_path_and_healed_without_a_restart(
        daemon: Daemon, small_state_dir: Path, user: SalesforceUser) -> None:
    wait_until(lambda: daemon.org().get("state") == "running", timeout=30, what="org running")
    first = user.create("Lead", LastName="A", Company="x", Email="jo@acme.example")
    wait_until(lambda: user.record(first)[ILY], timeout=30, what="first lead enriched")

    filler = _fill(small_state_dir)
    leads = [user.create("Lead", LastName=f"B{i}", Company="x", Email=f"b{i}@globex.test")
             for i in range(5)]
    org = wait_until(lambda: (o := daemon.org()).get("detail", {}).get("connection_reason")
                     == "unstored" and o, timeout=30, what="the org reporting unstored events")
    detail = org["detail"]["connection_detail"]
    assert str(small_state_dir) in detail
    assert "full" in detail
    assert "free space" in detail
    # Running, but enriching nothing meanwhile: degraded, with the cause as its last error.
    org = wait_until(lambda: (o := daemon.org()).get("state") == "degraded" and o,
                     timeout=30, what="the org shown degraded")
    assert str(small_state_dir) in org["last_error"]
    assert not any(user.record(lead)[ILY] for lead in leads)
    assert _log_events(daemon, "bayeux_events_not_stored")

    filler.unlink()
    wait_until(lambda: all(user.record(lead)[ILY] for lead in leads), timeout=90,
               what="every lead enriched once the disk has room again")
    assert daemon.process is not None
    assert daemon.process.poll() is None
    wait_until(lambda: daemon.org().get("detail", {}).get("connection") == "connected",
               timeout=30, what="the stream connected again")
    wait_until(lambda: daemon.org().get("state") == "running", timeout=30,
               what="the org running again")


def test_a_read_only_state_disk_stops_the_start_with_the_path_and_loses_nothing(
        daemon: Daemon, small_state_dir: Path, user: SalesforceUser) -> None:
    wait_until(lambda: daemon.org().get("state") == "running", timeout=30, what="org running")
    first = user.create("Lead", LastName="A", Company="x", Email="jo@acme.example")
    wait_until(lambda: user.record(first)[ILY], timeout=30, what="first lead enriched")
    daemon.stop()

    # A filesystem the kernel remounted read-only after an error, as the daemon starts.
    subprocess.run(["mount", "-o", "remount,ro", str(small_state_dir)], check=True)
    lead = user.create("Lead", LastName="R", Company="x", Email="r@globex.test")
    log = daemon.config.parent / "daemon.log"
    log.write_bytes(b"")
    daemon.start()
    assert daemon.process is not None
    assert daemon.process.wait(timeout=60) != 0
    said = log.read_text(errors="replace")
    assert str(small_state_dir) in said
    assert "is read-only for the ilyd user" in said
    assert "Traceback" not in said

    subprocess.run(["mount", "-o", "remount,rw", str(small_state_dir)], check=True)
    daemon.start()
    wait_until(lambda: user.record(lead)[ILY], timeout=90,
               what="the lead created meanwhile enriched once the disk is writable again")
