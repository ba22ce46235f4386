"""`ilyd ctl [--socket PATH] [--config PATH] [--json] VERB …`: talk to the running daemon."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `ctl` with one sub-command per entry of `ilyd.ctl.CLIENT_VERBS`."""
    from ilyd.ctl import CLIENT_VERBS, run_verb

    parser = subparsers.add_parser("ctl", help="control the running daemon")
    parser.add_argument("--socket", metavar="PATH", help="control socket path")
    parser.add_argument("--config", metavar="PATH",
                        help="take the control socket path from this config file")
    parser.add_argument("--json", action="store_true", help="print the raw JSON result")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in CLIENT_VERBS:
        sub = verbs.add_parser(verb.name, help=verb.help, description=verb.help)
        verb.arguments(sub)
        sub.set_defaults(func=lambda args, verb=verb: run_verb(verb, args))
