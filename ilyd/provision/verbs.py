"""Server side of `ilyd ctl check | provision | grant | layout`: ask the org's provisioner
(a part of the org's actor)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pykka

from ilyd.actors.provisioner import (
    RunCheck,
    RunGrant,
    RunLayout,
    RunProvision,
    provisioner_for,
)
from ilyd.control.protocol import DaemonView, Progress, Verb, flag_arg, org_arg
from ilyd.errors import ControlError, IlydError

# Provisioning an org from nothing is ~50 API calls; a slow org takes a while.
ASK_TIMEOUT = 120.0


def _ask(daemon: DaemonView, args: Mapping[str, Any], message: object) -> Any:
    org = org_arg(args)
    ref = provisioner_for(org)
    if ref is None:
        states = {o.name: o.state for o in daemon.snapshot().orgs}
        if org not in states:
            raise ControlError("unknown_org", f"no org named {org!r}", "ilyd ctl orgs")
        raise ControlError("busy", f"org {org!r} is {states[org]}, not running",
                           f"ilyd ctl restart {org}, or ilyd check {org} --config …")
    try:
        return ref.ask(message, timeout=ASK_TIMEOUT)
    except pykka.ActorDeadError as exc:
        raise ControlError("busy", f"org {org!r} stopped while asked", "retry") from exc
    except IlydError as exc:
        raise ControlError("internal", f"{org}: {exc}", f"ilyd ctl check {org}") from exc


def check(daemon: DaemonView, args: Mapping[str, Any], _progress: Progress) -> Any:
    """The preflight of a running org; `verbose` asks the client to list every item."""
    return {**_ask(daemon, args, RunCheck()), "verbose": flag_arg(args, "verbose")}


def provision(daemon: DaemonView, args: Mapping[str, Any], _progress: Progress) -> Any:
    """Provision now; `plan` only shows what would be done."""
    return _ask(daemon, args, RunProvision(dry_run=flag_arg(args, "plan")))


def grant(daemon: DaemonView, args: Mapping[str, Any], _progress: Progress) -> Any:
    """Read (or Read/Edit with `edit`) on the Ily fields for the named profiles."""
    profiles = args.get("profiles")
    if not isinstance(profiles, list) or not profiles or not all(
            isinstance(p, str) and p for p in profiles):
        raise ControlError("invalid_args", "grant needs profiles: a list of profile names",
                           "ilyd ctl grant ORG --profile 'Standard User'")
    return _ask(daemon, args, RunGrant(tuple(profiles), edit=flag_arg(args, "edit")))


def _names_arg(args: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = args.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ControlError("invalid_args", f"layout's {name} must be a list of names",
                           "ilyd ctl layout ORG [--object Account] [--layout NAME]")
    return tuple(value)


def layout(daemon: DaemonView, args: Mapping[str, Any], _progress: Progress) -> Any:
    """Add the granted Ily fields to page layouts; `plan` only shows what would change."""
    return _ask(daemon, args, RunLayout(dry_run=flag_arg(args, "plan"),
                                        objects=_names_arg(args, "objects"),
                                        layouts=_names_arg(args, "layouts")))


VERBS: tuple[Verb, ...] = (
    Verb("check", check),
    Verb("provision", provision, mutating=True),
    Verb("grant", grant, mutating=True),
    Verb("layout", layout, mutating=True),
)
