"""Page layouts and profile layout assignments of one org, as the Metadata API sees them.

A layout is kept as its `<Layout>` element (local names, children in the WSDL's sequence
order) under its full name `Object-Layout Name`. Each org starts with Salesforce's
default layouts, `Account-Account Layout` and `Lead-Lead Layout`, holding the standard
fields devorg serves, and every profile sees them.
https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_layouts.htm
"""

from __future__ import annotations

import copy
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from ilyd.devorg.metadata_soap import add, text, texts
from ilyd.devorg.org import OrgState

LAYOUT_OBJECTS = ("Account", "Lead")
# The element order of Layout, LayoutSection, LayoutColumn and LayoutItem in the WSDL.
_ORDER = {
    "Layout": ("fullName", "customButtons", "customConsoleComponents", "emailDefault",
               "excludeButtons", "feedLayout", "headers", "layoutSections", "miniLayout",
               "multilineLayoutFields", "platformActionList", "quickActionList",
               "relatedContent", "relatedLists", "relatedObjects",
               "runAssignmentRulesDefault", "showEmailCheckbox", "showHighlightsPanel",
               "showInteractionLogPanel", "showKnowledgeComponent",
               "showRunAssignmentRulesCheckbox", "showSolutionSection",
               "showSubmitAndAttachButton", "summaryLayout"),
    "layoutSections": ("customLabel", "detailHeading", "editHeading", "label",
                       "layoutColumns", "style"),
    "layoutColumns": ("layoutItems", "reserved"),
    "layoutItems": ("analyticsCloudComponent", "behavior", "canvas", "component",
                    "customLink", "emptySpace", "field", "height", "page",
                    "reportChartComponent", "scontrol", "showLabel", "showScrollbars",
                    "width"),
}
SECTION_STYLES = ("TwoColumnsTopToBottom", "TwoColumnsLeftToRight", "OneColumn",
                  "CustomLinks")
BEHAVIORS = ("Edit", "Required", "Readonly")
# Compound fields a layout names while the API serves their parts.
_COMPOUND = {"Account": ("BillingAddress",), "Lead": ("Address",)}
# Profile names in the Metadata API (fullName) for the standard profiles.
PROFILE_FULL_NAMES = {"System Administrator": "Admin", "Standard User": "Standard"}

_SEED: dict[str, tuple[tuple[str, str, tuple[tuple[tuple[str, str], ...], ...]], ...]] = {
    "Account-Account Layout": (
        ("Account Information", "TwoColumnsTopToBottom", (
            (("OwnerId", "Edit"), ("Name", "Required"), ("ParentId", "Edit"),
             ("Website", "Edit")),
            (("Phone", "Edit"), ("Fax", "Edit"), ("Type", "Edit"), ("Industry", "Edit"),
             ("AnnualRevenue", "Edit"), ("NumberOfEmployees", "Edit")))),
        ("Address Information", "TwoColumnsTopToBottom", (
            (("BillingAddress", "Edit"),), ())),
        ("Description Information", "OneColumn", ((("Description", "Edit"),),)),
        ("System Information", "TwoColumnsTopToBottom", (
            (("CreatedById", "Readonly"),), (("LastModifiedById", "Readonly"),))),
    ),
    "Lead-Lead Layout": (
        ("Lead Information", "TwoColumnsTopToBottom", (
            (("OwnerId", "Edit"), ("Name", "Required"), ("Company", "Required"),
             ("Title", "Edit"), ("LeadSource", "Edit"), ("Industry", "Edit"),
             ("AnnualRevenue", "Edit")),
            (("Phone", "Edit"), ("Email", "Edit"), ("Website", "Edit"),
             ("Status", "Required"), ("NumberOfEmployees", "Edit")))),
        ("Address Information", "OneColumn", ((("Address", "Edit"),),)),
        ("Description Information", "OneColumn", ((("Description", "Edit"),),)),
        ("System Information", "TwoColumnsTopToBottom", (
            (("CreatedById", "Readonly"),), (("LastModifiedById", "Readonly"),))),
    ),
}


@dataclass
class MetadataState:
    """One org's layouts (by lower-case full name) and each profile's layouts."""

    layouts: dict[str, ET.Element] = field(default_factory=dict)
    assignments: dict[str, list[str]] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)  # lower full name → 00h id
    jobs: dict[str, object] = field(default_factory=dict)  # deploy / retrieve results


_state_lock = threading.Lock()


