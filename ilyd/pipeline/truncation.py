"""Cutting text to its field's length: before sending (the described length), and after
Salesforce refused a value as too long (STRING_TOO_LONG, whose message states the
limit: the field was shortened since the last describe)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import structlog

from ilyd.enrich.coerce import sf_length, truncate_units
from ilyd.pipeline.writable import WritableFields
from ilyd.salesforce.rest import RecordError

__all__ = ["cut_to_stated", "fit"]

log = structlog.get_logger(__name__)

# STRING_TOO_LONG's message names the limit last: "Label: data value too large: <the value>
# (max length=255)". Anchored at the end: the value quoted before it is provider data.
_MAX_LENGTH = re.compile(r"\(max length=(\d+)\)\s*$")


def fit(sobject: str, record_id: str, values: dict[str, Any],
        lengths: Mapping[str, int | None]) -> None:
    """Cut text longer than its field's described length before it is sent: Salesforce
    would refuse the whole record (STRING_TOO_LONG) for one long value. Lengths count as
    Salesforce counts them, in UTF-16 units (ilyd.enrich.coerce.sf_length)."""
    for name, value in values.items():
        if not isinstance(value, str):
            continue
        limit = lengths.get(name)
        # A text counts at most two units a character: a short one fits without a count.
        if limit and 2 * len(value) > limit and sf_length(value) > limit:
            values[name] = truncate_units(value, limit)
            log.info("ily_value_truncated", sobject=sobject, record=record_id,
                     field=name, length=sf_length(value), max_length=limit)


def cut_to_stated(sobject: str, record_id: str, values: dict[str, Any], error: RecordError,
                  *, writable: Mapping[str, int | None], fields: WritableFields) -> None:
    """Cut the values a STRING_TOO_LONG error names to the length it states (else to a
    fresh describe's, else by half); later records of the org are cut before sending."""
    stated = _MAX_LENGTH.search(error.message)
    for name in error.fields:
        value = values.get(name)
        if isinstance(value, str):
            limit = (int(stated.group(1)) if stated else writable.get(name)) or 0
            if not 0 < limit < sf_length(value):
                # Our described length is stale (the field was shortened).
                limit = fields.described_length(sobject, name) or sf_length(value) // 2
            limit = max(1, limit)
            values[name] = truncate_units(value, limit)
            fields.learn_length(sobject, name, limit)
            log.info("ily_value_truncated", sobject=sobject, record=record_id, field=name,
                     length=len(value), max_length=limit, error=error.status_code)
