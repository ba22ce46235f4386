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
        code = run_daemon(Path(args.config), worker)
    except ConfigError as exc:
        print(f"ilyd: {args.config} is invalid; not starting:", file=sys.stderr)
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except IlydError as exc:
        print(f"ilyd: {exc}", file=sys.stderr)
        return 1
    _exit_now(code)
    return code  # not reached


def _exit_now(code: int) -> None:
    """End the stopped daemon's process without the interpreter's teardown.

    Everything the daemon owns is closed by now (state database, control socket, the
    orgs' connections) and no thread of its own is left but daemon threads, which a normal
    exit abandons too. What the teardown would still do is free every object the orgs
    built: at a thousand orgs that was 2.2 s of a 4.1-4.7 s SIGTERM -> exit
    (bench/daemon_idle.py), time systemd waits for. The logs are flushed first."""
    import contextlib
    import logging
    import os

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        # Closed, or its reader gone: nothing left to save there.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
