"""Server side of the built-in `ilyd ctl` verbs: name -> handler, in `VERBS`.

A handler is `handler(daemon, args, progress) -> JSON-able result` and raises
`ControlError` (stable code) on failure. Adding a verb is one function here (or in the
capability's own module) plus one `Verb(...)` entry in `VERBS`; the client side is one
`ClientVerb` in `ilyd.ctl.CLIENT_VERBS`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ilyd import __version__
from ilyd.actors.messages import OrgStatus, PauseOrg, RestartOrg, ResumeOrg
from ilyd.config import OrgName
from ilyd.control import Progress, Verb
from ilyd.errors import ControlError

if TYPE_CHECKING:
    from ilyd.daemon import Daemon


def org_arg(args: Mapping[str, Any]) -> OrgName:
    """The required `org` argument."""
    org = args.get("org")
    if not isinstance(org, str) or not org:
        raise ControlError("invalid_args", "this verb needs an org name", "ilyd ctl orgs")
    return OrgName(org)


def flag_arg(args: Mapping[str, Any], name: str) -> bool:
    """An optional boolean argument."""
    value = args.get(name, False)
    if not isinstance(value, bool):
        raise ControlError("invalid_args", f"{name} must be true or false")
    return value


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


def status(daemon: Daemon, _args: Mapping[str, Any], _progress: Progress) -> dict[str, Any]:
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
    }


def orgs(daemon: Daemon, _args: Mapping[str, Any], _progress: Progress) -> list[dict[str, Any]]:
    """Every org with its state, since when, last error and published detail."""
    return [org_json(org) for org in daemon.snapshot().orgs]


def _org_action(message_type: Any) -> Any:
    def handler(daemon: Daemon, args: Mapping[str, Any], _progress: Progress) -> dict[str, Any]:
        name = org_arg(args)
        snapshot = daemon.ask(message_type(name))
        return next(org_json(o) for o in snapshot.orgs if o.name == name)

    handler.__doc__ = f"Send {message_type.__name__} for the org named in args."
    return handler


def reload(daemon: Daemon, args: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
    """Re-read the config; `dry_run` only shows the difference, `wait` waits for the orgs."""
    return daemon.reload(
        dry_run=flag_arg(args, "dry_run"), wait=flag_arg(args, "wait"), progress=progress
    )


from ilyd.pipeline import cache_verbs, history_verbs, policy_verbs  # noqa: E402
from ilyd.provision import verbs as provision_verbs  # noqa: E402 (needs the helpers above)
from ilyd.resync import verbs as resync_verbs  # noqa: E402 (needs the helpers above)

VERBS: dict[str, Verb] = {
    verb.name: verb
    for verb in (
        Verb("status", status),
        Verb("orgs", orgs),
        Verb("pause", _org_action(PauseOrg), mutating=True),
        Verb("resume", _org_action(ResumeOrg), mutating=True),
        Verb("restart", _org_action(RestartOrg), mutating=True),
        Verb("reload", reload, mutating=True),
        Verb("check", provision_verbs.check),
        Verb("provision", provision_verbs.provision, mutating=True),
        Verb("grant", provision_verbs.grant, mutating=True),
        Verb("layout", provision_verbs.layout, mutating=True),
        Verb("resync", resync_verbs.resync, mutating=True),
        Verb("cancel", resync_verbs.cancel, mutating=True),
        Verb("release", policy_verbs.release, mutating=True),
        Verb("history", history_verbs.history),
        # Not audited as mutating: `stats` is read-only; `clear` logs what it removed.
        Verb("cache", cache_verbs.cache),
    )
}


def metrics_text(_daemon: Daemon, _args: Mapping[str, Any], _progress: Progress) -> str:
    """This process's Prometheus exposition (a worker's, for the front to merge)."""
    import prometheus_client

    from ilyd.metrics import REGISTRY

    return prometheus_client.generate_latest(REGISTRY).decode()


def counts(daemon: Daemon, _args: Mapping[str, Any], _progress: Progress) -> dict[str, int]:
    """Orgs by state: the front's liveness check of a worker, each second (`orgs` would
    encode every org's detail each time: at 1,000 orgs that is most of an idle daemon's
    CPU)."""
    return daemon.snapshot(timeout=2.0).counts()


# A worker process answers the front on its own socket: the same verbs, its metrics, and
# its orgs' counts.
WORKER_VERBS: dict[str, Verb] = {**VERBS, "metrics": Verb("metrics", metrics_text),
                                 "counts": Verb("counts", counts)}
