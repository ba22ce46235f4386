"""`ilyd ctl [--socket PATH] [--config PATH] [--json] VERB …`: talk to the running daemon.

Client verbs are table-driven: `CLIENT_VERBS` lists each verb's arguments, how they map
to the request's args, and how its result is rendered for humans (`--json` prints the
raw result). Exit codes: 0 ok, 1 the daemon reported an error (or `check` found a blocked
step, as `ilyd check` does), 2 usage error, 3 daemon not running (socket absent or
refusing). Everything imported here is the standard library or ilyd's own light
modules, so that `ilyd ctl` starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ilyd.control.client import ControlClient, DaemonNotRunningError, default_socket
from ilyd.control.render import render_org, render_orgs, render_reload, render_status
from ilyd.errors import ControlError, IlydError
from ilyd.pipeline import cache_render, history_render, policy_render
from ilyd.provision import layout_render
from ilyd.provision import render as provision_render
from ilyd.resync import render as resync_render

__all__ = ["CLIENT_VERBS", "ClientVerb", "register", "run_verb"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_RUNNING = 0, 1, 2, 3


def _no_arguments(_parser: argparse.ArgumentParser) -> None:
    pass


def _org_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("org", help="org name (see ilyd ctl orgs)")


@dataclass(frozen=True)
class ClientVerb:
    """One `ilyd ctl` sub-command: arguments, request args, rendering, timeout."""

    name: str
    help: str
    render: Callable[[Any], str]
    arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    to_args: Callable[[argparse.Namespace], dict[str, Any]] = field(
        default=lambda _ns: {}
    )
    timeout: float = 30.0
    # Shows a progress update for humans (default: its key=value pairs on a line).
    show_progress: Callable[[Mapping[str, Any]], None] | None = None
    # Whether a result the daemon returned still means failure (exit 1), as `check` with a
    # blocked step does — so `ilyd ctl check` and `ilyd check` agree.
    failed: Callable[[Any], bool] = field(default=lambda _result: False)


def org_verb(name: str, help_text: str) -> ClientVerb:
    """A verb taking one org name."""
    return ClientVerb(name, help_text, render_org, _org_argument, lambda ns: {"org": ns.org})


def _reload_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="only show what would change")
    parser.add_argument("--wait", action="store_true",
                        help="return once changed orgs are running (or failed)")


CLIENT_VERBS: tuple[ClientVerb, ...] = (
    ClientVerb("status", "version, uptime, config generation, orgs by state, worker processes",
               render_status),
    ClientVerb("orgs", "every org: state, since, restarts, detail, last error", render_orgs),
    org_verb("pause", "stop an org and keep it stopped, across daemon restarts"),
    org_verb("resume", "start a paused org"),
    org_verb("restart", "stop and start an org (also the way out of fatal)"),
    ClientVerb("reload", "re-read the config file and apply the difference", render_reload,
               _reload_arguments, lambda ns: {"dry_run": ns.dry_run, "wait": ns.wait},
               timeout=90.0),
    ClientVerb("check", "the installation preflight of a running org: one PASS/TODO/WARN/FAIL"
               " line per step (exit 1 when a step is blocked)",
               provision_render.render_check, provision_render.check_arguments,
               lambda ns: {"org": ns.org, "verbose": ns.verbose}, timeout=150.0,
               failed=lambda result: not result.get("ok", True)),
    ClientVerb("provision", "create the Ily fields, permission set and PushTopics (--plan:"
               " only show)", provision_render.render_provision,
               provision_render.provision_arguments,
               lambda ns: {"org": ns.org, "plan": ns.plan}, timeout=150.0),
    ClientVerb("grant", "let whole profiles read (--edit: edit) the Ily fields",
               provision_render.render_grant, provision_render.grant_arguments,
               lambda ns: {"org": ns.org, "profiles": ns.profile, "edit": ns.edit},
               timeout=150.0),
    ClientVerb("layout", "add the Ily fields the integration user was granted to the Account"
               " and Lead page layouts profiles use (--plan: only show)",
               layout_render.render_layout, layout_render.layout_arguments,
               layout_render.layout_args, timeout=150.0),
    ClientVerb("resync", "enrich every existing record (Bulk API 2.0; --wait shows progress)",
               resync_render.render_resync, resync_render.resync_arguments,
               resync_render.resync_args, timeout=120.0,
               show_progress=resync_render.show_progress),
    ClientVerb("cancel", "stop the org's running resync", resync_render.render_resync,
               _org_argument, lambda ns: {"org": ns.org}),
    ClientVerb("release", "let ilyd write a record's fields a person edited again"
               " (overwrite policy unless_edited; --field: only one)",
               policy_render.render_release, policy_render.release_arguments,
               policy_render.release_args),
    ClientVerb("history", "ilyd's work on one record: each enrichment, the domain seen,"
               " fields written (old -> new) and left alone, and why",
               history_render.render_history, history_render.history_arguments,
               history_render.history_args),
    ClientVerb("cache", "the enrichment providers' cache: stats, or clear [--domain D]",
               cache_render.render_cache, cache_render.cache_arguments,
               cache_render.cache_args),
)


def run_verb(verb: ClientVerb, args: argparse.Namespace) -> int:
    """Call the daemon and print the result; return the exit status."""
    try:
        path = Path(args.socket) if args.socket else default_socket(args.config)
    except IlydError as exc:
        print(f"ilyd ctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    client = ControlClient(path, timeout=verb.timeout)

    def on_progress(update: Mapping[str, Any]) -> None:
        if args.json:
            print(json.dumps({"progress": update}), flush=True)
        elif verb.show_progress is not None:
            verb.show_progress(update)
        else:
            print(" ".join(f"{k}={v}" for k, v in update.items()), flush=True)

    try:
        result = client.call(verb.name, verb.to_args(args), on_progress)
    except DaemonNotRunningError as exc:
        print(f"ilyd ctl: {exc}", file=sys.stderr)
        return EXIT_NOT_RUNNING
    except ControlError as exc:
        if args.json:
            error = {"code": exc.code, "message": exc.message, "hint": exc.hint}
            print(json.dumps({"error": error}))
        print(f"ilyd ctl {verb.name}: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"ilyd ctl: cannot talk to the daemon on {path}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(result, indent=2) if args.json else verb.render(result))
    return EXIT_ERROR if verb.failed(result) else EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `ctl` with one sub-command per entry of `CLIENT_VERBS`."""
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
