"""devorg's own CPU per real-time event, without the daemon: a light emulated daemon.

Starts `ilyd devorg` as a child process with N orgs, installs ilyd into each (fields,
permission set, PushTopics), then per org one thread acts as the daemon does — a CometD
long poll on the Lead and Account topics, and for each batch of events one sObject
Collections PATCH of an Ily field — while one thread creates R records/s per org through
`POST /_devorg/creates` (one request per tick for all orgs). Prints devorg's CPU per
event (its CPU time over the run / events delivered and written back), which is what
bench/realtime.py's "devorg N %" over its events/s measures, minus the daemon's noise.

    .venv/bin/python bench/devorg_events.py --orgs 100 --rate 5 --seconds 30

Measured on the shared 2-core VM (3 alternating runs each, load average 6-16 from other
work): devorg before the 2026-11-28 CPU work 2.04-2.11 ms per event (84-96 % of a core,
saturated: 12,100-14,100 of 15,000 offered events delivered), after 1.28-1.42 ms (64-71 %,
all 15,000 delivered, user CPU per event 1.65 -> 1.00 ms).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from daemon_harness import DevOrgProcess, cpu_seconds, free_port, provision, write_config

from ilyd.daemon.logs import configure_logging


def user_system(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick

API = "v62.0"


class _Http:
    """One keep-alive connection speaking JSON."""

    def __init__(self, url: str, token: str | None = None) -> None:
        parts = urlsplit(url)
        self._conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any, http.client.HTTPResponse]:
        data = None if body is None else (body if isinstance(body, bytes)
                                          else json.dumps(body).encode())
        self._conn.request(method, path, data, {**self.headers, **(headers or {})})
        response = self._conn.getresponse()
        raw = response.read()
        return response.status, (json.loads(raw) if raw else None), response


def token(url: str, org: Any) -> str:
    """A password-flow access token for the org's integration user."""
    conn = _Http(url)
    status, body, _ = conn.call(
        "POST", "/services/oauth2/token",
        urlencode({"grant_type": "password", "client_id": org.client_id,
                   "client_secret": org.client_secret, "username": org.username,
                   "password": org.password}).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    return str(body["access_token"])


class FakeDaemon(threading.Thread):
    """Long-polls one org's PushTopics and writes an Ily field back per event batch."""

    def __init__(self, url: str, org: Any, stop: threading.Event) -> None:
        super().__init__(daemon=True, name=f"fake-{org.name}")
        self.url, self.org, self.stop = url, org, stop
        self.events = 0
        self.written = 0
        self.ready = threading.Event()

    def run(self) -> None:
        try:
            self._run()
        except (OSError, http.client.HTTPException):
            if not self.stop.is_set():  # devorg stopping at the end is expected
                raise

    def _run(self) -> None:
        access = token(self.url, self.org)
        rest = _Http(self.url, access)
        _, topics, _ = rest.call("GET", f"/services/data/{API}/query?q=SELECT+Name+FROM+PushTopic")
        channels = [f"/topic/{t['Name']}" for t in topics["records"]]
        self.field = {}
        for sobject in ("Lead", "Account"):
            _, described, _ = rest.call("GET", f"/services/data/{API}/sobjects/{sobject}/describe")
            self.field[sobject] = next(f["name"] for f in described["fields"]
                                       if f["name"].startswith("Ily_") and f["type"] == "string"
                                       and f["updateable"])
        bayeux = _Http(self.url, access)
        path = "/cometd/62.0/"
        _, reply, response = bayeux.call("POST", path, [{"channel": "/meta/handshake",
                                                          "version": "1.0",
                                                          "supportedConnectionTypes":
                                                          ["long-polling"]}])
        client_id = reply[0]["clientId"]
        cookie = response.getheader("Set-Cookie", "").split(";")[0]
        bayeux.headers["Cookie"] = cookie
        bayeux.call("POST", path, [{"channel": "/meta/subscribe", "clientId": client_id,
                                    "subscription": c} for c in channels])
        connect = [{"channel": "/meta/connect", "clientId": client_id,
                    "connectionType": "long-polling"}]
        bayeux.call("POST", path, connect)  # the first connect answers at once
        self.ready.set()
        while not self.stop.is_set():
            _, replies, _ = bayeux.call("POST", path, connect)
            events = [m for m in replies if "data" in m]
            if not events:
                continue
            self.events += len(events)
            records = [{"attributes": {"type": _sobject(e["data"]["sobject"]["Id"])},
                        "id": e["data"]["sobject"]["Id"]} for e in events]
            for record in records:
                record[self.field[record["attributes"]["type"]]] = "devorg-events"
            status, results, _ = rest.call("PATCH", f"/services/data/{API}/composite/sobjects",
                                           {"allOrNone": False, "records": records})
            if status == 200:
                self.written += sum(1 for r in results if r.get("success"))


def _sobject(record_id: str) -> str:
    return "Lead" if record_id.startswith("00Q") else "Account"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=100)
    parser.add_argument("--rate", type=float, default=5.0, help="records/s per org")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--profile", metavar="FILE",
                        help="record devorg with py-spy (raw collapsed stacks) while it runs")
    parser.add_argument("--py-spy", default="py-spy", help="the py-spy to run (on PATH)")
    args = parser.parse_args()
    configure_logging("console", "error")
    root = Path(tempfile.mkdtemp(prefix="ilyd-bench-devorg-events-"))
    with DevOrgProcess(args.orgs) as dev:
        provision(write_config(root, dev, free_port()))
        stop = threading.Event()
        fakes = [FakeDaemon(dev.url, org, stop) for org in dev.orgs]
        for fake in fakes:
            fake.start()
        for fake in fakes:
            if not fake.ready.wait(120):
                print(f"{fake.org.name} not subscribed")
                return 1
        print(f"devorg pid {dev.pid}: {args.orgs} org(s) subscribed; traffic starts")
        spy = None
        if args.profile:
            spy = subprocess.Popen([args.py_spy, "record", "-p", str(dev.pid), "-d",
                                    str(int(args.seconds)), "-r", "50", "--gil",
                                    "--nonblocking", "-f", "raw", "-o", args.profile],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        admin = _Http(dev.url)
        numbers = itertools.count(1)
        tick = 0.2
        per_tick = args.rate * tick
        owed = 0.0
        before = cpu_seconds(dev.pid)
        split_before = user_system(dev.pid)
        own_before = cpu_seconds(os.getpid(), children=False)
        started = time.monotonic()
        created = refused = 0
        next_at = started
        while time.monotonic() - started < args.seconds:
            owed += per_tick
            count, owed = int(owed), owed - int(owed)
            creates = []
            for org in dev.orgs:
                for _ in range(count):
                    n = next(numbers)
                    creates.append(
                        {"org": org.name, "sobject": "Lead", "values": {
                            "LastName": f"Person {n}", "Company": f"Company {n}",
                            "Email": f"person{n}@example{n % 500}.com"}} if n % 2 else
                        {"org": org.name, "sobject": "Account", "values": {
                            "Name": f"Company {n}", "Website": f"https://www.example{n}.com/"}})
            if creates:
                status, body, _ = admin.call("POST", "/_devorg/creates", {"creates": creates})
                assert status == 200, body
                ok = sum(1 for r in body["results"] if r.get("success"))
                created += ok
                refused += len(creates) - ok
            next_at += tick
            time.sleep(max(0.0, next_at - time.monotonic()))
        deadline = time.monotonic() + 60
        while sum(f.written for f in fakes) < created and time.monotonic() < deadline:
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(dev.pid) - before
        user, system = (a - b for a, b in zip(user_system(dev.pid), split_before, strict=True))
        own = cpu_seconds(os.getpid(), children=False) - own_before
        stop.set()
        if spy is not None:
            spy.wait(timeout=60)
        events = sum(f.events for f in fakes)
        written = sum(f.written for f in fakes)
    print(f"orgs={args.orgs} rate={args.rate:g}/s/org seconds={args.seconds:g}: created "
          f"{created} (refused {refused}), events delivered {events}, written back {written}")
    print(f"devorg CPU {cpu:.2f} s over {elapsed:.1f} s ({100 * cpu / elapsed:.0f} % of one "
          f"core): {1000 * cpu / max(created, 1):.3f} ms per event (user {user:.2f} s, system "
          f"{system:.2f} s); this driver "
          f"{100 * own / elapsed:.0f} %; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    return 0 if written >= created else 1


if __name__ == "__main__":
    sys.exit(main())
