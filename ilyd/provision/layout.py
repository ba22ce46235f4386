"""Page layouts: the installation guide's "add the Ily fields to the page layouts" step.

Every Account and Lead layout a profile uses gets a section "Ily Enrichment" (two
columns, read-only items: people edit a record's inputs, ilyd writes the outputs) holding
the Ily fields the integration user has been granted. A layout that already shows Ily
fields keeps its arrangement: the missing ones are added at the end of the section
holding "Ily Enrichment" (or, without it, the section that already shows Ily fields),
each to its shortest column. A second run finds nothing missing and changes nothing.
Through the Metadata API: listMetadata/readMetadata of Profile for the assignments,
readMetadata/updateMetadata of Layout.
https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_layouts.htm
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import structlog

from ilyd import metrics
from ilyd.enrich.fields import CATALOGUE
from ilyd.errors import ProvisioningError, SalesforceError
from ilyd.provision.checks import CheckResult, Status
from ilyd.provision.facts import OrgFacts
from ilyd.salesforce.metadata import MetadataClient

__all__ = ["LAYOUT_OBJECTS", "SECTION_LABEL", "LayoutChange", "LayoutReport",
           "layout_check", "package_layouts", "plan_change", "run_layouts", "with_fields"]

log = structlog.get_logger(__name__)

SECTION_LABEL = "Ily Enrichment"
LAYOUT_OBJECTS = ("Account", "Lead")
_BEHAVIOR = "Readonly"
_STYLE = "TwoColumnsTopToBottom"


@dataclass(frozen=True)
class LayoutChange:
    """The Ily fields one layout lacks, and the section that receives them."""

    layout: str
    add: tuple[str, ...]
    section: str
    new_section: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"layout": self.layout, "add": list(self.add), "section": self.section,
                "new_section": self.new_section}


@dataclass(frozen=True)
class LayoutReport:
    """A layout run: what changes (or would, with --plan), what already shows every field,
    and the layouts Salesforce refused."""

    org: str
    applied: bool
    changes: tuple[LayoutChange, ...]
    unchanged: tuple[str, ...]
    failed: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON form (`--json`, the control protocol)."""
        return {"org": self.org, "applied": self.applied,
                "changes": [c.as_dict() for c in self.changes],
                "unchanged": list(self.unchanged),
                "failed": [{"layout": name, "error": error} for name, error in self.failed]}


def granted_fields(facts: OrgFacts, objects: Sequence[str]) -> dict[str, list[str]]:
    """Per object, the Ily fields the integration user can read (in catalogue order)."""
    out: dict[str, list[str]] = {o: [] for o in objects}
    for full, fact in facts.fields.items():
        sobject, _, name = full.partition(".")
        if sobject in out and fact.readable:
            out[sobject].append(name)
    return out


def _sections(layout: ET.Element) -> list[ET.Element]:
    return layout.findall("layoutSections")


def _section_fields(section: ET.Element) -> list[str]:
    return [f.text or "" for f in section.findall("layoutColumns/layoutItems/field")]


def plan_change(layout: ET.Element, fields: Sequence[str]) -> LayoutChange | None:
    """What `layout` lacks of `fields`, or None when it shows them all."""
    present = {f.lower() for s in _sections(layout) for f in _section_fields(s)}
    missing = tuple(f for f in fields if f.lower() not in present)
    if not missing:
        return None
    name = layout.findtext("fullName") or ""
    target = _target_section(layout, fields)
    if target is None:
        return LayoutChange(name, missing, SECTION_LABEL, True)
    return LayoutChange(name, missing, target.findtext("label") or "", False)


def _target_section(layout: ET.Element, fields: Sequence[str]) -> ET.Element | None:
    sections = _sections(layout)
    labelled = next((s for s in sections if s.findtext("label") == SECTION_LABEL), None)
    if labelled is not None:
        return labelled
    ily = {f.lower() for f in fields}
    return next((s for s in sections if any(f.lower() in ily for f in _section_fields(s))),
                None)


def _item(field: str) -> ET.Element:
    item = ET.Element("layoutItems")
    ET.SubElement(item, "behavior").text = _BEHAVIOR
    ET.SubElement(item, "field").text = field
    return item


def with_fields(layout: ET.Element, change: LayoutChange) -> ET.Element:
    """A copy of `layout` with the change made (everything else as it was)."""
    out = copy.deepcopy(layout)
    out.attrib.clear()
    if change.new_section:
        section = ET.Element("layoutSections")
        for tag, value in (("customLabel", "true"), ("detailHeading", "true"),
                           ("editHeading", "true"), ("label", SECTION_LABEL)):
            ET.SubElement(section, tag).text = value
        half = (len(change.add) + 1) // 2
        for part in (change.add[:half], change.add[half:]):
            column = ET.SubElement(section, "layoutColumns")
            column.extend(_item(f) for f in part)
        ET.SubElement(section, "style").text = _STYLE
        sections = _sections(out)
        # Sections stay together, in the WSDL's place for them; the new one comes last.
        index = list(out).index(sections[-1]) + 1 if sections else len(out)
        out.insert(index, section)
        return out
    target = next(s for s in _sections(out) if s.findtext("label") == change.section)
    columns = target.findall("layoutColumns")
    if not columns:
        columns = [ET.Element("layoutColumns")]
        style = target.find("style")
        target.insert(list(target).index(style) if style is not None else len(target),
                      columns[0])
    for field in change.add:
        shortest = min(columns, key=lambda c: len(c.findall("layoutItems")))
        items = shortest.findall("layoutItems")
        at = list(shortest).index(items[-1]) + 1 if items else 0
        shortest.insert(at, _item(field))
    return out


