"""`ilyd layout ORG --config PATH [--plan] [--object Account|Lead]… [--layout NAME]…`:
add the Ily fields to the page layouts without a running daemon (admins who run it
once); `ilyd ctl layout` does the same through the daemon."""

from __future__ import annotations

import argparse
import json
import sys

from ilyd.commands.config import add_config_argument
from ilyd.commands.orgload import EXIT_TLS, EXIT_USAGE, load_org, quiet_logging


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `layout`."""
    from ilyd.provision.layout_render import layout_arguments

    parser = subparsers.add_parser(
        "layout", help="add the Ily fields to the Account and Lead page layouts")
    layout_arguments(parser)
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=layout_command)


def layout_command(args: argparse.Namespace) -> int:
    """Plan or apply; exit 1 when a layout was refused."""
    from ilyd.actors.context import OrgSecrets
    from ilyd.errors import IlydError, TlsError
    from ilyd.provision.layout_render import render_layout
    from ilyd.provision.service import Provisioner
    from ilyd.salesforce.connect import make_org_rest_client

    quiet_logging()
    loaded = load_org(args.config, args.org, "layout")
    if loaded is None:
        return EXIT_USAGE
    _, org = loaded
    try:
        rest = make_org_rest_client(org, OrgSecrets.read(org), export_usage=False)
    except (IlydError, ValueError) as exc:
        print(f"ilyd layout: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = Provisioner(org.name, rest, objects=org.objects,
                             api_version=org.api_version).layouts(
            dry_run=args.plan, objects=args.objects, layouts=args.layouts)
    except TlsError as exc:
        print(f"ilyd layout: {exc}", file=sys.stderr)
        return EXIT_TLS
    except IlydError as exc:
        print(f"ilyd layout: {exc}", file=sys.stderr)
        return 1
    finally:
        rest.close()
    result = report.as_dict()
    print(json.dumps(result, indent=2) if args.json else render_layout(result))
    return 1 if report.failed else 0
