"""What a resync reads and writes for each object: the fields, the filter, the SOQL.

Only the input fields (those a record's domain comes from) and the Ily fields the
integration user can write are read, so the query moves as few bytes as possible and
the comparison with the current Ily values needs no second read. Converted Leads are
left out (Salesforce refuses updates to them), and `--since` narrows the read to records
changed after a moment (SystemModstamp, the indexed audit field). A refresh
(`stale_before`) reads only records whose Last Enriched is older than its cutoff:
records never enriched are the real-time path's and the resync's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ilyd.enrich import fields as catalogue
from ilyd.enrich.domain import source_fields
from ilyd.errors import ProvisioningError
from ilyd.pipeline.scope import scope_clause
from ilyd.salesforce.soql import identifier, soql

__all__ = ["SUPPORTED_OBJECTS", "ObjectPlan", "build_plan", "parse_since"]

SUPPORTED_OBJECTS = ("Account", "Lead")


@dataclass(frozen=True)
class ObjectPlan:
    """The read and write shape of one object's resync."""

    sobject: str
    input_fields: tuple[str, ...]
    ily_fields: tuple[str, ...]  # writable Ily API names, catalogue order
    since: dt.datetime | None = None
    scope: str | None = None  # [org.scope]'s condition, in parentheses (trusted admin SOQL)
    stale_before: dt.datetime | None = None  # a refresh: Last Enriched older than this

    @property
    def columns(self) -> tuple[str, ...]:
        """The query's SELECT list."""
        # LastModifiedById: the overwrite policy tells ilyd's last change from a person's.
        return ("Id", "SystemModstamp", "LastModifiedById", *self.input_fields,
                *self.ily_fields)

    @property
    def compared_fields(self) -> tuple[str, ...]:
        """Ily fields whose value decides whether a record changed (not Last Enriched:
        it changes on every write by definition)."""
        return tuple(f for f in self.ily_fields if f != catalogue.LAST_ENRICHED.api_name)

    def where(self) -> str:
        """The WHERE clause (without the keyword), or "" for every record."""
        parts = []
        if self.sobject == "Lead":
            parts.append("IsConverted = false")
        if self.since is not None:
            parts.append(soql("SystemModstamp >= {}", self.since))
        if self.stale_before is not None:
            # A null Last Enriched matches no `<`: never-enriched records stay out.
            parts.append(soql(f"{catalogue.LAST_ENRICHED.api_name} < {{}}",
                              self.stale_before.replace(microsecond=0)))
        if self.scope:
            parts.append(self.scope)  # the admin's condition, as written in the config
        return " AND ".join(parts)

    def query(self) -> str:
        """The SELECT that reads every record to resync."""
        select = ", ".join(identifier(c) for c in self.columns)
        where = self.where()
        return f"SELECT {select} FROM {identifier(self.sobject)}" + (  # noqa: S608
            f" WHERE {where}" if where else "")

    def count_query(self) -> str:
        """SELECT COUNT() over the same records (decides Bulk 2.0 or REST)."""
        where = self.where()
        return f"SELECT COUNT() FROM {identifier(self.sobject)}" + (  # noqa: S608
            f" WHERE {where}" if where else "")

    def modified_query(self, after: dt.datetime, integration_user: str) -> str:
        """Records someone other than ilyd changed at or after `after` (SOQL compares
        whole seconds, so the caller compares the SystemModstamp it read)."""
        return soql("SELECT Id, SystemModstamp FROM {o} WHERE SystemModstamp >= {a}"
                    " AND LastModifiedById != {u}", o=identifier(self.sobject),
                    a=after.replace(microsecond=0), u=integration_user)


def parse_since(text: str | None) -> dt.datetime | None:
    """`--since` as an aware UTC datetime (ISO 8601; a date means its midnight UTC)."""
    if text is None or text == "":
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"--since {text!r} is not an ISO 8601 date or datetime "
                         "(e.g. 2024-05-01 or 2024-05-01T12:00:00Z)") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def build_plan(describes: Mapping[str, Mapping[str, Any]], objects: Sequence[str],
               since: dt.datetime | None = None,
               scope: Sequence[tuple[str, str]] = (), *,
               stale_before: dt.datetime | None = None) -> list[ObjectPlan]:
    """One plan per object from its describe (FLS-filtered: what the user may write).

    Raises ProvisioningError when an object has none of its Ily fields writable (or,
    for a refresh, not Last Enriched).
    """
    plans = []
    for sobject in objects:
        if sobject not in SUPPORTED_OBJECTS:
            raise ValueError(f"resync supports {', '.join(SUPPORTED_OBJECTS)}, not {sobject!r}")
        described = {f["name"]: f for f in describes[sobject].get("fields", ())}
        ily = tuple(f.api_name for f in catalogue.fields_for(sobject)
                    if described.get(f.api_name, {}).get("updateable"))
        if catalogue.MATCH_STATUS.api_name not in ily:
            raise ProvisioningError(
                f"{sobject}: the Ily fields are missing or not writable by the integration "
                f"user ({catalogue.MATCH_STATUS.api_name} at least is needed); run "
                "`ilyd ctl provision ORG` or grant field-level security, then resync")
        if stale_before is not None and catalogue.LAST_ENRICHED.api_name not in ily:
            raise ProvisioningError(
                f"{sobject}: {catalogue.LAST_ENRICHED.api_name} is missing or not writable by"
                " the integration user: the refresh finds stale records by it; run "
                "`ilyd ctl provision ORG` or grant field-level security")
        inputs = tuple(f for f in source_fields(sobject) if f in described)
        plans.append(ObjectPlan(sobject, inputs, ily, since, scope_clause(scope, sobject),
                                stale_before))
    return plans
