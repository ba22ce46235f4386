"""The whole daemon idle with N connected orgs (default 1,000): memory, threads, CPU.

The README states the idle figures this measures (memory, threads, CPU at many orgs).
devorg runs in a subprocess (`ilyd devorg --orgs N`), every org is provisioned, then
`ilyd run` runs as a child with one [[org]] per devorg org and the daemon's own
[defaults]. Once every org is subscribed (`ilyd ctl orgs`), nothing happens for
--idle seconds; the figures are the daemon's (VmRSS, threads, CPU from /proc/PID/stat
over that window) and devorg's, apart.

    .venv/bin/python bench/daemon_idle.py --orgs 100 --idle 60
    .venv/bin/python bench/daemon_idle.py              # 1,000 orgs, 60 s
    .venv/bin/python bench/daemon_idle.py --restart    # and a warm restart after the stop
    .venv/bin/python bench/daemon_idle.py --cold       # the daemon provisions every org
    .venv/bin/python bench/daemon_idle.py --profile 30 # then py-spy --gil on each process

--profile SECONDS: after the measured window (so py-spy's own work is not in the figures),
`py-spy record --gil --format raw` runs on every process of the daemon's tree at once for
that long; the raw files (flamegraph.pl / speedscope input) land in the run's directory,
and the script prints each process's ten busiest frames (own samples) and the ten of
ilyd's functions with the most samples under them.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from daemon_harness import (
    DevOrgProcess,
    cpu_seconds,
    family,
    fd_count,
    free_port,
    log_problems,
    provision,
    rss_mib,
    thread_count,
    wait_ready,
    write_config,
)

from ilyd.daemon.logs import configure_logging
from ilyd.errors import ControlError


def daemon_command(config: Path, nofile: str | None) -> list[str]:
    """`python -m ilyd run --config CONFIG`, under RLIMIT_NOFILE SOFT[:HARD] if given."""
    args = ["run", "--config", str(config)]
    if not nofile:
        return [sys.executable, "-m", "ilyd", *args]
    soft, _, hard = nofile.partition(":")
    limits = (int(soft), int(hard or soft))
    # Set in the child itself before ilyd starts (preexec_fn is unsafe with threads here).
    code = (f"import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_NOFILE, {limits});"
            f" sys.argv = ['ilyd', *{args!r}]; runpy.run_module('ilyd', run_name='__main__')")
    return [sys.executable, "-c", code]


def window(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """Each process's CPU, as a share of one core, over the next `seconds`."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    time.sleep(seconds)
    took = time.monotonic() - started
    return {name: (cpu_seconds(pid) - before[name]) / took for name, pid in pids.items()}


