"""`ilyd tail` prints an org's events as JSON lines with its own cursor."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import requests

from ilyd.devorg import DevOrg
from ilyd.salesforce.auth import make_token_provider
from ilyd.salesforce.rest import RestClient
from tests.commands.conftest import write_config


def test_tail_replays_retained_events_as_json_lines_without_touching_the_state(
    dev: DevOrg, tmp_path: Path
) -> None:
    org = dev.orgs[0]
    tp = make_token_provider("password", login_url=org.login_url, client_id=org.client_id,
                             client_secret=org.client_secret, username=org.username,
                             password=org.password, org=org.name)
    rest = RestClient(org.name, tp)
    rest.create("PushTopic", {"Name": "IlyLeadChanges", "ApiVersion": 62.0,
                              "Query": "SELECT Id, Email, Company FROM Lead"})
    rest.create("PlatformEventChannelMember", {  # select Lead for change events
        "FullName": "ChangeEvents_LeadChangeEvent",
        "Metadata": {"eventChannel": "ChangeEvents", "selectedEntity": "LeadChangeEvent"}},
        tooling=True)
    ids = [rest.create("Lead", {"LastName": f"T{n}", "Company": "Tail"}) for n in range(2)]
    rest.close()
    requests.post(f"{dev.admin}/streaming/{org.name}/settings", json={"hold_seconds": 1},
                  timeout=10).raise_for_status()
    config = write_config(tmp_path, dev, auth="password")

    result = subprocess.run(
        [sys.executable, "-m", "ilyd", "tail", "acme", "--config", str(config),
         "--channel", "/topic/IlyLeadChanges", "--channel", "/data/LeadChangeEvent",
         "--replay", "-2", "--count", "4"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    topic = [e for e in lines if e["channel"] == "/topic/IlyLeadChanges"]
    cdc = [e for e in lines if e["channel"] == "/data/LeadChangeEvent"]
    assert [e["data"]["sobject"]["Id"] for e in topic] == ids
    assert [e["data"]["payload"]["ChangeEventHeader"]["recordIds"][0] for e in cdc] == ids
    assert all(isinstance(e["replayId"], int) for e in lines)
    notes = [json.loads(n) for n in result.stderr.splitlines() if n.startswith("{")]
    assert notes[0]["state"] == "connecting"
    assert not (tmp_path / "state").exists()


def test_tail_names_an_unknown_org(dev: DevOrg, tmp_path: Path) -> None:
    config = write_config(tmp_path, dev)
    result = subprocess.run(
        [sys.executable, "-m", "ilyd", "tail", "nope", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "nope" in result.stderr
