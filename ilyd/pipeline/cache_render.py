"""How `ilyd ctl cache stats | clear | show` look for humans. Standard library only (ctl starts
fast)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from ilyd.control.render import table


def cache_arguments(parser: argparse.ArgumentParser) -> None:
    """stats | clear [--domain D] | show --domain D."""
    parser.add_argument("action", choices=("stats", "clear", "show"),
                        help="stats: entries, hits and misses per provider; clear: forget"
                        " cached answers; show: a domain's cached values and their evidence")
    parser.add_argument("--domain", help="clear: only this company domain's answers;"
                        " show: the company domain to explain")


def cache_args(ns: argparse.Namespace) -> dict[str, Any]:
    """The request's args (--domain only with clear or show; show needs it)."""
    if ns.domain is not None and ns.action == "stats":
        print("ilyd ctl cache: --domain goes with clear or show", file=sys.stderr)
        raise SystemExit(2)  # a usage error, like argparse's
    if ns.domain is None and ns.action == "show":
        print("ilyd ctl cache: show needs --domain", file=sys.stderr)
        raise SystemExit(2)
    args: dict[str, Any] = {"action": ns.action}
    if ns.domain is not None:
        args["domain"] = ns.domain
    return args


def _ratio(hits: int, misses: int) -> str:
    total = hits + misses
    return f"{100 * hits / total:.0f}%" if total else "-"


def render_cache(result: Mapping[str, Any]) -> str:
    """A table per provider for stats; a line for clear."""
    if result.get("action") == "show":
        return render_show(result)
    if result.get("action") == "clear":
        what = f"for {result['domain']}" if result.get("domain") else "in all"
        return f"removed {result['removed']} cached answer(s) {what}"
    rows = [[p["provider"], str(p["entries"]), str(p["positive"]), str(p["negative"]),
             str(p["expired"]), str(p["hits"]), str(p["misses"]),
             _ratio(p["hits"], p["misses"])] for p in result["providers"]]
    rows.append(["total", str(result["entries"]), "", "", "", str(result["hits"]),
                 str(result["misses"]), _ratio(result["hits"], result["misses"])])
    return table(["provider", "entries", "found", "not found", "expired", "hits", "misses",
                  "hit rate"], rows)


def render_show(result: Mapping[str, Any]) -> str:
    """Each provider's cached answer for the domain: its values, then its evidence."""
    answers = result.get("answers") or []
    if not answers:
        return f"no cached answers for {result['domain']}"
    lines = []
    for answer in answers:
        state = ("invalid domain" if answer["invalid"]
                 else "found" if answer["found"] else "not found")
        lines.append(f"{answer['provider']}: {state}")
        lines += [f"  {name} = {value}" for name, value in sorted(answer["values"].items())
                  if "\n" not in str(value)]
        if answer.get("evidence"):
            lines.append("  evidence:")
            lines += [f"    {line}" for line in str(answer["evidence"]).splitlines()]
    return "\n".join(lines)
