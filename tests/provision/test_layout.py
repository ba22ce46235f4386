"""Page layouts end to end against devorg (TLS, so simple-salesforce's mdapi reads the
layouts back): `ilyd layout`, the Provisioner's layouts(), auto_layout, `ilyd check`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce

from ilyd.actors.context import OrgSecrets
from ilyd.cli import main
from ilyd.config import OrgConfig, load_config
from ilyd.devorg import DevOrg
from ilyd.enrich.fields import CATALOGUE
from ilyd.provision.service import Provisioner
from ilyd.salesforce.connect import make_org_rest_client
from ilyd.salesforce.soql import soql
from tests.helpers.devorg_process import devorg_fixture
from tests.helpers.simple_sf import simple_salesforce, tls_org_config

ACCOUNT, LEAD = "Account-Account Layout", "Lead-Lead Layout"
ILY = [f.api_name for f in CATALOGUE]


dev = devorg_fixture(tls=True)


@pytest.fixture
def config(dev: DevOrg, tmp_path: Path) -> Path:
    return tls_org_config(dev, tmp_path)


@pytest.fixture
def org(config: Path) -> OrgConfig:
    return load_config(config).orgs[0]


@pytest.fixture
def sf(dev: DevOrg, monkeypatch: pytest.MonkeyPatch) -> Salesforce:
    return simple_salesforce(dev, monkeypatch)


def provisioner(org: OrgConfig, **kw: bool) -> Provisioner:
    rest = make_org_rest_client(org, OrgSecrets.read(org))
    return Provisioner(org.name, rest, objects=org.objects, api_version=org.api_version, **kw)


def sections(sf: Salesforce, name: str) -> dict[str, list[list[tuple[str, str]]]]:
    """label → columns → (field, behavior), as simple-salesforce reads them."""
    layout = sf.mdapi.Layout.read([name])
    return {s.label: [[(i.field, i.behavior) for i in (c.layoutItems if c else [])]
                      for c in s.layoutColumns] for s in layout.layoutSections}


def test_every_assigned_layout_gets_an_ily_section_with_the_granted_fields_read_only(
        org: OrgConfig, sf: Salesforce) -> None:
    before = sections(sf, ACCOUNT)
    p = provisioner(org)
    p.provision()
    report = p.layouts()
    assert [c.layout for c in report.changes] == [ACCOUNT, LEAD]
    assert report.failed == ()
    for name in (ACCOUNT, LEAD):
        after = sections(sf, name)
        columns = after.pop("Ily Enrichment")
        assert after == (before if name == ACCOUNT else after)
        assert len(columns) == 2
        assert [f for column in columns for f, _ in column] == ILY
        assert {b for column in columns for _, b in column} == {"Readonly"}
    again = p.layouts()
    assert again.changes == ()
    assert again.unchanged == (ACCOUNT, LEAD)


def test_plan_shows_what_would_change_and_changes_nothing(
        config: Path, org: OrgConfig, sf: Salesforce,
        capsys: pytest.CaptureFixture[str]) -> None:
    provisioner(org).provision()
    capsys.readouterr()
    assert main(["layout", org.name, "--config", str(config), "--plan",
                 "--object", "Lead"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{LEAD}: would add {len(ILY)} field(s) to new section "
                          "'Ily Enrichment': Ily_")
    assert ACCOUNT not in out
    assert "Ily Enrichment" not in sections(sf, LEAD)
    assert main(["layout", org.name, "--config", str(config), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [c["layout"] for c in result["changes"]] == [ACCOUNT, LEAD]
    assert main(["layout", org.name, "--config", str(config)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{ACCOUNT}: shows every granted Ily field\n{LEAD}: shows every granted Ily field\n"
        f"{org.name}: nothing to do, every page layout shows the Ily fields")


def test_a_layout_already_showing_ily_fields_keeps_its_arrangement(
        org: OrgConfig, sf: Salesforce) -> None:
    p = provisioner(org)
    p.provision()
    md = sf.mdapi
    layout = md.Layout.read([ACCOUNT])
    first = layout.layoutSections[0]
    first.layoutColumns[1].layoutItems.insert(
        0, md.LayoutItem(field=ILY[3], behavior="Edit"))
    first.layoutColumns[0].layoutItems.append(md.LayoutItem(field=ILY[0], behavior="Edit"))
    md.Layout.update([layout])
    before = sections(sf, ACCOUNT)["Account Information"]
    report = p.layouts(objects=("Account",))
    (change,) = report.changes
    assert (change.section, change.new_section) == ("Account Information", False)
    assert change.add == tuple(f for f in ILY if f not in (ILY[0], ILY[3]))
    after = sections(sf, ACCOUNT)
    assert "Ily Enrichment" not in after
    columns = after["Account Information"]
    for old, new in zip(before, columns, strict=True):
        assert new[:len(old)] == old  # what was there stays, in its place
    added = [f for column, old in zip(columns, before, strict=True)
             for f, _ in column[len(old):]]
    assert sorted(added) == sorted(change.add)
    assert abs(len(columns[0]) - len(columns[1])) <= 1


def test_only_layouts_a_profile_uses_are_changed_unless_named(
        config: Path, org: OrgConfig, sf: Salesforce) -> None:
    md = sf.mdapi
    md.Layout.create([md.Layout(fullName="Account-Unused Layout", layoutSections=[
        md.LayoutSection(label="Main", style="OneColumn", layoutColumns=[
            md.LayoutColumn(layoutItems=[md.LayoutItem(field="Name", behavior="Required")])])])])
    p = provisioner(org)
    p.provision()
    assert [c.layout for c in p.layouts().changes] == [ACCOUNT, LEAD]
    assert "Ily Enrichment" not in sections(sf, "Account-Unused Layout")
    assert main(["layout", org.name, "--config", str(config),
                 "--layout", "Account-Unused Layout"]) == 0
    assert "Ily Enrichment" in sections(sf, "Account-Unused Layout")
    assert main(["layout", org.name, "--config", str(config),
                 "--layout", "Account-Nope"]) == 1


def test_auto_layout_adds_the_section_when_provisioning_creates_the_fields(
        org: OrgConfig, sf: Salesforce) -> None:
    provisioner(org, auto_layout=True).provision()
    assert "Ily Enrichment" in sections(sf, ACCOUNT)
    assert "Ily Enrichment" in sections(sf, LEAD)


def test_without_auto_layout_provisioning_leaves_the_layouts_alone(
        org: OrgConfig, sf: Salesforce) -> None:
    assert org.auto_layout is False
    provisioner(org).provision()
    assert "Ily Enrichment" not in sections(sf, ACCOUNT)


def test_check_names_the_layouts_lacking_ily_fields_and_the_command_that_fixes_it(
        org: OrgConfig) -> None:
    p = provisioner(org)
    p.provision()
    line = next(r for r in p.check().results if r.step == "page layouts")
    assert line.status == "WARN"
    assert line.summary == (f"2 layout(s) lack Ily fields: {ACCOUNT} ({len(ILY)} missing), "
                            f"{LEAD} ({len(ILY)} missing)")
    assert line.fix == f"ilyd ctl layout {org.name} (or ilyd layout {org.name} --config …)"
    p.layouts()
    line = next(r for r in p.check().results if r.step == "page layouts")
    assert (line.status, line.summary) == ("PASS", "2 page layout(s) show every granted Ily "
                                                   "field")


def test_only_fields_the_integration_user_was_granted_go_on_the_layouts(
        dev: DevOrg, org: OrgConfig, sf: Salesforce) -> None:
    p = provisioner(org)
    p.provision()
    (row,) = p.rest.query(soql("SELECT Id FROM FieldPermissions WHERE Field = {}",
                               f"Account.{ILY[0]}"))
    response = requests.delete(f"{dev.admin}/orgs/{org.name}/records/FieldPermissions/"
                               f"{row['Id']}?as=integration", timeout=10,
                               verify=str(dev.ca_file))
    assert response.status_code < 300, response.text
    p.layouts()
    account = [f for c in sections(sf, ACCOUNT)["Ily Enrichment"] for f, _ in c]
    lead = [f for c in sections(sf, LEAD)["Ily Enrichment"] for f, _ in c]
    assert account == ILY[1:]
    assert lead == ILY


def test_without_metadata_permissions_check_warns_that_it_cannot_read_the_layouts(
        dev: DevOrg, org: OrgConfig) -> None:
    p = provisioner(org)
    p.provision()
    response = requests.patch(f"{dev.admin}/orgs/{org.name}/permissions", json={"system": {
        "PermissionsModifyAllData": False, "PermissionsModifyMetadata": False}}, timeout=10,
        verify=str(dev.ca_file))
    assert response.status_code == 200, response.text
    line = next(r for r in p.check().results if r.step == "page layouts")
    assert (line.status, line.summary) == (
        "WARN", "cannot read page layouts: the Metadata API needs Modify Metadata Through "
                "Metadata API Functions or Modify All Data")
    assert line.fix is not None
    assert f"then ilyd ctl layout {org.name}" in line.fix


def test_layout_names_with_xml_characters_travel_escaped(org: OrgConfig, sf: Salesforce
                                                         ) -> None:
    md = sf.mdapi
    name = "Account-R&D <Team> Layout"
    md.Layout.create([md.Layout(fullName=name, layoutSections=[
        md.LayoutSection(label="Main & more", style="OneColumn", layoutColumns=[
            md.LayoutColumn(layoutItems=[md.LayoutItem(field="Name", behavior="Required")])])])])
    standard = md.Profile.read(["Standard"])
    standard.layoutAssignments = [md.ProfileLayoutAssignment(layout=name),
                                  md.ProfileLayoutAssignment(layout=LEAD)]
    md.Profile.update([standard])
    p = provisioner(org)
    p.provision()
    assert [c.layout for c in p.layouts().changes] == [ACCOUNT, name, LEAD]
    after = sections(sf, name)
    assert list(after) == ["Main & more", "Ily Enrichment"]
