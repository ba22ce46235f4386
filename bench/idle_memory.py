"""Where an idle org's memory goes: the daemon's Python allocations at two org counts.

devorg runs in a subprocess with --orgs orgs, all provisioned; then `ilyd run` (one
process) runs twice under tracemalloc, once with the first --base orgs and once with all
of them. Once every org is subscribed and --settle seconds passed, each run dumps a
snapshot (after a garbage collection). The difference of the two, divided by the orgs
added, is what one idle org holds in Python objects, grouped by the innermost line of
ilyd's own code on the allocating stack (or, with --group, by tracemalloc's traceback,
line or file); the script prints the largest groups, then the totals: Python bytes per
org, and RSS per org with and without tracemalloc's own bookkeeping; the rest is C, of
which SQLite's own count (sqlite3_memory_used) is printed apart (the remainder: thread
stacks, the allocator's slack).

    .venv/bin/python bench/idle_memory.py                      # 50 vs 250 orgs
    .venv/bin/python bench/idle_memory.py --base 0 --orgs 200 --top 40 --frames 12
    .venv/bin/python bench/idle_memory.py --group traceback    # whole allocation stacks
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

from daemon_harness import (
    DevOrgLike,
    DevOrgProcess,
    free_port,
    provision,
    rss_mib,
    wait_ready,
    write_config,
)

from ilyd.daemon.logs import configure_logging

# Run in the daemon's process: trace from the first import, dump on SIGUSR2 (the
# daemon's main thread runs Python at least once a second, so the handler runs soon).
_TRACED = """
import ctypes, gc, os, runpy, signal, sys, tracemalloc, _sqlite3
tracemalloc.start({frames})
sqlite_used = ctypes.CDLL(_sqlite3.__file__).sqlite3_memory_used
sqlite_used.restype = ctypes.c_int64
def dump(*_):
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    snapshot.dump({path!r} + ".part")
    with open({path!r} + ".meta", "w") as meta:
        meta.write(f"{{tracemalloc.get_tracemalloc_memory()}} {{sqlite_used()}}")
    os.rename({path!r} + ".part", {path!r})
signal.signal(signal.SIGUSR2, dump)
sys.argv = ["ilyd", "run", "--config", {config!r}]
runpy.run_module("ilyd", run_name="__main__")
"""


class _Subset:
    """The first `count` orgs of a devorg, as write_config reads it."""

    def __init__(self, dev: DevOrgLike, count: int) -> None:
        self.url = dev.url
        self.orgs = list(dev.orgs)[:count]


def traced_run(root: Path, dev: DevOrgLike, count: int, args: argparse.Namespace
               ) -> tuple[tracemalloc.Snapshot, float, int, int]:
    """Run the daemon for the first `count` orgs; its snapshot, RSS (MiB), tracemalloc's
    own bytes and SQLite's (sqlite3_memory_used) once they are all subscribed and settled."""
    run_dir = root / f"run-{count}"
    run_dir.mkdir()
    config = write_config(run_dir, _Subset(dev, count), free_port(), defaults="",
                          processes=1)
    dump = run_dir / "snapshot"
    code = _TRACED.format(frames=args.frames, path=str(dump), config=str(config))
    log_path = run_dir / "daemon.log"
    daemon = subprocess.Popen([sys.executable, "-c", code], stdout=log_path.open("wb"),
                              stderr=subprocess.STDOUT)
    try:
        took = wait_ready(daemon, run_dir / "control.sock", count, timeout=120 + 2 * count)
        print(f"{count} org(s) subscribed in {took:.1f} s; settling {args.settle:g} s")
        time.sleep(args.settle)
        rss = rss_mib(daemon.pid)
        daemon.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 300
        while not dump.exists():
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"no snapshot from the daemon; log {log_path}")
            time.sleep(0.5)
        overhead, sqlite = map(int, (run_dir / "snapshot.meta").read_text().split())
        return tracemalloc.Snapshot.load(str(dump)), rss, overhead, sqlite
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def by_ilyd_line(snapshot: tracemalloc.Snapshot) -> Counter[str]:
    """Bytes by the innermost line of ilyd's own code that led to the allocation (the
    allocating line itself when no ilyd frame is on the stack)."""
    found: Counter[str] = Counter()
    for trace in snapshot.traces:
        frames = list(trace.traceback)  # oldest first
        own = [f for f in frames if "/ilyd/" in f.filename]
        frame = own[-1] if own else frames[-1]
        found[f"{frame.filename.rsplit('/ilyd/', 1)[-1]}:{frame.lineno}"] += trace.size
    return found


