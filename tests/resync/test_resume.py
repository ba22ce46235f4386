"""A resync killed with SIGKILL mid-sync resumes from its checkpoint: every record is
enriched, none is written twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from ilyd.resync.checkpoint import IngestState, ResyncStore, RunState
from ilyd.resync.progress import Phase
from ilyd.salesforce.versions import DEFAULT_API_VERSION
from tests.helpers import ROOT
from tests.helpers.waiting import wait_until

from .conftest import OrgEnv

# Where ingest uploads go at the API version the clients speak by default.
INGEST = f"/services/data/v{DEFAULT_API_VERSION}/jobs/ingest"


@pytest.mark.slow
def test_sigkill_mid_sync_then_restart_enriches_every_record_exactly_once(env: OrgEnv) -> None:
    env.admin.seed("Account", 1200)
    # Slow ingest uploads: the kill lands with some batches sent and more to go.
    env.admin.fault(kind="latency", path_prefix=INGEST,
                    method="PUT", delay=0.15)
    info = env.info
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.resync.resync_child", info.login_url, info.client_id,
         info.client_secret, info.refresh_token, info.name, str(env.db.path)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = ResyncStore(env.db)
    try:
        wait_until(lambda: len(store.jobs(info.name)) >= 2, what="two ingest jobs")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    env.admin.clear_faults()
    assert store.run(info.name).state is RunState.RUNNING  # type: ignore[union-attr]
    sent_before = len(store.jobs(info.name))

    engine = env.resync()
    assert engine.resumable()
    engine.resume()
    result = engine.run().snapshot()

    assert result["phase"] == str(Phase.DONE), result
    assert result["written"] == 1200
    assert len(store.jobs(info.name)) > sent_before
    assert all(j.state is IngestState.SETTLED for j in store.jobs(info.name))
    ids = [r["Id"] for r in env.all_records("Account", "Ily_Match_Status__c")
           if r["Ily_Match_Status__c"] == "Not Found"]
    assert len(ids) == 1200
    writes = {record_id: env.ily_writes(record_id) for record_id in ids}
    assert set(writes.values()) == {1}
