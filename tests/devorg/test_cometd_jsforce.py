"""jsforce's streaming client (faye underneath) works against devorg's CometD unchanged."""

from __future__ import annotations

import json
import subprocess
import threading
from typing import IO, Any

from ilyd.devorg import DevOrg
from tests.devorg.cometd_helpers import OrgClient, streaming_fixtures
from tests.helpers import ROOT

dev, org = streaming_fixtures(hold_seconds=1,
                              topics={"IlyLeads": "SELECT Id, Email, Company FROM Lead"})


class Lines:
    """Reads a child's JSON lines on a thread so the test can wait with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.items: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._cond:
                self.items.append(json.loads(line))
                self._cond.notify_all()

    def wait(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.items) >= n, timeout)
            assert len(self.items) >= n, f"expected {n} lines, got {self.items}"
            return list(self.items)


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
