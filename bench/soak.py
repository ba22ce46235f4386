"""The fault campaign for as long as asked: `python bench/soak.py --minutes 30 --seed 7`.

People keep working in several orgs on one devorg while every fault is thrown, at random
and overlapping (tests/chaos/campaign.py says which); then every record is checked.
Prints the figures as JSON on the last line: records, changes, faults by kind, lost,
stale, no-op writes, max writes per record, the drain time, the worst recovery time after
each kind of fault, and the daemon's memory (RSS of the front and its workers) at the
start, middle and end of the fault window. Exit 0 when nothing was lost or wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.chaos.campaign import Campaign, Settings


def _group(pid: int) -> list[Path]:
    """/proc entries of `pid` and of every process in its process group (its workers)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(proc.name) == pid or int(fields[2]) == pid:  # fields[2]: the group
            found.append(proc)
    return found


def _processes(pid: int) -> int:
    return len(_group(pid))


def _rss_mib(pid: int) -> float:
    """Resident memory of `pid` and its process group, in MiB (0 when gone)."""
    total = 0
    for proc in _group(pid):
        try:
            status = (proc / "status").read_text()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in status.splitlines()
                     if line.startswith("VmRSS:"))
    return round(total / 1024, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="fault window (minutes)")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="replay a run")
    parser.add_argument("--orgs", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rate", type=float, default=3.0, help="changes per second per org")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ilyd-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    settings = Settings(seed=args.seed, fault_seconds=args.minutes * 60, orgs=args.orgs,
                        processes=args.processes, changes_per_second=args.rate,
                        drain_seconds=max(120.0, args.minutes * 6))
    campaign = Campaign(settings, workdir, say=lambda line: print(
        time.strftime("%H:%M:%S"), line, flush=True))
    memory: dict[str, float] = {}

    def sample() -> None:
        while campaign.daemon is None:
            time.sleep(0.5)
        time.sleep(10)  # started and subscribed
        for label, wait in (("start", 0.0), ("middle", settings.fault_seconds / 2),
                            ("end", settings.fault_seconds / 2)):
            time.sleep(wait)
            # A fault may have just restarted the daemon: read it once its workers run
            # again (a restarted one has not grown back yet), within half a minute.
            deadline = time.monotonic() + 30
            while True:
                process = campaign.daemon.process if campaign.daemon else None
                count = _processes(process.pid) if process else 0
                if count > settings.processes or time.monotonic() > deadline:
                    break
                time.sleep(1)
            memory[label] = _rss_mib(process.pid) if process else 0.0

    threading.Thread(target=sample, daemon=True).start()
    print(f"soak: seed {args.seed}, {args.minutes} min of faults, workdir {workdir}", flush=True)
    report = campaign.run()
    figures = {**report.figures(), "rss_mib": memory}
    if not report.passed:
        print("problems:", report.problems(), flush=True)
    print(json.dumps(figures, sort_keys=True))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
