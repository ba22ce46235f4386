"""How `ilyd ctl cache stats | clear` look for humans. Standard library only (ctl starts
fast)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any


def cache_arguments(parser: argparse.ArgumentParser) -> None:
    """stats | clear [--domain D]."""
    parser.add_argument("action", choices=("stats", "clear"),
                        help="stats: entries, hits and misses per provider; clear: forget"
                        " cached answers")
    parser.add_argument("--domain", help="clear: only this company domain's answers")


def cache_args(ns: argparse.Namespace) -> dict[str, Any]:
    """The request's args (--domain only with clear)."""
    if ns.domain is not None and ns.action != "clear":
        print("ilyd ctl cache: --domain goes with clear", file=sys.stderr)
        raise SystemExit(2)  # a usage error, like argparse's
    args: dict[str, Any] = {"action": ns.action}
    if ns.domain is not None:
        args["domain"] = ns.domain
    return args


def _ratio(hits: int, misses: int) -> str:
    total = hits + misses
    return f"{100 * hits / total:.0f}%" if total else "-"


def render_cache(result: Mapping[str, Any]) -> str:
    """A table per provider for stats; a line for clear."""
    if result.get("action") == "clear":
        what = f"for {result['domain']}" if result.get("domain") else "in all"
        return f"removed {result['removed']} cached answer(s) {what}"
    # ilyd.ctl imports this module: take its table helper late.
    from ilyd.ctl import table

    rows = [[p["provider"], str(p["entries"]), str(p["positive"]), str(p["negative"]),
             str(p["expired"]), str(p["hits"]), str(p["misses"]),
             _ratio(p["hits"], p["misses"])] for p in result["providers"]]
    rows.append(["total", str(result["entries"]), "", "", "", str(result["hits"]),
                 str(result["misses"]), _ratio(result["hits"], result["misses"])])
    return table(["provider", "entries", "found", "not found", "expired", "hits", "misses",
                  "hit rate"], rows)
