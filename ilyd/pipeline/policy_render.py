"""How `ilyd ctl release` looks for humans. Standard library only (ctl starts fast)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any


def release_arguments(parser: argparse.ArgumentParser) -> None:
    """ORG RECORD_ID [--field F]."""
    parser.add_argument("org", help="org name (see ilyd ctl orgs)")
    parser.add_argument("record_id", help="the record's Salesforce Id (15 or 18 characters)")
    parser.add_argument("--field", help="only this Ily field (API name, e.g. Ily_Industry__c)")


def release_args(ns: argparse.Namespace) -> dict[str, Any]:
    """The request's args."""
    args: dict[str, Any] = {"org": ns.org, "record_id": ns.record_id}
    if ns.field is not None:
        args["field"] = ns.field
    return args


def render_release(result: Mapping[str, Any]) -> str:
    """The fields released, or that none was protected."""
    released = result.get("released") or []
    if not released:
        return (f"{result['record_id']}: no protected field"
                + (f" named {result['field']}" if result.get("field") else ""))
    return (f"{result['record_id']}: released {', '.join(released)}; ilyd writes "
            f"{'it' if len(released) == 1 else 'them'} again at the record's next enrichment")
