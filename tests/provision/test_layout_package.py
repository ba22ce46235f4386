"""`ilyd fields package --layouts`: for an org where ilyd may not change metadata, a zip
an admin deploys holds the Ily fields and the page layouts with the Ily section."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce

from ilyd.cli import main
from ilyd.devorg import DevOrg
from ilyd.enrich.fields import CATALOGUE
from tests.helpers.devorg_process import devorg_fixture
from tests.helpers.simple_sf import simple_salesforce, tls_org_config

dev = devorg_fixture(tls=True)


@pytest.fixture
def config(dev: DevOrg, tmp_path: Path) -> Path:
    return tls_org_config(dev, tmp_path)


@pytest.fixture
def sf(dev: DevOrg, monkeypatch: pytest.MonkeyPatch) -> Salesforce:
    return simple_salesforce(dev, monkeypatch)


def _customize_application(dev: DevOrg, granted: bool) -> None:
    response = requests.patch(f"{dev.admin}/orgs/{dev.orgs[0].name}/permissions", json={
        "system": {"PermissionsCustomizeApplication": granted}}, timeout=10)
    assert response.status_code == 200, response.text


def test_the_package_with_layouts_deploys_the_fields_and_the_ily_section(
        dev: DevOrg, config: Path, sf: Salesforce, tmp_path: Path) -> None:
    # ilyd may read metadata but not change it: the admin deploys the zip
    _customize_application(dev, False)
    out = tmp_path / "ily.zip"
    assert main(["fields", "package", dev.orgs[0].name, "--config", str(config),
                 "--layouts", "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as archive:
        names = sorted(archive.namelist())
        package = archive.read("ily_fields/package.xml").decode()
    assert "ily_fields/layouts/Account-Account Layout.layout" in names
    assert "ily_fields/layouts/Lead-Lead Layout.layout" in names
    assert "<members>Account-Account Layout</members>" in package
    assert "<name>Layout</name>" in package
    _customize_application(dev, True)  # the admin, who may
    status = sf.checkDeployStatus(sf.deploy(str(out), sandbox=False)["asyncId"])
    assert status["state"] == "Succeeded", status
    for name, sobject in (("Account-Account Layout", "Account"), ("Lead-Lead Layout", "Lead")):
        layout = sf.mdapi.Layout.read([name])
        section = next(s for s in layout.layoutSections if s.label == "Ily Enrichment")
        shown = [i.field for c in section.layoutColumns if c for i in c.layoutItems]
        assert shown == [f.api_name for f in CATALOGUE if sobject in f.objects]
        assert layout.layoutSections[0].label == f"{sobject} Information"


def test_layouts_need_the_config_to_read_them(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    assert main(["fields", "package", "acme", "--layouts",
                 "--out", str(tmp_path / "x.zip")]) == 2
    assert "--layouts reads the org's page layouts: give --config" in capsys.readouterr().err
