"""The Ily fields an org lets the writer update, with their described lengths.

Read from a describe (kept `_DESCRIBE_TTL` seconds: an admin may fix field-level
security meanwhile), narrowed by what Salesforce refused since (INVALID_FIELD_FOR_
INSERT_UPDATE, remembered in the WriteStateStore), widened again when a fresh describe
offers a refused field, and shortened when Salesforce states a smaller length.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from ilyd.salesforce.rest import RestClient
from ilyd.store.writes import WriteStateStore

__all__ = ["WritableFields"]

log = structlog.get_logger(__name__)

# The field list is read again after this long (an admin may have fixed FLS).
_DESCRIBE_TTL = 600.0


class WritableFields:
    """Per sObject of one org: Ily field name → described length (None: no length)."""

    def __init__(self, org: str, rest: RestClient, state: WriteStateStore, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.org = org
        self.rest = rest
        self.state = state
        self._clock = clock
        self._fields: dict[str, tuple[float, dict[str, int | None]]] = {}

    def of(self, sobject: str) -> dict[str, int | None]:
        """Ily fields of `sobject` the org lets ilyd update, with their described length."""
        cached = self._fields.get(sobject)
        now = self._clock()
        if cached is not None and now - cached[0] < _DESCRIBE_TTL:
            return cached[1]
        describe = self.rest.describe(sobject, refresh=True)
        refused = self._refused(sobject)
        fields = {
            str(f["name"]): (int(f["length"]) if f.get("length") else None)
            for f in describe.get("fields", ())
            if str(f.get("name", "")).startswith("Ily_") and f.get("updateable")
        }
        # A refusal comes from a describe gone stale (Edit taken away since). A fresh
        # describe offering the field again means an admin granted it back: write it again
        # (a field still refused is flagged again by the next write).
        for name in sorted(refused & fields.keys()):
            self.state.clear_unwritable(self.org, sobject, name)
            log.info("ily_field_writable_again", sobject=sobject, field=name)
        self._fields[sobject] = (now, fields)
        return fields

    def described_length(self, sobject: str, name: str) -> int | None:
        """The field's length from a fresh describe (the cached one proved stale)."""
        self._fields.pop(sobject, None)
        return self.of(sobject).get(name)

    def learn_length(self, sobject: str, name: str, limit: int) -> None:
        """Salesforce stated a shorter length: later values are cut to it before sending."""
        cached = self._fields.get(sobject)
        if cached is not None and name in cached[1]:
            self._fields[sobject] = (cached[0], {**cached[1], name: limit})

    def forget_refused(self, sobject: str) -> None:
        """Drop the fields marked unwritable since the describe was read."""
        cached = self._fields.get(sobject)
        if cached is not None:
            refused = self._refused(sobject)
            self._fields[sobject] = (cached[0], {k: v for k, v in cached[1].items()
                                                 if k not in refused})

    def _refused(self, sobject: str) -> set[str]:
        return {u.field for u in self.state.unwritable(self.org) if u.sobject == sobject}