def metadata_state(org: OrgState) -> MetadataState:
    """The org's metadata, seeded on first use with the default layouts."""
    with _state_lock:
        state = org.extra.get("metadata")
        if isinstance(state, MetadataState):
            return state
        state = MetadataState()
        for full_name, sections in _SEED.items():
            state.layouts[full_name.lower()] = _seed_layout(full_name, sections)
            state.ids[full_name.lower()] = org.ids.new("00h")
        for rec in org.tables["Profile"].live.values():
            name = profile_full_name(str(rec["Name"]))
            state.assignments[name] = list(_SEED)
        org.extra["metadata"] = state
        return state


def profile_full_name(name: str) -> str:
    """A profile's Metadata API name from its Name."""
    return PROFILE_FULL_NAMES.get(name, name)


def _seed_layout(full_name: str, sections: tuple) -> ET.Element:  # type: ignore[type-arg]
    layout = ET.Element("Layout")
    add(layout, "fullName", full_name)
    for label, style, columns in sections:
        section = ET.SubElement(layout, "layoutSections")
        add(section, "customLabel", False)
        add(section, "detailHeading", True)
        add(section, "editHeading", True)
        add(section, "label", label)
        for items in columns:
            column = ET.SubElement(section, "layoutColumns")
            for field_name, behavior in items:
                item = ET.SubElement(column, "layoutItems")
                add(item, "behavior", behavior)
                add(item, "field", field_name)
        add(section, "style", style)
    return layout


def canonical(element: ET.Element, kind: str = "Layout") -> ET.Element:
    """A copy in the WSDL's element order (stable for elements of the same name)."""
    order = _ORDER.get(kind)
    out = ET.Element(element.tag, dict(element.attrib))
    out.text = element.text
    children = list(element)
    if order is not None:
        rank = {name: i for i, name in enumerate(order)}
        children.sort(key=lambda c: rank.get(c.tag, len(rank)))
    for child in children:
        out.append(canonical(child, child.tag) if child.tag in _ORDER else copy.deepcopy(child))
    return out


def layout_object(full_name: str) -> str:
    """The object part of `Object-Layout Name`."""
    return full_name.partition("-")[0]


def layout_fields(layout: ET.Element) -> list[str]:
    """Every field the layout's sections hold, in order."""
    return [item.text or "" for section in layout.findall("layoutSections")
            for column in section.findall("layoutColumns")
            for item in column.findall("layoutItems/field")]


def validate_layout(org: OrgState, layout: ET.Element) -> tuple[str, str] | None:
    """(statusCode, message) of the first problem Salesforce would refuse, or None.

    The wording of field and section problems is devorg's: the Metadata API guide names
    the rules (a field once per layout, a known section style and item behavior) but not
    the messages."""
    full_name = text(layout, "fullName") or ""
    sobject, dash, name = full_name.partition("-")
    obj = org.object_def(sobject)
    if not dash or not name or obj is None or obj.name not in LAYOUT_OBJECTS:
        return ("INVALID_CROSS_REFERENCE_KEY",
                f"In field: fullName - no CustomObject named {sobject} found")
    seen: set[str] = set()
    for section in layout.findall("layoutSections"):
        style = text(section, "style")
        if style not in SECTION_STYLES:
            return ("FIELD_INTEGRITY_EXCEPTION",
                    f"Invalid section style: {style}. Valid values: "
                    + ", ".join(SECTION_STYLES))
        label = text(section, "label") or ""
        for column in section.findall("layoutColumns"):
            for item in column.findall("layoutItems"):
                behavior = text(item, "behavior")
                field_name = text(item, "field")
                if field_name is None:
                    continue
                known = obj.field_map.get(field_name.lower())
                if known is None and field_name not in _COMPOUND.get(obj.name, ()):
                    return ("FIELD_INTEGRITY_EXCEPTION",
                            f"Invalid field:{field_name} in section:{label}")
                if field_name.lower() in seen:
                    return ("FIELD_INTEGRITY_EXCEPTION",
                            f"Field {field_name} appears more than once in the layout")
                seen.add(field_name.lower())
                if behavior is not None and behavior not in BEHAVIORS:
                    return ("FIELD_INTEGRITY_EXCEPTION",
                            f"Invalid behavior: {behavior} for field:{field_name}")
    return None


def profile_element(state: MetadataState, full_name: str) -> ET.Element:
    """A Profile as readMetadata shows it: its name and its layout assignments."""
    profile = ET.Element("Profile")
    add(profile, "fullName", full_name)
    add(profile, "custom", full_name not in PROFILE_FULL_NAMES.values())
    for layout in state.assignments.get(full_name, ()):
        assignment = ET.SubElement(profile, "layoutAssignments")
        add(assignment, "layout", layout)
    add(profile, "userLicense", "Salesforce")
    return profile


def assignments_from(profile: ET.Element) -> list[str]:
    """The layouts a Profile element assigns."""
    return [t for a in profile.findall("layoutAssignments") for t in texts(a, "layout")]
