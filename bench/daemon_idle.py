"""The whole daemon idle with N connected orgs (default 1,000): memory, threads, CPU.

DESIGN.md holds us to "1,000 idle connected orgs in < 1 GiB RSS and < 5 % of one core".
devorg runs in a subprocess (`ilyd devorg --orgs N`), every org is provisioned, then
`ilyd run` runs as a child with one [[org]] per devorg org and the daemon's own
[defaults]. Once every org is subscribed (`ilyd ctl orgs`), nothing happens for
--idle seconds; the figures are the daemon's (VmRSS, threads, CPU from /proc/PID/stat
over that window) and devorg's, apart.

    .venv/bin/python bench/daemon_idle.py --orgs 100 --idle 60
    .venv/bin/python bench/daemon_idle.py              # 1,000 orgs, 60 s
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from daemon_harness import (
    cpu_seconds,
    fd_count,
    free_port,
    log_problems,
    provision,
    rss_mib,
    thread_count,
    wait_ready,
    write_config,
)

from ilyd.errors import ControlError
from ilyd.logs import configure_logging


@dataclass(frozen=True)
class DevOrgProcess:
    """devorg's URL and orgs as written by `ilyd devorg --credentials-out`."""

    url: str
    orgs: list[SimpleNamespace]


def start_devorg(orgs: int, root: Path, timeout: float) -> tuple[subprocess.Popen[bytes],
                                                                 DevOrgProcess]:
    creds_path = root / "devorg.json"
    dev = subprocess.Popen(
        [sys.executable, "-m", "ilyd", "devorg", "--listen", "127.0.0.1:0", "--orgs",
         str(orgs), "--credentials-out", str(creds_path)],
        stdout=subprocess.DEVNULL, stderr=(root / "devorg.log").open("wb"))
    deadline = time.monotonic() + timeout
    while not creds_path.exists() or not creds_path.read_text().strip().endswith("}"):
        if dev.poll() is not None or time.monotonic() > deadline:
            dev.kill()
            raise RuntimeError(f"devorg did not start; see {root / 'devorg.log'}")
        time.sleep(0.1)
    creds = json.loads(creds_path.read_text())
    return dev, DevOrgProcess(creds["url"], [SimpleNamespace(**o) for o in creds["orgs"]])


def window(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """Each process's CPU, as a share of one core, over the next `seconds`."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    time.sleep(seconds)
    took = time.monotonic() - started
    return {name: (cpu_seconds(pid) - before[name]) / took for name, pid in pids.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds idle (default 60)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds allowed to reach all-subscribed (default 120 + orgs)")
    args = parser.parse_args()
    configure_logging("console", "error")
    root = Path(tempfile.mkdtemp(prefix="ilyd-idle-"))
    print(f"{args.orgs} orgs, {args.idle:g} s idle, {os.cpu_count()} cores; files in {root}")
    started = time.monotonic()
    dev, devorg = start_devorg(args.orgs, root, timeout=120 + args.orgs)
    print(f"devorg up in {time.monotonic() - started:.1f} s")
    daemon = None
    status = 1
    try:
        config = write_config(root, devorg, free_port(), defaults="")
        started = time.monotonic()
        provision(config)
        print(f"provisioned {args.orgs} org(s) in {time.monotonic() - started:.1f} s")
        log_path = root / "daemon.log"
        daemon = subprocess.Popen(
            [sys.executable, "-m", "ilyd", "run", "--config", str(config)],
            stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
        dev_cpu0 = cpu_seconds(dev.pid)
        try:
            took = wait_ready(daemon, root / "control.sock", args.orgs,
                              timeout=args.timeout or 120 + args.orgs)
        except (RuntimeError, ControlError) as exc:
            print(f"daemon not ready: {exc}; log {log_path}")
            if daemon.poll() is None:
                print(f"  at that point: RSS {rss_mib(daemon.pid):.0f} MiB, "
                      f"{thread_count(daemon.pid)} threads, {fd_count(daemon.pid)} fds")
            print("\n".join(log_problems(log_path)))
            return 1
        start_cpu = cpu_seconds(daemon.pid)
        print(f"all {args.orgs} subscribed {took:.1f} s after `ilyd run` started "
              f"(daemon CPU {start_cpu:.1f} s, devorg CPU {cpu_seconds(dev.pid) - dev_cpu0:.1f} s"
              f" meanwhile); RSS {rss_mib(daemon.pid):.0f} MiB, "
              f"{thread_count(daemon.pid)} threads")
        pids = {"daemon": daemon.pid, "devorg": dev.pid}
        half = args.idle / 2
        first, second = window(pids, half), window(pids, args.idle - half)
        cpu = {name: (first[name] + second[name]) / 2 for name in pids}
        alive = daemon.poll() is None
        rss, threads, fds = rss_mib(daemon.pid), thread_count(daemon.pid), fd_count(daemon.pid)
        print(f"daemon idle {args.idle:g} s: RSS {rss:.0f} MiB ({rss * 1024 / args.orgs:.0f} KiB"
              f" per org), {threads} threads, {fds} fds, CPU {cpu['daemon'] * 100:.2f} % of one"
              f" core (first half {first['daemon'] * 100:.2f} %, second"
              f" {second['daemon'] * 100:.2f} %)")
        print(f"devorg idle:  RSS {rss_mib(dev.pid):.0f} MiB, {thread_count(dev.pid)} threads,"
              f" CPU {cpu['devorg'] * 100:.2f} % of one core")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        stop_began = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        try:
            code: int | None = daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            code = None
        print(f"daemon {'ran throughout' if alive else 'DIED during the idle window'};"
              f" SIGTERM -> exit {code} in {time.monotonic() - stop_began:.1f} s")
        problems = log_problems(log_path)
        if problems:
            print("daemon log errors:\n  " + "\n  ".join(problems))
        status = 0 if alive and code == 0 else 1
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=30)
        dev.terminate()
        try:
            dev.wait(timeout=30)
        except subprocess.TimeoutExpired:
            dev.kill()
            dev.wait(timeout=30)
    return status


if __name__ == "__main__":
    sys.exit(main())
