"""`ilyd check ORG --config PATH [--verbose] [--json]`: the installation preflight against
a live org, usable before the daemon runs. One line per installation step: PASS, TODO
(ilyd does it when the org starts), WARN (optional, at a cost) or FAIL (blocked: the admin
must act). Exit 0 when nothing is blocked, 1 when something is, 2 on a usage or config
error."""

from __future__ import annotations

import argparse
import json
import sys

from ilyd.commands.config import add_config_argument
from ilyd.commands.orgload import EXIT_TLS, EXIT_USAGE, load_org, quiet_logging


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `check`."""
    parser = subparsers.add_parser(
        "check", help="check an org's installation: one PASS/TODO/WARN/FAIL line per step")
    parser.add_argument("org", help="org name from the config")
    add_config_argument(parser)
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="also list each permission, object, field and PushTopic")
    parser.add_argument("--json", action="store_true",
                        help="print the result as JSON (always every item)")
    parser.set_defaults(func=check_command)


def check_command(args: argparse.Namespace) -> int:
    """Run the checks and print them."""
    from ilyd.actors.context import OrgSecrets
    from ilyd.errors import IlydError, TlsError
    from ilyd.provision.identity import OrgIdentityStore
    from ilyd.provision.render import render_check
    from ilyd.provision.service import Provisioner
    from ilyd.provision.source import source_check
    from ilyd.resync.checkpoint import ResyncStore
    from ilyd.salesforce.connect import make_org_rest_client
    from ilyd.store import Database
    from ilyd.store.layout import org_database
    from ilyd.store.writes import WriteStateStore

    quiet_logging()
    loaded = load_org(args.config, args.org, "check")
    if loaded is None:
        return EXIT_USAGE
    config, org = loaded
    try:
        secrets = OrgSecrets.read(org)
        rest = make_org_rest_client(org, secrets, export_usage=False)
    except (IlydError, ValueError) as exc:
        print(f"ilyd check: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        rest.http.tokens.token()
    except TlsError as exc:
        # Nothing can be checked over a connection that is not trusted.
        rest.close()
        print(f"ilyd check: {exc}", file=sys.stderr)
        return EXIT_TLS
    except IlydError:
        pass  # the check's own lines say what is refused and how to fix it
    database = None
    try:
        database = Database(org_database(config.daemon.state_dir, org.name))
        identities: OrgIdentityStore | None = OrgIdentityStore(database)
        writes: WriteStateStore | None = WriteStateStore(database)
        resyncs: ResyncStore | None = ResyncStore(database)
    except IlydError:
        identities = None  # the sandbox-refresh line then says "first seen"
        writes = None  # no line for fields the writer found unwritable
        resyncs = None  # no line for the complete sync
    try:
        report = Provisioner(org.name, rest, objects=org.objects, api_version=org.api_version,
                             api_budget_ratio=org.api_budget_ratio,
                             poll_interval=org.poll_interval, identities=identities,
                             writes=writes, auto_provision=org.auto_provision,
                             source=source_check(org), resyncs=resyncs,
                             streaming_source=org.source).check()
    finally:
        rest.close()
        if database is not None:
            database.close()
    result = report.as_dict()
    print(json.dumps(result, indent=2) if args.json else render_check(result, args.verbose))
    return 0 if report.ok else 1
