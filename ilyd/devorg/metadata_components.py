"""Metadata components as the calls read and write them: `Call` (who is calling, on
which org), one component written (create/update) or read (readMetadata's record), and
the FileProperties of a type. A leaf shared by the CRUD calls (metadata.py) and by
deploy and retrieve (metadata_deploy.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ilyd.devorg import metadata_fields as fields
from ilyd.devorg.dml_ops import RecordError
from ilyd.devorg.metadata_layouts import (
    MetadataState,
    assignments_from,
    canonical,
    profile_element,
    profile_full_name,
    validate_layout,
)
from ilyd.devorg.metadata_soap import XSI_TYPE, add, text
from ilyd.devorg.org import OrgState
from ilyd.devorg.values import now, to_json

__all__ = ["Call", "file_properties", "read_component", "write_component"]


@dataclass(frozen=True)
class Call:
    """One authenticated call: the org, the user, the API version and its metadata."""

    org: OrgState
    user_id: str
    version: str
    state: MetadataState


def write_component(call: Call, element: ET.Element, kind: str, *, create: bool,
                    update: bool) -> tuple[bool, RecordError | None]:
    """Create and/or update one component: (created, error). Shared with deploy."""
    full_name = text(element, "fullName") or ""
    if kind == "CustomField":
        return fields.write_field(call.org, call.user_id, element, create=create,
                                  update=update)
    if kind == "Profile":
        if full_name not in call.state.assignments:
            return False, RecordError("INVALID_CROSS_REFERENCE_KEY",
                                      f"In field: fullName - no Profile named {full_name} "
                                      "found", ["fullName"])
        wanted = assignments_from(element)
        missing = [n for n in wanted if n.lower() not in call.state.layouts]
        if missing:
            return False, RecordError("INVALID_CROSS_REFERENCE_KEY",
                                      f"In field: layout - no Layout named {missing[0]} found",
                                      ["layout"])
        if wanted:
            call.state.assignments[full_name] = wanted
        return False, None
    key = full_name.lower()
    exists = key in call.state.layouts
    if not exists and not create:
        return False, RecordError("INVALID_CROSS_REFERENCE_KEY",
                                  f"In field: fullName - no Layout named {full_name} found",
                                  ["fullName"])
    if exists and not update:
        return False, RecordError("DUPLICATE_DEVELOPER_NAME",
                                  f"There is already a Layout named {full_name}", ["fullName"])
    layout = canonical(element)
    layout.tag = "Layout"
    layout.attrib.clear()
    problem = validate_layout(call.org, layout)
    if problem is not None:
        return False, RecordError(*problem)
    call.state.layouts[key] = layout
    call.state.ids.setdefault(key, call.org.ids.new("00h"))
    return not exists, None


def read_component(call: Call, kind: str, full_name: str) -> ET.Element | None:
    """One component as readMetadata returns it (`records`, with xsi:type)."""
    if kind == "Layout":
        stored = call.state.layouts.get(full_name.lower())
        element = canonical(stored) if stored is not None else None
    elif kind == "Profile":
        element = (profile_element(call.state, full_name)
                   if full_name in call.state.assignments else None)
    else:
        rec = fields.find_field(call.org, full_name)
        element = fields.field_element(rec) if rec is not None else None
    if element is None:
        return None
    element.tag = "records"
    element.set(XSI_TYPE, kind)
    return element


def file_properties(call: Call, kind: str, tag: str = "result") -> list[ET.Element]:
    """FileProperties of every component of a type (listMetadata, retrieve)."""
    org = call.org
    stamp = to_json(now())
    admin = org.identity.user_id
    rows: list[tuple[str, str, str]] = []  # (fullName, fileName, id)
    if kind == "Layout":
        rows = [(text(layout, "fullName") or "", f"layouts/{text(layout, 'fullName')}.layout",
                 call.state.ids.get(key, "")) for key, layout in call.state.layouts.items()]
    elif kind == "Profile":
        profiles = {profile_full_name(str(r["Name"])): str(r["Id"])
                    for r in org.tables["Profile"].live.values()}
        rows = [(name, f"profiles/{name}.profile", profiles.get(name, ""))
                for name in call.state.assignments]
    elif kind == "CustomField":
        rows = [(str(r["FullName"]),
                 f"objects/{str(r['FullName']).partition('.')[0]}.object", str(r["Id"]))
                for r in fields.all_fields(org)]
    out = []
    for full_name, file_name, component_id in rows:
        element = ET.Element(tag)
        for name, value in (("createdById", admin), ("createdByName", "Ilyd Integration"),
                            ("createdDate", stamp), ("fileName", file_name),
                            ("fullName", full_name), ("id", component_id),
                            ("lastModifiedById", admin),
                            ("lastModifiedByName", "Ilyd Integration"),
                            ("lastModifiedDate", stamp), ("manageableState", "unmanaged"),
                            ("type", kind)):
            add(element, name, value)
        out.append(element)
    return out
