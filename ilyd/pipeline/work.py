"""The unit of work between enricher and writer, and the hashes that spot no-op writes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from ilyd.enrich.domain import source_fields
from ilyd.enrich.values import EnrichmentOutcome
from ilyd.store.inbox import InboxItem

__all__ = ["WorkItem", "inputs_hash"]


def inputs_hash(sobject: str, fields: Mapping[str, object]) -> str:
    """Hash of the input fields the record's domain is computed from (Website, Email…).

    Only those fields: an edit of Phone changes nothing ilyd computes, so it must not
    count as new input.
    """
    wanted = {name: fields.get(name) for name in source_fields(sobject)}
    return hashlib.sha256(f"{sobject}:{_encode(wanted)}".encode()).hexdigest()


# json.dumps with options builds an encoder per call; the same one serves every record.
_encode = json.JSONEncoder(sort_keys=True, default=str, separators=(",", ":")).encode


@dataclass(frozen=True)
class WorkItem:
    """One enriched record on its way to Salesforce: the claimed inbox row and its values."""

    item: InboxItem
    outcome: EnrichmentOutcome
    inputs_hash: str

    @property
    def sobject(self) -> str:
        """The record's sObject type."""
        return self.item.sobject

    @property
    def record_id(self) -> str:
        """The record's 18-character id."""
        return self.item.record_id
