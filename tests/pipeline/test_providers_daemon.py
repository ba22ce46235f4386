"""The provider chain [http, dns, dataset] in a running daemon (`ilyd run`) against devorg,
a vendor API stub and a DNS server on loopback: values, Source, cache, ctl, failing key."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ilyd.devorg import DevOrg, OrgInfo
from tests.enrich.conftest import HttpStub, Reply, ZoneServer
from tests.pipeline.conftest import SalesforceUser, wait_until, write_config
from tests.pipeline.test_daemon import Daemon

API_KEY = "k3y-for-the-vendor"
ACME = {"name": "Acme Rockets Inc.", "category": {"industry": "Aerospace"},
        "metrics": {"employees": 1200}}


@pytest.fixture
def stub() -> Iterator[HttpStub]:
    server = HttpStub()
    yield server
    server.stop()


@pytest.fixture
def zones() -> Iterator[ZoneServer]:
    server = ZoneServer()
    yield server
    server.stop()


@pytest.fixture
def config_path(tmp_path: Path, dev: DevOrg, info: OrgInfo, stub: HttpStub,
                zones: ZoneServer) -> Path:
    """Overrides the pipeline conftest's: the org enriches through [vendor, dns, dataset]."""
    key = tmp_path / "vendor.key"
    key.write_text(API_KEY + "\n")
    key.chmod(0o600)
    providers = f"""
[[org.enrich.provider]]
type = "http"
name = "vendor"
url = "{stub.base}/companies/{{domain}}"
auth_header = "Authorization"
auth_prefix = "Bearer "
secret_file = "{key}"
fields = {{ Ily_Company_Name__c = "name", Ily_Industry__c = "category.industry", \
Ily_Employee_Count__c = "metrics.employees" }}
max_attempts = 1

[[org.enrich.provider]]
type = "dns"
nameservers = ["127.0.0.1"]
port = {zones.port}
query_timeout = 1
budget = 5

[[org.enrich.provider]]
type = "dataset"
path = "@sample"
"""
    return write_config(tmp_path, dev, [info], org_extra=providers)


@pytest.fixture
def daemon(provisioned: object, config_path: Path) -> Iterator[Daemon]:
    running = Daemon(config_path)
    running.start()
    yield running
    running.stop()


def ctl(config_path: Path, *args: str) -> Any:
    """`ilyd ctl --json ARGS…` against the test's daemon; the parsed result."""
    done = subprocess.run(
        [sys.executable, "-m", "ilyd", "ctl", "--socket",
         str(config_path.parent / "control.sock"), "--json", *args],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def vendor_stats(config_path: Path) -> dict[str, Any]:
    stats = ctl(config_path, "cache", "stats")
    return next((p for p in stats["providers"] if p["provider"] == "vendor"),
                {"entries": 0, "hits": 0, "misses": 0})


def test_a_created_account_gets_vendor_values_dns_technographics_and_a_cached_second_lookup(
        daemon: Daemon, user: SalesforceUser, stub: HttpStub, config_path: Path) -> None:
    stub.route("/companies/acme.test", Reply(200, ACME))
    first = user.create("Account", Name="Acme", Website="https://www.acme.test")
    record = wait_until(lambda: (r := user.record(first))["Ily_Match_Status__c"] and r,
                        timeout=30, what="the first Account enriched")
    assert record["Ily_Match_Status__c"] == "Matched"
    assert record["Ily_Company_Name__c"] == "Acme Rockets Inc."
    assert record["Ily_Industry__c"] == "Aerospace"
    assert record["Ily_Employee_Count__c"] == 1200
    assert "Google Workspace" in record["Ily_Email_Provider__c"]
    assert "Cloudflare" in record["Ily_DNS_Provider__c"]
    assert record["Ily_Source__c"] == "vendor, dns"
    (seen,) = stub.requests
    assert seen.headers["Authorization"] == f"Bearer {API_KEY}"

    second = user.create("Account", Name="Acme EMEA", Website="acme.test/emea")
    record = wait_until(lambda: (r := user.record(second))["Ily_Match_Status__c"] and r,
                        timeout=30, what="the second Account enriched")
    assert record["Ily_Company_Name__c"] == "Acme Rockets Inc."
    assert stub.hits("/companies/acme.test") == 1
    stats = vendor_stats(config_path)
    assert stats["entries"] == 1
    assert stats["misses"] == 1
    assert stats["hits"] >= 1

    table = subprocess.run(
        [sys.executable, "-m", "ilyd", "ctl", "--socket", str(config_path.parent /
         "control.sock"), "cache", "stats"], capture_output=True, text=True, timeout=60,
        check=True).stdout.splitlines()
    assert table[0].split()[:3] == ["PROVIDER", "ENTRIES", "FOUND"]
    assert any(line.split()[:3] == ["vendor", "1", "1"] for line in table)

    cleared = ctl(config_path, "cache", "clear", "--domain", "www.acme.test")
    assert cleared["domain"] == "acme.test"
    assert cleared["removed"] == 2  # vendor's and dns's answers (the dataset is not cached)
    assert ctl(config_path, "cache", "stats")["entries"] == 0


def test_a_refused_api_key_shows_the_provider_failing_and_dns_still_answers(
        daemon: Daemon, user: SalesforceUser, stub: HttpStub, config_path: Path) -> None:
    stub.route("/companies/initech.test", Reply(401, {"error": "invalid api key"}))
    account = user.create("Account", Name="Initech", Website="initech.test")
    record = wait_until(lambda: (r := user.record(account))["Ily_Match_Status__c"] and r,
                        timeout=30, what="the Account enriched by the other providers")
    assert record["Ily_Source__c"] == "dns"
    assert "Microsoft 365" in record["Ily_Email_Provider__c"]

    def failing_detail() -> dict[str, Any] | None:
        (org,) = ctl(config_path, "orgs")
        return org["detail"] if org["detail"].get("provider_failing") else None

    detail = wait_until(failing_detail, timeout=20, what="the org to show the failing provider")
    assert detail["provider_failing"] == "vendor"
    assert "HTTP 401" in detail["provider_error"]
    assert API_KEY not in detail["provider_error"]
    # A failing provider is not asked again: the next company costs no vendor request.
    other = user.create("Account", Name="Globex", Website="globex.test")
    wait_until(lambda: user.record(other)["Ily_Match_Status__c"], timeout=30,
               what="the next Account enriched")
    assert [r.path for r in stub.requests] == ["/companies/initech.test"]
