"""jsforce's streaming client (faye underneath) works against devorg's CometD unchanged."""

from __future__ import annotations

import subprocess

from ilyd.devorg import DevOrg
from tests.devorg.cometd_helpers import Lines, OrgClient, streaming_fixtures
from tests.helpers import ROOT

dev, org = streaming_fixtures(hold_seconds=1,
                              topics={"IlyLeads": "SELECT Id, Email, Company FROM Lead"})


def jsforce(
    dev: DevOrg, org: OrgClient, replay: int, count: int
) -> tuple[subprocess.Popen[str], Lines]:
    proc = subprocess.Popen(
        ["node", str(ROOT / "tests/js/jsforce_stream.js"), dev.url, org.token,
         "/topic/IlyLeads", str(replay), str(count)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    assert proc.stdout is not None
    return proc, Lines(proc.stdout)


def test_jsforce_receives_created_and_updated_events(dev: DevOrg, org: OrgClient) -> None:
    proc, lines = jsforce(dev, org, -1, 2)
    try:
        assert lines.wait(1)[0] == {"subscribed": True}
        lead = org.lead(1)
        org.update("Lead", lead, {"Email": "changed@example.com"})
        events = lines.wait(3)[1:]
        assert [e["event"]["type"] for e in events] == ["created", "updated"]
        assert events[1]["sobject"] == {"Id": lead, "Email": "changed@example.com",
                                        "Company": "C1"}
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()


def test_jsforce_replaying_from_minus_two_gets_the_retained_events(
    dev: DevOrg, org: OrgClient
) -> None:
    ids = [org.lead(n) for n in range(3)]
    proc, lines = jsforce(dev, org, -2, 3)
    try:
        events = [e for e in lines.wait(4) if "sobject" in e]
        assert [e["sobject"]["Id"] for e in events] == ids
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
