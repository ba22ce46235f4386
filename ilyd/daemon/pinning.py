"""A daemon process that runs orgs keeps its threads on one CPU (`[daemon] cpu_pinning`).

One Python process runs one thread at a time (the interpreter lock), and an org is a
thread. Free to run on every CPU, the threads hand the lock to one another across CPUs:
each hand-over wakes a thread on another CPU, which then waits for the lock the first
one takes back. Kept on one CPU, a thread that wants the lock waits there instead, and the
other CPUs are left to the rest of the machine. Measured with bench/realtime.py on 2 CPUs,
devorg beside the daemon and free to use both (`--no-cpu-pinning` for the free case):
100 orgs × 5 records/s had p99 0.58–0.60 s and 1.25–1.27 ms of daemon CPU per record
pinned, against 1.09–1.55 s and 1.61–1.75 ms free, with half the context switches; 1,000
orgs × 0.5/s had p99 6.1 s pinned against 10–18 s free (its CPU per record was higher
there, 1.83 ms against 1.57–1.70: the one CPU, kernel work included, was near full); one
org at 500/s was the same either way (0.30 against 0.33 ms, p99 432 against 442 ms).

A worker takes the CPU of its index among those the process may use (systemd's
`CPUAffinity=`, `taskset`), the front over workers stays free; a daemon in one process
takes the one its process id falls on, so that several on a machine (one per config, or
a test suite's) spread over its CPUs. On one usable CPU there is nothing to choose.
"""

from __future__ import annotations

import contextlib
import os

import structlog

__all__ = ["pin_to_one_cpu"]

log = structlog.get_logger(__name__)


def pin_to_one_cpu(index: int | None = None) -> int | None:
    """Keep every thread of this process, and those it starts later, on the `index`-th
    (modulo their number; None: by the process id) of the CPUs it may use; returns that
    CPU, None when it may use only one."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None
    cpu = allowed[(os.getpid() if index is None else index) % len(allowed)]
    # Linux keeps an affinity per thread, and a new thread takes its creator's: the
    # threads running now are set one by one, the ones to come follow.
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):  # ended since it was listed
            os.sched_setaffinity(int(task), {cpu})
    log.info("cpu_pinned", cpu=cpu, usable=len(allowed))
    return cpu
