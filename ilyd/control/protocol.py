"""The control protocol: message shapes, error codes, verbs and their argument helpers.

The control socket speaks versioned JSON lines, one request per line:

Request:  ``{"v":1,"id":…,"verb":"orgs","args":{…}}``
Progress: ``{"v":1,"id":…,"progress":{…}}`` (zero or more, for long verbs)
Final:    ``{"v":1,"id":…,"ok":true,"final":true,"result":…}`` or
          ``{"v":1,"id":…,"ok":false,"final":true,"error":{"code":…,"message":…,"hint":…}}``

A verb handler is `handler(daemon, args, progress) -> JSON-able result` and raises
`ControlError` (one of `ERROR_CODES`) on failure. It is typed against `DaemonView`, the
little of a running daemon a verb may use. Each capability exports its verbs as a tuple
(`ilyd.provision.verbs.VERBS`, …); the daemon merges them at start (`merge_verbs`). This
module imports nothing of ilyd but the error tree, so every verb module can use it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ilyd.errors import ControlError

__all__ = ["ERROR_CODES", "MAX_LINE_BYTES", "PROTOCOL_VERSION", "DaemonView", "Handler",
           "Progress", "Verb", "encode", "flag_arg", "merge_verbs", "org_arg"]

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 1 << 20
ERROR_CODES = frozenset(
    {"unknown_org", "invalid_args", "busy", "not_permitted", "config_invalid", "internal"}
)


class DaemonView(Protocol):
    """What a verb handler may use of the process that serves it."""

    started: float
    generation: int
    metrics_url: str | None
    database_path: Path

    @property
    def config(self) -> Any: ...

    def snapshot(self, timeout: float = ...) -> Any:
        """The supervisor's `SupervisorSnapshot`: every org's status."""

    def ask(self, message: object) -> Any:
        """Ask the supervisor; its answer."""

    def reload(self, *, dry_run: bool, wait: bool, progress: Progress) -> dict[str, Any]:
        """Re-read the config and apply (or show) the difference."""


Progress = Callable[[Mapping[str, Any]], None]
# handler(target, args, progress) -> JSON-able result; raises ControlError on failure.
Handler = Callable[[Any, Mapping[str, Any], Progress], Any]


@dataclass(frozen=True)
class Verb:
    """A control verb: its handler and whether it changes anything (audited in the log)."""

    name: str
    handler: Handler
    mutating: bool = False


def merge_verbs(*tables: Iterable[Verb]) -> dict[str, Verb]:
    """One name -> verb table from the capabilities' tuples; a name given twice is a bug."""
    merged: dict[str, Verb] = {}
    for table in tables:
        for verb in table:
            if verb.name in merged:
                raise ValueError(f"control verb {verb.name!r} is defined twice")
            merged[verb.name] = verb
    return merged


def encode(message: Mapping[str, Any]) -> bytes:
    """One protocol line."""
    return json.dumps(message, separators=(",", ":"), default=str).encode() + b"\n"


def org_arg(args: Mapping[str, Any]) -> str:
    """The required `org` argument."""
    org = args.get("org")
    if not isinstance(org, str) or not org:
        raise ControlError("invalid_args", "this verb needs an org name", "ilyd ctl orgs")
    return org


def flag_arg(args: Mapping[str, Any], name: str) -> bool:
    """An optional boolean argument."""
    value = args.get(name, False)
    if not isinstance(value, bool):
        raise ControlError("invalid_args", f"{name} must be true or false")
    return value
