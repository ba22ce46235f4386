"""The Ily field catalogue obeys Salesforce's naming and size rules."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from ilyd.enrich import fields as catalogue
from ilyd.enrich.field_package import METADATA_NS, package_files
from ilyd.enrich.fields import CATALOGUE, FieldType, IlyField, by_api_name, fields_for
from ilyd.enrich.provider import MatchStatus
from ilyd.salesforce.versions import DEFAULT_API_VERSION

NS = {"m": METADATA_NS}

REQUIRED_NAMES = [
    "Domain", "Match_Status", "Last_Enriched", "Source", "Company_Name", "Industry",
    "Employee_Count", "Employee_Range", "Country", "Cloud_Hosting_Provider", "CDN_Provider",
    "DNS_Provider", "Email_Provider", "Email_Security_Provider", "Email_Sending_Services",
    "SaaS_Products", "Technologies", "Monthly_Spend_Estimate", "Traffic_Rank",
    "Technology_Evidence",
]


def test_every_field_the_issue_asks_for_is_in_the_catalogue() -> None:
    names = {f.api_name for f in CATALOGUE}
    assert {f"Ily_{n}__c" for n in REQUIRED_NAMES} <= names
    assert len(names) == len(CATALOGUE), "API names must be unique"
    assert len({f.label.lower() for f in CATALOGUE}) == len(CATALOGUE), "labels must be unique"


@pytest.mark.parametrize("field", CATALOGUE, ids=lambda f: f.api_name)
def test_api_name_follows_salesforce_rules(field: IlyField) -> None:
    name = field.api_name
    assert len(name) <= 40
    assert name.startswith("Ily_")
    assert name.endswith("__c")
    stem = field.developer_name
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", stem)
    assert "__" not in stem
    assert not stem.endswith("_")


@pytest.mark.parametrize("field", CATALOGUE, ids=lambda f: f.api_name)
def test_label_description_and_help_fit_their_limits(field: IlyField) -> None:
    assert field.label.startswith("Ily ")
    assert len(field.label) <= 40
    assert 0 < len(field.description) <= 1000
    assert 0 < len(field.help_text) <= 510


@pytest.mark.parametrize("field", CATALOGUE, ids=lambda f: f.api_name)
def test_type_specific_attributes_are_within_salesforce_limits(field: IlyField) -> None:
    meta = field.metadata()
    if field.type is FieldType.TEXT:
        assert field.length is not None
        assert 1 <= field.length <= 255
        assert meta["length"] == field.length
    if field.type is FieldType.LONG_TEXT_AREA:
        assert field.length is not None
        assert 256 <= field.length <= 131072
        assert field.visible_lines is not None
        assert 2 <= field.visible_lines <= 50
        assert (meta["length"], meta["visibleLines"]) == (field.length, field.visible_lines)
    if field.type in (FieldType.NUMBER, FieldType.CURRENCY):
        assert field.precision is not None
        assert field.scale is not None
        assert 1 <= field.precision <= 18
        assert 0 <= field.scale <= field.precision
        assert (meta["precision"], meta["scale"]) == (field.precision, field.scale)
    else:
        assert "precision" not in meta
        assert "scale" not in meta
    if field.type is FieldType.PICKLIST:
        assert field.picklist_values
        assert all(0 < len(v) <= 255 for v in field.picklist_values)
        values = meta["valueSet"]["valueSetDefinition"]["value"]  # type: ignore[index]
        assert [v["fullName"] for v in values] == list(field.picklist_values)
    else:
        assert "valueSet" not in meta
        assert not field.picklist_values
    if field.type in (FieldType.DATETIME, FieldType.URL, FieldType.PICKLIST):
        assert "length" not in meta
    assert set(field.objects) <= {"Account", "Lead"}


def test_match_status_picklist_is_the_match_status_enum() -> None:
    assert catalogue.MATCH_STATUS.picklist_values == (
        "Matched", "Not Found", "Free Email", "Invalid Domain", "Error"
    )
    assert catalogue.MATCH_STATUS.picklist_values == tuple(m.value for m in MatchStatus)


def test_tooling_body_has_the_shape_tooling_expects() -> None:
    body = catalogue.DOMAIN.tooling_body("Account")
    assert body == {
        "FullName": "Account.Ily_Domain__c",
        "Metadata": {
            "label": "Ily Domain",
            "type": "Text",
            "length": 255,
            "description": catalogue.DOMAIN.description,
            "inlineHelpText": catalogue.DOMAIN.help_text,
            "required": False,
            "externalId": False,
        },
    }
    spend = catalogue.MONTHLY_SPEND_ESTIMATE.tooling_body("Lead")
    assert spend["FullName"] == "Lead.Ily_Monthly_Spend_Estimate__c"
    assert spend["Metadata"]["type"] == "Currency"  # type: ignore[index]
    with pytest.raises(ValueError, match="not defined on Contact"):
        catalogue.DOMAIN.tooling_body("Contact")


def test_lookups_by_name_and_object() -> None:
    assert by_api_name()["Ily_Traffic_Rank__c"] is catalogue.TRAFFIC_RANK
    assert fields_for("Account") == CATALOGUE
    assert fields_for("Contact") == ()
    assert catalogue.TECHNOLOGY_EVIDENCE.max_chars == 32768
    assert catalogue.LAST_ENRICHED.max_chars is None


def test_metadata_package_lists_every_field_on_every_object() -> None:
    files = package_files(["Account", "Lead"])
    assert set(files) == {"package.xml", "objects/Account.object", "objects/Lead.object"}
    package = ET.fromstring(files["package.xml"])  # noqa: S314 (our own output)
    members = [m.text for m in package.findall("m:types/m:members", NS)]
    assert members == [f"{o}.{f.api_name}" for o in ("Account", "Lead") for f in CATALOGUE]
    assert package.findtext("m:types/m:name", namespaces=NS) == "CustomField"
    assert package.findtext("m:version", namespaces=NS) == DEFAULT_API_VERSION
    account = ET.fromstring(files["objects/Account.object"])  # noqa: S314 (our own output)
    by_name = {e.findtext("m:fullName", namespaces=NS): e for e in account.findall("m:fields", NS)}
    assert set(by_name) == {f.api_name for f in CATALOGUE}
    status = by_name["Ily_Match_Status__c"]
    assert status.findtext("m:valueSet/m:restricted", namespaces=NS) == "true"
    assert [v.text for v in status.findall("m:valueSet/m:valueSetDefinition/m:value/m:fullName",
                                           NS)] == list(catalogue.MATCH_STATUS.picklist_values)
    tech = by_name["Ily_Technologies__c"]
    assert tech.findtext("m:type", namespaces=NS) == "LongTextArea"
    assert tech.findtext("m:length", namespaces=NS) == "32768"
    assert tech.findtext("m:visibleLines", namespaces=NS) == "5"
    assert files["package.xml"].startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_metadata_elements_follow_the_wsdl_order() -> None:
    files = package_files(["Lead"], fields=[catalogue.EMPLOYEE_COUNT])
    root = ET.fromstring(files["objects/Lead.object"])  # noqa: S314 (our own output)
    element = root.find("m:fields", NS)
    assert element is not None
    tags = [child.tag.split("}")[1] for child in element]
    assert tags == ["fullName", "description", "externalId", "inlineHelpText", "label",
                    "precision", "required", "scale", "type"]
