"""SIGTERM -> exit of the whole daemon with N subscribed orgs, some stuck in slow writes.

devorg runs in a subprocess (`ilyd devorg --orgs N`), every org is provisioned, `ilyd
run` starts with one [[org]] per devorg org (one process unless --processes says more)
and is left until every org is subscribed. Then devorg makes the sObject Collections
writes of --slow orgs hang (a latency fault longer than any stop deadline), a record is
created in each of them and, once each has a write in flight, the daemon gets SIGTERM.
Prints the time to exit, the exit status, the log lines saying what did not stop, and
how many of the slow orgs' records are still in the inbox for the next start.

    .venv/bin/python bench/daemon_stop.py [--orgs 200] [--slow 20] [--processes 1]
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from daemon_harness import (
    DevOrgProcess,
    free_port,
    log_problems,
    provision,
    wait_ready,
    write_config,
)

from ilyd.daemon.logs import configure_logging
from ilyd.errors import ControlError

_HANG_SECONDS = 120.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=200)
    parser.add_argument("--slow", type=int, default=20,
                        help="orgs whose writes hang at SIGTERM (default 20)")
    parser.add_argument("--processes", type=int, default=1,
                        help="[daemon] processes (default 1: the one-process daemon)")
    args = parser.parse_args()
    configure_logging("console", "error")
    root = Path(tempfile.mkdtemp(prefix="ilyd-stop-"))
    print(f"{args.orgs} orgs ({args.slow} with hanging writes), {args.processes} process(es);"
          f" files in {root}")
    with DevOrgProcess(args.orgs, start_timeout=120 + args.orgs) as devorg:
        return measure(args, root, devorg)


def measure(args: argparse.Namespace, root: Path, devorg: DevOrgProcess) -> int:
    """Provision, start, wait for all-subscribed, hang the slow orgs' writes, SIGTERM."""
    config = write_config(root, devorg, free_port(), defaults="", processes=args.processes)
    provision(config)
    log_path = root / "daemon.log"
    daemon = subprocess.Popen([sys.executable, "-m", "ilyd", "run", "--config", str(config)],
                              stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    try:
        try:
            took = wait_ready(daemon, root / "control.sock", args.orgs,
                              timeout=120 + args.orgs)
        except (RuntimeError, ControlError) as exc:
            print(f"daemon not ready: {exc}; log {log_path}")
            return 1
        print(f"all {args.orgs} subscribed {took:.1f} s after `ilyd run` started")
        slow = [info.name for info in devorg.orgs[:args.slow]]
        records = hang_writes(devorg, slow)
        began = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        try:
            code: int | None = daemon.wait(timeout=90)
        except subprocess.TimeoutExpired:
            code = None
        print(f"SIGTERM -> exit {code} in {time.monotonic() - began:.1f} s")
        said = [line for line in log_path.read_text(errors="replace").splitlines()
                if "not stop" in line or "not_stopped" in line]
        print(f"'did not stop' lines: {len(said)}")
        for line in said[:5]:
            print(f"  {line[:300]}")
        kept = inbox_ids(root / "state")
        print(f"slow orgs' records still in the inbox: {len(records & kept)} of {len(records)}")
        problems = log_problems(log_path)
        if problems:
            print("daemon log errors:\n  " + "\n  ".join(problems))
        return 0 if code == 0 else 1
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=30)
        requests.delete(f"{devorg.admin}/faults", timeout=30)


def hang_writes(devorg: DevOrgProcess, orgs: list[str]) -> set[str]:
    """Make each org's Collections writes hang, create a record in each, and wait until
    each has a write in flight; the records' ids."""
    rules = set()
    for org in orgs:
        response = requests.post(f"{devorg.admin}/faults", json={
            "kind": "latency", "delay": _HANG_SECONDS, "org": org, "method": "PATCH",
            "path_prefix": "/services/data/", "count": 1000}, timeout=30)
        response.raise_for_status()
        rules.add(int(response.json()["id"]))
    records = set()
    for org in orgs:
        response = requests.post(f"{devorg.admin}/orgs/{org}/records/Account",
                                 json={"Name": "stop", "Website": "initech.test"}, timeout=30)
        response.raise_for_status()
        records.add(str(response.json()["id"]))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        hit = {r["id"] for r in requests.get(f"{devorg.admin}/faults", timeout=30).json()
               if r["count"] < 1000}
        if rules <= hit:
            break
        time.sleep(0.2)
    print(f"{len(orgs)} org(s) with a write in flight")
    return records


def inbox_ids(state: Path) -> set[str]:
    """Record ids in the inbox of every state file under `state`."""
    found: set[str] = set()
    for path in state.glob("ilyd*.db"):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            found |= {row[0] for row in db.execute("SELECT record_id FROM inbox")}
    return found


if __name__ == "__main__":
    sys.exit(main())
