"""The preflight line for the last installation step: the complete sync of the records
that existed before ilyd (`ilyd ctl resync ORG`, install.md §9).

Its input is ilyd's own resync checkpoint, not the org's facts, so it is kept apart from
`checks.py`, as the line for fields refused on write is.
"""

from __future__ import annotations

import datetime as dt

from ilyd.provision.checks import CheckResult, Status
from ilyd.resync.checkpoint import ResyncRun, RunState

__all__ = ["STEP", "sync_check"]

STEP = "complete sync"


def _when(moment: float | None) -> str:
    if moment is None:
        return "?"
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def sync_check(org: str, run: ResyncRun | None) -> CheckResult:
    """PASS once a complete sync finished, TODO while one runs, WARN before the first or
    after one that did not finish: real time covers only records that change."""
    fix = f"ilyd ctl resync {org} --wait, once the daemon runs the org"
    consequence = ("records that existed before ilyd are enriched only when someone"
                   " changes them")
    if run is None:
        return CheckResult(STEP, Status.WARN, "not run yet", consequence, fix)
    counts = ", ".join(f"{k} {v:,}" for k, v in run.counts.items()
                       if k in ("read", "written", "failed")) or "no records"
    if run.state is RunState.DONE:
        return CheckResult(STEP, Status.PASS, f"done {_when(run.finished_at)}: {counts}")
    if run.state is RunState.RUNNING:
        return CheckResult(STEP, Status.TODO, f"running since {_when(run.started_at)}: {counts}",
                           "records it has not reached yet are enriched as it goes",
                           f"none needed: ilyd finishes it, across restarts; ilyd ctl status"
                           f" shows how far it is (ilyd ctl resync {org} --wait to watch)")
    why = f": {run.error}" if run.error else ""
    return CheckResult(STEP, Status.WARN, f"{run.state} {_when(run.finished_at)}{why}",
                       consequence, fix)
