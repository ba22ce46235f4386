"""Shared pieces of the tests that stream from devorg's CometD endpoint or from Faye."""

from __future__ import annotations

import requests

from ilyd.devorg import DevOrg, OrgInfo
from ilyd.salesforce.bayeux import BackoffPolicy

# Short reconnect delays: a fault is recovered from in well under a second.
FAST_BACKOFF = BackoffPolicy(base=0.05, cap=0.3, long=0.5)


def hold_connects(dev: DevOrg, org: OrgInfo, seconds: int = 1) -> OrgInfo:
    """Have devorg answer `org`'s held /meta/connect polls after `seconds`, so every
    fault a test injects is met within that time; return `org`."""
    requests.post(f"{dev.admin}/streaming/{org.name}/settings",
                  json={"hold_seconds": seconds}, timeout=10).raise_for_status()
    return org
