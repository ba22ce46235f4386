"""How `ilyd ctl history` looks for humans. Standard library only (ctl starts fast)."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Mapping
from typing import Any


def history_arguments(parser: argparse.ArgumentParser) -> None:
    """ORG RECORD_ID."""
    parser.add_argument("org", help="org name (see ilyd ctl orgs)")
    parser.add_argument("record_id", help="the record's Salesforce Id (15 or 18 characters)")


def history_args(ns: argparse.Namespace) -> dict[str, Any]:
    """The request's args."""
    return {"org": ns.org, "record_id": ns.record_id}


def _value(value: object) -> str:
    return "(blank)" if value in (None, "") else repr(value) if isinstance(value, str) \
        else str(value)


def render_history(result: Mapping[str, Any]) -> str:
    """Each enrichment: when, input seen, fields written (old -> new) and left alone."""
    entries = result.get("entries") or []
    if not entries:
        return (f"{result['record_id']}: no enrichment by ilyd in the last"
                f" {result['days']:g} days")
    lines = [f"{result['record_id']} ({result['org']}), last {result['days']:g} days:"]
    for item in entries:
        entry = item["entry"]
        when = dt.datetime.fromtimestamp(item["at"], dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        seen = (f"domain {entry.get('domain')} from {entry.get('domain_source')}"
                if entry.get("domain") else "no domain")
        lines.append(f"{when}Z {item['path']}: {seen}, {entry.get('status')}"
                     + (f" ({entry['note']})" if entry.get("note") else ""))
        for name, (old, new) in sorted((entry.get("written") or {}).items()):
            lines.append(f"  wrote   {name}: {_value(old)} -> {_value(new)}"
                         f" ({entry.get('source') or '-'})")
        for name, why in sorted((entry.get("skipped") or {}).items()):
            lines.append(f"  skipped {name}: {why}")
    return "\n".join(lines)
