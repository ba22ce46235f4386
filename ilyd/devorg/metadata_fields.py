"""CustomField through the Metadata API, sharing its state with the Tooling API.

A field created here is a Tooling `CustomField` row (and so part of describe, SOQL and
field-level security) and a field created through Tooling reads back here: there is one
set of fields per org, as in Salesforce.
https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/customfield.htm
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ilyd.devorg.dml import RecordError, WriteOp, save
from ilyd.devorg.metadata_layouts import MetadataState
from ilyd.devorg.metadata_soap import add, text
from ilyd.devorg.org import OrgState, Record

_INTS = frozenset({"length", "precision", "scale", "visibleLines"})
_BOOLS = frozenset({"externalId", "unique", "required", "restricted", "sorted", "default",
                    "caseSensitive", "trackHistory", "trackTrending"})
_LISTS = frozenset({"value"})


def _value(element: ET.Element) -> object:
    if len(element):
        out: dict[str, object] = {}
        for child in element:
            value = _value(child)
            if child.tag in _LISTS:
                out.setdefault(child.tag, []).append(value)  # type: ignore[union-attr]
            else:
                out[child.tag] = value
        return out
    raw = element.text or ""
    if element.tag in _INTS:
        try:
            return int(raw)
        except ValueError:
            return raw
    if element.tag in _BOOLS:
        return raw.lower() == "true"
    return raw


def tooling_metadata(element: ET.Element) -> dict[str, object]:
    """A `<fields>`/CustomField element as the Tooling `Metadata` value."""
    out = _value(element)
    assert isinstance(out, dict)
    out.pop("fullName", None)
    return out


def _emit(parent: ET.Element, name: str, value: object) -> None:
    if isinstance(value, dict):
        child = ET.SubElement(parent, name)
        for key in sorted(value):
            _emit(child, key, value[key])
    elif isinstance(value, list):
        for entry in value:
            _emit(parent, name, entry)
    elif value is not None:
        add(parent, name, value)


def field_element(rec: Record, tag: str = "CustomField") -> ET.Element:
    """A Tooling CustomField row as Metadata API XML (elements in the WSDL's order,
    which is alphabetical for CustomField)."""
    element = ET.Element(tag)
    add(element, "fullName", rec["FullName"])
    metadata = rec.get("Metadata") or {}
    assert isinstance(metadata, dict)
    for key in sorted(metadata):
        _emit(element, key, metadata[key])
    return element


def find_field(org: OrgState, full_name: str) -> Record | None:
    """The Tooling row of `Object.Name__c`, case-insensitive."""
    wanted = full_name.lower()
    return next((r for r in org.tables["CustomField"].live.values()
                 if str(r["FullName"]).lower() == wanted), None)


def all_fields(org: OrgState) -> list[Record]:
    """Every custom field of the org."""
    return list(org.tables["CustomField"].live.values())


def write_field(org: OrgState, user_id: str, element: ET.Element, *,
                create: bool, update: bool) -> tuple[bool, RecordError | None]:
    """Create and/or update one field from its element: (created, error)."""
    full_name = text(element, "fullName") or ""
    existing = find_field(org, full_name)
    if existing is None and not create:
        return False, RecordError("INVALID_CROSS_REFERENCE_KEY",
                                  f"In field: fullName - no CustomField named {full_name} "
                                  "found", ["fullName"])
    if existing is not None and not update:
        sobject, _, name = full_name.partition(".")
        return False, RecordError("DUPLICATE_DEVELOPER_NAME",
                                  f"There is already a field named {name.removesuffix('__c')}"
                                  f" on {sobject}.", ["fullName"])
    metadata = tooling_metadata(element)
    if existing is None:
        op = WriteOp("create", "CustomField",
                     values={"FullName": full_name, "Metadata": metadata})
    else:
        op = WriteOp("update", "CustomField", str(existing["Id"]), {"Metadata": metadata})
    result = save(org, user_id, [op], tooling=True)[0]
    if not result.success:
        return False, result.errors[0]
    return existing is None, None


def delete_field(org: OrgState, user_id: str, state: MetadataState,
                 full_name: str) -> RecordError | None:
    """Delete a field with its permission rows and its places on layouts, as Salesforce
    does when a field is deleted."""
    existing = find_field(org, full_name)
    if existing is None:
        return RecordError("INVALID_CROSS_REFERENCE_KEY",
                           f"In field: fullName - no CustomField named {full_name} found",
                           ["fullName"])
    result = save(org, user_id, [WriteOp("delete", "CustomField", str(existing["Id"]))],
                  tooling=True)[0]
    if not result.success:
        return result.errors[0]
    grants = [r["Id"] for r in org.tables["FieldPermissions"].live.values()
              if str(r["Field"]).lower() == str(existing["FullName"]).lower()]
    save(org, user_id, [WriteOp("delete", record_id=str(g)) for g in grants])
    sobject, _, name = str(existing["FullName"]).partition(".")
    for key, layout in state.layouts.items():
        if not key.startswith(sobject.lower() + "-"):
            continue
        for column in layout.iter("layoutColumns"):
            for item in list(column.findall("layoutItems")):
                if (text(item, "field") or "").lower() == name.lower():
                    column.remove(item)
    return None
