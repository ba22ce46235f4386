"""Server side of `ilyd ctl release ORG RECORD_ID [--field F]`: give protected fields
back to ilyd.

Under the `unless_edited` overwrite policy a field a person changed is protected
(`ilyd.pipeline.policy`); an admin's release forgets that, and the field's next
enrichment writes it again. The record's own state lives in the state database of the
process that runs the org.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import structlog

from ilyd.control.protocol import DaemonView, Progress, Verb, org_arg
from ilyd.enrich.fields import by_api_name
from ilyd.errors import ControlError
from ilyd.store.db import Database
from ilyd.store.field_state import FieldStateStore

log = structlog.get_logger(__name__)

# A Salesforce record Id: 15 case-sensitive or 18 case-insensitive characters.
_RECORD_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


def record_id_arg(args: Mapping[str, Any]) -> str:
    """The required `record_id` argument."""
    record_id = args.get("record_id")
    if not isinstance(record_id, str) or not _RECORD_ID.fullmatch(record_id):
        raise ControlError("invalid_args", f"{record_id!r} is not a Salesforce record Id",
                           "give the record's 15- or 18-character Id")
    return record_id


def release(daemon: DaemonView, args: Mapping[str, Any], _progress: Progress) -> dict[str, Any]:
    """Forget the protection of the record's fields (all, or `field`)."""
    org = org_arg(args)
    record_id = record_id_arg(args)
    field = args.get("field")
    if field is not None and field not in by_api_name():
        raise ControlError("invalid_args", f"{field!r} is not an Ily field",
                           "give an Ily field's API name, e.g. Ily_Industry__c")
    if org not in {o.name for o in daemon.snapshot().orgs}:
        raise ControlError("unknown_org", f"no org named {org!r}", "ilyd ctl orgs")
    database = Database(daemon.database_path)
    try:
        released = FieldStateStore(database).release(org, record_id, field)
    finally:
        database.close()
    log.info("control_release", org=org, record=record_id, fields=released)
    return {"org": org, "record_id": record_id, "field": field, "released": released}


VERBS: tuple[Verb, ...] = (Verb("release", release, mutating=True),)
