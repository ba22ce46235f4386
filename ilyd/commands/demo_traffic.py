"""Demo and benchmark glue: traffic as a Salesforce user would make it, and read-back of
what ilyd wrote and when (devorg's record history), over devorg's admin API.

Only the `demo` command and `bench/` use this module (it speaks to devorg's admin API,
which a real org does not have).
"""

from __future__ import annotations

import csv
import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

import requests

__all__ = ["Observer", "Traffic", "TrafficStats", "percentile", "sample_domains"]

FREE_MAIL = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "proton.me")
JUNK_WEBSITES = ("n/a", "http://", "localhost", "192.168.1.10", "-", "none", "x" * 300)


def sample_domains(limit: int = 500) -> list[str]:
    """Domains of the bundled sample dataset (companies the demo can match)."""
    path = resources.files("ilyd.enrich.data").joinpath("sample_companies.csv")
    with path.open(encoding="utf-8") as handle:
        rows = csv.DictReader(handle)
        return [row["domain"] for row, _ in zip(rows, range(limit), strict=False)]


def _parse(ts: str) -> float:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def percentile(values: list[float], share: float) -> float | None:
    """The `share` percentile (0..1) of `values`, nearest rank; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


@dataclass
class TrafficStats:
    """What the traffic generator did."""

    created: dict[str, float] = field(default_factory=dict)  # record id -> local time
    kinds: dict[str, int] = field(default_factory=dict)
    website_edits: list[str] = field(default_factory=list)
    phone_edits: list[str] = field(default_factory=list)
    errors: int = 0


class Traffic:
    """Creates and edits Leads and Accounts in one devorg org, as its second user."""

    def __init__(self, admin_url: str, org: str, *, rate: float, edits: bool = True,
                 seed: int | None = None) -> None:
        self.base = f"{admin_url}/orgs/{org}"
        self.rate = rate
        self.edits = edits
        self.stats = TrafficStats()
        self._random = random.Random(seed)
        self._domains = sample_domains()
        self._session = requests.Session()
        self._counter = itertools.count(1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> Traffic:
        """Generate traffic in a thread until `stop`."""
        self._thread = threading.Thread(target=self._run, name=f"traffic-{self.base}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop generating (waits for the thread)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.step()
            except requests.RequestException:
                self.stats.errors += 1
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_at = time.monotonic()  # fell behind: do not burst to catch up

    def step(self) -> None:
        """One action: mostly a new record, sometimes an edit of an earlier one."""
        roll = self._random.random()
        n = next(self._counter)
        with self._lock:
            created = list(self.stats.created)
        if self.edits and created and roll < 0.08:
            record = self._random.choice(created)
            sobject = "Lead" if record.startswith("00Q") else "Account"
            self._patch(sobject, record, {"Website": f"https://{self._random.choice(self._domains)}"})
            self.stats.website_edits.append(record)
            return
        if self.edits and created and roll < 0.14:
            record = self._random.choice(created)
            sobject = "Lead" if record.startswith("00Q") else "Account"
            self._patch(sobject, record, {"Phone": f"+1 555 {n:07d}"})
            self.stats.phone_edits.append(record)
            return
        sobject, values, kind = self.new_record(n)
        record = self._create(sobject, values)
        with self._lock:
            self.stats.created[record] = time.time()
            self.stats.kinds[kind] = self.stats.kinds.get(kind, 0) + 1

    def new_record(self, n: int | None = None) -> tuple[str, dict[str, Any], str]:
        """The next record to create: (sObject, field values, kind of website/email)."""
        n = next(self._counter) if n is None else n
        kind = self._random.choices(["known", "free_mail", "junk", "unknown"],
                                    weights=[55, 15, 12, 18])[0]
        lead = self._random.random() < 0.5
        values: dict[str, Any]
        domain = self._random.choice(self._domains)
        if kind == "known":
            values = ({"Email": f"person{n}@{domain}"} if lead and n % 2
                      else {"Website": f"https://www.{domain}/"})
        elif kind == "free_mail":
            lead = True
            values = {"Email": f"someone{n}@{self._random.choice(FREE_MAIL)}"}
        elif kind == "junk":
            values = {"Website": self._random.choice(JUNK_WEBSITES)}
        else:
            values = {"Website": f"https://unknown-company-{n}.example"}
        if lead:
            values.update(LastName=f"Person {n}", Company=f"Company {n}")
        else:
            values.update(Name=f"Company {n}")
        return ("Lead" if lead else "Account"), values, kind

    def _create(self, sobject: str, values: dict[str, Any]) -> str:
        response = self._session.post(f"{self.base}/records/{sobject}", json=values, timeout=30)
        response.raise_for_status()
        return str(response.json()["id"])

    def _patch(self, sobject: str, record: str, values: dict[str, Any]) -> None:
        self._session.patch(f"{self.base}/records/{sobject}/{record}", json=values,
                            timeout=30).raise_for_status()


class Observer:
    """Reads back, per created record, when ilyd's first write landed (record history)."""

    def __init__(self, admin_url: str, org: str, integration_user: str) -> None:
        self.base = f"{admin_url}/orgs/{org}"
        self.user = integration_user
        self._session = requests.Session()
        self.latency: dict[str, float] = {}  # record id -> seconds create → written
        self.status: dict[str, str] = {}  # record id -> Match Status written

    def check(self, records: list[str], on_written: Callable[[str, float, str], None]
              | None = None) -> None:
        """Look at the records not yet seen written."""
        for record in records:
            if record in self.latency:
                continue
            history = self._session.get(f"{self.base}/records/{record}/history",
                                        timeout=30).json()
            if not history:
                continue
            created = _parse(history[0]["timestamp"])
            for entry in history[1:]:
                if entry["user_id"] == self.user:
                    self.latency[record] = _parse(entry["timestamp"]) - created
                    status = str(entry.get("values", {}).get("Ily_Match_Status__c") or "")
                    self.status[record] = status
                    if on_written is not None:
                        on_written(record, self.latency[record], status)
                    break

    def writes_by_ilyd(self, record: str) -> int:
        """How many times ilyd wrote the record."""
        history = self._session.get(f"{self.base}/records/{record}/history", timeout=30).json()
        return sum(1 for entry in history if entry["user_id"] == self.user)

    def calls(self) -> int:
        """API calls the org counted."""
        return int(self._session.get(f"{self.base}/calls", timeout=30).json()["used"])
