"""What to do with each record Salesforce did not take (Collections per-record errors)."""

from __future__ import annotations

from enum import StrEnum

from ilyd.salesforce.rest import RecordError

__all__ = ["DROP_REASONS", "Action", "action_for"]


class Action(StrEnum):
    """The writer's response to one per-record error."""

    TRUNCATE = "truncate"  # shorten the named fields to their described length, resend
    DROP_FIELDS = "drop_fields"  # mark the named fields unwritable, resend the rest
    RETRY_LATER = "retry_later"  # back to the inbox with a backoff
    DROP = "drop"  # nothing to write any more: confirm and count the reason


# The record is gone or may not be written: no retry can succeed.
DROP_REASONS: dict[str, str] = {
    "ENTITY_IS_DELETED": "deleted",
    "NOT_FOUND": "not_found",
    "INVALID_CROSS_REFERENCE_KEY": "not_found",  # an id that names no record
    "MALFORMED_ID": "not_found",
    "CANNOT_UPDATE_CONVERTED_LEAD": "converted_lead",
}


def action_for(error: RecordError) -> Action:
    """The action for one per-record error (unknown codes: retry later, then give up)."""
    code = error.status_code
    if code == "STRING_TOO_LONG" and error.fields:
        return Action.TRUNCATE
    if code in ("INVALID_FIELD_FOR_INSERT_UPDATE", "INVALID_FIELD") and error.fields:
        return Action.DROP_FIELDS
    if code in DROP_REASONS:
        return Action.DROP
    return Action.RETRY_LATER
