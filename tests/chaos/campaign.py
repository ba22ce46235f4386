"""The fault campaign: people keep working in Salesforce while every fault we know of is
thrown at the daemon and at devorg, in random order and overlapping; then every record is
checked. Used by tests/chaos/test_campaign.py (a short run in `make test`) and by
bench/soak.py (as long as asked, with figures).

The parts are real: `ilyd devorg --data` in a process of its own (so that it can be
restarted), `ilyd run` with worker processes, the people writing through devorg's admin
API as the org's second user. Faults come from devorg's admin API (5xx, dropped
connections, slow answers, `403::Unknown client`, `401::Authentication invalid`, expired
tokens, row locks, the daily API limit, expired retained events, a silent stall) and
from outside (SIGKILL, SIGSTOP past Salesforce's 40 s reconnect window, a worker process
killed, devorg restarted on its data file).

The verdict, per record: enriched; Ily values those of its last inputs (a domain taken
from an older Website or Email is a failure); no write by ilyd that changed no Ily value;
at most one ilyd write more than people's changes to it. And every org running at the
end, the daemon never dead but for the kills the campaign made itself.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import requests

from ilyd.config import load_config
from ilyd.control.client import ControlClient
from ilyd.devorg import OrgInfo
from tests.helpers.devorg_process import DevorgProcess
from tests.helpers.orgs import password_org_toml, provision
from tests.pipeline.conftest import Daemon as PipelineDaemon

ILY_FIELDS = ("Ily_Domain__c", "Ily_Match_Status__c", "Ily_Company_Name__c")
_SAMPLE = Path(__file__).resolve().parents[2] / "ilyd" / "enrich" / "data" / \
    "sample_companies.csv"


def _sample_companies(count: int) -> dict[str, str]:
    """domain -> company name, for the first `count` companies of the bundled sample."""
    with _SAMPLE.open(newline="") as handle:
        rows = csv.DictReader(handle)
        return {row["domain"]: row["company_name"] for _, row in zip(range(count), rows,
                                                                      strict=False)}


@dataclass
class Settings:
    """One campaign: how long, how many orgs, how hard people work, which seed."""

    seed: int = 1
    fault_seconds: float = 70.0  # faults are thrown during this window
    drain_seconds: float = 120.0  # then every record must be right within this
    orgs: int = 2
    processes: int = 2
    changes_per_second: float = 3.0  # per org, creates and edits together
    companies: int = 40


@dataclass
class Tracked:
    """What people did to one record: its last inputs, and how many changes they made."""

    org: str
    sobject: str
    record_id: str
    domain: str
    changes: int = 1
    last_change: float = field(default_factory=time.time)


@dataclass
class FaultRun:
    """One fault thrown: its kind, when it started and ended (wall time)."""

    kind: str
    start: float
    end: float = 0.0


@dataclass
class Report:
    """The verdict and the figures of one campaign."""

    seed: int
    records: int = 0
    changes: int = 0
    faults: list[FaultRun] = field(default_factory=list)
    unenriched: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    noop_writes: list[str] = field(default_factory=list)
    too_many_writes: list[str] = field(default_factory=list)
    max_writes_per_record: int = 0
    orgs_not_running: list[str] = field(default_factory=list)
    daemon_deaths: int = 0  # exits the campaign did not cause
    drain_seconds: float = 0.0
    recovery_seconds: dict[str, float] = field(default_factory=dict)  # worst per kind

    @property
    def passed(self) -> bool:
        """True when nothing was lost, stale, written for nothing or written too often."""
        return not (self.unenriched or self.stale or self.noop_writes
                    or self.too_many_writes or self.orgs_not_running or self.daemon_deaths)

    def figures(self) -> dict[str, Any]:
        """The numbers bench/soak.py prints."""
        return {
            "seed": self.seed, "records": self.records, "changes": self.changes,
            "faults": dict(Counter(f.kind for f in self.faults)),
            "lost": len(self.unenriched), "stale": len(self.stale),
            "noop_writes": len(self.noop_writes),
            "max_writes_per_record": self.max_writes_per_record,
            "too_many_writes": len(self.too_many_writes),
            "orgs_not_running": self.orgs_not_running, "daemon_deaths": self.daemon_deaths,
            "drain_seconds": round(self.drain_seconds, 1),
            "recovery_seconds_worst": {k: round(v, 1) for k, v in
                                       sorted(self.recovery_seconds.items())},
            "passed": self.passed,
        }

    def problems(self, limit: int = 10) -> str:
        """The first few failures of each kind, for an assertion message."""
        parts = []
        for name in ("unenriched", "stale", "noop_writes", "too_many_writes",
                     "orgs_not_running"):
            found = getattr(self, name)
            if found:
                parts.append(f"{name} ({len(found)}): {found[:limit]}")
        if self.daemon_deaths:
            parts.append(f"daemon died {self.daemon_deaths} time(s) on its own")
        return "; ".join(parts) or "none"


class Daemon(PipelineDaemon):
    """The tests' `ilyd run`, which also stops and continues the front and its workers
    together, and says whether its last exit was the campaign's doing."""

    def __init__(self, config: Path) -> None:
        super().__init__(config)
        self.expected_exit = False

    def start(self) -> None:
        super().start()
        self.expected_exit = False  # only now: the watcher must never see the old one

    def signal_all(self, signum: int) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signum)

    def kill_all(self) -> None:
        self.expected_exit = True
        super().kill_all()

    def client(self) -> ControlClient:
        return ControlClient(self.socket, timeout=15)

    def stop(self) -> None:
        self.expected_exit = True
        super().stop()


