"""How the daemon's own verbs' results read for humans (`ilyd ctl` without `--json`).

Each capability renders its own verbs beside them (`ilyd.resync.render`, …).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

__all__ = ["render_org", "render_orgs", "render_reload", "render_status", "table"]


def _age(since: float | None, now: float) -> str:
    if not since:
        return "-"
    s = max(0, int(now - since))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain aligned text table."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def _orgs(count: int) -> str:
    return f"{count} org" if count == 1 else f"{count} orgs"


def _cpus(cpus: list[int]) -> str:
    """'CPU 1', or 'CPUs 0, 1'."""
    return (f"CPU {cpus[0]}" if len(cpus) == 1
            else "CPUs " + ", ".join(str(c) for c in cpus))


def render_status(result: Mapping[str, Any]) -> str:
    """`ilyd ctl status` for humans."""
    lines = [
        f"ilyd {result['version']}, up {_age(result['started'], time.time())},"
        f" config generation {result['generation']} ({result['config']})",
        result["summary"],
    ]
    if result.get("metrics_url"):
        lines.append(f"metrics: {result['metrics_url']}")
    if result.get("cpus"):
        lines.append(f"this process runs on {_cpus(result['cpus'])}")
    lines += [f"worker {w['worker']}: {w['state']}, pid {w['pid']}, {_orgs(w['orgs'])},"
              f" {w['restarts']} restarts" + (f" (last exit {w['last_exit']})"
                                             if w["last_exit"] is not None else "")
              + (f", on {_cpus(w['cpus'])}" if w.get("cpus") else "")
              for w in result.get("workers") or ()]
    lines += [f"resync {org}: {state}" for org, state in (result.get("resyncs") or {}).items()]
    lines += [f"sweep {org}: {sweep['found']} records no event brought, found {sweep['at']}"
              for org, sweep in (result.get("reconciled") or {}).items()]
    return "\n".join(lines)


def render_orgs(result: list[Mapping[str, Any]]) -> str:
    """`ilyd ctl orgs` as a table."""
    now = time.time()
    rows = []
    for org in result:
        detail = " ".join(f"{k}={v}" for k, v in sorted(org["detail"].items()))
        if org.get("retry_at"):
            detail = (detail + f" retry_in={max(0, round(org['retry_at'] - now))}s").strip()
        rows.append([org["name"], org["state"], _age(org["since"], now),
                     str(org["restarts"]), detail or "-", org["last_error"] or "-"])
    return table(["name", "state", "since", "restarts", "detail", "last error"], rows)


def render_org(result: Mapping[str, Any]) -> str:
    """One org after pause/resume/restart."""
    return f"{result['name']}: {result['state']}"


def render_reload(result: Mapping[str, Any]) -> str:
    """What a reload changed (or would change, with --dry-run)."""
    verb = "would apply" if result.get("dry_run") else "applied"
    lines = [f"config generation {result['generation']}: {verb}"]
    for key in ("added", "removed", "changed"):
        lines.append(f"  {key}: {', '.join(result[key]) or '-'}")
    if result["restart_required"]:
        lines.append(f"  needs a restart to change: {', '.join(result['restart_required'])}")
    lines += [f"  problem: {p}" for p in result.get("problems", [])]
    return "\n".join(lines)
