"""A running daemon's org streaming from devorg while its connects are answered with
malformed Bayeux (the garble fault): the daemon and the org survive each reply, the org
is back to `running`, and records created afterwards are enriched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from ilyd.config import load_config
from ilyd.devorg import DevOrg
from tests.helpers.devorg_process import devorg_fixture
from tests.helpers.orgs import provision
from tests.helpers.waiting import wait_until
from tests.pipeline.conftest import Daemon, SalesforceUser, write_config

dev = devorg_fixture()
ILY = "Ily_Match_Status__c"


def streaming_status(dev: DevOrg) -> dict[str, Any]:
    return dict(requests.get(f"{dev.admin}/streaming/{dev.orgs[0].name}", timeout=10).json())


def hostile_bodies(channels: list[str]) -> list[bytes]:
    """Replies no server should send: wrong types, missing fields, not JSON, huge, and
    events for ilyd's own channels that name no record or carry junk."""
    channel = channels[0]
    return [
        b"<html><body>502 Bad Gateway</body></html>",
        b"[" * 100_000,
        json.dumps({"channel": "/meta/connect", "successful": "yes", "advice": [1, 2]}).encode(),
        json.dumps([{"channel": "/meta/connect", "successful": True,
                     "advice": {"interval": 1e308, "timeout": -5}}]).encode(),
        json.dumps([{"channel": "/meta/connect", "successful": True},
                    {"channel": channel, "data": {"event": {"replayId": "²"}}},
                    {"channel": channel, "data": {"event": {"replayId": 10**30},
                                                  "sobject": {"Id": 5, "Website": ["x"]}}},
                    {"channel": channel, "data": "not an object"}]).encode(),
        json.dumps([{"channel": "/meta/connect", "successful": True,
                     "x": "a" * (4 << 20)}]).encode(),
        json.dumps([{"channel": "/meta/connect"}]).encode(),  # no "successful" at all
    ]


@pytest.fixture
def daemon(tmp_path: Path, dev: DevOrg) -> Iterator[Daemon]:
    config = write_config(tmp_path, dev, [dev.orgs[0]])
    loaded = load_config(config)
    assert not loaded.org_errors, loaded.org_errors
    provision(loaded.orgs[0])
    requests.patch(f"{dev.admin}/streaming/{dev.orgs[0].name}/settings",
                   json={"hold_seconds": 1}, timeout=10).raise_for_status()
    running = Daemon(config)
    running.start()
    yield running
    running.stop()


@pytest.mark.slow
def test_garbled_connect_replies_leave_the_daemon_and_the_org_running(
        daemon: Daemon, dev: DevOrg) -> None:
    user = SalesforceUser(dev, dev.orgs[0])
    first = user.create("Lead", LastName="Before", Company="x", Email="jo@acme.example")
    wait_until(lambda: user.record(first)[ILY], timeout=60, what="enrichment before")
    channels = wait_until(lambda: [s for c in streaming_status(dev)["clients"]
                                   for s in c["subscriptions"]], what="ilyd's subscriptions")
    for body in hostile_bodies(channels):
        requests.post(f"{dev.admin}/streaming/{dev.orgs[0].name}/garble", data=body,
                      timeout=30).raise_for_status()
        wait_until(lambda: streaming_status(dev)["garbled"] == 0, timeout=30,
                   what="the garbled reply to be taken")
        assert daemon.process is not None
        assert daemon.process.poll() is None, (daemon.config.parent / "daemon.log").read_text()
        wait_until(lambda: daemon.org().get("state") == "running", timeout=60,
                   what=f"the org running again after {body[:60]!r}")
    after = user.create("Lead", LastName="After", Company="x", Email="jo@globex.test")
    wait_until(lambda: user.record(after)[ILY], timeout=60, what="enrichment after")
    assert user.record(first)[ILY] == "Matched"
