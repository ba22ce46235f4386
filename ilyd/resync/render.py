"""How `ilyd ctl resync | cancel` look for humans: a progress bar on a terminal, a line
per update otherwise, and a summary at the end. Standard library only (ctl starts fast)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

_BAR = 28


def resync_arguments(parser: argparse.ArgumentParser) -> None:
    """ORG [--object Account|Lead]… [--since DATETIME] [--wait]."""
    parser.add_argument("org", help="org name (see ilyd ctl orgs)")
    parser.add_argument("--object", dest="objects", action="append",
                        choices=("Account", "Lead"),
                        help="object to resync (repeatable; default: the org's objects)")
    parser.add_argument("--since", help="only records changed since this ISO 8601 "
                        "date/datetime (SystemModstamp)")
    parser.add_argument("--wait", action="store_true",
                        help="show progress until the resync ends")
    parser.add_argument("--dry-run", action="store_true",
                        help="write nothing: report each value that would change")
    parser.add_argument("--report", metavar="PATH.csv",
                        help="--dry-run's report file (default: in the state directory)")


def resync_args(ns: argparse.Namespace) -> dict[str, Any]:
    """The request's args (--report made absolute: the daemon writes it)."""
    if ns.report is not None and not ns.dry_run:
        print("ilyd ctl resync: --report goes with --dry-run", file=sys.stderr)
        raise SystemExit(2)  # a usage error, like argparse's
    args = {"org": ns.org, "objects": ns.objects or [], "since": ns.since, "wait": ns.wait}
    if ns.dry_run:
        args["dry_run"] = True
        if ns.report is not None:
            args["report"] = os.path.abspath(ns.report)
    return args


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def progress_line(p: Mapping[str, Any]) -> str:
    """One update as text: phase, object, counts, rate, ETA."""
    total = p.get("total") or 0
    read = p.get("read", 0)
    share = f" {min(100, 100 * read // total)}%" if total else ""
    reason = f" ({p['reason']})" if p.get("phase") == "paused" and p.get("reason") else ""
    return (f"{p.get('phase')}{share} {p.get('object') or ''} read {read:,}/{total:,}"
            f" enriched {p.get('enriched', 0):,} changed {p.get('changed', 0):,}"
            f" written {p.get('written', 0):,} failed {p.get('failed', 0):,}"
            f" {p.get('rate', 0):,.0f}/s eta {_duration(p.get('eta_seconds'))}{reason}")


def show_progress(update: Mapping[str, Any], out: TextIO = sys.stdout) -> None:
    """A redrawn bar on a terminal, else one line per update."""
    if not out.isatty():
        print(progress_line(update), file=out, flush=True)
        return
    total = update.get("total") or 0
    filled = _BAR * min(update.get("read", 0), total) // total if total else 0
    bar = "#" * filled + "." * (_BAR - filled)
    print(f"\r\x1b[K[{bar}] {progress_line(update)}", end="", file=out, flush=True)
    if update.get("phase") in ("done", "cancelled", "failed"):
        print(file=out)


def render_resync(result: Mapping[str, Any] | None) -> str:
    """The run's state and counts; failures by reason."""
    if not result:
        return "no resync"
    lines = [f"{result.get('org')}: resync {result.get('run_id')} {progress_line(result)}"]
    for reason, count in sorted((result.get("failures") or {}).items()):
        lines.append(f"  failed {reason}: {count:,}")
    if result.get("error"):
        lines.append(f"  error: {result['error']}")
    if result.get("dry_run"):
        lines.append(f"  dry run (nothing written): report {result.get('report')}")
    return "\n".join(lines)
