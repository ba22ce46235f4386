"""Server side of the daemon's own `ilyd ctl` verbs: status, orgs, pause, resume,
restart, reload (`VERBS`), and what a worker process answers its front (`WORKER_VERBS`).

A capability's verbs live with the capability (`ilyd.provision.verbs.VERBS`, …); the
daemon merges every table at start (`ilyd.daemon.service.control_verbs`). Adding a verb is one
handler plus one `Verb(...)` entry in its capability's table; the client side is one
`ClientVerb` in `ilyd.control.cli.CLIENT_VERBS`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import prometheus_client

from ilyd import __version__
from ilyd.actors.messages import OrgStatus, PauseOrg, RestartOrg, ResumeOrg
from ilyd.control.protocol import DaemonView, Progress, Verb, flag_arg, org_arg
from ilyd.metrics import REGISTRY


def org_json(org: OrgStatus) -> dict[str, Any]:
    """One org as the protocol sends it."""
    return {
        "name": org.name,
        "state": str(org.state),
        "since": org.since,
        "last_error": org.last_error,
        "restarts": org.restarts,
        "retry_at": org.retry_at,
        "detail": dict(org.detail),
    }


def status(daemon: DaemonView, _args: Mapping[str, Any], _progress: Progress) -> dict[str, Any]:
    """Version, uptime, config generation, orgs by state."""
    snapshot = daemon.snapshot()
    return {
        "version": __version__,
        "uptime_seconds": round(time.time() - daemon.started, 3),
        "started": daemon.started,
        "config": str(daemon.config.path),
        "generation": daemon.generation,
        "orgs": snapshot.counts(),
        "org_count": len(snapshot.orgs),
        "summary": snapshot.summary(),
        "resyncs": {o.name: dict(o.detail)["resync"] for o in snapshot.orgs
                    if "resync" in dict(o.detail)},
        # Orgs whose last reconciliation sweep found records no event brought.
        "reconciled": {o.name: {"at": dict(o.detail).get("reconciled_at"),
                                "found": dict(o.detail)["reconciled"]}
                       for o in snapshot.orgs if dict(o.detail).get("reconciled")},
        "metrics_url": daemon.metrics_url,
        # The CPUs this process's threads run on: one when `[daemon] cpu_pinning` keeps
        # them there (ilyd.daemon.pinning).
        "cpus": sorted(os.sched_getaffinity(0)),
    }


def orgs(daemon: DaemonView, _args: Mapping[str, Any], _progress: Progress) -> list[dict[str, Any]]:
    """Every org with its state, since when, last error and published detail."""
    return [org_json(org) for org in daemon.snapshot().orgs]


def _org_action(message_type: Any) -> Any:
    def handler(daemon: DaemonView, args: Mapping[str, Any], _progress: Progress) -> dict[str, Any]:
        name = org_arg(args)
        snapshot = daemon.ask(message_type(name))
        return next(org_json(o) for o in snapshot.orgs if o.name == name)

    handler.__doc__ = f"Send {message_type.__name__} for the org named in args."
    return handler


def reload(daemon: DaemonView, args: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
    """Re-read the config; `dry_run` only shows the difference, `wait` waits for the orgs."""
    return daemon.reload(
        dry_run=flag_arg(args, "dry_run"), wait=flag_arg(args, "wait"), progress=progress
    )


VERBS: tuple[Verb, ...] = (
    Verb("status", status),
    Verb("orgs", orgs),
    Verb("pause", _org_action(PauseOrg), mutating=True),
    Verb("resume", _org_action(ResumeOrg), mutating=True),
    Verb("restart", _org_action(RestartOrg), mutating=True),
    Verb("reload", reload, mutating=True),
)


def metrics_text(_daemon: DaemonView, _args: Mapping[str, Any], _progress: Progress) -> str:
    """This process's Prometheus exposition (a worker's, for the front to merge)."""
    return prometheus_client.generate_latest(REGISTRY).decode()


def counts(daemon: DaemonView, _args: Mapping[str, Any], _progress: Progress) -> dict[str, int]:
    """Orgs by state: the front's liveness check of a worker, each second (`orgs` would
    encode every org's detail each time: at 1,000 orgs that is most of an idle daemon's
    CPU)."""
    return daemon.snapshot(timeout=2.0).counts()


# A worker process answers the front on its own socket: every verb, its metrics, and its
# orgs' counts.
WORKER_VERBS: tuple[Verb, ...] = (Verb("metrics", metrics_text), Verb("counts", counts))
