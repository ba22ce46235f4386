"""devorg's deploy / checkDeployStatus and retrieve / checkRetrieveStatus with
simple-salesforce, unchanged: the zip of `ilyd fields package`, rollback, retrieval."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from simple_salesforce import Salesforce

from ilyd.cli import main
from ilyd.devorg import DevOrg
from ilyd.enrich.fields import CATALOGUE
from tests.helpers.devorg_process import devorg_fixture
from tests.helpers.simple_sf import simple_salesforce

LAYOUT_WITH = """<?xml version="1.0" encoding="UTF-8"?>
<Layout xmlns="http://soap.sforce.com/2006/04/metadata">
    <layoutSections>
        <customLabel>true</customLabel>
        <label>Extra</label>
        <layoutColumns><layoutItems><behavior>Readonly</behavior><field>{field}</field>
        </layoutItems></layoutColumns>
        <style>OneColumn</style>
    </layoutSections>
</Layout>
"""
OBJECT = """<?xml version="1.0" encoding="UTF-8"?>
<CustomObject xmlns="http://soap.sforce.com/2006/04/metadata">
    <fields><fullName>Ily_Extra__c</fullName><label>Ily Extra</label><length>40</length>
    <type>Text</type></fields>
</CustomObject>
"""
PACKAGE = """<?xml version="1.0" encoding="UTF-8"?>
<Package xmlns="http://soap.sforce.com/2006/04/metadata">
    <types><members>Account.Ily_Extra__c</members><name>CustomField</name></types>
    <types><members>Account-Extra Layout</members><name>Layout</name></types>
    <version>59.0</version>
</Package>
"""


tls_dev = devorg_fixture(tls=True)


@pytest.fixture
def sf(tls_dev: DevOrg, monkeypatch: pytest.MonkeyPatch) -> Salesforce:
    return simple_salesforce(tls_dev, monkeypatch)


def _custom_fields(sf: Salesforce) -> list[str]:
    # a Tooling query returns FullName for one row at most
    rows = sf.toolingexecute(
        "query/?q=SELECT+DeveloperName,TableEnumOrId+FROM+CustomField")["records"]
    return sorted(f"{r['TableEnumOrId']}.{r['DeveloperName']}__c" for r in rows)


def _zip(files: dict[str, str]) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer


def test_the_ilyd_fields_package_zip_deploys_every_ily_field(sf: Salesforce,
                                                             tmp_path: Path) -> None:
    out = tmp_path / "ily.zip"
    assert main(["fields", "package", "org0", "--out", str(out)]) == 0
    deployed = sf.deploy(str(out), sandbox=False)
    assert deployed["state"] == "Queued"
    status = sf.checkDeployStatus(deployed["asyncId"])
    expected = sorted(f"{o}.{f.api_name}" for f in CATALOGUE for o in f.objects)
    assert status["state"] == "Succeeded", status
    assert status["deployment_detail"]["deployed_count"] == str(len(expected))
    assert _custom_fields(sf) == expected
    again = sf.checkDeployStatus(sf.deploy(str(out), sandbox=False)["asyncId"])
    assert again["state"] == "Succeeded"
    assert _custom_fields(sf) == expected


def test_a_deploy_with_a_failing_component_rolls_back_every_component(sf: Salesforce
                                                                      ) -> None:
    bad = _zip({"pkg/package.xml": PACKAGE, "pkg/objects/Account.object": OBJECT,
                "pkg/layouts/Account-Extra Layout.layout":
                    LAYOUT_WITH.format(field="Ily_Missing__c")})
    status = sf.checkDeployStatus(sf.deploy(bad, sandbox=False)["asyncId"])
    assert status["state"] == "Failed"
    assert status["deployment_detail"]["errors"] == [{
        "type": "Layout", "file": "layouts/Account-Extra Layout.layout", "status": "Error",
        "message": "Invalid field:Ily_Missing__c in section:Extra"}]
    assert _custom_fields(sf) == []
    assert sf.mdapi.Layout.read(["Account-Extra Layout"]).fullName is None
    good = _zip({"pkg/package.xml": PACKAGE, "pkg/objects/Account.object": OBJECT,
                 "pkg/layouts/Account-Extra Layout.layout":
                     LAYOUT_WITH.format(field="Ily_Extra__c")})
    status = sf.checkDeployStatus(sf.deploy(good, sandbox=False)["asyncId"])
    assert status["state"] == "Succeeded"
    assert _custom_fields(sf) == ["Account.Ily_Extra__c"]
    layout = sf.mdapi.Layout.read(["Account-Extra Layout"])
    assert layout.layoutSections[0].layoutColumns[0].layoutItems[0].field == "Ily_Extra__c"


def test_a_retrieve_returns_layouts_and_fields_in_the_file_format(sf: Salesforce) -> None:
    sf.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": "Lead.Ily_Source__c",
        "Metadata": {"label": "Ily Source", "type": "Text", "length": 80}})
    async_id, state = sf.mdapi.retrieve("unused", unpackaged={
        "Layout": ["Lead-Lead Layout"], "CustomField": ["*"]})
    assert state == "Queued"
    status, error, _, raw = sf.mdapi.retrieve_zip(async_id)
    assert (status, error) == ("Succeeded", None)
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        names = sorted(archive.namelist())
        layout = archive.read("unpackaged/layouts/Lead-Lead Layout.layout").decode()
        lead = archive.read("unpackaged/objects/Lead.object").decode()
    assert names == ["unpackaged/layouts/Lead-Lead Layout.layout",
                     "unpackaged/objects/Lead.object", "unpackaged/package.xml"]
    assert "<label>Lead Information</label>" in layout
    assert "<fullName>Ily_Source__c</fullName>" in lead
