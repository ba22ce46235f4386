"""Metadata API XML for the Ily fields: for admins who deploy the fields themselves.

When the integration user lacks the metadata permissions, `ilyd fields package ORG --out
FILE.zip` writes a Metadata API deploy package an admin deploys with the Salesforce CLI
(`sf project deploy start --metadata-dir` on the unzipped folder, or `--metadata-zip`).
`package_files()` returns that package's files; the command only zips them.

Layout (the Metadata API "mdapi" format): `package.xml` listing each field as a
`CustomField` member, and `objects/<Object>.object` holding the `<fields>` of a standard
object. Elements follow the order of the CustomField type in the Metadata WSDL.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable

from ilyd.enrich.fields import CATALOGUE, FieldType, IlyField
from ilyd.salesforce.versions import DEFAULT_API_VERSION

__all__ = ["field_element", "object_xml", "package_files", "package_xml"]

METADATA_NS = "http://soap.sforce.com/2006/04/metadata"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _add(parent: ET.Element, tag: str, text: object) -> ET.Element:
    child = ET.SubElement(parent, tag)
    child.text = _bool(text) if isinstance(text, bool) else str(text)
    return child


def field_element(field: IlyField) -> ET.Element:
    """The `<fields>` element describing `field` inside an object's metadata file."""
    element = ET.Element("fields")
    _add(element, "fullName", field.api_name)
    _add(element, "description", field.description)
    _add(element, "externalId", False)
    _add(element, "inlineHelpText", field.help_text)
    _add(element, "label", field.label)
    if field.type in (FieldType.TEXT, FieldType.LONG_TEXT_AREA):
        _add(element, "length", field.length)
    if field.type in (FieldType.NUMBER, FieldType.CURRENCY):
        _add(element, "precision", field.precision)
    _add(element, "required", False)
    if field.type in (FieldType.NUMBER, FieldType.CURRENCY):
        _add(element, "scale", field.scale)
    _add(element, "type", field.type)
    if field.type is FieldType.PICKLIST:
        value_set = ET.SubElement(element, "valueSet")
        _add(value_set, "restricted", True)
        definition = ET.SubElement(value_set, "valueSetDefinition")
        _add(definition, "sorted", False)
        for value in field.picklist_values:
            entry = ET.SubElement(definition, "value")
            _add(entry, "fullName", value)
            _add(entry, "default", False)
            _add(entry, "label", value)
    if field.type is FieldType.LONG_TEXT_AREA:
        _add(element, "visibleLines", field.visible_lines)
    return element


def _document(root: ET.Element) -> bytes:
    ET.indent(root, space="    ")
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode("utf-8")


def object_xml(sobject: str, fields: Iterable[IlyField]) -> bytes:
    """`objects/<sobject>.object`: a CustomObject file carrying only the given fields."""
    root = ET.Element("CustomObject", {"xmlns": METADATA_NS})
    for field in fields:
        root.append(field_element(field))
    return _document(root)


def package_xml(members: Iterable[str], api_version: str = DEFAULT_API_VERSION) -> bytes:
    """`package.xml` listing `members` (`Account.Ily_Domain__c`, …) as CustomField."""
    root = ET.Element("Package", {"xmlns": METADATA_NS})
    types = ET.SubElement(root, "types")
    for member in members:
        _add(types, "members", member)
    _add(types, "name", "CustomField")
    _add(root, "version", api_version)
    return _document(root)


def package_files(
    objects: Iterable[str],
    fields: Iterable[IlyField] = CATALOGUE,
    api_version: str = DEFAULT_API_VERSION,
) -> dict[str, bytes]:
    """Every file of the deploy package for `fields` on `objects`, by path inside the zip."""
    chosen = tuple(fields)
    files: dict[str, bytes] = {}
    members: list[str] = []
    for sobject in objects:
        on_object = [f for f in chosen if sobject in f.objects]
        if not on_object:
            continue
        files[f"objects/{sobject}.object"] = object_xml(sobject, on_object)
        members.extend(f.full_name(sobject) for f in on_object)
    files["package.xml"] = package_xml(members, api_version)
    return files
