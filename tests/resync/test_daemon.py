"""`ilyd ctl resync` and `ilyd ctl cancel` against a real daemon (`ilyd run` as a child
process) on devorg, with real-time enrichment running beside the sync."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ilyd.salesforce.versions import DEFAULT_API_VERSION
from tests.helpers.waiting import wait_until
from tests.pipeline.conftest import write_config

from .conftest import SAMPLE_DOMAINS, OrgEnv

ILYD = (sys.executable, "-m", "ilyd")

# Where ingest uploads go at the API version the clients speak by default.
INGEST = f"/services/data/v{DEFAULT_API_VERSION}/jobs/ingest"


class Daemon:
    """`ilyd run --config` in a short directory (a unix socket path fits 108 bytes)."""

    def __init__(self, env: OrgEnv, dev_url: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="rs", dir="/tmp"))
        self.socket = self.dir / "control.sock"
        from types import SimpleNamespace

        self.config = write_config(self.dir, SimpleNamespace(url=dev_url),  # type: ignore[arg-type]
                                   [env.info])
        self.log = (self.dir / "daemon.log").open("ab")
        self.process = subprocess.Popen([*ILYD, "run", "--config", str(self.config)],
                                        stdout=self.log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*ILYD, "ctl", "--socket", str(self.socket), *args],
                              capture_output=True, text=True, timeout=timeout, check=False)

    def status(self) -> dict[str, Any]:
        done = self.ctl("--json", "status")
        return json.loads(done.stdout) if done.returncode == 0 else {}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def daemon(env: OrgEnv, dev: Any) -> Iterator[Daemon]:
    running = Daemon(env, dev.url)
    try:
        wait_until(lambda: running.process.poll() is not None or
                   (running.status().get("orgs") or {}).get("running"),
                   timeout=60, what="the org running in the daemon")
        assert running.process.poll() is None, (running.dir / "daemon.log").read_text()
        yield running
    finally:
        running.stop()


def _sample_account(env: OrgEnv, name: str) -> str:
    return env.admin.call("POST", f"/orgs/{env.info.name}/records/Account",
                          {"Name": name, "Website": f"https://{SAMPLE_DOMAINS[0]}"})["id"]


@pytest.mark.slow
def test_resync_wait_json_streams_progress_and_leaves_a_created_record_to_real_time(
    env: OrgEnv, daemon: Daemon,
) -> None:
    env.admin.seed("Account", 2500)
    # Slow ingest: the sync is still sending when the record below is created, after
    # the sync read everything (so whether it read the new record is not left to timing).
    env.admin.fault(kind="latency", path_prefix=INGEST,
                    method="POST", delay=2.0)
    waiter = subprocess.Popen([*ILYD, "ctl", "--socket", str(daemon.socket), "--json",
                               "resync", env.info.name, "--object", "Account", "--wait"],
                              stdout=subprocess.PIPE, text=True)

    def read_everything() -> bool:
        line = str((daemon.status().get("resyncs") or {}).get(env.info.name, ""))
        return "100%" in line or line.startswith(("settling", "done"))

    wait_until(read_everything, timeout=60, what="the resync to read every record")
    assert waiter.poll() is None, "the resync ended before the record was created"
    created = _sample_account(env, "Created During Sync")
    wait_until(lambda: env.rest.get("Account", created, ["Ily_Match_Status__c"])
               ["Ily_Match_Status__c"] == "Matched", what="real-time enrichment")
    out, _ = waiter.communicate(timeout=120)
    env.admin.clear_faults()

    assert waiter.returncode == 0, out
    # --json: one {"progress": …} line per update, then the final result.
    lines = out.splitlines()
    updates = [json.loads(line)["progress"] for line in lines if line.startswith('{"progress"')]
    final = json.loads("\n".join(line for line in lines if not line.startswith('{"progress"')))
    assert len(updates) >= 2
    assert {u["org"] for u in updates} == {env.info.name}
    assert {"read", "written", "rate", "eta_seconds"} <= set(updates[0])
    assert final["phase"] == "done", final
    assert final["failed"] == 0
    # The created record was enriched once, by the real-time path; the sync wrote the
    # 2,500 seeded records and left it alone (or found nothing to change on it).
    assert env.ily_writes(created) == 1
    assert final["written"] == 2500
    record = env.rest.get("Account", created, ["Ily_Match_Status__c", "Ily_Domain__c"])
    assert record["Ily_Domain__c"] == SAMPLE_DOMAINS[0]
    status = daemon.status()
    assert env.info.name in (status.get("resyncs") or {})
    assert str(status["resyncs"][env.info.name]).startswith("done")


@pytest.mark.slow
def test_cancel_round_trip_through_the_control_socket(env: OrgEnv, daemon: Daemon) -> None:
    env.admin.seed("Account", 3000)
    env.admin.fault(kind="latency", path_prefix=INGEST,
                    delay=1.0)
    started = daemon.ctl("--json", "resync", env.info.name, "--object", "Account")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["phase"] in ("starting", "counting", "reading")

    busy = daemon.ctl("resync", env.info.name)
    assert busy.returncode != 0
    cancelled = daemon.ctl("--json", "cancel", env.info.name)
    assert cancelled.returncode == 0, cancelled.stderr
    wait_until(lambda: str((daemon.status().get("resyncs") or {}).get(env.info.name, ""))
               .startswith("cancelled"), timeout=30, what="the resync cancelled in status")
    env.admin.clear_faults()
    again = daemon.ctl("cancel", env.info.name)
    assert again.returncode != 0