class People:
    """The org's users at work: create Leads and Accounts and edit their Email, Website
    and Company, sometimes twice within a second. Paused while devorg restarts, so that
    no change is left half-known."""

    def __init__(self, campaign: Campaign, org: str, rng: random.Random) -> None:
        self.campaign = campaign
        self.org = org
        self.rng = rng
        self.records: list[Tracked] = []
        self.session = requests.Session()

    def _base(self) -> str:
        return f"{self.campaign.devorg.url}/_devorg/orgs/{self.org}/records"

    def act(self) -> None:
        domain = self.rng.choice(self.campaign.domains)
        if not self.records or self.rng.random() < 0.4:
            self._create(domain)
            return
        record = self.rng.choice(self.records)
        self._edit(record, domain)
        if self.rng.random() < 0.15:  # the same record changed twice within a second
            self._edit(record, self.rng.choice(self.campaign.domains))

    def _create(self, domain: str) -> None:
        n = self.campaign.next_number()
        if self.rng.random() < 0.5:
            sobject, values = "Lead", {"LastName": f"P{n}", "Company": f"C{n}",
                                       "Email": f"p{n}@{domain}"}
        else:
            sobject, values = "Account", {"Name": f"A{n}", "Website": f"https://www.{domain}/"}
        answer = self.session.post(f"{self._base()}/{sobject}", json=values, timeout=30)
        if answer.status_code == 201:
            self.records.append(Tracked(self.org, sobject, answer.json()["id"], domain))

    def _edit(self, record: Tracked, domain: str) -> None:
        n = self.campaign.next_number()
        if self.rng.random() < 0.2:  # an edit of another input: same domain, new Company
            values: dict[str, str] = {"Company": f"C{n}"} if record.sobject == "Lead" else {
                "Name": f"A{n}"}
            domain = record.domain
        elif record.sobject == "Lead":
            values = {"Email": f"p{n}@{domain}"}
        else:
            values = {"Website": f"https://{domain}/about"}
        answer = self.session.patch(f"{self._base()}/{record.sobject}/{record.record_id}",
                                    json=values, timeout=30)
        if answer.status_code in (200, 201, 204):
            record.domain, record.changes, record.last_change = domain, record.changes + 1, \
                time.time()


