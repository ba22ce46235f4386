"""The process's lookup pool in a running daemon (`ilyd run`) against devorg and a vendor
API on loopback: two orgs looking companies up through it are both enriched, and neither
ever has more lookups in flight than the pool leaves it (all its threads but one)."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from ilyd.control.client import ControlClient
from ilyd.devorg import DevOrg
from tests.helpers.devorg_process import devorg_fixture
from tests.helpers.vendor import CompanyVendor
from tests.pipeline.conftest import Daemon, SalesforceUser, provisioned_daemon, wait_until

dev = devorg_fixture(orgs=2)

# Each answer takes this long: a source across the network, slow enough that a round's
# records go to the pool rather than being looked up inline.
ANSWER_SECONDS = 0.2


class _Vendor:
    """A vendor API on loopback that counts, per org (the domain's first label up to its
    digits), the requests it is answering at once and the most it ever answered."""

    def __init__(self) -> None:
        self.in_flight: Counter[str] = Counter()
        self.most: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._api = CompanyVendor(self._hold)
        self.provider_toml = self._api.provider_toml

    def _hold(self, domain: str) -> None:
        org = re.sub(r"\d.*", "", domain)  # alpha3.test: alpha
        with self._lock:
            self.in_flight[org] += 1
            self.most[org] = max(self.most[org], self.in_flight[org])
        try:
            self._stopping.wait(ANSWER_SECONDS)
        finally:
            # Counted out before the answer is written: once the client has read it, its
            # next request may arrive before this thread would get further.
            with self._lock:
                self.in_flight[org] -= 1

    def stop(self) -> None:
        self._stopping.set()
        self._api.stop()


@pytest.fixture
def vendor() -> Iterator[_Vendor]:
    server = _Vendor()
    yield server
    server.stop()


@pytest.fixture
def daemon(tmp_path: Path, dev: DevOrg, vendor: _Vendor) -> Iterator[Daemon]:
    # One vendor, one provider instance for both orgs; its own limits are out of the way,
    # so only the pool limits the lookups in flight.
    provider = vendor.provider_toml("vendor", timeout=30, max_attempts=1,
                                    requests_per_second=1000, max_concurrency=64)
    with provisioned_daemon(tmp_path, dev, daemon="processes = 1\nlookup_threads = 2\n",
                            org_extra=provider) as running:
        yield running


def test_two_orgs_are_enriched_on_the_shared_pool_each_with_at_most_all_its_threads_but_one(
        daemon: Daemon, dev: DevOrg, vendor: _Vendor) -> None:
    users = [SalesforceUser(dev, info) for info in dev.orgs]

    def running() -> bool:
        try:
            orgs = ControlClient(daemon.socket, timeout=10).call("orgs")
        except Exception:  # not up yet
            return False
        return [o["state"] for o in orgs] == ["running", "running"]

    wait_until(running, timeout=60, what="both orgs running")
    # Each org's workers is 4 (the default); with lookup_threads = 2 an org gets one.
    records = [(user, user.create("Account", Name=f"{org}{i}", Website=f"{org}{i}.test"))
               for user, org in zip(users, ("alpha", "beta"), strict=True) for i in range(12)]
    wait_until(lambda: all(user.record(record)["Ily_Company_Name__c"]
                           for user, record in records),
               timeout=90, what="every record of both orgs enriched")
    assert {user.record(record)["Ily_Company_Name__c"] for user, record in records} == {
        f"{org}{i}.test Inc." for org in ("alpha", "beta") for i in range(12)}
    assert vendor.most == {"alpha": 1, "beta": 1}
