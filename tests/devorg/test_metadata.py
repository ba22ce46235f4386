"""devorg's Metadata API (SOAP) with simple-salesforce's mdapi (zeep and its bundled
metadata.wsdl), unchanged, over TLS: layouts, profiles, CustomField shared with Tooling,
the permission gate and Salesforce's faults."""

from __future__ import annotations

import pytest
import requests
import zeep.exceptions
from simple_salesforce import Salesforce

from ilyd.devorg import DevOrg
from tests.helpers.devorg_process import devorg_fixture
from tests.helpers.simple_sf import simple_salesforce

ILY_FIELD = {"fullName": "Account.Ily_Domain__c", "label": "Ily Domain", "type": "Text",
             "length": 255}


tls_dev = devorg_fixture(tls=True)


@pytest.fixture
def sf(tls_dev: DevOrg, monkeypatch: pytest.MonkeyPatch) -> Salesforce:
    return simple_salesforce(tls_dev, monkeypatch)


def _permissions(dev: DevOrg, **system: bool) -> None:
    response = requests.patch(f"{dev.admin}/orgs/org0/permissions",
                              json={"system": system}, timeout=10)
    assert response.status_code == 200, response.text


def _items(section: object) -> list[tuple[str, str]]:
    # an empty column reads back as None (`<layoutColumns/>`)
    columns = [c for c in section.layoutColumns if c is not None]  # type: ignore[attr-defined]
    return [(item.field, item.behavior) for column in columns for item in column.layoutItems]


def test_each_org_starts_with_salesforces_default_account_and_lead_layouts(sf: Salesforce
                                                                           ) -> None:
    account = sf.mdapi.Layout.read(["Account-Account Layout"])
    assert account.fullName == "Account-Account Layout"
    labels = [s.label for s in account.layoutSections]
    assert labels[0] == "Account Information"
    assert ("Name", "Required") in _items(account.layoutSections[0])
    assert account.layoutSections[0].style == "TwoColumnsTopToBottom"
    lead = sf.mdapi.Layout.read(["Lead-Lead Layout"])
    assert ("Company", "Required") in _items(lead.layoutSections[0])
    names = sorted(p.fullName for p in sf.mdapi.list_metadata(
        [sf.mdapi.ListMetadataQuery(type="Layout")]))
    assert names == ["Account-Account Layout", "Lead-Lead Layout"]


def test_an_updated_layout_reads_back_with_its_new_section(sf: Salesforce) -> None:
    sf.mdapi.CustomField.create([sf.mdapi.CustomField(**ILY_FIELD)])
    md = sf.mdapi
    layout = md.Layout.read(["Account-Account Layout"])
    layout.layoutSections.append(md.LayoutSection(
        label="Ily Enrichment", customLabel=True, detailHeading=True, editHeading=True,
        style="TwoColumnsTopToBottom",
        layoutColumns=[md.LayoutColumn(layoutItems=[
            md.LayoutItem(field="Ily_Domain__c", behavior="Readonly")]),
            md.LayoutColumn()]))
    md.Layout.update([layout])
    again = md.Layout.read(["Account-Account Layout"])
    section = again.layoutSections[-1]
    assert (section.label, section.customLabel) == ("Ily Enrichment", True)
    assert _items(section) == [("Ily_Domain__c", "Readonly")]
    assert [s.label for s in again.layoutSections[:-1]] == [
        s.label for s in layout.layoutSections[:-1]]


def test_a_layout_naming_an_unknown_field_or_a_missing_layout_is_refused(sf: Salesforce
                                                                         ) -> None:
    md = sf.mdapi
    layout = md.Layout.read(["Lead-Lead Layout"])
    layout.layoutSections[0].layoutColumns[0].layoutItems.append(
        md.LayoutItem(field="Nope__c", behavior="Edit"))
    with pytest.raises(Exception, match="FIELD_INTEGRITY_EXCEPTION, Invalid field:Nope__c"):
        md.Layout.update([layout])
    missing = md.Layout(fullName="Lead-Other Layout", layoutSections=[])
    with pytest.raises(Exception, match="INVALID_CROSS_REFERENCE_KEY, In field: fullName - "
                                        "no Layout named Lead-Other Layout found"):
        md.Layout.update([missing])
    md.Layout.upsert([missing])
    assert md.Layout.read(["Lead-Other Layout"]).fullName == "Lead-Other Layout"
    md.Layout.delete(["Lead-Other Layout"])
    assert md.Layout.read(["Lead-Other Layout"]).fullName is None


