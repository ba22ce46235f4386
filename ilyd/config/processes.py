"""How many processes `ilyd run` uses for a config: `[daemon] processes`, or "auto".

Worked out from the config alone, so `ilyd config show` can print it and the daemon
(ilyd.daemon.shards shares the orgs over that many) agrees with it.
"""

from __future__ import annotations

import os

from ilyd.config.model import Config

__all__ = ["ORGS_PER_PROCESS", "auto_processes", "process_count"]


# "auto" adds a process (up to one per CPU) for each this many orgs: fewer orgs, even
# busy ones, leave one interpreter's lock room enough; and each process costs its own
# interpreter's memory, which a thousand quiet orgs in one process do not pay.
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
    than one per CPU. An org is one thread, so processes are for using more cores, and
    only orgs enough to keep more than one core busy need them (bench/realtime.py and
    bench/daemon_idle.py measure both sides; the README has the figures)."""
    return max(1, min(cpus, -(-orgs // ORGS_PER_PROCESS)))
