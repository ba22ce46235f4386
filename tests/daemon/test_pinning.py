"""`[daemon] cpu_pinning` (the default): each process that runs orgs keeps its threads on one
CPU; a worker takes the CPU of its index, the front over workers stays free."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from .conftest import wait_until

USABLE = sorted(os.sched_getaffinity(0))
pytestmark = pytest.mark.skipif(len(USABLE) < 2, reason="one usable CPU: nothing to pin")
ORGS = ("alpha", "beta", "gamma", "delta")
UP = ("running", "degraded")


def cpus_of(pid: int) -> set[str]:
    """Every thread's Cpus_allowed_list (/proc), as a set: one entry once all agree."""
    lists = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):  # the thread ended since it was listed
            for line in Path(f"/proc/{pid}/task/{task}/status").read_text().splitlines():
                if line.startswith("Cpus_allowed_list:"):
                    lists.add(line.split(":", 1)[1].strip())
    return lists


def free() -> set[str]:
    """What a thread free to use every CPU of this machine's share shows."""
    return cpus_of(os.getpid())


def test_a_daemon_keeps_every_thread_on_one_cpu(write_config, start_daemon):
    daemon = start_daemon(write_config("alpha", "beta"))
    wait_until(lambda: set(daemon.org_states().values()) <= set(UP)
               and len(daemon.org_states()) == 2, what="both orgs up")
    cpu = USABLE[daemon.process.pid % len(USABLE)]
    assert cpus_of(daemon.process.pid) == {str(cpu)}
    assert daemon.ctl_json("status")["cpus"] == [cpu]
    assert f"this process runs on CPU {cpu}" in daemon.ctl("status").stdout
    out, _err = daemon.stop()[1:]
    assert '"event": "cpu_pinned"' in out


def test_without_pinning_the_threads_run_on_every_cpu(write_config, start_daemon):
    daemon = start_daemon(write_config("alpha", extra="cpu_pinning = false\n"))
    wait_until(lambda: set(daemon.org_states().values()) <= set(UP), what="the org up")
    assert cpus_of(daemon.process.pid) == free()
    assert daemon.ctl_json("status")["cpus"] == USABLE
    out, _err = daemon.stop()[1:]
    assert "cpu_pinned" not in out


def test_each_worker_takes_the_cpu_of_its_index_and_the_front_none(write_config,
                                                                   start_daemon):
    daemon = start_daemon(write_config(*ORGS, extra="processes = 2\n"))
    wait_until(lambda: len(daemon.org_states()) == len(ORGS)
               and set(daemon.org_states().values()) <= set(UP), what="both workers' orgs up")
    status = daemon.ctl_json("status")
    assert cpus_of(daemon.process.pid) == free()
    assert status["cpus"] == USABLE
    for worker in status["workers"]:
        cpu = USABLE[worker["worker"] % len(USABLE)]
        assert cpus_of(worker["pid"]) == {str(cpu)}
        assert worker["cpus"] == [cpu]
    assert f"on CPU {USABLE[1 % len(USABLE)]}" in daemon.ctl("status").stdout
    assert daemon.stop()[0] == 0
