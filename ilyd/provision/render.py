"""How check, provision and grant results look for humans (`ilyd check`, `ilyd ctl …`).

Standard library only: `ilyd ctl` imports this and must start fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any


def render_check(result: Mapping[str, Any]) -> str:
    """One line per step (with consequence and fix under non-PASS lines), then a summary."""
    lines = []
    for r in result["results"]:
        lines.append(f"{r['status']:<4}  {r['step']:<40}  {r['summary']}")
        if r.get("consequence"):
            lines.append(f"{'':<46}consequence: {r['consequence']}")
        if r.get("fix"):
            lines.append(f"{'':<46}fix: {r['fix']}")
    counts = result["counts"]
    mode = f"; mode: {result['mode']}" if result.get("mode") else ""
    lines.append(f"{result['org']}: {counts['FAIL']} FAIL, {counts['WARN']} WARN,"
                 f" {counts['PASS']} PASS{mode}")
    return "\n".join(lines)


def render_provision(result: Mapping[str, Any]) -> str:
    """The plan (or what was done), what was skipped and why, failures, the mode."""
    lines = []
    actions = result["plan"] if not result["applied"] else result["done"]
    verb = "would" if not result["applied"] else "did"
    if not result["plan"]:
        lines.append(f"{result['org']}: nothing to do, already provisioned")
    for action in actions:
        detail = f"  ({action['detail']})" if action.get("detail") else ""
        lines.append(f"{verb}  {action['kind']:<22} {action['target']}{detail}")
    for failed in result.get("failed", []):
        lines.append(f"FAILED {failed['kind']:<22} {failed['target']}: {failed['error']}")
    for skipped in result.get("skipped", []):
        lines.append(f"skipped: {skipped}")
    if result.get("sandbox_refreshed"):
        lines.append("sandbox refresh detected: replay ids dropped; run ilyd connect"
                     f" {result['org']} --sandbox")
    lines.append(f"mode: {result['mode']}, Ily fields writable: {result['fields']}")
    return "\n".join(lines)


def render_grant(result: Mapping[str, Any]) -> str:
    """Per profile: field permissions granted and already in place."""
    lines = [f"{profile}: {count} field permission(s) granted ({result['access']}),"
             f" {result['unchanged'].get(profile, 0)} already in place"
             for profile, count in result["granted"].items()]
    lines += [f"error: {e}" for e in result.get("errors", [])]
    return "\n".join(lines)


def provision_arguments(parser: argparse.ArgumentParser) -> None:
    """`ilyd ctl provision ORG [--plan]`."""
    parser.add_argument("org", help="org name (see ilyd ctl orgs)")
    parser.add_argument("--plan", action="store_true", help="only show what would be done")


def grant_arguments(parser: argparse.ArgumentParser) -> None:
    """`ilyd ctl grant ORG --profile NAME [--profile …] [--edit]`."""
    parser.add_argument("org", help="org name (see ilyd ctl orgs)")
    parser.add_argument("--profile", action="append", required=True, metavar="NAME",
                        help="profile whose users get access (repeatable)")
    parser.add_argument("--edit", action="store_true", help="grant Edit as well as Read")
