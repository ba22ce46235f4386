"""How many processes `ilyd run` uses for a config: `[daemon] processes`, or "auto".

Worked out from the config alone, so `ilyd config show` can print it and the daemon
(ilyd.daemon.shards shares the orgs over that many) agrees with it.
"""

from __future__ import annotations

import os

from ilyd.config.model import Config

__all__ = ["ORGS_PER_PROCESS", "auto_processes", "process_count"]


# "auto" adds a process for each this many orgs (up to one per CPU beyond the first):
# fewer orgs, even busy ones, leave one interpreter's lock room enough; and each process
# costs its own interpreter's memory, which a thousand quiet orgs in one process do not pay.
ORGS_PER_PROCESS = 50


def process_count(config: Config) -> int:
    """Worker processes for `config`: as configured, or "auto" (`auto_processes` for its
    orgs and the CPUs this process may use). One means no workers: the daemon runs the
    orgs itself."""
    if config.daemon.processes is not None:
        return config.daemon.processes
    return auto_processes(len(config.org_names()), len(os.sched_getaffinity(0)))


def auto_processes(orgs: int, cpus: int) -> int:
    """What "auto" means: one process per ORGS_PER_PROCESS orgs (started), never more
    than one per CPU beyond the first, so one process on 2 CPUs. An org is one thread, so
    processes are for using more cores, kept only where a core is free for them: one CPU
    goes to what is not the orgs' Python — the kernel's network work, TLS, SQLite's I/O,
    the front process over the workers. On 2 CPUs a second process bought no CPU: the
    daemon used 0.62 of a core in one process and 0.66 in two at 1,000 orgs x 0.5
    records/s, with p99 28 s against 68 s, and at 100 orgs x 5/s p99 2.2 s against 3.4 s,
    while 1,000 idle orgs took ~150 MiB more (bench/realtime.py, bench/daemon_idle.py;
    the README has the figures)."""
    return max(1, min(cpus - 1, -(-orgs // ORGS_PER_PROCESS)))
