"""How `ilyd layout` / `ilyd ctl layout` results look, and the verb's arguments.

Standard library only: `ilyd ctl` imports this and must start fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any


def render_layout(result: Mapping[str, Any]) -> str:
    """Per layout the fields added (or, with --plan, to add), then failures."""
    verb = "added" if result["applied"] else "would add"
    lines = [f"{c['layout']}: {verb} {len(c['add'])} field(s) to "
             f"{'new section' if c['new_section'] else 'section'} {c['section']!r}: "
             f"{', '.join(c['add'])}" for c in result["changes"]]
    lines += [f"{name}: shows every granted Ily field" for name in result["unchanged"]]
    lines += [f"FAILED {f['layout']}: {f['error']}" for f in result.get("failed", [])]
    if not result["changes"] and not result.get("failed"):
        lines.append(f"{result['org']}: nothing to do, every page layout shows the Ily fields")
    return "\n".join(lines)


def layout_arguments(parser: argparse.ArgumentParser) -> None:
    """`ORG [--plan] [--object Account|Lead]… [--layout NAME]…`."""
    parser.add_argument("org", help="org name")
    parser.add_argument("--plan", action="store_true", help="only show what would change")
    parser.add_argument("--object", action="append", default=[], choices=("Account", "Lead"),
                        dest="objects", help="only this object's layouts (repeatable)")
    parser.add_argument("--layout", action="append", default=[], metavar="NAME",
                        dest="layouts",
                        help="only this layout, e.g. 'Account-Account Layout' (repeatable;"
                             " default: every layout a profile uses)")


def layout_args(ns: argparse.Namespace) -> dict[str, Any]:
    """The control request's args."""
    return {"org": ns.org, "plan": ns.plan, "objects": ns.objects, "layouts": ns.layouts}
