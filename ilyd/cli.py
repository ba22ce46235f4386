"""The `ilyd` command line: one sub-command per module, imported lazily.

Each module in `_COMMAND_MODULES` exposes `register(subparsers)`, which adds its
sub-command(s) and sets `func(args) -> int` as the parser default. Heavy imports stay
inside the command functions so that `ilyd ctl` starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ilyd import __version__

_COMMAND_MODULES: tuple[str, ...] = (
    "ilyd.commands.run",
    "ilyd.control.cli",
    "ilyd.commands.config",
    "ilyd.commands.demo",
    "ilyd.devorg.cli",
    "ilyd.commands.check",
    "ilyd.commands.connect",
    "ilyd.commands.fields",
    "ilyd.commands.layout",
    "ilyd.commands.tail",
    "ilyd.commands.state",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="ilyd", description="Salesforce enrichment connector daemon."
    )
    parser.add_argument("--version", action="version", version=f"ilyd {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