def test_profiles_show_which_layout_each_profile_sees(sf: Salesforce) -> None:
    md = sf.mdapi
    md.Layout.create([md.Layout(fullName="Account-Sales Layout", layoutSections=[
        md.LayoutSection(label="Main", style="OneColumn", layoutColumns=[
            md.LayoutColumn(layoutItems=[md.LayoutItem(field="Name", behavior="Required")])])])])
    standard = md.Profile.read(["Standard"])
    assert sorted(a.layout for a in standard.layoutAssignments) == [
        "Account-Account Layout", "Lead-Lead Layout"]
    standard.layoutAssignments = [md.ProfileLayoutAssignment(layout="Account-Sales Layout"),
                                  md.ProfileLayoutAssignment(layout="Lead-Lead Layout")]
    md.Profile.update([standard])
    assert sorted(a.layout for a in md.Profile.read(["Standard"]).layoutAssignments) == [
        "Account-Sales Layout", "Lead-Lead Layout"]
    assert sorted(p.fullName for p in md.list_metadata(
        [md.ListMetadataQuery(type="Profile")])) == ["Admin", "Standard"]
    with pytest.raises(Exception, match="assigned to a profile"):
        md.Layout.delete(["Account-Sales Layout"])


def test_a_custom_field_is_one_field_for_the_metadata_and_tooling_apis(sf: Salesforce
                                                                       ) -> None:
    sf.mdapi.CustomField.create([sf.mdapi.CustomField(**ILY_FIELD)])
    rows = sf.toolingexecute("query/?q=SELECT+FullName+FROM+CustomField")["records"]
    assert [r["FullName"] for r in rows] == ["Account.Ily_Domain__c"]
    sf.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": "Lead.Ily_Source__c",
        "Metadata": {"label": "Ily Source", "type": "Text", "length": 80}})
    read = sf.mdapi.CustomField.read(["Lead.Ily_Source__c"])
    assert (read.label, read.type, read.length) == ("Ily Source", "Text", 80)
    listed = sorted(p.fullName for p in sf.mdapi.list_metadata(
        [sf.mdapi.ListMetadataQuery(type="CustomField")]))
    assert listed == ["Account.Ily_Domain__c", "Lead.Ily_Source__c"]
    with pytest.raises(Exception, match="DUPLICATE_DEVELOPER_NAME"):
        sf.mdapi.CustomField.create([sf.mdapi.CustomField(**ILY_FIELD)])


def test_metadata_calls_need_modify_metadata_and_writes_customize_application(
        sf: Salesforce, tls_dev: DevOrg) -> None:
    layout = sf.mdapi.Layout.read(["Account-Account Layout"])
    _permissions(tls_dev, PermissionsCustomizeApplication=False)
    assert sf.mdapi.Layout.read(["Account-Account Layout"]).fullName == layout.fullName
    with pytest.raises(zeep.exceptions.Fault, match=r"^INSUFFICIENT_ACCESS: "):
        sf.mdapi.Layout.update([layout])
    _permissions(tls_dev, PermissionsModifyAllData=False, PermissionsModifyMetadata=False)
    with pytest.raises(zeep.exceptions.Fault) as raised:
        sf.mdapi.Layout.read(["Account-Account Layout"])
    assert raised.value.message == (
        "INSUFFICIENT_ACCESS: use of the Metadata API requires a user with the ModifyAllData "
        "or ModifyMetadata permissions")
    assert raised.value.code == "sf:INSUFFICIENT_ACCESS"


def test_a_bad_session_is_a_soap_fault_with_salesforces_code(tls_dev: DevOrg) -> None:
    envelope = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns="http://soap.sforce.com/2006/04/metadata"><soapenv:Header><SessionHeader>'
        '<sessionId>00Dnot!valid</sessionId></SessionHeader></soapenv:Header><soapenv:Body>'
        '<describeMetadata><asOfVersion>59.0</asOfVersion></describeMetadata>'
        '</soapenv:Body></soapenv:Envelope>')
    response = requests.post(f"{tls_dev.my_domain_url}/services/Soap/m/59.0",
                             data=envelope.encode(), verify=str(tls_dev.ca_file),
                             headers={"Content-Type": "text/xml", "SOAPAction": '""'},
                             timeout=10)
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/xml")
    assert "<faultcode>sf:INVALID_SESSION_ID</faultcode>" in response.text
    assert ("<faultstring>INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: "
            "Illegal Session</faultstring>") in response.text
