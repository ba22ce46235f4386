"""The pipeline in worker processes ([daemon] processes = 3) against devorg: records of
every org are enriched, and killing a worker — or the whole daemon — loses none."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from ilyd.daemon.shards import shard_of
from ilyd.devorg import DevOrg
from tests.helpers.devorg_process import devorg_fixture
from tests.pipeline.conftest import Daemon, SalesforceUser, provisioned_daemon, wait_until

ILY = "Ily_Match_Status__c"

dev = devorg_fixture(orgs=4)


@pytest.fixture
def users(dev: DevOrg) -> list[SalesforceUser]:
    return [SalesforceUser(dev, info) for info in dev.orgs]


@pytest.fixture
def daemon(tmp_path: Path, dev: DevOrg) -> Iterator[Daemon]:
    with provisioned_daemon(tmp_path, dev, daemon="processes = 3\n") as running:
        yield running


def create_everywhere(users: list[SalesforceUser], tag: str, count: int) -> list[tuple]:
    return [(user, user.create("Account", Name=f"{tag}{i}", Website="globex.test"))
            for user in users for i in range(count)]


def all_enriched(records: list[tuple]) -> bool:
    return all(user.record(record)[ILY] for user, record in records)


@pytest.mark.slow
def test_every_org_is_enriched_and_a_killed_worker_loses_nothing(
        daemon: Daemon, users: list[SalesforceUser], dev: DevOrg) -> None:
    # org0..org3 fall on workers 2, 1, 1, 0: every worker has orgs, worker 1 two.
    assert [shard_of(info.name, 3) for info in dev.orgs] == [2, 1, 1, 0]
    records = create_everywhere(users, "warm", 1)
    wait_until(lambda: all_enriched(records), timeout=60, what="every org enriched")
    victim = daemon.workers()[1]["pid"]
    records += create_everywhere(users, "before", 10)
    os.kill(victim, signal.SIGKILL)
    records += create_everywhere(users, "during", 5)  # worker 1's orgs have no process
    wait_until(lambda: daemon.workers()[1]["restarts"] == 1, timeout=30,
               what="worker 1 started again")
    wait_until(lambda: all_enriched(records), timeout=60, what="every record enriched")


@pytest.mark.slow
def test_a_daemon_killed_with_its_workers_loses_nothing_after_a_restart(
        daemon: Daemon, users: list[SalesforceUser]) -> None:
    records = create_everywhere(users, "warm", 1)
    wait_until(lambda: all_enriched(records), timeout=60, what="every org enriched")
    records += create_everywhere(users, "burst", 10)
    daemon.kill_all()
    records += create_everywhere(users, "down", 5)
    daemon.start()
    wait_until(lambda: all_enriched(records), timeout=90, what="every record enriched")
    assert [w["state"] for w in daemon.workers()] == ["running"] * 3