def processes_line(front: int, cpu: dict[int, float]) -> str:
    """Each process of the daemon's tree apart: RSS, threads, CPU over the window."""
    parts = []
    for pid in family(front):
        status = dict(line.split(":", 1)
                      for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        role = "front" if pid == front else f"worker {pid}"
        parts.append(f"{role} {int(status['VmRSS'].split()[0]) / 1024:.0f} MiB"
                     f" {int(status['Threads'])} threads {cpu.get(pid, 0.0) * 100:.2f} %")
    return "  per process: " + "; ".join(parts)


def profile(pids: list[int], seconds: float, root: Path) -> None:
    """py-spy --gil on each of `pids` at once for `seconds`; print each one's busiest
    frames by own samples (the raw files stay in `root`)."""
    spy = Path(sys.executable).with_name("py-spy")
    runs = {pid: subprocess.Popen(
        [str(spy), "record", "--gil", "--format", "raw", "--rate", "100", "--duration",
         str(int(seconds)), "--pid", str(pid), "--output", str(root / f"spy-{pid}.txt")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid in pids}
    for pid, run in runs.items():
        run.wait()
        path = root / f"spy-{pid}.txt"
        if not path.exists():
            print(f"py-spy {pid}: no profile (exit {run.returncode})")
            continue
        own: Counter[str] = Counter()
        within: Counter[str] = Counter()  # samples under each of ilyd's functions
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            own[frames[-1]] += int(count)
            for frame in {f for f in frames if "ilyd/" in f}:
                within[frame] += int(count)
        total = sum(own.values())
        print(f"py-spy {pid}: {total} samples holding the GIL in {seconds:g} s ({path})")
        for label, counts in (("own", own), ("within (ilyd)", within)):
            print(f"  {label}:")
            for frame, count in counts.most_common(10):
                print(f"  {count:6d} {frame[:150]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds idle (default 60)")
    parser.add_argument("--nofile", metavar="SOFT[:HARD]",
                        help="the daemon's RLIMIT_NOFILE (e.g. 1024:524288, systemd's default)")
    parser.add_argument("--processes", type=int, default=None,
                        help="[daemon] processes (default: the daemon's \"auto\")")
    parser.add_argument("--cold", action="store_true",
                        help="leave the orgs unprovisioned: the daemon installs ilyd into each"
                             " itself, and the time to all-subscribed includes that")
    parser.add_argument("--restart", action="store_true",
                        help="after the stop, start the daemon again and time the warm start"
                             " (facts stored by the first start; no API calls needed)")
    parser.add_argument("--profile", type=float, metavar="SECONDS", default=None,
                        help="after the idle window, py-spy --gil on every daemon process")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds allowed to reach all-subscribed (default 120 + orgs)")
    args = parser.parse_args()
    configure_logging("console", "error")
    root = Path(tempfile.mkdtemp(prefix="ilyd-idle-"))
    print(f"{args.orgs} orgs, {args.idle:g} s idle, {os.cpu_count()} cores; files in {root}")
    started = time.monotonic()
    with DevOrgProcess(args.orgs, start_timeout=120 + args.orgs) as devorg:
        print(f"devorg up in {time.monotonic() - started:.1f} s")
        return measure(args, root, devorg)


def measure(args: argparse.Namespace, root: Path, devorg: DevOrgProcess) -> int:
    """Provision, start the daemon, wait for all-subscribed, measure the idle window."""
    daemon = None
    try:
        config = write_config(root, devorg, free_port(), defaults="",
                              processes=args.processes)
        started = time.monotonic()
        if args.cold:
            print("orgs left unprovisioned: the daemon provisions them (--cold)")
        else:
            provision(config)
            print(f"provisioned {args.orgs} org(s) in {time.monotonic() - started:.1f} s")
        log_path = root / "daemon.log"
        daemon = subprocess.Popen(daemon_command(config, args.nofile),
                                  stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
        dev_cpu0 = cpu_seconds(devorg.pid)
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
        start_cpu, dev_cpu = cpu_seconds(daemon.pid), cpu_seconds(devorg.pid) - dev_cpu0
        print(f"all {args.orgs} subscribed {took:.1f} s after `ilyd run` started "
              f"(daemon CPU {start_cpu:.1f} s, devorg CPU {dev_cpu:.1f} s"
              f" meanwhile); RSS {rss_mib(daemon.pid):.0f} MiB, "
              f"{thread_count(daemon.pid)} threads")
        pids = {"daemon": daemon.pid, "devorg": devorg.pid}
        half = args.idle / 2
        pids_cpu = {pid: cpu_seconds(pid, children=False) for pid in family(daemon.pid)}
        began = time.monotonic()
        first, second = window(pids, half), window(pids, args.idle - half)
        pids_cpu = {pid: (cpu_seconds(pid, children=False) - cpu) / (time.monotonic() - began)
                    for pid, cpu in pids_cpu.items()}
        cpu = {name: (first[name] + second[name]) / 2 for name in pids}
        alive = daemon.poll() is None
        rss, threads, fds = rss_mib(daemon.pid), thread_count(daemon.pid), fd_count(daemon.pid)
        print(f"daemon idle {args.idle:g} s: RSS {rss:.0f} MiB ({rss * 1024 / args.orgs:.0f} KiB"
              f" per org), {threads} threads ({threads / args.orgs:.2f} per org), {fds} fds,"
              f" CPU {cpu['daemon'] * 100:.2f} % of one"
              f" core (first half {first['daemon'] * 100:.2f} %, second"
              f" {second['daemon'] * 100:.2f} %)")
        if len(family(daemon.pid)) > 1:
            print(processes_line(daemon.pid, pids_cpu))
        print(f"devorg idle:  RSS {rss_mib(devorg.pid):.0f} MiB,"
              f" {thread_count(devorg.pid)} threads, CPU {cpu['devorg'] * 100:.2f} % of one core")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        if args.profile:
            profile(family(daemon.pid), args.profile, root)
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
        if args.restart and code == 0:
            code = warm_restart(args, config, root)
        return 0 if alive and code == 0 else 1
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=30)


def warm_restart(args: argparse.Namespace, config: Path, root: Path) -> int | None:
    """Start the daemon again on the state the first run left; its exit code."""
    log_path = root / "daemon-restart.log"
    daemon = subprocess.Popen(daemon_command(config, args.nofile),
                              stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    try:
        try:
            took = wait_ready(daemon, root / "control.sock", args.orgs,
                              timeout=args.timeout or 120 + args.orgs)
        except (RuntimeError, ControlError) as exc:
            print(f"restarted daemon not ready: {exc}; log {log_path}")
            return 1
        print(f"warm restart: all {args.orgs} subscribed {took:.1f} s after `ilyd run` "
              f"started (daemon CPU {cpu_seconds(daemon.pid):.1f} s)")
        daemon.send_signal(signal.SIGTERM)
        return daemon.wait(timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
