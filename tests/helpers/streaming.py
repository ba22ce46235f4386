"""Shared pieces of the tests that stream from devorg's CometD endpoint or from Faye."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import requests

from ilyd.actors.subscriber import SubscriptionLoop
from ilyd.devorg import DevOrg, OrgInfo
from ilyd.salesforce.bayeux import BackoffPolicy, BayeuxClient, StreamState
from tests.helpers.waiting import wait_until

Runner = TypeVar("Runner", BayeuxClient, SubscriptionLoop)

# Short reconnect delays: a fault is recovered from in well under a second.
FAST_BACKOFF = BackoffPolicy(base=0.05, cap=0.3, long=0.5)


def hold_connects(dev: DevOrg, org: OrgInfo, seconds: int = 1) -> OrgInfo:
    """Have devorg answer `org`'s held /meta/connect polls after `seconds`, so every
    fault a test injects is met within that time; return `org`."""
    requests.post(f"{dev.admin}/streaming/{org.name}/settings",
                  json={"hold_seconds": seconds}, timeout=10).raise_for_status()
    return org


@contextmanager
def connected(runner: Runner) -> Iterator[Runner]:
    """`runner` (a BayeuxClient, or a SubscriptionLoop driving one) started and connected;
    stopped when the block ends, however it ends."""
    client = runner.client if isinstance(runner, SubscriptionLoop) else runner
    runner.start()
    try:
        wait_until(lambda: client.state == StreamState.CONNECTED, what="connected")
        yield runner
    finally:
        runner.stop()
