"""`ilyd run --config PATH`: the daemon, in the foreground (systemd Type=notify)."""

from __future__ import annotations

import argparse
import sys

from ilyd.commands.config import add_config_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `run`."""
    parser = subparsers.add_parser("run", help="run the daemon in the foreground")
    add_config_argument(parser)
    # Set by the front process on the worker processes it starts ([daemon] processes).
    parser.add_argument("--worker", metavar="I/N", help=argparse.SUPPRESS)
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    """Run until SIGTERM; exit 1 on an invalid config or when another daemon runs."""
    from pathlib import Path

    from ilyd.daemon.process import run_daemon
    from ilyd.daemon.shards import WorkerRole
    from ilyd.errors import ConfigError, IlydError

    try:
        worker = WorkerRole.parse(args.worker) if args.worker else None
    except ValueError as exc:
        print(f"ilyd: --worker: {exc}", file=sys.stderr)
        return 2
    try:
        return run_daemon(Path(args.config), worker)
    except ConfigError as exc:
        print(f"ilyd: {args.config} is invalid; not starting:", file=sys.stderr)
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except IlydError as exc:
        print(f"ilyd: {exc}", file=sys.stderr)
        return 1
