"""CLI sub-commands; each module has `register(subparsers)` (see ilyd/cli.py)."""
