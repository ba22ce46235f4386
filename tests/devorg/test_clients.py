"""Third-party clients, unchanged, against devorg: simple-salesforce over TLS with the
generated CA, and jsforce (node) over plain HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce

from ilyd.devorg import DevOrg
from tests.helpers.devorg_process import devorg_fixture, start_devorg

ROOT = Path(__file__).resolve().parents[2]


tls_dev = devorg_fixture(scope="module", tls=True, seed_records=2500)


@pytest.fixture
def sf(tls_dev: DevOrg) -> Salesforce:
    org = tls_dev.orgs[0]
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace our CA
    session.verify = str(tls_dev.ca_file)
    token = session.post(tls_dev.url + "/services/oauth2/token", data={
        "grant_type": "refresh_token", "client_id": org.client_id,
        "client_secret": org.client_secret, "refresh_token": org.refresh_token}).json()
    return Salesforce(session_id=token["access_token"], instance_url=token["instance_url"],
                      session=session, version="59.0")


def test_simple_salesforce_query_all_follows_pages(sf: Salesforce) -> None:
    result = sf.query_all("SELECT Id, Name, Owner.Name FROM Account")
    assert result["totalSize"] >= 2500
    assert len(result["records"]) == result["totalSize"]
    assert result["records"][0]["Owner"]["Name"] == "Sam Seller"


def test_simple_salesforce_describe_crud_collections_limits(sf: Salesforce) -> None:
    assert any(o["name"] == "Lead" for o in sf.describe()["sobjects"])
    assert sf.Account.describe()["keyPrefix"] == "001"
    created = sf.Account.create({"Name": "Simple", "Website": "simple.test"})
    assert created["success"] is True
    assert sf.Account.update(created["id"], {"Website": "simple.example"}) == 204
    assert sf.Account.get(created["id"])["Website"] == "simple.example"
    results = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Account"}, "id": created["id"], "Industry": "Retail"}]})
    assert results == [{"id": created["id"], "success": True, "errors": []}]
    assert sf.Account.delete(created["id"]) == 204
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == 15000
    used, total = sf.api_usage["api-usage"]
    assert total == 15000
    assert used == 15000 - limits["DailyApiRequests"]["Remaining"]


@pytest.mark.slow
def test_simple_salesforce_bulk2_update_round_trip(sf: Salesforce) -> None:
    rows = sf.query("SELECT Id FROM Lead LIMIT 300")["records"]
    results = sf.bulk2.Lead.update(records=[{"Id": r["Id"], "Website": "bulk.test"}
                                            for r in rows])
    assert results[0]["numberRecordsProcessed"] == 300
    assert results[0]["numberRecordsFailed"] == 0
    count = sf.query("SELECT COUNT() FROM Lead WHERE Website = 'bulk.test'")["totalSize"]
    assert count == 300


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_jsforce_refresh_token_login_query_and_multi_record_update() -> None:
    with start_devorg(seed_records=5) as dev:
        org = dev.orgs[0]
        script = Path(__file__).parent / "js" / "jsforce_roundtrip.js"
        env = {"DEVORG": json.dumps({"url": dev.url, "client_id": org.client_id,
                                     "client_secret": org.client_secret,
                                     "refresh_token": org.refresh_token}),
               "NODE_PATH": str(ROOT / "node_modules"), "PATH": "/usr/bin:/bin"}
        node = shutil.which("node")
        assert node is not None
        done = subprocess.run([node, str(script)], env=env, capture_output=True, text=True,
                              timeout=60, cwd=ROOT, check=False)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        assert out["queried"] == 5
        assert out["updated"] == [True] * 5
        assert out["websites"] == ["js.test"] * 5
