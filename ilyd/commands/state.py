"""`ilyd state check | backup DIR` — the state files' integrity, and consistent copies.

Both work beside a running daemon: `check` opens every file read-only, `backup` copies
with SQLite's online backup API. Exit 0 when every file is sound (or copied), 1 when one
is not, 2 for a config that cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ilyd.commands.config import add_config_argument
from ilyd.commands.orgload import EXIT_USAGE, load_checked


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `state check` and `state backup`."""
    parser = subparsers.add_parser("state", help="check or back up the state files")
    verbs = parser.add_subparsers(dest="state_command", metavar="VERB", required=True)
    check = verbs.add_parser(
        "check", help="SQLite's integrity check on every state file (read-only)")
    add_config_argument(check)
    check.add_argument("--json", action="store_true", help="one JSON object on stdout")
    check.set_defaults(func=check_command)
    backup = verbs.add_parser(
        "backup", help="copy every state file into DIR, consistently, while ilyd runs")
    backup.add_argument("dir", metavar="DIR", help="where the copies go (created if missing)")
    add_config_argument(backup)
    backup.set_defaults(func=backup_command)


def _state_files(config_path: str) -> tuple[Path, list[Path]] | None:
    from ilyd.store.layout import state_files

    config = load_checked(config_path, "state")
    if config is None:
        return None
    state_dir = config.daemon.state_dir
    return state_dir, state_files(state_dir)


def check_command(args: argparse.Namespace) -> int:
    """One line per state file: ok, or what SQLite found."""
    from ilyd.store.maintenance import check

    found = _state_files(args.config)
    if found is None:
        return EXIT_USAGE
    state_dir, files = found
    results = [check(path) for path in files]
    if args.json:
        print(json.dumps({"state_dir": str(state_dir), "files": [
            {"path": str(r.path), "ok": r.ok, "problems": list(r.problems),
             "schemas": dict(r.schemas)} for r in results]}))
    elif not results:
        print(f"no state files in {state_dir} (the daemon has not run yet)")
    for r in results if not args.json else ():
        if r.ok:
            print(f"OK    {r.path}  ({len(r.schemas)} components)")
        else:
            print(f"FAIL  {r.path}")
            for problem in r.problems:
                print(f"      {problem}")
    if not args.json and any(not r.ok for r in results):
        print("fix: stop ilyd, restore each failed file from a backup (ilyd state backup),"
              " or move it aside to start that file's orgs with empty state")
    return 0 if all(r.ok for r in results) else 1


def backup_command(args: argparse.Namespace) -> int:
    """Copy every state file into DIR; one line per copy."""
    from ilyd.errors import StoreError
    from ilyd.store.maintenance import backup

    found = _state_files(args.config)
    if found is None:
        return EXIT_USAGE
    state_dir, files = found
    if not files:
        print(f"ilyd state backup: no state files in {state_dir}", file=sys.stderr)
        return 1
    failed = 0
    for path in files:
        try:
            print(f"copied {path} -> {backup(path, Path(args.dir))}")
        except StoreError as exc:
            failed += 1
            print(f"ilyd state backup: {exc}", file=sys.stderr)
    return 1 if failed else 0