def assigned_layouts(md: MetadataClient, objects: Sequence[str]) -> list[str]:
    """The layouts of `objects` that at least one profile uses."""
    profiles = md.read("Profile", md.list_names("Profile"))
    prefixes = tuple(f"{o}-" for o in objects)
    names = {a.findtext("layout") or "" for p in profiles.values()
             for a in p.findall("layoutAssignments")}
    return sorted(n for n in names if n.startswith(prefixes))


def _selection(objects: Sequence[str], only_objects: Sequence[str],
               only_layouts: Sequence[str]) -> tuple[list[str], list[str]]:
    chosen = [o for o in objects if o in LAYOUT_OBJECTS]
    if only_objects:
        unknown = [o for o in only_objects if o not in chosen]
        if unknown:
            raise ProvisioningError(
                f"--object {unknown[0]}: not one of the org's objects with Ily fields "
                f"({', '.join(chosen)})")
        chosen = [o for o in chosen if o in only_objects]
    for name in only_layouts:
        if name.partition("-")[0] not in chosen:
            raise ProvisioningError(
                f"--layout {name!r}: a layout name is 'Object-Layout Name' for one of "
                f"{', '.join(chosen)} (e.g. 'Account-Account Layout')")
    return chosen, list(only_layouts)


def run_layouts(md: MetadataClient, facts: OrgFacts, org: str, objects: Sequence[str], *,
                dry_run: bool = False, only_objects: Sequence[str] = (),
                only_layouts: Sequence[str] = ()) -> LayoutReport:
    """Give each chosen layout the granted Ily fields it lacks (`dry_run`: only plan)."""
    chosen, named = _selection(objects, only_objects, only_layouts)
    targets = named or assigned_layouts(md, chosen)
    layouts = md.read("Layout", targets)
    missing = [n for n in targets if n not in layouts]
    if missing:
        raise ProvisioningError(f"no layout named {missing[0]!r} in org {org}; list them "
                                f"with ilyd ctl layout {org} --plan")
    wanted = granted_fields(facts, chosen)
    changes: list[LayoutChange] = []
    unchanged: list[str] = []
    for name in targets:
        change = plan_change(layouts[name], wanted.get(name.partition("-")[0], []))
        if change is None:
            unchanged.append(name)
        else:
            changes.append(change)
    failed: list[tuple[str, str]] = []
    if not dry_run and changes:
        updated = [with_fields(layouts[c.layout], c) for c in changes]
        for result in md.update("Layout", updated):
            if result.success:
                metrics.PROVISION_ACTIONS.labels(action="layout_fields").inc()
            else:
                failed.append((result.full_name, result.describe()))
        log.info("layouts_updated", org=org, changed=len(changes) - len(failed),
                 failed=len(failed), unchanged=len(unchanged))
    return LayoutReport(org, not dry_run, tuple(changes), tuple(unchanged), tuple(failed))


def layout_check(md: MetadataClient, facts: OrgFacts, org: str,
                 objects: Sequence[str]) -> CheckResult:
    """`ilyd check`'s line: which layouts lack which granted Ily fields."""
    try:
        report = run_layouts(md, facts, org, objects, dry_run=True)
    except (SalesforceError, ProvisioningError) as exc:
        code = getattr(exc, "error_code", None)
        why = ("the Metadata API needs Modify Metadata Through Metadata API Functions or "
               "Modify All Data" if code == "INSUFFICIENT_ACCESS" else str(exc))
        return CheckResult("page layouts", Status.WARN, f"cannot read page layouts: {why}",
                           "ilyd cannot tell whether users see the Ily fields on records",
                           "grant the integration user Modify Metadata Through Metadata API "
                           f"Functions and Customize Application, then ilyd ctl layout {org};"
                           " or add the Ily fields in Setup > Object Manager > Page Layouts")
    if not report.changes:
        shown = len(report.unchanged)
        return CheckResult("page layouts", Status.PASS,
                           f"{shown} page layout(s) show every granted Ily field")
    lacking = ", ".join(f"{c.layout} ({len(c.add)} missing)" for c in report.changes)
    return CheckResult("page layouts", Status.WARN,
                       f"{len(report.changes)} layout(s) lack Ily fields: {lacking}",
                       "your users do not see the Ily fields on records",
                       f"ilyd ctl layout {org} (or ilyd layout {org} --config …)")


def package_layouts(md: MetadataClient, objects: Sequence[str]) -> dict[str, bytes]:
    """`layouts/<name>.layout` files for a deploy package: each layout a profile uses, as
    it is now plus the Ily fields of the package it lacks (a deploy replaces a layout
    whole, so the file carries everything the layout holds)."""
    chosen = [o for o in objects if o in LAYOUT_OBJECTS]
    names = assigned_layouts(md, chosen)
    files: dict[str, bytes] = {}
    for name, layout in md.read("Layout", names).items():
        sobject = name.partition("-")[0]
        wanted = [f.api_name for f in CATALOGUE if sobject in f.objects]
        change = plan_change(layout, wanted)
        updated = with_fields(layout, change) if change is not None else layout
        root = ET.Element("Layout", {"xmlns": "http://soap.sforce.com/2006/04/metadata"})
        root.extend(copy.deepcopy(c) for c in updated if c.tag != "fullName")
        ET.indent(root, space="    ")
        # File names percent-encode what a path cannot hold, as a retrieve writes them.
        files[f"layouts/{quote(name, safe=' ')}.layout"] = (
            b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")
            + b"\n")
    return files
