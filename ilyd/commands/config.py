"""`ilyd config check|show --config PATH`: validate or print the configuration offline."""

from __future__ import annotations

import argparse
import sys

DEFAULT_CONFIG = "/etc/ilyd/ilyd.toml"


def add_config_argument(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """The shared `--config PATH` option."""
    parser.add_argument(
        "--config", metavar="PATH", required=required,
        default=None if required else DEFAULT_CONFIG,
        help=f"config file (default {DEFAULT_CONFIG})",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `config check` and `config show`."""
    parser = subparsers.add_parser("config", help="check or show the configuration")
    verbs = parser.add_subparsers(dest="config_command", metavar="VERB", required=True)
    check = verbs.add_parser("check", help="validate; exit 0 valid, 1 invalid")
    add_config_argument(check)
    check.set_defaults(func=check_command)
    show = verbs.add_parser("show", help="print the effective config, secrets masked")
    add_config_argument(show)
    show.set_defaults(func=show_command)


def check_command(args: argparse.Namespace) -> int:
    """Print every problem (global tables and every [[org]]) on its own line, then the
    warnings; exit 1 when there is any problem (warnings alone do not fail)."""
    from ilyd.config import load_config
    from ilyd.errors import ConfigError

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    for problem in config.problems():
        print(problem, file=sys.stderr)
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    from ilyd.pipeline.providers import sample_refusal

    # Valid, but the daemon will not start such an org: say so before it is started.
    for org in config.orgs:
        refusal = sample_refusal(org)
        if refusal is not None:
            print(f"warning: org {org.name}: {refusal}", file=sys.stderr)
    if config.org_errors:
        return 1
    count = len(config.orgs)
    print(f"{args.config}: valid ({count} org{'' if count == 1 else 's'})")
    return 0


def show_command(args: argparse.Namespace) -> int:
    """Print the effective config; problems go to stderr and make the exit status 1."""
    from ilyd.config import load_config, render_config
    from ilyd.errors import ConfigError

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    sys.stdout.write(render_config(config))
    return 1 if config.org_errors else 0
