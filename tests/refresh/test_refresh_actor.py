"""The refresh's rounds inside the org's resync part, against devorg: an operator's
resync goes first (a running refresh stops, waits, and resumes from its checkpoint
without writing a record twice)."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pykka
import pytest

from ilyd.actors.component import ComponentRef
from ilyd.actors.messages import OrgReport
from ilyd.actors.org import stop_org
from ilyd.actors.refresh import RefreshSettings
from ilyd.actors.resync import ResyncComponent, StartResync
from ilyd.config import OrgConfig, load_config
from ilyd.resync.checkpoint import ResyncStore, RunState
from ilyd.salesforce.versions import DEFAULT_API_VERSION
from tests.helpers.actors import start_parts
from tests.helpers.waiting import wait_until
from tests.pipeline.conftest import write_config
from tests.resync.conftest import FAST, OrgEnv

INGEST = f"/services/data/v{DEFAULT_API_VERSION}/jobs/ingest"
COLLECTIONS = f"/services/data/v{DEFAULT_API_VERSION}/composite/sobjects"
LONG_AGO = "2020-01-01T00:00:00.000Z"


class Supervisor(pykka.ThreadingActor):
    """Stands in for the daemon's supervisor: keeps every status detail it is told."""

    def __init__(self) -> None:
        super().__init__()
        self.details: list[dict[str, Any]] = []

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, OrgReport):
            self.details.append(dict(message.detail))
        return list(self.details) if message == "details" else None


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="rfa", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _stale_accounts(env: OrgEnv, count: int) -> list[str]:
    """Accounts whose Last Enriched says ilyd enriched them long ago."""
    ids = env.add_sample_accounts(count)
    for start in range(0, count, 200):
        env.rest.update_collection("Account", [{"Id": i, "Ily_Last_Enriched__c": LONG_AGO}
                                               for i in ids[start:start + 200]])
    return ids


# Short waits; Bulk result pages of 200 records, so a refresh of 600 sends several jobs.
SETTINGS = RefreshSettings(start_delay=0.1, resync_wait=0.2, yield_look=0.05,
                           engine=dataclasses.replace(FAST, page_size=200))


def _org_context(env: OrgEnv, dev: Any, directory: Path,
                 extra: str = "") -> tuple[OrgConfig, Any]:
    """The org's config as the daemon reads it, and the supervisor."""
    config = load_config(write_config(directory, SimpleNamespace(url=dev.url),  # type: ignore[arg-type]
                                      [env.info], extra=extra))
    return config.orgs[0], Supervisor.start()


def _resync_part(env: OrgEnv, org: OrgConfig,
                 supervisor: Any) -> tuple[pykka.ActorRef[Any], ComponentRef]:
    """An org actor running only its resync part (and so the refresh); the part's ref."""
    actor, parts = start_parts(org, env.db,
                               [("resync", lambda c: ResyncComponent(c, FAST, SETTINGS))],
                               supervisor)
    return actor, parts["resync"].ref


def test_an_operators_resync_goes_first_and_the_refresh_resumes_from_its_checkpoint(
        env: OrgEnv, dev: Any, short_dir: Path) -> None:
    ids = _stale_accounts(env, 600)
    writes_before = {i: env.ily_writes(i) for i in ids}
    env.rest.create_collection("Lead", [{"LastName": f"L{n}", "Company": "Acme",
                                         "Email": f"l{n}@acme.example"} for n in range(20)])
    # Slow ingest uploads: the resync starts while the refresh has jobs still to send;
    # slow Collections writes: the resync (of Leads, by REST) lasts a while.
    env.admin.fault(kind="latency", path_prefix=INGEST, method="PUT", delay=0.3)
    env.admin.fault(kind="latency", path_prefix=COLLECTIONS, method="PATCH", delay=1.0)
    org, supervisor = _org_context(env, dev, short_dir)
    actor, resync = _resync_part(env, org, supervisor)
    refreshes = ResyncStore(env.db, "refresh")
    try:
        wait_until(lambda: len(refreshes.jobs(org.name)) >= 1, timeout=60,
                   what="the refresh sending its first ingest job")
        resync.ask(StartResync(("Lead",)), timeout=30)
        wait_until(lambda: (run := refreshes.run(org.name)) is not None
                   and run.state is RunState.DONE, timeout=120,
                   what="the refresh resumed and finished")
    finally:
        stop_org(actor).get(timeout=30)
        details = supervisor.ask("details", timeout=10)
        supervisor.stop()
        env.admin.clear_faults()
    assert any(d.get("refresh") == "waiting for resync" for d in details)
    assert ResyncStore(env.db).run(org.name).state is RunState.DONE  # type: ignore[union-attr]
    # Every stale record refreshed once: nothing skipped, nothing sent twice.
    assert all(env.ily_writes(i) == writes_before[i] + 1 for i in ids)


def test_a_refresh_stopped_with_its_org_resumes_when_the_org_starts_again(
        env: OrgEnv, dev: Any, short_dir: Path) -> None:
    ids = _stale_accounts(env, 600)
    writes_before = {i: env.ily_writes(i) for i in ids}
    env.admin.fault(kind="latency", path_prefix=INGEST, method="PUT", delay=0.3)
    org, supervisor = _org_context(env, dev, short_dir)
    refreshes = ResyncStore(env.db, "refresh")
    try:
        first, _ = _resync_part(env, org, supervisor)
        wait_until(lambda: len(refreshes.jobs(org.name)) >= 1, timeout=60,
                   what="the refresh sending its first ingest job")
        stop_org(first).get(timeout=30)  # the org stops (a daemon stop or restart)
        run = refreshes.run(org.name)
        assert run is not None
        assert run.state is RunState.RUNNING
        env.admin.clear_faults()
        again, _ = _resync_part(env, org, supervisor)
        wait_until(lambda: (run := refreshes.run(org.name)) is not None
                   and run.state is RunState.DONE, timeout=120,
                   what="the refresh resumed and finished")
        stop_org(again).get(timeout=30)
    finally:
        supervisor.stop()
        env.admin.clear_faults()
    assert all(env.ily_writes(i) == writes_before[i] + 1 for i in ids)


def _details_at_start(env: OrgEnv, dev: Any, directory: Path,
                      extra: str = "") -> list[dict[str, Any]]:
    """What the org's resync part publishes by the time it has started and answers."""
    directory.mkdir()
    org, supervisor = _org_context(env, dev, directory, extra)
    actor, resync = _resync_part(env, org, supervisor)
    try:
        resync.ask(StartResync(("Lead",)), timeout=30)
        wait_until(lambda: ResyncStore(env.db).run(org.name).state  # type: ignore[union-attr]
                   is RunState.DONE, timeout=30, what="the resync of Leads done")
    finally:
        stop_org(actor).get(timeout=30)
        details: list[dict[str, Any]] = supervisor.ask("details", timeout=10)
        supervisor.stop()
    return details


def test_the_next_refresh_is_shown_from_the_start_and_refresh_after_zero_turns_it_off(
        env: OrgEnv, dev: Any, short_dir: Path) -> None:
    on = _details_at_start(env, dev, short_dir / "on")
    assert any(str(d.get("refresh_next", "")).endswith("Z") for d in on)
    off = _details_at_start(env, dev, short_dir / "off", '[defaults.enrich]\nrefresh_after = 0\n')
    assert not any(key.startswith("refresh") for d in off for key in d)