def print_by_ilyd_line(first: tracemalloc.Snapshot, second: tracemalloc.Snapshot,
                       added: int, top: int) -> int:
    before, after = by_ilyd_line(first), by_ilyd_line(second)
    diff = {key: after[key] - before[key] for key in after.keys() | before.keys()}
    print(f"\nPython memory per added org, by ilyd's innermost line (top {top}):")
    for key, size in sorted(diff.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{size / added / 1024:8.2f} KiB  {key}")
    return sum(diff.values())


def print_by_tracemalloc(first: tracemalloc.Snapshot, second: tracemalloc.Snapshot,
                         added: int, args: argparse.Namespace) -> int:
    diff = second.compare_to(first, args.group)
    print(f"\nPython memory per added org, by {args.group} (top {args.top}):")
    for stat in diff[:args.top]:
        print(f"{stat.size_diff / added / 1024:8.1f} KiB {stat.count_diff / added:7.1f} blocks")
        for frame in list(stat.traceback)[:args.frames]:  # innermost first
            print(f"      {frame.filename.split('/site-packages/')[-1]}:{frame.lineno}")
    return sum(s.size_diff for s in diff)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=250, help="orgs of the second run")
    parser.add_argument("--base", type=int, default=50, help="orgs of the first run")
    parser.add_argument("--settle", type=float, default=40.0,
                        help="seconds idle after all subscribed, before the snapshot")
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--group", choices=("ilyd", "traceback", "lineno", "filename"),
                        default="ilyd", help="ilyd: by the innermost line of ilyd's code"
                        " on the allocation's stack (default); else tracemalloc's own keys")
    args = parser.parse_args()
    configure_logging("console", "error")
    root = Path(tempfile.mkdtemp(prefix="ilyd-idle-memory-"))
    added = args.orgs - args.base
    with DevOrgProcess(args.orgs, start_timeout=120 + args.orgs) as dev:
        provision(write_config(root, dev, free_port(), defaults=""))
        print(f"{args.orgs} org(s) provisioned; files in {root}")
        first, rss_first, over_first, sqlite_first = traced_run(root, dev, args.base, args)
        second, rss_second, over_second, sqlite_second = traced_run(root, dev, args.orgs, args)
    filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
    first, second = first.filter_traces(filters), second.filter_traces(filters)
    if args.group == "ilyd":
        traced = print_by_ilyd_line(first, second, added, args.top)
    else:
        traced = print_by_tracemalloc(first, second, added, args)
    rss = (rss_second - rss_first) * 1024 / added
    bookkeeping = (over_second - over_first) / 1024 / added
    sqlite = (sqlite_second - sqlite_first) / 1024 / added
    outside = rss - bookkeeping - traced / added / 1024
    print(f"\nper added org: Python {traced / added / 1024:.1f} KiB traced; RSS"
          f" {rss:.1f} KiB, {rss - bookkeeping:.1f} KiB without tracemalloc's"
          f" {bookkeeping:.1f} KiB; so about {outside:.1f} KiB outside Python's allocator,"
          f" {sqlite:.1f} KiB of it SQLite's (connections, schemas, statements, pages)")
    print(f"RSS {rss_first:.0f} MiB at {args.base} org(s), {rss_second:.0f} MiB at"
          f" {args.orgs} (tracemalloc's bookkeeping included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
