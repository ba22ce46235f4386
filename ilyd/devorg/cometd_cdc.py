"""Change Data Capture specifics: the entity selection, compound fields, gap events.

Selection. Change events exist only for the entities selected on the standard
`ChangeEvents` channel, one Tooling `PlatformEventChannelMember` per entity
(https://developer.salesforce.com/docs/platform/api-tooling/references/tooling-objects/tooling-platformeventchannelmember.html),
and an org may select only a few entities without an add-on licence: the limit is the
streaming setting `cdc_entity_limit`, 5 by default
(https://developer.salesforce.com/docs/platform/change-data-capture/guide/cdc-considerations.html,
"Change Data Capture Allocations").

Compound fields (a Lead's Name and Address, an Account's BillingAddress) are nested in
the payload and named `Compound.Component` in the header's field lists
(https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_subscribe_compound_fields.htm).

Gap events carry the header only: GAP_* the record ids, GAP_OVERFLOW not even those
(https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_other_events_gap.htm,
cdc_other_events_overflow.htm).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ilyd.devorg.dml_ops import RecordError
from ilyd.devorg.org import OrgState

__all__ = ["CDC_ENTITIES", "STANDARD_CHANNEL", "check_channel_member", "nest_fields",
           "payload_names", "selected_entities"]

STANDARD_CHANNEL = "ChangeEvents"
# The objects of devorg's schema that support change events.
CDC_ENTITIES = ("Account", "Lead")

# sobject -> {record field: (compound, component)}; the Streaming names of the
# components differ from the record's for addresses (BillingStreet is BillingAddress.Street).
_COMPONENTS: dict[str, dict[str, tuple[str, str]]] = {
    "Lead": {"FirstName": ("Name", "FirstName"), "LastName": ("Name", "LastName"),
             "Street": ("Address", "Street"), "City": ("Address", "City"),
             "State": ("Address", "State"), "PostalCode": ("Address", "PostalCode"),
             "Country": ("Address", "Country")},
    "Account": {f"Billing{part}": ("BillingAddress", part)
                for part in ("Street", "City", "State", "PostalCode", "Country")},
}
# Record fields a change event never carries as such: a Lead's full Name is its compound.
_DERIVED: dict[str, frozenset[str]] = {"Lead": frozenset({"Name"})}
_DEV_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*$")


def selected_entities(org: OrgState) -> frozenset[str]:
    """The objects whose changes publish change events (their members on ChangeEvents)."""
    return frozenset(
        str(row.get("SelectedEntity") or "").removesuffix("ChangeEvent")
        for row in org.tables["PlatformEventChannelMember"].live.values()
        if row.get("EventChannel") == STANDARD_CHANNEL)


def check_channel_member(org: OrgState, rec: dict[str, object], old: Mapping[str, object] | None,
                         pending: Mapping[str, tuple[str, Mapping[str, object]]],
                         entity_limit: int) -> None:
    """Complete and check a PlatformEventChannelMember about to be written (create takes
    `FullName` + `Metadata {eventChannel, selectedEntity}` or the fields themselves);
    `entity_limit` is how many entities the org may select (its streaming setting
    `cdc_entity_limit`). Raises RecordError. Error texts devorg could not confirm are its
    own (ADMIN.md)."""
    if old is not None:
        for name in ("EventChannel", "SelectedEntity"):
            if rec.get(name) != old.get(name):
                raise RecordError("FIELD_INTEGRITY_EXCEPTION",
                                  f"{name}: the field can't be updated", [name])
        return
    meta = rec.get("Metadata") if isinstance(rec.get("Metadata"), dict) else {}
    assert isinstance(meta, dict)
    channel = str(meta.get("eventChannel") or rec.get("EventChannel") or "")
    entity = str(meta.get("selectedEntity") or rec.get("SelectedEntity") or "")
    if not channel or not entity:
        missing = [n for n, v in (("EventChannel", channel), ("SelectedEntity", entity)) if not v]
        raise RecordError("REQUIRED_FIELD_MISSING",
                          f"Required fields are missing: [{', '.join(missing)}]", missing)
    if channel != STANDARD_CHANNEL:
        # devorg has no custom channels (PlatformEventChannel): stricter than Salesforce.
        raise RecordError("FIELD_INTEGRITY_EXCEPTION",
                          f"EventChannel: no channel named {channel} exists; devorg supports the "
                          f"standard {STANDARD_CHANNEL} channel only", ["EventChannel"])
    sobject = entity.removesuffix("ChangeEvent")
    if not entity.endswith("ChangeEvent") or sobject not in CDC_ENTITIES:
        raise RecordError("FIELD_INTEGRITY_EXCEPTION",
                          f"SelectedEntity: {entity} isn't a change event that can be selected",
                          ["SelectedEntity"])
    developer_name = str(rec.get("DeveloperName") or rec.get("FullName")
                         or f"{channel}_{entity}")
    if not _DEV_NAME.match(developer_name) or developer_name.endswith("_"):
        raise RecordError(
            "FIELD_INTEGRITY_EXCEPTION",
            "DeveloperName: The name can only contain underscores and alphanumeric "
            "characters. It must be unique, begin with a letter, not include spaces, "
            "not end with an underscore, and not contain two consecutive underscores.",
            ["DeveloperName"])
    rec.update(DeveloperName=developer_name, FullName=developer_name, EventChannel=channel,
               SelectedEntity=entity,
               Metadata={"eventChannel": channel, "selectedEntity": entity})
    rows = [*org.tables["PlatformEventChannelMember"].live.values(),
            *(r for s, r in pending.values() if s == "PlatformEventChannelMember")]
    others = [r for r in rows if r.get("Id") != rec.get("Id")]
    if any(r.get("SelectedEntity") == entity and r.get("EventChannel") == channel
           for r in others):
        raise RecordError(
            "DUPLICATE_VALUE",
            f"duplicate value found: SelectedEntity duplicates value on record with "
            f"id: {next(r['Id'] for r in others if r.get('SelectedEntity') == entity)}",
            ["SelectedEntity"])
    if any(str(r.get("DeveloperName")).lower() == developer_name.lower() for r in others):
        raise RecordError("DUPLICATE_DEVELOPER_NAME",
                          f"There is already a channel member named {developer_name}.",
                          ["DeveloperName"])
    selected = {str(r.get("SelectedEntity")) for r in others
                if r.get("EventChannel") == STANDARD_CHANNEL}
    if len(selected) >= entity_limit:
        raise RecordError("LIMIT_EXCEEDED",
                          f"You can select up to {entity_limit} entities for Change Data Capture. "
                          "Remove an entity or purchase the Change Data Capture add-on.",
                          ["SelectedEntity"])


def payload_names(sobject: str, names: Iterable[str]) -> list[str]:
    """Field names as a change event's header lists them (`Name.FirstName`)."""
    components = _COMPONENTS.get(sobject, {})
    derived = _DERIVED.get(sobject, frozenset())
    out = []
    for name in names:
        if name in derived:
            continue
        part = components.get(name)
        out.append(f"{part[0]}.{part[1]}" if part else name)
    return out


def nest_fields(sobject: str, pairs: Iterable[tuple[str, Any]], payload: dict[str, Any]) -> None:
    """Add record fields to a payload, compound components nested under their compound."""
    components = _COMPONENTS.get(sobject)
    derived = _DERIVED.get(sobject, frozenset())
    if components is None and not derived:
        payload.update(pairs)
        return
    for name, value in pairs:
        if name in derived:
            continue
        part = components.get(name) if components else None
        if part is None:
            payload[name] = value
        else:
            nested = payload.get(part[0])
            if not isinstance(nested, dict):
                nested = payload[part[0]] = {}
            nested[part[1]] = value
