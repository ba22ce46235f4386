"""Server side of `ilyd ctl history ORG RECORD_ID`: ilyd's work on one record over the
org's `history_days` (ilyd.store.history), from the state database of the process that
runs the org."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from ilyd.config.enrich import DEFAULT_ENRICH
from ilyd.control.protocol import DaemonView, Progress, Verb, org_arg
from ilyd.errors import ControlError
from ilyd.pipeline.policy_verbs import record_id_arg
from ilyd.store.db import Database
from ilyd.store.history import HistoryStore


def history(daemon: DaemonView, args: Mapping[str, Any], _progress: Progress) -> dict[str, Any]:
    """The record's history entries, oldest first."""
    org = org_arg(args)
    record_id = record_id_arg(args)
    config = next((o for o in daemon.config.orgs if o.name == org), None)
    if config is None:
        raise ControlError("unknown_org", f"no org named {org!r}", "ilyd ctl orgs")
    days = (config.enrich or DEFAULT_ENRICH).history_days
    database = Database(daemon.database_path)
    try:
        entries = HistoryStore(database).for_record(org, record_id,
                                                    time.time() - days * 86_400)
    finally:
        database.close()
    return {"org": org, "record_id": record_id, "days": days,
            "entries": [asdict(e) for e in entries]}


VERBS: tuple[Verb, ...] = (Verb("history", history),)
