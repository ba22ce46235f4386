"""The check line for Ily fields the writer found it cannot write.

Salesforce can refuse a field at write time (INVALID_FIELD_FOR_INSERT_UPDATE) although
describe offered it — field-level security taken away while the daemon ran, for one. The
writer then leaves the field out of the org's writes and remembers it in the state
database (`ilyd.store.writes`); this line shows those fields in `ilyd check`, with the
fix. Kept apart from `checks.py`: its input is ilyd's own state, not the org's facts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from ilyd.provision.checks import CheckResult, Status
from ilyd.provision.spec import PERMISSION_SET_NAME
from ilyd.store.writes import UnwritableField

__all__ = ["STEP", "unwritable_check"]

STEP = "fields refused on write"


def _since(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def unwritable_check(org: str, fields: Sequence[UnwritableField]) -> CheckResult | None:
    """One WARN naming every field the writer marked unwritable for `org` (None: none).

    WARN, not FAIL: the other Ily fields are still written."""
    if not fields:
        return None
    names = ", ".join(
        f"{f.sobject}.{f.field} ({f.reason.split(':', 1)[0]} since {_since(f.since)})"
        for f in sorted(fields, key=lambda f: (f.sobject, f.field)))
    return CheckResult(
        STEP, Status.WARN, f"Salesforce refused {len(fields)} Ily field(s): {names}",
        "ilyd leaves these fields out of every write to this org; the other Ily fields are"
        " still written",
        f"grant Edit on them through the {PERMISSION_SET_NAME} permission set: ilyd ctl"
        f" provision {org} (ilyd writes them again once Salesforce describes them as"
        " editable)")
