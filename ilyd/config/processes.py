"""How many processes `ilyd run` uses for a config: `[daemon] processes`, or "auto".

Worked out from the config alone, so `ilyd config show` can print it and the daemon
(ilyd.daemon.shards shares the orgs over that many) agrees with it.
"""

from __future__ import annotations

import os

from ilyd.config.model import Config

__all__ = ["ORGS_PER_PROCESS", "process_count"]


# "auto" gives a worker about this many orgs (each org is ~9 threads of one interpreter).
ORGS_PER_PROCESS = 25


def process_count(config: Config) -> int:
    """Worker processes for `config`: as configured, or "auto". One means no workers: the
    daemon runs the orgs itself.

    "auto" is one process per ORGS_PER_PROCESS orgs, at least one per usable CPU and at
    most two per CPU, never more than the orgs. More processes than CPUs pays: the cost
    is each interpreter's lock passing between its threads, not CPU time (bench/realtime.py
    measures it; the README has figures)."""
    if config.daemon.processes is not None:
        return config.daemon.processes
    cpus = len(os.sched_getaffinity(0))
    orgs = len(config.org_names())
    return max(1, min(2 * cpus, max(cpus, -(-orgs // ORGS_PER_PROCESS)), orgs))