class Campaign:
    """Runs one campaign in `workdir` and returns its Report."""

    def __init__(self, settings: Settings, workdir: Path,
                 say: Callable[[str], None] = lambda _line: None) -> None:
        self.settings = settings
        self.workdir = workdir
        self.say = say
        self.rng = random.Random(settings.seed)
        self.companies = _sample_companies(settings.companies)
        # Half the domains are in the dataset (Matched, with a company name), half not.
        self.domains = [*self.companies, *(f"nobody{i}.example"
                                           for i in range(settings.companies))]
        self.devorg = DevorgProcess(workdir / "devorg.sqlite", orgs=settings.orgs)
        self.daemon: Daemon | None = None
        self.people: list[People] = []
        self.report = Report(seed=settings.seed)
        self._number = 0
        self._number_lock = threading.Lock()
        self._devorg_up = threading.Event()
        self._stop_people = threading.Event()
        self._faults_running: list[threading.Thread] = []
        self._history: dict[str, list[dict[str, Any]]] = {}  # kept across devorg restarts

    def next_number(self) -> int:
        with self._number_lock:
            self._number += 1
            return self._number

    # -- set-up -----------------------------------------------------------------------

    def _config(self, infos: list[OrgInfo]) -> Path:
        text = (f'[daemon]\nstate_dir = "{self.workdir}/state"\n'
                f'control_socket = "{self.workdir}/control.sock"\nlog_format = "json"\n'
                f'processes = {self.settings.processes}\n'
                '[metrics]\nlisten = "127.0.0.1:0"\n')
        target = SimpleNamespace(url=self.devorg.url)
        for info in infos:
            # A short sweep: the silent stall and the expired events are found by it.
            text += password_org_toml(self.workdir, target, info,  # type: ignore[arg-type]
                                      "poll_interval = 5\nreconcile_interval = 15\n")
        path = self.workdir / "ilyd.toml"
        path.write_text(text)
        return path

    def _start(self) -> list[str]:
        credentials = self.devorg.start()
        self._devorg_up.set()
        infos = [OrgInfo(**o) for o in credentials["orgs"]]  # type: ignore[attr-defined]
        config = self._config(infos)
        loaded = load_config(config)
        assert not loaded.org_errors, loaded.org_errors
        for org in loaded.orgs:
            provision(org)
        self.daemon = Daemon(config)
        self.daemon.start()
        names = [info.name for info in infos]
        self._wait(lambda: self._all_running(names), 60, "every org running")
        self.people = [People(self, name, random.Random(self.rng.random())) for name in names]
        return names

    def _all_running(self, names: list[str]) -> bool:
        assert self.daemon is not None
        try:
            orgs = self.daemon.client().call("orgs")
        except Exception:  # the daemon is starting, stopped or killed right now
            return False
        states = {o["name"]: o["state"] for o in orgs}
        return all(states.get(n) == "running" for n in names)

    @staticmethod
    def _wait(condition: Callable[[], Any], seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"campaign: timed out waiting for {what}")
            time.sleep(0.25)

    # -- people -----------------------------------------------------------------------

    def _work(self, people: People) -> None:
        pause = 1.0 / self.settings.changes_per_second
        while not self._stop_people.is_set():
            self._devorg_up.wait()
            # devorg went down under the request: the change is not counted.
            with contextlib.suppress(requests.RequestException):
                people.act()
            self._stop_people.wait(people.rng.expovariate(1.0 / pause))

    # -- faults -----------------------------------------------------------------------

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        answer = requests.request(method, f"{self.devorg.url}/_devorg{path}", json=body,
                                  timeout=30)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def _rule(self, body: dict[str, Any], seconds: float) -> None:
        self._rules([body], seconds)

    def _rules(self, bodies: list[dict[str, Any]], seconds: float) -> None:
        rules = [self._admin("POST", "/faults", body) for body in bodies]
        time.sleep(seconds)
        for rule in rules:
            self._admin("DELETE", f"/faults/{rule['id']}")

    def _fault_kinds(self) -> dict[str, Callable[[str, float], None]]:
        admin = self._admin
        return {
            "rest_5xx": lambda org, s: self._rule(
                {"kind": "status", "status": 503, "path_prefix": "/services/data/",
                 "share": 0.5, "org": org}, s),
            "cometd_5xx": lambda org, s: self._rule(
                {"kind": "status", "status": 503, "path_prefix": "/cometd/", "share": 0.5,
                 "org": org}, s),
            "dropped_connections": lambda org, s: self._rules(
                [{"kind": "drop", "path_prefix": p, "share": 0.3, "org": org}
                 for p in ("/services/", "/cometd/")], s),
            "slow_answers": lambda org, s: self._rule(
                {"kind": "latency", "delay": 35.0, "path_prefix": "/services/data/",
                 "share": 0.2, "org": org}, s),
            "row_locks": lambda org, s: self._rule(
                {"kind": "lock_row", "share": 0.3, "org": org}, s),
            "unknown_client": lambda org, _s: admin("POST", f"/streaming/{org}/forget", {}),
            "auth_invalid": lambda org, _s: admin("POST", f"/streaming/{org}/invalidate", {}),
            "tokens_expired": lambda org, _s: admin("POST", f"/orgs/{org}/tokens/expire", {}),
            "api_limit": self._api_limit,
            "silent_stall": self._silent_stall,
            "events_expired_while_down": self._events_expired_while_down,
            "daemon_sigkill": self._daemon_sigkill,
            "daemon_sigstop": self._daemon_sigstop,
            "worker_killed": self._worker_killed,
            "devorg_restart": self._devorg_restart,
        }

    def _api_limit(self, org: str, seconds: float) -> None:
        calls = self._admin("GET", f"/orgs/{org}/calls")
        self._admin("PATCH", f"/orgs/{org}/calls", {"used": calls["limit"]})
        time.sleep(seconds)
        self._admin("DELETE", f"/orgs/{org}/calls")

    def _silent_stall(self, org: str, seconds: float) -> None:
        self._admin("POST", f"/streaming/{org}/mute", {})
        time.sleep(seconds)
        self._admin("POST", f"/streaming/{org}/unmute", {})

    def _events_expired_while_down(self, org: str, seconds: float) -> None:
        assert self.daemon is not None
        self.daemon.kill_all()
        time.sleep(min(seconds, 5.0))  # people go on working meanwhile
        self._admin("POST", f"/streaming/{org}/expire-events", {})
        self.daemon.start()

    def _daemon_sigkill(self, _org: str, seconds: float) -> None:
        assert self.daemon is not None
        self.daemon.kill_all()
        time.sleep(min(seconds, 3.0))
        self.daemon.start()

    def _daemon_sigstop(self, _org: str, _seconds: float) -> None:
        assert self.daemon is not None
        self.daemon.signal_all(signal.SIGSTOP)
        time.sleep(42.0)  # past the 40 s Salesforce keeps a silent client
        self.daemon.signal_all(signal.SIGCONT)

    def _worker_killed(self, _org: str, _seconds: float) -> None:
        assert self.daemon is not None
        try:
            workers = self.daemon.client().call("status").get("workers") or []
        except Exception:
            return  # the daemon is down right now: nothing to kill
        pids = [w["pid"] for w in workers if w.get("pid")]
        if pids:
            os.kill(self.rng.choice(pids), signal.SIGKILL)

    def _devorg_restart(self, _org: str, seconds: float) -> None:
        self._devorg_up.clear()
        time.sleep(1.0)  # requests in flight finish: no change is left half-known
        self._snapshot_history()
        self.devorg.stop()
        time.sleep(min(seconds, 3.0))
        self.devorg.start()
        self._devorg_up.set()

    def _throw(self, kind: str, org: str, seconds: float) -> None:
        run = FaultRun(kind, time.time())
        self.report.faults.append(run)
        self.say(f"fault {kind} org={org} for {seconds:.0f}s")
        try:
            self._fault_kinds()[kind](org, seconds)
        except (requests.RequestException, OSError, TimeoutError) as exc:
            self.say(f"fault {kind} could not be thrown in full: {exc}")
        finally:
            run.end = time.time()

    def _schedule(self, names: list[str]) -> None:
        """Throw faults for `fault_seconds` (longer if needed to throw every kind once): each
        kind once in random order, then at random; up to two at a time, the process-level
        ones never together."""
        kinds = list(self._fault_kinds())
        self.rng.shuffle(kinds)
        exclusive = {"daemon_sigkill", "daemon_sigstop", "worker_killed", "devorg_restart",
                     "events_expired_while_down"}
        end = time.monotonic() + self.settings.fault_seconds
        queue = list(kinds)
        running: list[tuple[str, threading.Thread]] = []
        while time.monotonic() < end or queue:  # every kind at least once
            running = [(k, t) for k, t in running if t.is_alive()]
            busy_exclusive = any(k in exclusive for k, _ in running)
            if len(running) < 2:
                kind = queue.pop(0) if queue else self.rng.choice(kinds)
                if kind in exclusive and busy_exclusive:
                    queue.insert(0, kind)
                else:
                    seconds = self.rng.uniform(3.0, 10.0)
                    thread = threading.Thread(target=self._throw, daemon=True,
                                              args=(kind, self.rng.choice(names), seconds))
                    thread.start()
                    running.append((kind, thread))
            time.sleep(self.rng.uniform(1.0, 4.0))
        for _, thread in running:
            thread.join(timeout=120)

    # -- verdict ----------------------------------------------------------------------

    def _record(self, tracked: Tracked) -> dict[str, Any]:
        answer = requests.get(
            f"{self.devorg.url}/_devorg/orgs/{tracked.org}/records/{tracked.record_id}",
            timeout=30)
        answer.raise_for_status()
        return dict(answer.json())

    def _snapshot_history(self) -> None:
        """devorg keeps no history across a restart: remember what it has so far."""
        for people in self.people:
            for tracked in people.records:
                try:
                    history = self._record(tracked)["history"]
                except requests.RequestException:
                    continue
                kept = self._history.setdefault(tracked.record_id, [])
                seen = {(h["timestamp"], h["user_id"]) for h in kept}
                kept.extend(h for h in history if (h["timestamp"], h["user_id"]) not in seen)

    def _right(self, tracked: Tracked, record: dict[str, Any]) -> bool:
        values = record["record"]
        if not values.get("Ily_Match_Status__c"):
            return False
        if values.get("Ily_Domain__c") != tracked.domain:
            return False
        company = self.companies.get(tracked.domain)
        return company is None or values.get("Ily_Company_Name__c") == company

    def _everything_right(self) -> bool:
        for people in self.people:
            for tracked in people.records:
                try:
                    if not self._right(tracked, self._record(tracked)):
                        return False
                except requests.RequestException:
                    return False
        return True

    def _judge(self, names: list[str], integration_users: dict[str, str]) -> None:
        report = self.report
        last_write: dict[str, float] = {}
        for people in self.people:
            for tracked in people.records:
                report.records += 1
                report.changes += tracked.changes
                record = self._record(tracked)
                label = f"{tracked.org}/{tracked.sobject}/{tracked.record_id}"
                values = record["record"]
                if not values.get("Ily_Match_Status__c"):
                    report.unenriched.append(label)
                elif not self._right(tracked, record):
                    report.stale.append(f"{label}: {values.get('Ily_Domain__c')} !="
                                        f" {tracked.domain}")
                history = list(self._history.get(tracked.record_id, []))
                seen = {(h["timestamp"], h["user_id"]) for h in history}
                history += [h for h in record["history"]
                            if (h["timestamp"], h["user_id"]) not in seen]
                ours = [h for h in history if h["user_id"] == integration_users[tracked.org]]
                for write in ours:
                    # The enrichment time changes on every write: a write that changed
                    # nothing else changed nothing.
                    if not any(f.startswith("Ily_") and f != "Ily_Last_Enriched__c"
                               for f in write["changed_fields"]):
                        report.noop_writes.append(f"{label} at {write['timestamp']}")
                report.max_writes_per_record = max(report.max_writes_per_record, len(ours))
                if len(ours) > tracked.changes + 1:
                    report.too_many_writes.append(f"{label}: {len(ours)} writes for"
                                                  f" {tracked.changes} changes")
                if ours:
                    last_write[tracked.record_id] = max(_stamp(h["timestamp"]) for h in ours)
        for run in report.faults:
            # Recovery: how long after the fault ended the records whose last change came
            # before that end had their last write. Faults overlap, so a fault's figure
            # includes the ones that ran with it or right after it.
            waits = [last_write[t.record_id] - run.end
                     for p in self.people for t in p.records
                     if t.record_id in last_write and t.last_change <= run.end]
            worst = max([0.0, *waits])
            report.recovery_seconds[run.kind] = max(report.recovery_seconds.get(run.kind, 0.0),
                                                    worst)
        assert self.daemon is not None
        orgs = {o["name"]: o["state"] for o in self.daemon.client().call("orgs")}
        report.orgs_not_running = [f"{n}: {orgs.get(n)}" for n in names
                                   if orgs.get(n) != "running"]

    # -- the whole run ----------------------------------------------------------------

    def run(self) -> Report:
        """Set up, work and throw faults, drain, judge; always tears down."""
        try:
            names = self._start()
            users = {o["name"]: o["user_id"] for o in self._admin("GET", "/orgs")["orgs"]}
            workers = [threading.Thread(target=self._work, args=(p,), daemon=True)
                       for p in self.people]
            for thread in workers:
                thread.start()
            watcher = threading.Thread(target=self._watch_daemon, daemon=True)
            watcher.start()
            self._schedule(names)
            self._stop_people.set()
            for thread in workers:
                thread.join(timeout=60)
            self.say(f"faults over; {sum(len(p.records) for p in self.people)} records;"
                     " draining")
            started = time.monotonic()
            with contextlib.suppress(TimeoutError):  # the verdict below says what is wrong
                self._wait(lambda: self._everything_right() and self._all_running(names),
                           self.settings.drain_seconds, "every record right")
            self.report.drain_seconds = time.monotonic() - started
            self._judge(names, users)
            return self.report
        finally:
            self._stop_people.set()
            self._devorg_up.set()
            if self.daemon is not None:
                self.daemon.stop()
            self.devorg.stop()

    def _watch_daemon(self) -> None:
        """Count daemon exits the campaign did not cause, and start it again."""
        while not self._stop_people.is_set():
            daemon = self.daemon
            if (daemon is not None and daemon.process is not None
                    and daemon.process.poll() is not None and not daemon.expected_exit):
                self.report.daemon_deaths += 1
                self.say(f"daemon exited by itself with {daemon.process.returncode}")
                daemon.start()
            time.sleep(0.5)


def _stamp(text: str) -> float:
    """An ISO timestamp of devorg's history as epoch seconds."""
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main_figures(report: Report) -> str:
    """The report as one JSON line."""
    return json.dumps(report.figures(), sort_keys=True)
