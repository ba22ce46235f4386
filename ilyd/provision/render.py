"""How check, provision and grant results look for humans (`ilyd check`, `ilyd ctl …`).

Standard library only: `ilyd ctl` imports this and must start fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any


def _lines(entry: Mapping[str, Any], width: int, indent: str) -> list[str]:
    pad = " " * (len(indent) + width + 8)
    lines = [f"{indent}{entry['status']:<4}  {entry['step']:<{width}}  {entry['summary']}"]
    if entry["status"] != "PASS":
        if entry.get("consequence"):
            lines.append(f"{pad}consequence: {entry['consequence']}")
        if entry.get("fix"):
            lines.append(f"{pad}fix: {entry['fix']}")
    return lines


def render_check(result: Mapping[str, Any], verbose: bool | None = None) -> str:
    """One line per installation step (consequence and fix under the ones not PASS), each
    step's items under it with `verbose`, then the summary line."""
    verbose = bool(result.get("verbose")) if verbose is None else verbose
    lines = []
    for step in result["steps"]:
        lines += _lines(step, 22, "")
        if verbose:  # each item on one line: the step above says what it costs, the fix
            lines += [f"      {i['status']:<4}  {i['step']:<40}  {i['summary']}"
                      for i in step["items"]]
    lines.append(result["summary"])
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


def check_arguments(parser: argparse.ArgumentParser) -> None:
    """`ilyd ctl check ORG [--verbose]`."""
    parser.add_argument("org", help="org name (see ilyd ctl orgs)")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="also list each permission, object, field and PushTopic")


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
