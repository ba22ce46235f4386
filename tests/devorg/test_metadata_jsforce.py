"""jsforce's Metadata API (node), unchanged, against devorg's SOAP endpoint."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ilyd.cli import main
from ilyd.enrich.fields import CATALOGUE
from tests.devorg.conftest import login
from tests.helpers.devorg_process import start_devorg

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_jsforce_reads_updates_and_lists_layouts_creates_a_field_and_deploys(
        tmp_path: Path) -> None:
    package = tmp_path / "ily.zip"
    assert main(["fields", "package", "org0", "--out", str(package)]) == 0
    with start_devorg() as dev:
        org = dev.orgs[0]
        token = login(dev, org).token
        env = {"DEVORG": json.dumps({"url": dev.url, "client_id": org.client_id,
                                     "client_secret": org.client_secret,
                                     "access_token": token,
                                     "zip": base64.b64encode(package.read_bytes()).decode()}),
               "NODE_PATH": str(ROOT / "node_modules"), "PATH": "/usr/bin:/bin"}
        node = shutil.which("node")
        assert node is not None
        done = subprocess.run([node, str(Path(__file__).parent / "js" / "jsforce_metadata.js")],
                              env=env, capture_output=True, text=True, timeout=60, cwd=ROOT,
                              check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["created"], out["updated"]) == (True, True)
    assert out["sections"][0] == "Lead Information"
    assert out["sections"][-1] == "Ily Enrichment"
    assert out["last"]["layoutColumns"][0]["layoutItems"][0] == {
        "behavior": "Readonly", "field": "Ily_Domain__c"}
    assert out["listed"] == ["Account-Account Layout", "Lead-Lead Layout"]
    # jsforce names the error by its faultcode, as it does for Salesforce's faults
    assert out["fault"].startswith("sf:INVALID_TYPE: INVALID_TYPE: ")
    # the package's Lead.Ily_Domain__c already exists (created above): it is updated
    total = sum(len(f.objects) for f in CATALOGUE)
    assert out["deployed"] == ["Queued", "Succeeded", total]
