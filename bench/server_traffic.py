"""Load for the real-time benchmarks, created inside devorg: one request per tick.

`Traffic` (ilyd.commands.demo_traffic) creates each record with its own HTTP request, as
the demo does; at hundreds of records per second that client cost as much CPU as devorg
itself, on the same two cores as the daemon being measured. `ServerTraffic` picks the
same records (Traffic.new_record) for every org, on a schedule, and sends each tick's
creates in one `POST /_devorg/creates`; devorg still saves each record on its own, with
its own change event and history, so what the daemon sees is unchanged.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from ilyd.commands.demo_traffic import Traffic, TrafficStats

# Creates due are sent this often: short against the 1 s latency budget, long enough
# that a tick carries several records at a few hundred per second.
_TICK_SECONDS = 0.02


@dataclass
class OrgFeed:
    """One org's share of the traffic, read like a Traffic (`base`, `stats`)."""

    name: str
    base: str
    rate: float
    records: Traffic
    stats: TrafficStats = field(default_factory=TrafficStats)
    next_at: float = 0.0


class ServerTraffic:
    """`rate` records/s in each of `orgs`, created through devorg's admin API in batches."""

    def __init__(self, admin_url: str, orgs: list[str], *, rate: float, seed: int = 0) -> None:
        self._url = f"{admin_url}/creates"
        phases = random.Random(seed)
        start = time.monotonic()
        self.feeds = [OrgFeed(org, f"{admin_url}/orgs/{org}", rate,
                              Traffic(admin_url, org, rate=rate, edits=False, seed=seed + n),
                              next_at=start + phases.random() / rate)
                      for n, org in enumerate(orgs)]
        self._session = requests.Session()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="server-traffic", daemon=True)
        self.behind = 0  # ticks that took longer than the tick: the load was not offered

    def start(self) -> ServerTraffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            due: list[tuple[OrgFeed, str]] = []
            creates: list[dict[str, Any]] = []
            for feed in self.feeds:
                while feed.next_at <= began:
                    sobject, values, kind = feed.records.new_record()
                    feed.next_at += 1.0 / feed.rate
                    feed.stats.kinds[kind] = feed.stats.kinds.get(kind, 0) + 1
                    due.append((feed, kind))
                    creates.append({"org": feed.name, "sobject": sobject, "values": values})
            if creates:
                self._send(due, creates)
            spent = time.monotonic() - began
            if spent > _TICK_SECONDS:
                self.behind += 1
            self._stop.wait(max(0.0, _TICK_SECONDS - spent))

    def _send(self, due: list[tuple[OrgFeed, str]], creates: list[dict[str, Any]]) -> None:
        try:
            response = self._session.post(self._url, json={"creates": creates}, timeout=60)
            response.raise_for_status()
            results = response.json()["results"]
        except (requests.RequestException, ValueError, KeyError):
            for feed, _ in due:
                feed.stats.errors += 1
            return
        now = time.time()
        for (feed, _), result in zip(due, results, strict=True):
            if result.get("success"):
                feed.stats.created[str(result["id"])] = now
            else:
                feed.stats.errors += 1
