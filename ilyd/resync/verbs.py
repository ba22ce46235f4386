"""Server side of `ilyd ctl resync | cancel`: ask the org's resync part.

`resync --dry-run [--report PATH]` runs it without writing (ilyd.resync.report).

`resync --wait` streams the run's progress (one line a second) until it ends.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pykka

from ilyd.actors.component import ComponentRef
from ilyd.actors.resync import CancelResync, GetResync, StartResync, resync_actor
from ilyd.control.protocol import DaemonView, Progress, Verb, org_arg
from ilyd.errors import ControlError

ASK_TIMEOUT = 30.0  # starting a run reads nothing from Salesforce but the token
WAIT_INTERVAL = 1.0
# While waiting, the org may restart (its resync then resumes): wait this long for it.
ORG_BACK_TIMEOUT = 60.0
_FINISHED = {"done", "cancelled", "failed"}


def _actor(daemon: DaemonView, org: str) -> ComponentRef:
    ref = resync_actor(org)
    if ref is not None:
        return ref
    states = {o.name: o.state for o in daemon.snapshot().orgs}
    if org not in states:
        raise ControlError("unknown_org", f"no org named {org!r}", "ilyd ctl orgs")
    raise ControlError("busy", f"org {org!r} is not running (state {states[org]})",
                       f"ilyd ctl orgs; ilyd ctl restart {org}")


def _ask(ref: ComponentRef, message: object) -> Any:
    try:
        return ref.ask(message, timeout=ASK_TIMEOUT)
    except pykka.ActorDeadError as exc:
        raise ControlError("busy", "the org is restarting", "retry in a moment") from exc


def resync(daemon: DaemonView, args: Mapping[str, Any], progress: Progress) -> Any:
    """Start a resync (`objects`, `since`); with `wait`, stream progress until it ends."""
    org = org_arg(args)
    objects = args.get("objects") or []
    since = args.get("since")
    if not isinstance(objects, list) or not all(isinstance(o, str) for o in objects):
        raise ControlError("invalid_args", "objects must be a list of object names")
    if since is not None and not isinstance(since, str):
        raise ControlError("invalid_args", "since must be an ISO 8601 date or datetime")
    snapshot = _ask(_actor(daemon, org), StartResync(tuple(objects), since,
                                                     _report(daemon, org, args)))
    if not args.get("wait"):
        return snapshot
    return _wait(daemon, org, snapshot, progress)


def _report(daemon: DaemonView, org: str, args: Mapping[str, Any]) -> str | None:
    """A dry run's report file (absolute): `report`, else one in the state directory;
    None for a resync that writes."""
    report = args.get("report")
    if not args.get("dry_run"):
        if report is not None:
            raise ControlError("invalid_args", "report goes with dry_run",
                               "ilyd ctl resync ORG --dry-run --report PATH.csv")
        return None
    if report is None:
        return str(Path(daemon.config.daemon.state_dir) / "reports"
                   / f"{org}-resync-dry-run.csv")
    if not isinstance(report, str) or not Path(report).is_absolute():
        raise ControlError("invalid_args", "report must be an absolute path")
    return report


def _wait(daemon: DaemonView, org: str, snapshot: Any, progress: Progress) -> Any:
    run_id = snapshot.get("run_id")
    gone_since: float | None = None
    while True:
        progress(snapshot)
        if snapshot.get("phase") in _FINISHED:
            return snapshot
        time.sleep(WAIT_INTERVAL)
        ref = resync_actor(org)
        latest = _ask(ref, GetResync()) if ref is not None else None
        if latest is None or latest.get("run_id") != run_id:
            gone_since = gone_since or time.monotonic()
            if time.monotonic() - gone_since > ORG_BACK_TIMEOUT:
                raise ControlError("busy", f"org {org!r} stopped while its resync ran; it "
                                   "resumes when the org runs again",
                                   "ilyd ctl orgs; ilyd ctl status")
            continue
        gone_since, snapshot = None, latest


def cancel(daemon: DaemonView, args: Mapping[str, Any], _progress: Progress) -> Any:
    """Cancel the org's running resync."""
    org = org_arg(args)
    return _ask(_actor(daemon, org), CancelResync())


VERBS: tuple[Verb, ...] = (
    Verb("resync", resync, mutating=True),
    Verb("cancel", cancel, mutating=True),
)
