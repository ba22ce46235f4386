"""`ilyd ctl`: the control-socket client and how each verb's result is shown.

Client verbs are table-driven: `CLIENT_VERBS` lists each verb's arguments, how they map
to the request's args, and how its result is rendered for humans (`--json` prints the
raw result). Exit codes: 0 ok, 1 the daemon reported an error (or `check` found a blocked
step, as `ilyd check` does), 2 usage error, 3 daemon not running (socket absent or
refusing).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ilyd.errors import ControlError, IlydError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_RUNNING = 0, 1, 2, 3
PROTOCOL_VERSION = 1  # same as ilyd.control.PROTOCOL_VERSION, without importing the server
SYSTEMD_SOCKET = Path("/run/ilyd/control.sock")


class DaemonNotRunningError(IlydError):
    """Nothing answers on the control socket."""


class ControlClient:
    """One connection to the daemon's control socket."""

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.path = path
        self._timeout = timeout

    def call(
        self,
        verb: str,
        args: Mapping[str, Any] | None = None,
        on_progress: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> Any:
        """Send one request; return its result, raise ControlError with the daemon's error."""
        final = None
        for message in self.stream(verb, args):
            if "progress" in message:
                if on_progress is not None:
                    on_progress(message["progress"])
            else:
                final = message
        assert final is not None
        if final.get("ok"):
            return final.get("result")
        error = final.get("error") or {}
        raise ControlError(error.get("code", "internal"), error.get("message", "?"),
                           error.get("hint"))

    def stream(self, verb: str, args: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Send one request; yield progress lines, then the final line."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self._timeout)
        try:
            sock.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise DaemonNotRunningError(
                f"ilyd is not running (nothing answers on {self.path})"
            ) from exc
        except PermissionError as exc:
            sock.close()
            raise ControlError("not_permitted", f"cannot open {self.path}: permission denied",
                               "run as root or as a member of the ilyd group") from exc
        request = {"v": PROTOCOL_VERSION, "id": uuid.uuid4().hex, "verb": verb,
                   "args": dict(args or {})}
        with sock, sock.makefile("rwb") as stream:
            stream.write(json.dumps(request).encode() + b"\n")
            stream.flush()
            while True:
                line = stream.readline()
                if not line:
                    raise ControlError("internal", "the daemon closed the connection")
                message = json.loads(line)
                yield message
                if "ok" in message:
                    return


# --------------------------------------------------------------------- rendering


def _age(since: float | None, now: float) -> str:
    if not since:
        return "-"
    s = max(0, int(now - since))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain aligned text table."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def _orgs(count: int) -> str:
    return f"{count} org" if count == 1 else f"{count} orgs"


def render_status(result: Mapping[str, Any]) -> str:
    """`ilyd ctl status` for humans."""
    lines = [
        f"ilyd {result['version']}, up {_age(result['started'], time.time())},"
        f" config generation {result['generation']} ({result['config']})",
        result["summary"],
    ]
    if result.get("metrics_url"):
        lines.append(f"metrics: {result['metrics_url']}")
    lines += [f"worker {w['worker']}: {w['state']}, pid {w['pid']}, {_orgs(w['orgs'])},"
              f" {w['restarts']} restarts" + (f" (last exit {w['last_exit']})"
                                             if w["last_exit"] is not None else "")
              for w in result.get("workers") or ()]
    lines += [f"resync {org}: {state}" for org, state in (result.get("resyncs") or {}).items()]
    lines += [f"sweep {org}: {sweep['found']} records no event brought, found {sweep['at']}"
              for org, sweep in (result.get("reconciled") or {}).items()]
    return "\n".join(lines)


def render_orgs(result: list[Mapping[str, Any]]) -> str:
    """`ilyd ctl orgs` as a table."""
    now = time.time()
    rows = []
    for org in result:
        detail = " ".join(f"{k}={v}" for k, v in sorted(org["detail"].items()))
        if org.get("retry_at"):
            detail = (detail + f" retry_in={max(0, round(org['retry_at'] - now))}s").strip()
        rows.append([org["name"], org["state"], _age(org["since"], now),
                     str(org["restarts"]), detail or "-", org["last_error"] or "-"])
    return table(["name", "state", "since", "restarts", "detail", "last error"], rows)


def render_org(result: Mapping[str, Any]) -> str:
    """One org after pause/resume/restart."""
    return f"{result['name']}: {result['state']}"


def render_reload(result: Mapping[str, Any]) -> str:
    """What a reload changed (or would change, with --dry-run)."""
    verb = "would apply" if result.get("dry_run") else "applied"
    lines = [f"config generation {result['generation']}: {verb}"]
    for key in ("added", "removed", "changed"):
        lines.append(f"  {key}: {', '.join(result[key]) or '-'}")
    if result["restart_required"]:
        lines.append(f"  needs a restart to change: {', '.join(result['restart_required'])}")
    lines += [f"  problem: {p}" for p in result.get("problems", [])]
    return "\n".join(lines)


# ------------------------------------------------------------------ verb table


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


from ilyd.pipeline import (  # noqa: E402 (stdlib only, fast)
    cache_render,
    history_render,
    policy_render,
)
from ilyd.provision import layout_render  # noqa: E402 (stdlib only, fast)
from ilyd.provision import render as provision_render  # noqa: E402 (stdlib only, fast)
from ilyd.resync import render as resync_render  # noqa: E402 (stdlib only, fast)

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


def default_socket(config: str | None) -> Path:
    """--config's control socket, else systemd's, else the local ./var/run one."""
    if config:
        from ilyd.config import load_config

        return load_config(config).daemon.control_socket
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    if runtime:
        return Path(runtime.split(":")[0]) / "control.sock"
    if SYSTEMD_SOCKET.exists():
        return SYSTEMD_SOCKET
    return Path("var/run/control.sock")


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
