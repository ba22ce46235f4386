"""Salesforce API calls one org's start costs, cold and warm, by endpoint.

devorg runs in a subprocess with one org; `ilyd run` starts on a fresh state directory
(cold: nothing stored, the org is provisioned by the daemon itself), is stopped once the
org has run for --window seconds, and starts again on the same state (warm). For each
start it prints the calls devorg counted (its admin API, `/_devorg/orgs/{org}/calls`,
reset before each start) up to the moment the org is subscribed (or polling) and over
the first --window seconds, by endpoint.

    .venv/bin/python bench/org_start_calls.py               # 60 s windows
    .venv/bin/python bench/org_start_calls.py --window 20
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import requests
from daemon_harness import DevOrgProcess, free_port, log_problems, wait_ready, write_config

from ilyd.daemon.logs import configure_logging


def calls(admin: str, org: str) -> Mapping[str, int]:
    """The org's calls by endpoint as devorg counted them."""
    body = requests.get(f"{admin}/orgs/{org}/calls", timeout=30).json()
    return dict(body["by_endpoint"])


def reset(admin: str, org: str) -> None:
    requests.delete(f"{admin}/orgs/{org}/calls", timeout=30).raise_for_status()


def show(label: str, by_endpoint: Mapping[str, int]) -> None:
    total = sum(by_endpoint.values())
    print(f"  {label}: {total} call(s)")
    for endpoint, count in sorted(by_endpoint.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"    {count:4d}  {endpoint}")


def one_start(kind: str, config: Path, root: Path, admin: str, org: str,
              window: float) -> None:
    """Start the daemon, measure, stop it."""
    reset(admin, org)
    log_path = root / f"daemon-{kind}.log"
    began = time.monotonic()
    daemon = subprocess.Popen([sys.executable, "-m", "ilyd", "run", "--config", str(config)],
                              stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    try:
        took = wait_ready(daemon, root / "control.sock", 1, timeout=120)
        ready = calls(admin, org)
        print(f"{kind} start: subscribed {took:.1f} s after `ilyd run` started")
        show("until subscribed", ready)
        time.sleep(max(0.0, window - (time.monotonic() - began)))
        show(f"first {window:g} s", calls(admin, org))
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(timeout=30)
    problems = log_problems(log_path)
    if problems:
        print("  daemon log errors:\n    " + "\n    ".join(problems))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=60.0,
                        help="seconds after `ilyd run` started to count over (default 60)")
    args = parser.parse_args()
    configure_logging("console", "error")
    root = Path(tempfile.mkdtemp(prefix="ilyd-start-calls-"))
    print(f"files in {root}")
    with DevOrgProcess(1) as devorg:
        org = devorg.orgs[0].name
        config = write_config(root, devorg, free_port(), defaults="")
        for kind in ("cold", "warm"):
            one_start(kind, config, root, devorg.admin, org, args.window)
    return 0


if __name__ == "__main__":
    sys.exit(main())
